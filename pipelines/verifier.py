"""The answer verifier: a second stage that orders the candidate answers of all passages read
and decides whether to answer at all.

The reader scores a span against its own window's "no answer"; alone, that decides too much: on
the SQLite benchmark most errors were on the right page (a wrong span, or a right one declined),
and reading more passages lowered F1, because the best of more spans beats "no answer" more often.
The verifier looks at evidence the reader does not see together: the reader's span and null
logits, how the span ranks in its passage and in the question, the passage's retrieval scores and
ranks (dense, BM25, fused), whether the candidate is the kind of thing the question asks for (how
many: a number, when: a date, who: a name, which option: a code token), how much of the question
its sentence repeats, its length and position, and how many passages give the same answer.

The model is a logistic regression over those features, trained by
``reader_training/verifier_training.py`` on open-retrieval questions the reader never trained on,
and stored as plain JSON beside the reader (``answer_verifier.json``: weights, feature scaling and
the abstention threshold): no pickle is ever loaded, and the file is reviewed like any config.
Written here rather than with scikit-learn at query time because scoring is one dot product, and
loading a classifier by unpickling would let whoever writes a reader folder run code.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.spans import SpanCandidate, answer_key, question_null_shifts
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

VERIFIER_FILE = "answer_verifier.json"
VERIFIER_FORMAT = 1
# Spans each passage offers the verifier (the reader's best non-overlapping ones): the right
# span is often the passage's second or third (issue 28: 37 of 79 SQLite errors a wrong span).
SPANS_PER_PASSAGE = 1
MAX_CANDIDATES = 5


@dataclass(frozen=True)
class PassageEvidence:
    """What retrieval says about one passage read (``RankFusion`` puts it in ``meta``)."""

    text: str
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None

    @classmethod
    def of(cls, document: Any) -> PassageEvidence:
        """From a retrieved Haystack ``Document`` (its score is the dense cosine)."""
        meta = document.meta or {}
        dense = meta.get("dense_score", document.score)
        return cls(
            text=document.content or "",
            dense_score=None if dense is None else float(dense),
            bm25_score=_float(meta.get("bm25_score")),
            dense_rank=_int(meta.get("dense_rank")),
            bm25_rank=_int(meta.get("bm25_rank")),
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- what the question asks for, what a candidate is ----------------------------------------------

ANSWER_TYPES = ("number", "date", "person", "code")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE = re.compile(
    rf"\b(1[0-9]{{3}}|20[0-9]{{2}}|{_MONTHS}|{_WEEKDAYS}|\d{{1,2}}:\d{{2}}|"
    r"\d{1,2}(st|nd|rd|th)|am|pm|noon|midnight|century|today|tomorrow|yesterday|"
    r"(next|last|every|each)\s+(day|week|month|quarter|year))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|billion|dozen|half|once|twice)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"[_=\[\]`]|\(\)|^-{1,2}\w|\s-{1,2}\w|[a-z][A-Z]|\w\.\w|^[A-Z0-9]{2,}(\s|$)")
_Q_NUMBER = re.compile(
    r"\bhow (many|much|long|old|often|far|big|large|high|tall|fast|heavy)\b|"
    r"\b(what|which) (percentage|percent|number|amount|size|limit|maximum|minimum|count|price|"
    r"cost|fee)\b|\bwhat is the (maximum|minimum|default|limit|number)\b",
    re.IGNORECASE,
)
_Q_DATE = re.compile(
    r"^\s*when\b|\bwhat (year|date|day|time|month|century|decade)\b|\bby when\b|\bhow soon\b",
    re.IGNORECASE,
)
_Q_PERSON = re.compile(r"^\s*(who|whom|whose)\b|\b(who|whom|whose)\b", re.IGNORECASE)
_Q_CODE = re.compile(
    r"\b(command|option|function|pragma|flag|keyword|parameter|macro|api|method|setting|"
    r"opcode|constant|operator|statement|syntax|clause|error code|return code|interface|"
    r"column|table name|file name|extension|variable)\b",
    re.IGNORECASE,
)


def question_type(question: str) -> str | None:
    """The kind of answer a question asks for (one of ``ANSWER_TYPES``), or None."""
    if _Q_NUMBER.search(question):
        return "number"
    if _Q_DATE.search(question):
        return "date"
    if _Q_PERSON.search(question):
        return "person"
    if _Q_CODE.search(question):
        return "code"
    return None


def answer_kinds(text: str) -> set[str]:
    """What an answer text looks like: a number, a date or time, a name, a code token."""
    kinds = set()
    if _NUMBER.search(text):
        kinds.add("number")
    if _DATE.search(text):
        kinds.add("date")
    words = text.split()
    capitalized = [w[:1].isupper() for w in words if w[:1].isalpha() and len(w) > 3]
    if capitalized and all(capitalized):  # "Head of People", "People Operations"
        kinds.add("person")
    if _CODE.search(text.strip()):
        kinds.add("code")
    return kinds


_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the of to in on at by for with from and or is are was were be been being do does "
        "did what which who whom whose when where why how that this these those it its as into "
        "than then there their can could should would may might will shall must not no if about "
        "i you we they he she my your our me us any all some has have had get",
    )
)
_WORD = re.compile(r"\w+")


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _sentence_around(text: str, start: int, end: int) -> str:
    """The sentence (or line) holding ``text[start:end]``; at most 400 characters each side."""
    left = max(text.rfind(". ", max(0, start - 400), start), text.rfind("\n", 0, start))
    right_candidates = [i for i in (text.find(". ", end), text.find("\n", end)) if i != -1]
    right = min(right_candidates) if right_candidates else len(text)
    return text[max(0, left + 1) : min(right, end + 400)]


# -- features -------------------------------------------------------------------------------------

FEATURES = (
    "ranking_score",  # the reader's own ranking score of the span (ReaderScoring)
    "ranking_no_answer",  # ... and of "no answer" for the question
    "ranking_lead",  # ranking_score - ranking_no_answer: > 0 where the reader would answer it
    "ranking_top",  # 1 for the reader's own top span
    "margin",  # span - null logit, judged against the question's null (no threshold)
    "window_margin",  # span - its own window's null logit
    "reader_probability",  # sigmoid(window_margin / 2): the reader's confidence, bounded
    "question_probability",  # sigmoid(margin / 2)
    "best_probability",  # the question's best reader_probability
    "span_logit",
    "null_logit",
    "gap_to_best",  # the question's best margin minus this one
    "log_rank_in_question",
    "rank_in_passage",
    "best_margin",  # the question's best margin (the same for all of its candidates)
    "log_passage_rank",
    "dense_score",
    "bm25_relative",  # BM25 score / the question's best BM25 score
    "log_dense_rank",
    "log_bm25_rank",
    "found_by_both",
    "asks_type",  # the question asks for a type (number, date, person, code)
    "type_match",
    "type_mismatch",
    "answer_is_number",
    "answer_is_code",
    "sentence_overlap",  # share of the question's content words in the candidate's sentence
    "passage_overlap",
    "answer_repeats_question",  # share of the answer's content words that are in the question
    "log_answer_chars",
    "answer_words",
    "relative_position",
    "log_support",  # other passages read that give the same answer
)


@dataclass(frozen=True)
class ReaderScoring:
    """How the reader alone ranks answers (its ``docqa_reader.json``: ``rank_answers`` with a
    window null): the verifier starts from that ranking as features and learns what to change.
    Kept in the verifier's file as it was at training, so its features never move."""

    retriever_weight: float = 0.0
    open_null_offset: float = 0.0
    temperature: float = 2.0

    def reader_score(self, span: SpanCandidate) -> float:
        return _sigmoid((span.margin - self.open_null_offset) / self.temperature)


@dataclass
class Candidate:
    """One candidate answer: a span of a passage read, with its verifier features."""

    passage: int
    span: SpanCandidate
    text: str
    features: np.ndarray = field(repr=False)


def candidates_of(
    question: str,
    spans: Sequence[Sequence[SpanCandidate]],
    passages: Sequence[PassageEvidence],
    scoring: ReaderScoring | None = None,
    spans_per_passage: int = SPANS_PER_PASSAGE,
) -> list[Candidate]:
    """The candidates of a question (``spans``: each passage's candidates from the reader, best
    first; ``passages`` in retrieval order) with their features (``FEATURES``)."""
    shift = question_null_shifts(spans, "question")
    chosen: list[tuple[int, SpanCandidate, float]] = []
    for p, cands in enumerate(spans):
        kept: list[tuple[int, int]] = []
        for c in cands:
            if any(c.start_char < e and s < c.end_char for s, e in kept):
                continue
            kept.append((c.start_char, c.end_char))
            # The reader's threshold left out: a retrained reader with another threshold keeps
            # its verifier.
            chosen.append((p, c, c.span_logit - c.null_logit + shift(c)))
            if len(kept) >= spans_per_passage:
                break
    if not chosen:
        return []
    margins = np.array([m for _, _, m in chosen])
    order = np.argsort(-margins, kind="stable")
    rank_in_question = np.empty(len(chosen), dtype=int)
    rank_in_question[order] = np.arange(len(chosen))
    best = float(margins.max())
    best_probability = max(_sigmoid((c.span_logit - c.null_logit) / 2) for _, c, _ in chosen)
    scoring = scoring or ReaderScoring()
    w = scoring.retriever_weight
    reader_scores = [scoring.reader_score(c) for _, c, _ in chosen]
    ranking = [
        (1 - w) * r + w * (passages[p].dense_score or 0.0)
        for r, (p, _, _) in zip(reader_scores, chosen, strict=True)
    ]
    ranking_no_answer = 1.0 - max(reader_scores)
    ranking_rank = np.empty(len(chosen), dtype=int)
    ranking_rank[np.argsort(-np.asarray(ranking), kind="stable")] = np.arange(len(chosen))
    ranking_top = int(np.argmax(ranking))
    bm25_best = max((p.bm25_score or 0.0 for p in passages), default=0.0) or 1.0
    depth = len(passages)
    q_words = content_words(question)
    q_type = question_type(question)
    texts = [passages[p].text[c.start_char : c.end_char] for p, c, _ in chosen]
    support: dict[str, set[int]] = {}
    for (p, _, _), text in zip(chosen, texts, strict=True):
        support.setdefault(answer_key(text) or text, set()).add(p)
    passage_words: dict[int, set[str]] = {}  # a passage's words, once however many spans it has
    out = []
    rank_in_passage: dict[int, int] = {}
    for i, ((p, c, margin), text) in enumerate(zip(chosen, texts, strict=True)):
        if ranking_rank[i] >= MAX_CANDIDATES:
            continue
        passage = passages[p]
        if p not in passage_words:
            passage_words[p] = content_words(passage.text)
        r_in_p = rank_in_passage.get(p, 0)
        rank_in_passage[p] = r_in_p + 1
        kinds = answer_kinds(text)
        a_words = content_words(text)
        sentence = content_words(_sentence_around(passage.text, c.start_char, c.end_char))
        window_margin = c.span_logit - c.null_logit
        values = [
            ranking[i],
            ranking_no_answer,
            ranking[i] - ranking_no_answer,
            float(i == ranking_top),
            margin,
            window_margin,
            _sigmoid(window_margin / 2),
            _sigmoid(margin / 2),
            best_probability,
            c.span_logit,
            c.null_logit,
            best - margin,
            math.log1p(rank_in_question[i]),
            r_in_p,
            best,
            math.log1p(p),
            passage.dense_score if passage.dense_score is not None else 0.0,
            (passage.bm25_score or 0.0) / bm25_best,
            math.log1p(passage.dense_rank if passage.dense_rank is not None else 2 * depth),
            math.log1p(passage.bm25_rank if passage.bm25_rank is not None else 2 * depth),
            float(passage.dense_rank is not None and passage.bm25_rank is not None),
            float(q_type is not None),
            float(q_type is not None and q_type in kinds),
            float(q_type is not None and q_type not in kinds),
            float("number" in kinds),
            float("code" in kinds),
            len(q_words & sentence) / len(q_words) if q_words else 0.0,
            len(q_words & passage_words[p]) / len(q_words) if q_words else 0.0,
            len(a_words & q_words) / len(a_words) if a_words else 0.0,
            math.log1p(len(text)),
            min(len(text.split()), 30),
            c.start_char / max(1, len(passage.text)),
            math.log1p(len(support[answer_key(text) or text]) - 1),
        ]
        out.append(Candidate(p, c, text, np.asarray(values, dtype=np.float64)))
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerVerifier:
    """A logistic regression over ``FEATURES``: P(a candidate is a right answer).

    ``threshold``: the probability below which the best candidate is not given ("no answer"),
    chosen with the weights on held-out questions. :meth:`verify` reports scores relative to it,
    ``sigmoid(logit(p) - logit(threshold))``, so an answer is given when its score is above 0.5
    and "no answer" scores one minus the best answer's score, as the reader's scores do.
    """

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = 0.5
    scoring: ReaderScoring = ReaderScoring()
    features: tuple[str, ...] = FEATURES
    trained_on: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if self.features != FEATURES:
            raise ValueError(
                f"the verifier was trained on other features ({n}); retrain it "
                "(docqa train-verifier)"
            )
        if not (len(self.weights) == len(self.mean) == len(self.scale) == n):
            raise ValueError("the verifier's weights, mean and scale must have one value a feature")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"the verifier's threshold must be in (0, 1), not {self.threshold}")

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Log-odds that each row of ``features`` is a right answer."""
        x = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        return x @ np.asarray(self.weights) + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(features)))

    def verify(
        self,
        question: str,
        spans: Sequence[Sequence[SpanCandidate]],
        passages: Sequence[PassageEvidence],
    ) -> tuple[list[SpanCandidate], float]:
        """The candidates of all passages, best first, and "no answer"'s score (see the class)."""
        candidates = candidates_of(question, spans, passages, self.scoring)
        if not candidates:
            return [], 1.0
        cut = math.log(self.threshold / (1.0 - self.threshold))
        logits = self.logits(np.stack([c.features for c in candidates])) - cut
        scores = 1.0 / (1.0 + np.exp(-logits))
        ranked = [
            c.span.ranked(c.passage, float(s), float(s))
            for c, s in zip(candidates, scores, strict=True)
        ]
        ranked.sort(key=lambda r: r.score, reverse=True)
        return ranked, 1.0 - ranked[0].score

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": VERIFIER_FORMAT,
            "model": "logistic_regression",
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "threshold": self.threshold,
            "reader_scoring": asdict(self.scoring),
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerVerifier:
        if data.get("format") != VERIFIER_FORMAT or data.get("model") != "logistic_regression":
            raise ValueError(f"not a format-{VERIFIER_FORMAT} logistic-regression verifier")
        return cls(
            weights=tuple(float(w) for w in data["weights"]),
            bias=float(data["bias"]),
            mean=tuple(float(m) for m in data["mean"]),
            scale=tuple(float(s) for s in data["scale"]),
            threshold=float(data["threshold"]),
            scoring=ReaderScoring(**{k: float(v) for k, v in data["reader_scoring"].items()}),
            features=tuple(data["features"]),
            trained_on=dict(data.get("trained_on", {})),
        )

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / VERIFIER_FILE
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> AnswerVerifier | None:
        """The verifier beside a reader, or None when it has none (or one that cannot be used:
        logged, and the reader's own ranking serves)."""
        path = Path(model_dir) / VERIFIER_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("answer verifier %s not used: %s", path, exc)
            return None
