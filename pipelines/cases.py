"""Answers that depend on a case: the parallel values around an answer span, each with its case.

A passage often answers differently per country, plan or version ("Full-time employees in the
Netherlands get 25 days, colleagues in the United States get 20 days of PTO, ..."). An
extractive reader picks one span of it and, torn between them, often abstains. Given the span it
picked, :func:`find_cases` looks at the sentence, list or table around it and, when that holds two
or more values of the span's shape (the same unit word after the number, or all money,
percentages, dates or versions), returns each value with the phrase naming its case, as character
offsets into the passage: citations stay exact spans of the source.

Hand-written because we know of no library that does this: sentence splitters (pysbd, NLTK) and
quantity parsers (quantulum3, pint) find sentences and numbers, but none pairs parallel values
with the phrases naming their cases, and the model-based ones would cost a model load for what a
few regular expressions over one passage do. The rules are conservative, since a wrong "it
depends" misleads more than an abstention: a single value, a range ("from 20 to 25 days"),
values without the same connector ("get", ":") or a case that does not read as a name give none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Case", "find_cases", "has_parallel_values", "question_names_a_case"]


@dataclass(frozen=True)
class Case:
    """One case of a case-dependent answer: ``text[value_start:value_end] == value`` and
    ``text[case_start:case_end] == case`` in the passage given to :func:`find_cases`."""

    case: str
    value: str
    value_start: int
    value_end: int
    case_start: int
    case_end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- values -------------------------------------------------------------------------------------

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec"
)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CODES = "USD|EUR|GBP|INR|JPY|CHF|AUD|CAD|SEK|NOK|DKK|CNY|PLN"
_MONEY_WORDS = r"euros?|dollars?|pounds?|rupees?|francs?"
_TYPED = (
    (
        "date",
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}\s+(?:{_MONTHS})\b(?:\s+\d{{4}}\b)?"
        rf"|\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?",
    ),
    (
        "money",
        rf"[$€£¥₹]\s?(?:{_NUM})(?:\s?(?:k|m|bn|million|billion)\b)?|\b(?:{_CODES})\s?(?:{_NUM})"
        rf"|(?<![\w.,])(?:{_NUM})\s?(?:{_CODES}|{_MONEY_WORDS})\b",
    ),
    ("percent", rf"(?<![\w.,])(?:{_NUM})\s?(?:%|percent\b|per\s+cent\b)"),
    (
        "version",
        r"\b[vV]\d+(?:\.\d+)+\b|\b(?:[Vv]ersion|[Ff]irmware|[Rr]elease)\s+\d+(?:\.\d+)*\b"
        r"|(?<![\w.])\d+\.\d+\.\d+\b",
    ),
)
_TYPED_RE = [(kind, re.compile(pattern)) for kind, pattern in _TYPED]
_NUMBER = re.compile(rf"(?<![\w.,/:-])(?:{_NUM})(?![\w%]|[.,]\d)")
# The next word; across a line break only in lower case (a PDF line wrapped mid-phrase), so a
# value never runs into the next line's label, row or list item.
_WORD = re.compile(r"[ \t]*(?:\n[ \t]*(?=[a-z]))?([A-Za-z][\w'’-]*)")
# "up to 5 days": the qualifier belongs to the value, not to the case before it.
_QUALIFIER = re.compile(
    r"\b(?:up to|at least|at most|more than|less than|fewer than|above|below|about|around"
    r"|approximately|roughly|maximum|minimum)\s+$",
    re.IGNORECASE,
)
_BULLET = r"(?:[-*•]|\d{1,2}[.)])"
_ITEM_START = re.compile(rf"[ \t]*{_BULLET}\s")

# Words that end a value ("25 days after five years": the value is "25 days").
_VALUE_STOP = _words(
    "and or but nor after before if when whenever while whereas until unless which that who whom"
    " whose where for in on at from with to by than as since because rising increasing falling"
    " plus including excluding except then so also is are was were be will can may must should"
    " would could get gets have has had the this these those their its your our you they we it"
    " receive receives"
)
_UNIT_STOP = _words("of per a an each every the and or are is")
_DANGLING = _words("of per a an each every")
_MAX_VALUE_WORDS = 6


@dataclass(frozen=True)
class _Value:
    start: int
    end: int  # the value with its unit and complement ("20 days of PTO")
    kind: str  # "money", "percent", "date", "version" or "unit" (a number and its unit word)
    units: frozenset[str]  # "unit": the content words after the number


def _singular(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _unit_words(text: str, pos: int) -> frozenset[str]:
    """The unit after a number: its first word, and the next while that one is not plural
    ("25 vacation days": vacation, day; "4,000 frames per second": frame)."""
    words: set[str] = set()
    while len(words) < 2:
        match = _WORD.match(text, pos)
        if match is None or match.group(1).lower() in _UNIT_STOP:
            break
        pos = match.end()
        word = match.group(1)
        words.add(_singular(word))
        if _singular(word) != word.lower():
            break
    return frozenset(words)


def _extend(text: str, pos: int) -> int:
    """The end of the value whose core ends at ``pos``: its following words up to a clause
    break (punctuation, a conjunction or preposition that starts a new phrase)."""
    end, words = pos, 0
    while words < _MAX_VALUE_WORDS:
        match = _WORD.match(text, end)
        if match is None:
            break
        word = match.group(1).lower()
        if word in _VALUE_STOP:
            break
        end, words = match.end(), words + 1
    while words:  # no dangling "per" or "of"
        last = re.search(r"([A-Za-z][\w'’-]*)$", text[pos:end])
        if last is None or last.group(1).lower() not in _DANGLING:
            break
        end = pos + len(text[pos:end][: last.start()].rstrip())
        words -= 1
    return end


def _values(text: str) -> list[_Value]:
    """Every value in ``text``, in order: typed ones first claim their characters."""
    found: list[_Value] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _TYPED_RE:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append(_Value(m.start(), m.end(), kind, frozenset()))
    for m in _NUMBER.finditer(text):
        if any(m.start() < e and s < m.end() for s, e in taken):
            continue
        units = _unit_words(text, m.end())
        if units:
            found.append(_Value(m.start(), m.end(), "unit", units))
    values = []
    for v in sorted(found, key=lambda v: v.start):
        start = v.start
        qualifier = _QUALIFIER.search(text, max(0, start - 20), start)
        if qualifier is not None:
            start = qualifier.start()
        values.append(_Value(start, _extend(text, v.end), v.kind, v.units))
    return values


def _same_shape(a: _Value, b: _Value) -> bool:
    return a.kind == b.kind and (a.kind != "unit" or bool(a.units & b.units))


# -- the phrase naming a case ---------------------------------------------------------------------

_CONNECTOR = re.compile(
    r"(?:\s+|^)(?:(?:will|can|may|must|should|shall|would|could|also|only|then|each|all)\s+)*"
    r"(?P<verb>get|gets|got|receive|receives|have|has|is|are|was|were|earn|earns|cost|costs"
    r"|pay|pays|take|takes|accrue|accrues|run|runs|use|uses|require|requires|need|needs"
    r"|support|supports|include|includes|offer|offers|provide|provides|allow|allows|ship|ships"
    r"|start|starts|end|ends|close|closes|open|opens|expire|expires|last|lasts|charge|charges"
    r"|is entitled to|are entitled to|amounts to|amount to|is set to|are set to|is limited to"
    r"|are limited to)(?:\s+(?:on|at|of|for|from|with))?\s*$"
    r"|\s*(?P<colon>[:=])\s*$",
    re.IGNORECASE,
)
_LEADING = re.compile(r"(?:\s|(?:and|or|but|while|whereas|plus|then|also)\b)+", re.IGNORECASE)
_CONTINUATION = re.compile(
    r"(?:after|before|rising|increasing|falling|of|which|for|with|plus|per|including|excluding"
    r"|except|accrued|compared|up|until|to|from|than)\b",
    re.IGNORECASE,
)
_CONJUNCTION = re.compile(r"(?:and|or|but|while|whereas|versus|vs)\b", re.IGNORECASE)
_TRAILING_PREPOSITION = re.compile(
    r"\b(?:from|to|by|of|at|in|on|for|with|than|between|into|over|under|about)$", re.IGNORECASE
)
_NOT_A_NAME = _words(
    "you they it we he she this that these those there which who one each all both it's"
)
_MAX_CASE_WORDS = 12
# A case without its own connector repeats the first one's ("and in India 21 days", "and the
# Pro plan €25"): it starts with a preposition or an article and is short.
_ELLIPSIS = re.compile(
    r"(?:in|for|at|on|within|with|under|to|the|a|an)\b(?:\W+\w+){0,5}\W*$", re.IGNORECASE
)
_PRONOUN = re.compile(r"\s+(?:it|you|they|we|he|she|one)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Phrase:
    start: int
    end: int
    connector: str  # "get", "cost", ":" (singular, lower case) or "" (none)


def _name(text: str, start: int, end: int) -> _Phrase | None:
    """``text[start:end]`` trimmed to the name of a case: no leading conjunction, no trailing
    connector; None when what is left does not read as a name."""
    lead = _LEADING.match(text, start, end)
    if lead is not None:
        start = lead.end()
    connector = ""
    match = _CONNECTOR.search(text[start:end])
    if match is not None:
        connector = ":" if match.group("colon") else _singular(match.group("verb").split()[0])
        end = start + match.start()
    while end > start and text[end - 1] in " \t\n,;-–(":
        end -= 1
    pronoun = _PRONOUN.search(text, start, end)  # "in the Netherlands you (get)"
    if pronoun is not None and pronoun.start() > start:
        end = pronoun.start()
    while start < end and text[start] in " \t\n,;-–)":
        start += 1
    phrase = text[start:end]
    words = re.findall(r"[\w'’-]+", phrase)
    if not words or len(words) > _MAX_CASE_WORDS or not any(w[0].isalpha() for w in words):
        return None
    if {w.lower() for w in words} <= _NOT_A_NAME or _TRAILING_PREPOSITION.search(phrase):
        return None
    return _Phrase(start, end, connector)


def _first_phrase(text: str, start: int, end: int) -> _Phrase | None:
    """The case before a sentence's first value: from the sentence start, or after its last
    colon or semicolon ("It depends on your country: in the Netherlands you get ...")."""
    gap = text[start:end]
    trailing = _CONNECTOR.search(gap)
    inner = gap[: trailing.start()] if trailing is not None else gap
    cut = max(inner.rfind(":"), inner.rfind(";"))
    return _name(text, start + cut + 1 if cut >= 0 else start, end)


def _next_phrase(text: str, start: int, end: int) -> _Phrase | None:
    """The case between the previous value (ending at ``start``) and the next: after a comma,
    semicolon or conjunction; None when the gap only continues the previous value (", rising
    to", " in 2024 to") or names nothing."""
    gap = text[start:end]
    closing = _unmatched_close(gap)
    if closing >= 0:  # the previous value's parenthesis: "20 days (25 after five years), and"
        start, gap = start + closing + 1, gap[closing + 1 :]
    stripped = gap.lstrip()
    if stripped.startswith("("):
        close = _unmatched_close(stripped[1:])
        if close < 0:
            return None  # a value inside parentheses qualifies the one before
        skip = len(gap) - len(stripped) + close + 2
        start, gap = start + skip, gap[skip:]
    cuts = [m.end() for m in re.finditer(r"[,;]", gap)]
    bounds = list(zip([0, *cuts], [c - 1 for c in cuts] + [len(gap)], strict=True))
    taken: int | None = None
    for i in range(len(bounds) - 1, -1, -1):
        segment = gap[bounds[i][0] : bounds[i][1]].strip()
        if not segment:
            break
        if _CONJUNCTION.match(segment):
            taken = i
            break
        if i == 0 or _CONTINUATION.match(segment):
            break
        taken = i
    if taken is None:
        return None
    return _name(text, start + bounds[taken][0], end)


def _unmatched_close(text: str) -> int:
    depth = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return i
            depth -= 1
    return -1


# -- blocks: sentence, list, table ----------------------------------------------------------------

_ABBREVIATIONS = _words("e.g i.e etc approx incl excl vs no nr mr ms dr st u.s u.k")


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9\"'(\[])|\n[ \t]*\n|\n(?=[ \t]*[-*•]\s)")


def _sentence(text: str, pos: int) -> tuple[int, int]:
    """The sentence around ``pos``: between sentence ends (".", "!", "?" before a capital), blank
    lines and list items."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() >= pos:
            return start, _trim_end(text, start, m.start() + 1)
        if not _abbreviation(text, m.start()):
            start = m.end()
    return start, len(text.rstrip())


def _trim_end(text: str, start: int, end: int) -> int:
    return start + len(text[start:end].rstrip())


def _abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([\w.]+)$", text[max(0, dot - 10) : dot])
    return word is not None and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1)


def _sentence_cases(text: str, values: Sequence[_Value], anchor: _Value) -> list[Case]:
    start, end = _sentence(text, anchor.start)
    parallel = [v for v in values if start <= v.start and v.end <= end and _same_shape(v, anchor)]
    if len(parallel) < 2:
        return []
    cases: list[Case] = []
    first = _first_phrase(text, start, parallel[0].start)
    if first is None or not first.connector:
        return []
    cases.append(_case(text, first, parallel[0]))
    previous = parallel[0].end
    for value in parallel[1:]:
        phrase = _next_phrase(text, previous, value.start)
        previous = value.end
        if phrase is None:
            continue  # it qualifies the case before ("rising to 25 days after five years")
        if phrase.connector not in ("", first.connector):
            return []
        if not phrase.connector and not _ELLIPSIS.match(text, phrase.start, phrase.end):
            return []  # "and Lumenfield's licence covers 750 users": not the same connector
        cases.append(_case(text, phrase, value))
    return cases


def _case(text: str, phrase: _Phrase, value: _Value) -> Case:
    return Case(
        case=text[phrase.start : phrase.end],
        value=text[value.start : value.end],
        value_start=value.start,
        value_end=value.end,
        case_start=phrase.start,
        case_end=phrase.end,
    )


def _lines(text: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for line in text.split("\n"):
        out.append((start, start + len(line)))
        start += len(line) + 1
    return out


_LABELLED = re.compile(rf"[ \t]*(?P<bullet>{_BULLET}[ \t]+)?(?P<label>[^:\n|]{{1,80}}?):[ \t]+\S")


def _items(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Lines grouped into items: a line and the wrapped lines after it (starting lower case,
    PDF-style); ``(first line, last line, bulleted)``."""
    items: list[tuple[int, int, bool]] = []
    for i, (s, e) in enumerate(lines):
        line = text[s:e]
        wrapped = (
            items
            and items[-1][1] == i - 1
            and items[-1][2]
            and line[:1].islower()
            and text[lines[i - 1][0] : lines[i - 1][1]].strip()
        )
        if wrapped:
            items[-1] = (items[-1][0], i, True)
        elif line.strip():
            items.append((i, i, bool(_ITEM_START.match(line))))
    return items


def _list_cases(text: str, values: Sequence[_Value], anchor: _Value) -> list[Case]:
    """Cases of "Label: value" lines ("- Netherlands: 25 vacation days", "Plan A: 10 GB")."""
    lines = _lines(text)
    items = _items(text, lines)
    at = next(
        (k for k, (a, b, _) in enumerate(items) if lines[a][0] <= anchor.start <= lines[b][1]),
        None,
    )
    if at is None:
        return []

    def labelled(k: int) -> tuple[int, int, int, int] | None:
        """(label start, label end, rest start, item end) of item ``k`` if it is labelled."""
        first, last, _ = items[k]
        m = _LABELLED.match(text, lines[first][0], lines[first][1])
        if m is None:
            return None
        return m.start("label"), m.end("label"), m.end("label") + 1, lines[last][1]

    own = labelled(at)
    if own is None or anchor.start < own[2]:
        return []
    group = [at]
    for step in (-1, 1):
        k = at + step
        while (
            0 <= k < len(items)
            and items[k][2] == items[at][2]
            and items[max(k, k - step)][0] == items[min(k, k - step)][1] + 1  # no line between
            and labelled(k) is not None
        ):
            group.append(k)
            k += step
    cases = []
    for k in sorted(group):
        label = labelled(k)
        assert label is not None
        value = next(
            (v for v in values if label[2] <= v.start < label[3] and _same_shape(v, anchor)), None
        )
        phrase = _name(text, label[0], label[1])
        if value is not None and phrase is not None:
            cases.append(_case(text, phrase, _within(value, label[3])))
    return cases


def _within(value: _Value, limit: int) -> _Value:
    """``value`` ending no later than its item or cell."""
    return _Value(value.start, min(value.end, limit), value.kind, value.units)


def _table_cases(text: str, values: Sequence[_Value], anchor: _Value) -> list[Case]:
    """Cases of table rows as :func:`indexer.convert.table_text` writes them ("Country: India |
    One-off budget: 25,000 INR"): the first cell names the case, the anchor's column the value."""
    lines = _lines(text)
    row = next(k for k, (s, e) in enumerate(lines) if s <= anchor.start <= e)
    if " | " not in text[lines[row][0] : lines[row][1]]:
        return []
    first = last = row
    while first > 0 and " | " in text[lines[first - 1][0] : lines[first - 1][1]]:
        first -= 1
    while last + 1 < len(lines) and " | " in text[lines[last + 1][0] : lines[last + 1][1]]:
        last += 1
    column = next(
        (k for k, (s, e) in enumerate(_cells(text, *lines[row])) if s <= anchor.start < e), 0
    )
    if column == 0:
        return []
    cases = []
    for s, e in lines[first : last + 1]:
        cells = _cells(text, s, e)
        if len(cells) <= column:
            continue
        name_start, name_end = _unlabelled(text, *cells[0])
        cell_start, cell_end = cells[column]
        value = next(
            (v for v in values if cell_start <= v.start < cell_end and _same_shape(v, anchor)),
            None,
        )
        phrase = _name(text, name_start, name_end)
        if value is not None and phrase is not None:
            cases.append(_case(text, phrase, _within(value, cell_end)))
    return cases


def _cells(text: str, start: int, end: int) -> list[tuple[int, int]]:
    cells, at = [], start
    for part in text[start:end].split(" | "):
        cells.append((at, at + len(part)))
        at += len(part) + 3
    return cells


def _unlabelled(text: str, start: int, end: int) -> tuple[int, int]:
    """A cell without the column label the converter put before it ("Country: India")."""
    m = re.match(r"[^:|]{1,40}:\s+", text[start:end])
    return (start + m.end(), end) if m else (start, end)


# -- the entry point ------------------------------------------------------------------------------


def find_cases(text: str, start: int, end: int) -> list[Case]:
    """The cases of the answer ``text[start:end]``: when the table rows, "Label: value" list or
    sentence around it give two or more values of its shape, each with the phrase naming its
    case, in text order; else an empty list. Offsets are into ``text``."""
    if not 0 <= start < end <= len(text):
        return []
    values = _values(text)
    inside = [v for v in values if v.start < end and start < v.end]
    if len(inside) != 1:  # none, or a span over two values ("12 months\n- Emails: 3 years")
        return []
    anchor = inside[0]
    for block in (_table_cases, _list_cases, _sentence_cases):
        cases = block(text, values, anchor)
        if cases:
            break
    names = {" ".join(c.case.lower().split()) for c in cases}
    if len(cases) < 2 or len(names) < len(cases):
        return []
    if not any(c.value_start < end and start < c.value_end for c in cases):
        # The span is a qualifier of a case ("25 days after five years"): still those cases.
        lo, hi = min(c.case_start for c in cases), max(c.value_end for c in cases)
        if not lo <= start < hi:
            return []
    return cases


def has_parallel_values(text: str) -> bool:
    """Whether ``text`` holds two values of one shape at all (a cheap test before reading it
    again for cases)."""
    values = _values(text)
    return any(_same_shape(a, b) for i, a in enumerate(values) for b in values[i + 1 :])


_NAME_WORD = re.compile(r"[A-Za-z0-9][\w-]*")
_NOT_NAMING = _words("the a an in for at on of to and or with within by")


def question_names_a_case(question: str, cases: Sequence[Case]) -> bool:
    """Whether ``question`` already picks one of ``cases`` ("... in the Netherlands?"): then the
    answer does not depend on the case. A case is named by a word of its name that is
    capitalized or holds a digit ("Netherlands", "P1") and is not in every case's name."""
    names = []
    for case in cases:
        words = {
            _singular(w)
            for w in _NAME_WORD.findall(case.case)
            if (w[0].isupper() or any(ch.isdigit() for ch in w)) and w.lower() not in _NOT_NAMING
        }
        names.append(words)
    shared = set.intersection(*names) if names else set()
    asked = {_singular(w) for w in _NAME_WORD.findall(question)}
    return any((words - shared) & asked for words in names)
