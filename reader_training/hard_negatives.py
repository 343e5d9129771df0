"""Hard unanswerable questions made by rule from answerable ones, SQuAD 2.0 style.

SQuAD 2.0's unanswerables were written by editing answerable questions so that they stay on
topic and plausible but the paragraph no longer answers them (Rajpurkar et al. 2018: entity swap,
number swap, antonym, negation, mutual exclusion, impossible condition). Our training pool has
none, and the two easy kinds in :mod:`reader_training.augment` (answer sentence cut out, another
paragraph) teach a threshold that is too permissive for such questions (v0.2: NoAns 29.6 on
``dev-v2.0-half``). These rules make the hard kinds cheaply on a CPU, with no model:

* ``entity``: a capitalized name in the question is swapped for another name of the paragraph;
* ``number``: a number or year in the question is swapped for another of the same shape;
* ``antonym``: a word is swapped for its antonym (first/last, largest/smallest, before/after...);
* ``negation``: "not" is inserted after the question's auxiliary verb, or removed where present;
* ``cut``: the question's own paragraph with the answer sentence removed (``augment``);
* ``mismatch``: the most BM25-similar paragraph of the same article that lacks the answer text.

An edit that could still be answerable is rejected: the swapped-in entity, number or antonym
must not occur in the sentence that holds the answer (that sentence could then answer the new
question too), a negated question is rejected when the answer sentence is itself negated, and an
edit that equals another real question of the paragraph is dropped. The rules are checked on
the SQuAD 2.0 definitions, not on the evaluation articles, which never reach this module.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from evaluation.squad import SquadExample
from reader_training.augment import _sentences, remove_answer_sentences

KINDS = ("entity", "number", "antonym", "negation", "cut", "mismatch")
# Shares of the unanswerables by kind (before falling back to ``cut``/``mismatch`` where a rule
# does not apply). The edit kinds are what SQuAD 2.0 is made of; the two context kinds teach
# "the passage lacks it", which is what a retrieved passage without the answer looks like.
DEFAULT_MIX = {
    "entity": 0.2,
    "number": 0.1,
    "antonym": 0.1,
    "negation": 0.1,
    "cut": 0.25,
    "mismatch": 0.25,
}

ANTONYM_PAIRS = (
    ("first", "last"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("most", "least"),
    ("before", "after"),
    ("earliest", "latest"),
    ("highest", "lowest"),
    ("maximum", "minimum"),
    ("north", "south"),
    ("east", "west"),
    ("northern", "southern"),
    ("eastern", "western"),
    ("oldest", "youngest"),
    ("longest", "shortest"),
    ("longer", "shorter"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("more", "fewer"),
    ("above", "below"),
    ("won", "lost"),
    ("win", "lose"),
    ("start", "end"),
    ("began", "ended"),
    ("best", "worst"),
    ("better", "worse"),
    ("public", "private"),
    ("internal", "external"),
    ("inside", "outside"),
    ("upper", "lower"),
    ("early", "late"),
    ("earlier", "later"),
    ("major", "minor"),
    ("positive", "negative"),
    ("higher", "lower"),
    ("larger", "smaller"),
    ("bigger", "smaller"),
    ("rich", "poor"),
    ("strong", "weak"),
    ("stronger", "weaker"),
    ("open", "closed"),
    ("allowed", "forbidden"),
    ("accepted", "rejected"),
    ("success", "failure"),
    ("successful", "unsuccessful"),
    ("cheapest", "most expensive"),
    ("fastest", "slowest"),
    ("cheap", "expensive"),
    ("fast", "slow"),
    ("high", "low"),
    ("large", "small"),
    ("legal", "illegal"),
    ("male", "female"),
    ("men", "women"),
    ("modern", "ancient"),
    ("entered", "left"),
    ("buy", "sell"),
    ("bought", "sold"),
    ("import", "export"),
)
_ANTONYMS: dict[str, str] = {}
for _a, _b in ANTONYM_PAIRS:
    _ANTONYMS.setdefault(_a, _b)
    _ANTONYMS.setdefault(_b, _a)

_AUXILIARIES = "is|are|was|were|did|does|do|can|could|will|would|has|have|had|should|must|may|might"
_AUX_AFTER_WH = re.compile(
    rf"^(?P<head>\s*(?:\w+\s+){{0,3}}?)(?P<aux>{_AUXILIARIES})\b(?P<rest>\s+)(?!not\b)",
    re.IGNORECASE,
)
_NEGATION_IN_QUESTION = re.compile(r"\s+not\b", re.IGNORECASE)
_CONTRACTIONS = {
    "can": "can't",
    "will": "won't",
    "am": "am not",
    "may": "may not",
    "might": "might not",
}
_NEGATION = re.compile(r"\b(?:not|no|never|none|nor|cannot|without)\b|n't\b", re.IGNORECASE)
# A capitalized name of one or more words ("Super Bowl", "New York City"), not the question's
# first word (capitalized only as the start of the sentence).
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_WORD = re.compile(r"\b\w+\b")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "to",
        "with",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "i've",
        "i'm",
        "i'd",
        "i'll",
        "his",
        "her",
        "their",
        "our",
        "your",
        "my",
        "there",
        "here",
        "then",
        "when",
        "while",
        "after",
        "before",
    ]
)
_QUESTION_WORDS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "in",
        "on",
        "at",
        "for",
        "by",
        "of",
        "the",
        "a",
        "an",
        "during",
        "after",
        "before",
        "is",
        "are",
        "was",
        "were",
        "did",
        "does",
        "do",
        "can",
        "could",
        "will",
        "would",
        "has",
        "have",
        "had",
        "name",
        "give",
        "list",
    ]
)


@dataclass(frozen=True)
class HardNegative:
    example: SquadExample
    kind: str


def _answer_sentence(ex: SquadExample) -> str:
    a = ex.answers[0]
    for s, e in _sentences(ex.context):
        if s <= a.start < e:
            return ex.context[s:e]
    return ex.context


def _names(text: str, skip_first: bool) -> list[tuple[int, int, str]]:
    out = []
    for m in _NAME.finditer(text):
        name = re.sub(r"'s$", "", m.group(0))  # "Connecticut's" -> the name "Connecticut"
        m_end = m.start() + len(name)
        if skip_first and m.start() == len(text) - len(text.lstrip()):
            # Its first word is capitalized as the sentence's start: a name only from the second.
            words = name.split()
            if len(words) > 1:
                rest = name[len(words[0]) :].lstrip()
                out.append((m_end - len(rest), m_end, rest))
            continue
        out.append((m.start(), m_end, name))
    return out


def _context_names(context: str) -> set[str]:
    """Names of a paragraph, without words capitalized only because they start a sentence."""
    names: set[str] = set()
    starts = {s for s, _ in _sentences(context)}
    for start, _, name in _names(context, skip_first=False):
        words = name.split()
        if start in starts and len(words) == 1:
            continue
        if words[0].lower() in _STOPWORDS:
            continue
        names.add(name)
    return names


def _number_shape(value: str) -> str:
    if re.fullmatch(r"1\d{3}|20\d{2}", value):  # "1,712" is a count, not a year
        return "year"
    return "decimal" if "." in value else "integer"


def _contains(haystack: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack, re.IGNORECASE) is not None


def swap_entity(ex: SquadExample, rng: random.Random) -> str | None:
    """The question with one of its names swapped for another name of the paragraph."""
    question_names = _names(ex.question, skip_first=True)
    if not question_names:
        return None
    candidates = sorted(_context_names(ex.context))
    sentence = _answer_sentence(ex)
    answer_texts = [a.text for a in ex.answers]
    rng.shuffle(question_names)
    for start, end, name in question_names:
        pool = [
            c
            for c in candidates
            if c.lower() != name.lower()
            and c.lower() not in name.lower()
            and name.lower() not in c.lower()
            and c.split()[0].lower() not in _QUESTION_WORDS
            and not _contains(sentence, c)
            and not any(_contains(a, c) or _contains(c, a) for a in answer_texts)
            and not _contains(ex.question, c)
        ]
        if pool:
            return ex.question[:start] + rng.choice(pool) + ex.question[end:]
    return None


def swap_number(ex: SquadExample, rng: random.Random) -> str | None:
    """The question with one number swapped for another of the same shape from the paragraph."""
    found = list(_NUMBER.finditer(ex.question))
    if not found:
        return None
    sentence = _answer_sentence(ex)
    context_numbers = sorted({m.group(0) for m in _NUMBER.finditer(ex.context)})
    rng.shuffle(found)
    for m in found:
        shape = _number_shape(m.group(0))
        pool = [
            n
            for n in context_numbers
            if n != m.group(0)
            and _number_shape(n) == shape
            and not _contains(sentence, n)
            and not any(n in a.text for a in ex.answers)
        ]
        if not pool and shape == "year":
            # A nearby year that the paragraph never mentions cannot be answered by it.
            year = int(m.group(0))
            pool = [
                str(y)
                for y in (year - 10, year - 3, year + 3, year + 10)
                if not _contains(ex.context, str(y))
            ]
        if pool:
            return ex.question[: m.start()] + rng.choice(pool) + ex.question[m.end() :]
    return None


def swap_antonym(ex: SquadExample, rng: random.Random) -> str | None:
    """The question with one word swapped for its antonym (not one the answer sentence uses)."""
    sentence = _answer_sentence(ex)
    words = [m for m in _WORD.finditer(ex.question) if m.group(0).lower() in _ANTONYMS]
    rng.shuffle(words)
    for m in words:
        word = m.group(0)
        opposite = _ANTONYMS[word.lower()]
        if _contains(sentence, opposite):
            continue
        if word[0].isupper():
            opposite = opposite[0].upper() + opposite[1:]
        return ex.question[: m.start()] + opposite + ex.question[m.end() :]
    return None


def flip_negation(ex: SquadExample, rng: random.Random) -> str | None:
    """Remove the question's negation, or insert "not" after its auxiliary verb.

    Rejected when the answer sentence is itself negated: "Who did not attend?" over "Smith did
    not attend" stays answerable whichever way the question is flipped.
    """
    if _NEGATION.search(_answer_sentence(ex)):
        return None
    if _NEGATION_IN_QUESTION.search(ex.question):
        return _NEGATION_IN_QUESTION.sub("", ex.question, count=1)
    m = _AUX_AFTER_WH.match(ex.question)
    if not m:
        return None
    # "What did they think" -> "What didn't they think": the contraction keeps the word order
    # right whatever follows the auxiliary ("What did not they think" would not).
    aux = m.group("aux")
    negated = _CONTRACTIONS.get(aux.lower(), aux.lower() + "n't")
    if aux[0].isupper():
        negated = negated[0].upper() + negated[1:]
    return ex.question[: m.start("aux")] + negated + ex.question[m.end("aux") :]


_EDITS = {
    "entity": swap_entity,
    "number": swap_number,
    "antonym": swap_antonym,
    "negation": flip_negation,
}


class ArticleIndex:
    """BM25 over the distinct paragraphs of each article, to find a paragraph's nearest others."""

    def __init__(self, examples: Iterable[SquadExample]) -> None:
        self.paragraphs: dict[str, list[str]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for ex in examples:
            if (ex.title, ex.context) not in seen:
                seen.add((ex.title, ex.context))
                self.paragraphs[ex.title].append(ex.context)
        self._indexes: dict[str, object] = {}

    def nearest_without(self, ex: SquadExample, depth: int = 8) -> str | None:
        """The paragraph of ``ex``'s article most similar to its question and answer sentence
        that contains none of its answers."""
        found = self.nearest(ex, 1, depth, ex.question + " " + _answer_sentence(ex))
        return found[0] if found else None

    def nearest(
        self, ex: SquadExample, n: int, depth: int = 8, query: str | None = None
    ) -> list[str]:
        """Up to ``n`` paragraphs of ``ex``'s article, most BM25-similar to ``query`` (default:
        the question, as a retriever would search) first, that contain none of its answers."""
        import bm25s

        from pipelines.bm25 import tokenize

        paragraphs = self.paragraphs.get(ex.title, [])
        if len(paragraphs) < 2:
            return []
        index = self._indexes.get(ex.title)
        if index is None:
            index = bm25s.BM25()
            index.index([tokenize(p) or ["_"] for p in paragraphs], show_progress=False)
            self._indexes[ex.title] = index
        tokens = tokenize(query or ex.question) or ["_"]
        ids, _ = index.retrieve([tokens], k=min(depth, len(paragraphs)), show_progress=False)
        found: list[str] = []
        for i in ids[0]:
            other = paragraphs[int(i)]
            if other != ex.context and not any(a.text.lower() in other.lower() for a in ex.answers):
                found.append(other)
                if len(found) >= n:
                    break
        return found


def hard_negatives(
    examples: Sequence[SquadExample],
    count: int,
    seed: int,
    mix: dict[str, float] | None = None,
) -> list[HardNegative]:
    """About ``count`` unanswerable examples, by kind in the shares of ``mix``.

    Each is made from a different answerable example where the pool allows; a kind whose rule
    does not apply to enough questions is topped up with ``cut`` and then ``mismatch``.
    """
    mix = mix or DEFAULT_MIX
    rng = random.Random(seed)
    answerable = [ex for ex in examples if ex.answers]
    if not answerable or count <= 0:
        return []
    questions_by_context: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        questions_by_context[ex.context].add(ex.question.strip().lower())
    order = answerable[:]
    rng.shuffle(order)
    total_share = sum(mix.values())
    wanted = {kind: round(count * share / total_share) for kind, share in mix.items()}
    articles = ArticleIndex(examples)
    out: list[HardNegative] = []
    used: set[str] = set()

    def make(kind: str, ex: SquadExample) -> SquadExample | None:
        if kind in _EDITS:
            question = _EDITS[kind](ex, rng)
            if not question or question.strip().lower() in questions_by_context[ex.context]:
                return None
            return SquadExample(f"{ex.id}-{kind}", ex.title, ex.context, question, (), kind)
        cut = kind == "cut"
        context = remove_answer_sentences(ex) if cut else articles.nearest_without(ex)
        if context is None:
            return None
        return SquadExample(f"{ex.id}-{kind}", ex.title, context, ex.question, (), kind)

    def fill(kind: str, need: int) -> int:
        made = 0
        for ex in order:
            if made >= need:
                break
            if ex.id in used:
                continue
            negative = make(kind, ex)
            if negative is not None:
                out.append(HardNegative(negative, kind))
                used.add(ex.id)
                made += 1
        return made

    # Edit kinds first (their rules apply to fewer questions); what they fall short of is made
    # up by the two context kinds, half each, then by whichever still can.
    shortfall = sum(wanted[k] - fill(k, wanted[k]) for k in _EDITS if k in wanted)
    context_kinds = [k for k in ("cut", "mismatch") if k in wanted] or ["cut"]
    for i, kind in enumerate(context_kinds):
        extra = shortfall // len(context_kinds) + (i < shortfall % len(context_kinds))
        fill(kind, wanted.get(kind, 0) + extra)
    for kind in ("mismatch", "cut"):
        if len(out) < count:
            fill(kind, count - len(out))
    rng.shuffle(out)
    return out
