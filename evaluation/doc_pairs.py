"""Question/answer pairs made by rule from a documentation set's own structure.

Every pair in the training pool is about prose, and prose is what the reader reads well: on the
real-collection benchmark (the SQLite documentation) its top-1 F1 is about 62 on prose and 22-30
on tables, parameter lists and code-adjacent text. Documentation built by Sphinx (and most
generators) marks that structure in its HTML: a ``<dl class="py function">`` holds a name and the
sentence that says what it does; a table's header cells say what each cell of a row is; a
``<dl class="std cmdoption">`` holds an option and its effect. This module turns each into
questions whose answers are the name, the cell or the option, and pairs each with the passage
that holds it, converted and split exactly as the indexer does (``indexer.convert_file``,
``indexer.split_document``), so the reader trains on the text it will serve: tables as
"Header: cell | Header: cell" rows, signatures as the indexer writes them.

No model writes the questions: they are templates, worded close to the text. What they teach is
where answers sit in structured text (a name before its description, a cell under its header),
not paraphrase; mixed with replayed prose pairs they are a domain stage, not a training pool.

Measured once and not shipped (README, "Training the reader: the campaign"): 2,500 pairs from
the Python 3.11 documentation in a domain stage over reader v0.4 lifted tables and lists on the
SQLite benchmark a little and cost code and prose more (realdocs top-1 F1 46.85 -> 44.82, demo
70.39 -> 66.73). The module stays as campaign tooling for other mixes; no command offers it.
A share of the questions is paired with another passage of the same page that lacks the answer
(SQuAD 2.0 ``is_impossible``), so the reader does not learn to answer every API-shaped question.

No library does this: question generation libraries need a seq2seq model (none offline), and
Haystack's ``QuestionGenerator`` was removed in Haystack 2.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_TAG_GAP = re.compile(r"\s+([.,;:!?)\]])")
_TAG_GAP_OPEN = re.compile(r"([(\[])\s+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]`'\"’”])[.!?](?=\s|$)")
# Leading verbs of API descriptions ("Return a string ..."), said in the third person
# (:func:`_third_person`) by a question.
_VERBS = frozenset({
    "accept", "acquire", "add", "allocate", "append", "apply", "attach", "bind", "block", "build",
    "call", "cancel", "change", "check", "clear", "close", "collect", "compare", "compile",
    "compute", "connect", "construct", "convert", "copy", "count", "create", "declare", "decode",
    "decrypt", "define", "delete", "deserialize", "detach", "determine", "disable", "display",
    "draw", "emit", "enable", "encode", "encrypt", "escape", "evaluate", "execute", "exit",
    "expand", "export", "extend", "fetch", "fill", "filter", "find", "flush", "force", "fork",
    "format", "free", "generate", "get", "group", "handle", "hash", "ignore", "import", "indicate",
    "initialize", "insert", "install", "issue", "iterate", "join", "kill", "listen", "load",
    "lock", "log", "make", "map", "mark", "match", "measure", "merge", "move", "normalize",
    "notify", "open", "pack", "pad", "parse", "perform", "pop", "print", "process", "push", "put",
    "query", "quote", "raise", "read", "receive", "register", "release", "remove", "rename",
    "replace", "reset", "restore", "resume", "retrieve", "return", "reverse", "rotate", "round",
    "run", "save", "schedule", "search", "select", "send", "serialize", "set", "shift", "show",
    "shut", "sign", "skip", "sort", "spawn", "specify", "split", "start", "stop", "store", "strip",
    "suspend", "terminate", "test", "transform", "translate", "trim", "truncate", "turn", "unlock",
    "unpack", "unquote", "update", "use", "validate", "verify", "wait", "wrap", "write",
})  # fmt: skip
_KIND_NOUN = {
    "function": "function", "method": "method", "classmethod": "method",
    "staticmethod": "method", "class": "class", "exception": "exception",
}  # fmt: skip
# Header names of the column that describes a row, asked as "What does X mean / do?".
_MEANING_HEADERS = {"meaning", "description", "purpose", "effect", "explanation"}
# Columns that hold footnote marks or that no question can name.
_SKIPPED_HEADERS = {"notes", "note", "to", "from", "see also", "#"}
_FOOTNOTE = re.compile(r"^\(?\[?\d+\]?\)?$")


@dataclass(frozen=True)
class PairSettings:
    """How pairs are made: the index's split settings (so contexts are its passages) and mix."""

    split_words: int = 200
    split_overlap: int = 30
    split_max_chars: int | None = 4000
    split_sections: bool = False
    unanswerable_share: float = 0.2  # questions paired with a passage that lacks the answer
    per_page: int = 40  # at most this many per page, so big API pages do not dominate
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> PairSettings:
        """The split settings of a DocQA :class:`~pipelines.settings.Settings`."""
        return cls(
            split_words=settings.split_words, split_overlap=settings.split_overlap,
            split_max_chars=settings.split_max_chars, split_sections=settings.split_sections,
            **overrides,
        )  # fmt: skip


@dataclass(frozen=True)
class DocPair:
    """One question over one passage; ``answer`` is None where the passage cannot answer it."""

    question: str
    context: str
    answer: str | None
    answer_start: int
    kind: str  # "api", "api-return", "option", "table", "table-key", each "+none" when unanswerable
    source: str


@dataclass(frozen=True)
class _Fact:
    """A question, its answer and text that must sit near the answer in the passage (the anchor)."""

    question: str
    answers: tuple[str, ...]  # the first found in the passage is the answer
    anchor: str
    kind: str


def _text(node: Any) -> str:
    text = _SPACE.sub(" ", node.get_text(" ")).replace("¶", "")
    # get_text(" ") puts a space at every inline tag's edge: "thread_id ." / "f( x )".
    return _TAG_GAP.sub(r"\1", _TAG_GAP_OPEN.sub(r"\1", text)).strip()


def _bare(text: str) -> str:
    """A cell or phrase as a question quotes it or an answer spans it: no closing punctuation."""
    return text.rstrip(" .:;,")


def _first_sentence(text: str) -> str | None:
    match = _SENTENCE_END.search(text)
    sentence = text[: match.start()] if match else text
    return sentence.strip() if 3 <= len(sentence.split()) <= 28 else None


def _third_person(verb: str) -> str:
    """ "return" -> "returns", "push" -> "pushes", "copy" -> "copies"."""
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _verb_phrase(sentence: str) -> tuple[str, str] | None:
    """("returns", "a string ...") of a description that starts with a verb we know."""
    first, _, rest = sentence.partition(" ")
    word = first.lower()
    if word in _VERBS:
        verb = _third_person(word)
    elif word.endswith("s") and (word[:-1] in _VERBS or word[:-2] in _VERBS):  # "returns"
        verb = word
    else:
        return None
    return (verb, rest) if len(rest.split()) >= 2 else None


def _description(body: Any) -> tuple[str, str, str] | None:
    """An entry's first sentence and its leading verb phrase, ``(sentence, verb, rest)``;
    None when the entry has no paragraph or it does not open with a known verb."""
    paragraph = body.find("p", recursive=False)
    sentence = _first_sentence(_text(paragraph)) if paragraph is not None else None
    phrase = _verb_phrase(sentence) if sentence else None
    return (sentence, *phrase) if sentence and phrase else None


def _api_facts(soup: Any, rng: random.Random) -> Iterator[_Fact]:
    for entry in soup.select("dl.py"):
        kinds = [k for k in entry.get("class", []) if k in _KIND_NOUN]
        title, body = entry.find("dt", recursive=False), entry.find("dd", recursive=False)
        if not kinds or title is None or body is None:
            continue
        name_node = title.select_one(".sig-name")
        if name_node is None:
            continue
        name = _text(name_node)
        prefix_node = title.select_one(".sig-prename")
        prefix = _text(prefix_node).replace(" ", "") if prefix_node else ""
        described = _description(body)
        if described is None or not name:
            continue
        sentence, verb, rest = described
        noun = _KIND_NOUN[kinds[0]]
        owner = prefix.rstrip(".")
        if owner and rng.random() < 0.5:
            who = f"Which {owner} {noun}" if noun != "method" else f"Which method of {owner}"
        else:
            who = rng.choice([f"Which {noun}", f"What {noun}"])
        callable_ = noun in {"function", "method"}
        names = (f"{prefix}{name}()",) if callable_ else ()
        names += (f"{prefix}{name}", name) if prefix else (name,)
        yield _Fact(f"{who} {verb} {_bare(rest)}?", names, sentence[:60], "api")
        if verb == "returns" and len(rest.split()) <= 16:
            called = f"{prefix}{name}()" if callable_ else f"{prefix}{name}"
            question = rng.choice(
                [f"What does {called} return?", f"What is returned by {called}?",
                 f"What do I get back from {called}?"]
            )  # fmt: skip
            yield _Fact(question, (_bare(rest),), name, "api-return")


def _option_facts(soup: Any, rng: random.Random) -> Iterator[_Fact]:
    for entry in soup.select("dl.std"):
        classes = set(entry.get("class", []))
        noun = (
            "command-line option" if "cmdoption" in classes
            else "pdb command" if "pdbcommand" in classes
            else "opcode" if "opcode" in classes
            else "environment variable" if "envvar" in classes
            else None
        )  # fmt: skip
        title, body = entry.find("dt", recursive=False), entry.find("dd", recursive=False)
        if noun is None or title is None or body is None:
            continue
        name_node = title.select_one(".sig-name") or title
        name = _text(name_node).split(" ")[0]
        described = _description(body)
        if described is None or not name:
            continue
        sentence, verb, rest = described
        question = f"{rng.choice(['Which', 'What'])} {noun} {verb} {_bare(rest)}?"
        yield _Fact(question, (name,), sentence[:60], "option")


def _table_rows(table: Any) -> tuple[list[str], list[list[str]]] | None:
    rows = table.find_all("tr")
    if not rows:
        return None
    header_cells = rows[0].find_all("th")
    if len(header_cells) < 2 or len(header_cells) != len(rows[0].find_all(["th", "td"])):
        return None
    header = [_text(c) for c in header_cells]
    body = []
    for row in rows[1:]:
        cells = row.find_all(["td", "th"])
        if len(cells) == len(header):
            body.append([_text(c) for c in cells])
    return header, body


def _table_facts(soup: Any, rng: random.Random) -> Iterator[_Fact]:
    for table in soup.find_all("table"):
        parsed = _table_rows(table)
        if parsed is None:
            continue
        header, body = parsed
        if not all(header) or any(len(h.split()) > 4 for h in header):
            continue
        key_header = header[0].lower()
        for cells in body:
            key = cells[0]
            if not key or len(key.split()) > 8:
                continue
            for column, cell in list(enumerate(cells))[1:]:
                name = header[column]
                if (
                    not cell
                    or len(cell.split()) > 16
                    or cell == key
                    or _FOOTNOTE.match(cell)
                    or name.lower() in _SKIPPED_HEADERS
                ):
                    continue
                if name.lower() in _MEANING_HEADERS:
                    question = rng.choice(
                        [f"What does {key} mean?", f"What does the {key_header} {key} do?",
                         f"What is {key} for?"]
                    )  # fmt: skip
                else:
                    question = rng.choice(
                        [f"What is the {name.lower()} of {key}?",
                         f"What {name.lower()} does {key} have?",
                         f"For {key}, what is the {name.lower()}?"]
                    )  # fmt: skip
                yield _Fact(question, (_bare(cell),), key, "table")
                if column == 1 and len(cell.split()) >= 2 and len(key.split()) <= 4:
                    question = f"Which {key_header} has the {name.lower()} {_bare(cell)}?"
                    yield _Fact(question, (key,), _bare(cell), "table-key")


def _locate(fact: _Fact, passages: Sequence[str]) -> tuple[int, str, int] | None:
    """(passage, answer, offset): the first answer found within 300 chars of the anchor."""
    for answer in fact.answers:
        for index, text in enumerate(passages):
            start = text.find(answer)
            while start >= 0:
                window = text[max(0, start - 300) : start + len(answer) + 300]
                if fact.anchor in window:
                    return index, answer, start
                start = text.find(answer, start + 1)
    return None


def pairs_from_page(path: Path, config: PairSettings | None = None) -> list[DocPair]:
    """The pairs of one HTML page; the passages are the indexer's for ``config``'s split."""
    from bs4 import BeautifulSoup

    from indexer.convert import convert_file
    from indexer.split import split_document

    config = config or PairSettings()
    rng = random.Random(f"{config.seed}:{path.name}")
    soup = BeautifulSoup(path.read_bytes(), "lxml")
    facts = [*_api_facts(soup, rng), *_option_facts(soup, rng), *_table_facts(soup, rng)]
    if not facts:
        return []
    doc = convert_file(path)
    passages = [
        p.content
        for p in split_document(
            doc, config.split_words, config.split_overlap, max_chars=config.split_max_chars,
            sections=config.split_sections, source=path.name,
        )
    ]  # fmt: skip
    pairs = []
    for fact in facts:
        found = _locate(fact, passages)
        if found is None:
            continue
        index, answer, start = found
        others = [
            i for i, text in enumerate(passages)
            if answer not in text and fact.anchor not in text and abs(i - index) > 1
        ]  # fmt: skip
        if others and rng.random() < config.unanswerable_share:
            pairs.append(
                DocPair(fact.question, passages[rng.choice(others)], None, -1,
                        f"{fact.kind}+none", path.name)
            )  # fmt: skip
        else:
            pairs.append(
                DocPair(fact.question, passages[index], answer, start, fact.kind, path.name)
            )
    return pairs


def html_pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".html", ".htm"})


def build_doc_pairs(
    pages: Iterable[Path],
    config: PairSettings | None = None,
    *,
    limit: int | None = None,
    progress: bool = False,
) -> list[DocPair]:
    """Pairs from every page, shuffled; a page that cannot be read or converted is logged and
    gives none (one broken page must not stop a folder)."""
    from tqdm.auto import tqdm

    from indexer.convert import ConversionError

    config = config or PairSettings()
    rng = random.Random(config.seed)
    pairs: list[DocPair] = []
    pages = list(pages)
    for path in tqdm(pages, desc="pages", unit="page", disable=not progress):
        try:
            found = pairs_from_page(path, config)
        except (ConversionError, OSError, ValueError) as exc:
            logger.warning("%s: no pairs (%s)", path, exc)
            continue
        rng.shuffle(found)
        pairs.extend(found[: config.per_page])
    rng.shuffle(pairs)
    return pairs[:limit] if limit else pairs


def to_squad(pairs: Sequence[DocPair], title: str = "doc-pairs") -> dict[str, Any]:
    """SQuAD v2.0 JSON, one paragraph per pair (contexts repeat; the trainer windows each)."""
    articles: dict[str, list[dict[str, Any]]] = {}
    for number, pair in enumerate(pairs):
        qa: dict[str, Any] = {
            "id": f"{title}-{number:06d}",
            "question": pair.question,
            "answers": [] if pair.answer is None else [
                {"text": pair.answer, "answer_start": pair.answer_start}
            ],
            "is_impossible": pair.answer is None,
        }  # fmt: skip
        articles.setdefault(pair.source, []).append({"context": pair.context, "qas": [qa]})
    return {
        "version": "v2.0",
        "data": [{"title": source, "paragraphs": paras} for source, paras in articles.items()],
    }
