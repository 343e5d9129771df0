"""Training the answer verifier (:mod:`pipelines.verifier`) on open-retrieval questions.

Questions are asked over a collection the way the product asks them (retrieve the top passages,
read each), and what the reader found is kept (:class:`QuestionReads`, JSON lines, so features can
be recomputed without reading again). Each candidate of each question is labelled right when its
text scores F1 >= 0.5 against a gold answer; a logistic regression (scikit-learn) learns P(right)
from the candidate's features, at several numbers of passages read, so one model serves any
``top_k``. The abstention threshold is the one that maximizes the F1 of the top answer over the
training questions' out-of-fold probabilities (grouped by question), so it is never chosen on
answers the model was fitted to.

Training data, by the issue's rule: the training pool's held-out articles (never trained on by
the reader) as an open-retrieval collection, a third of their questions asked with their own
passage hidden (unanswerable in the collection), and the demo collection's train pairs. Never a
benchmark's test questions.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation.reader_metrics import compute_exact, compute_f1
from evaluation.squad import SquadExample
from pipelines.reader_config import AnswerRanking
from pipelines.spans import SpanCandidate, rank_answers
from pipelines.store.versions import write_atomic
from pipelines.verifier import (
    FEATURES,
    AnswerVerifier,
    PassageEvidence,
    ReaderScoring,
    candidates_of,
)

logger = logging.getLogger(__name__)

# Passages read per training question, and the ks whose answers the model learns from: the
# features of a candidate depend on how many passages compete with it.
READ_DEPTH = 10
TRAIN_KS = (1, 3, 5, 10)
RIGHT_F1 = 0.5  # a candidate with at least this F1 against a gold answer is "right"


@dataclass
class QuestionReads:
    """What the reader found for one question over the passages retrieved for it."""

    id: str
    question: str
    answers: list[str]  # empty: unanswerable (in this collection, for this asker)
    passages: list[PassageEvidence]
    spans: list[list[SpanCandidate]]
    source: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["spans"] = [[_span_row(c) for c in cands] for cands in self.spans]
        return json.dumps(data)

    @classmethod
    def from_json(cls, line: str) -> QuestionReads:
        data = json.loads(line)
        return cls(
            id=data["id"],
            question=data["question"],
            answers=list(data["answers"]),
            passages=[PassageEvidence(**p) for p in data["passages"]],
            spans=[[SpanCandidate(**c) for c in cands] for cands in data["spans"]],
            source=data.get("source", ""),
        )

    def first(self, k: int) -> QuestionReads:
        """The same question reading only its first ``k`` passages."""
        return QuestionReads(
            self.id, self.question, self.answers, self.passages[:k], self.spans[:k], self.source
        )


def _span_row(c: SpanCandidate) -> dict[str, Any]:
    # Rounded: the file stays small, and 1e-4 of a logit changes no decision.
    return {
        "pair": c.pair,
        "start_char": c.start_char,
        "end_char": c.end_char,
        "margin": round(c.margin, 4),
        "span_logit": round(c.span_logit, 4),
        "null_logit": round(c.null_logit, 4),
    }


def read_questions(
    service: Any,
    examples: Sequence[SquadExample],
    top_k: int = READ_DEPTH,
    scope_for: Callable[[SquadExample], frozenset[str] | None] | None = None,
    progress: bool = True,
    n_best: int = 20,
    source: str = "",
) -> Iterator[QuestionReads]:
    """Ask each question over ``service``'s collection (``scope_for``: what the asker may see, to
    hide a question's own passage) and yield what the reader found in each passage retrieved;
    ``source`` names the set (recorded with the verifier), else each example's own."""
    predictor = service.reader_predictor
    for ex in tqdm(examples, desc="reading", unit="q", disable=not progress):
        scope = scope_for(ex) if scope_for else None
        docs = service.retrieve(ex.question, top_k=top_k, scope=scope)
        texts = [d.content or "" for d in docs]
        spans = predictor.predict([ex.question] * len(texts), texts, n_best=n_best) if texts else []
        answers = [a.text for a in ex.answers]
        if scope is not None and ex.answers and not any(_holds(t, answers) for t in texts):
            answers = []  # the answer is hidden from this asker: "no answer" is right
        evidence = [PassageEvidence.of(d) for d in docs]
        yield QuestionReads(ex.id, ex.question, answers, evidence, spans, source or ex.source)


def _holds(text: str, answers: Sequence[str]) -> bool:
    return any(a.strip() and a.strip().lower() in text.lower() for a in answers)


def save_reads(reads: Iterable[QuestionReads], path: Path) -> int:
    lines = [r.to_json() for r in reads]
    write_atomic(path, "\n".join(lines) + "\n")
    return len(lines)


def load_reads(path: Path) -> list[QuestionReads]:
    return [QuestionReads.from_json(line) for line in path.read_text("utf-8").splitlines() if line]


# -- labels, fitting, the threshold ---------------------------------------------------------------


def answer_f1(answers: Sequence[str], prediction: str) -> float:
    """SQuAD F1 of a prediction ("" = no answer) against the gold answers (none: unanswerable)."""
    if not answers:
        return float(prediction == "")
    return max(compute_f1(a, prediction) for a in answers)


def answer_em(answers: Sequence[str], prediction: str) -> float:
    if not answers:
        return float(prediction == "")
    return float(max(compute_exact(a, prediction) for a in answers))


@dataclass
class Rows:
    """Candidates as a matrix: features, labels, and which (question, k) each belongs to."""

    features: np.ndarray
    right: np.ndarray  # 1 where the candidate's F1 >= RIGHT_F1
    f1: np.ndarray  # the candidate's F1 (what answering it scores)
    group: np.ndarray  # index into ``asked``
    asked: list[tuple[int, int]]  # (question index, k)
    no_answer_f1: np.ndarray  # per ``asked``: what abstaining scores (1 if unanswerable)


def build_rows(
    reads: Sequence[QuestionReads],
    ks: Sequence[int] = TRAIN_KS,
    scoring: ReaderScoring | None = None,
) -> Rows:
    feats: list[np.ndarray] = []
    right: list[float] = []
    f1s: list[float] = []
    group: list[int] = []
    asked: list[tuple[int, int]] = []
    no_answer: list[float] = []
    for qi, r in enumerate(reads):
        for k in ks:
            if k > max(len(r.passages), 1) and k != ks[0]:
                continue
            part = r.first(k)
            g = len(asked)
            asked.append((qi, k))
            no_answer.append(float(not r.answers))
            for c in candidates_of(part.question, part.spans, part.passages, scoring):
                f1 = answer_f1(r.answers, c.text) if r.answers else 0.0
                feats.append(c.features)
                f1s.append(f1)
                right.append(float(f1 >= RIGHT_F1))
                group.append(g)
    return Rows(
        np.stack(feats) if feats else np.zeros((0, len(FEATURES))),
        np.asarray(right),
        np.asarray(f1s),
        np.asarray(group, dtype=int),
        asked,
        np.asarray(no_answer),
    )


def best_threshold(
    probabilities: np.ndarray, rows: Rows, k: int | None = None
) -> tuple[float, float]:
    """The abstention threshold that maximizes the mean F1 of the top answer over ``rows``'
    (question, k) groups (only those reading ``k`` passages when given), and that F1.
    ``probabilities``: out-of-fold P(right) per candidate."""
    n = len(rows.asked)
    top_p = np.zeros(n)
    top_f1 = np.zeros(n)
    has = np.zeros(n, dtype=bool)
    for i, (g, p) in enumerate(zip(rows.group, probabilities, strict=True)):
        if not has[g] or p > top_p[g]:
            top_p[g], top_f1[g], has[g] = p, rows.f1[i], True
    if k is not None:
        counted = np.asarray([asked_k == k for _, asked_k in rows.asked])
        top_p, top_f1, has = top_p[counted], top_f1[counted], has[counted]
        rows = replace(rows, no_answer_f1=rows.no_answer_f1[counted])
    best_t, best_f1 = 0.5, -1.0
    for t in np.unique(np.concatenate([top_p[has], [0.5]])):
        # Answer where the top candidate's P >= t, abstain otherwise.
        answered = has & (top_p >= t)
        f1 = np.where(answered, top_f1, rows.no_answer_f1).mean()
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), float(f1)
    # Between the chosen top probability and the next one below: a margin against noise.
    below = top_p[has & (top_p < best_t)]
    if below.size:
        best_t = float((best_t + below.max()) / 2)
    return min(max(best_t, 1e-4), 1 - 1e-4), best_f1 * 100


def fit_verifier(
    reads: Sequence[QuestionReads],
    ks: Sequence[int] = TRAIN_KS,
    folds: int = 5,
    c: float = 1.0,
    serving_k: int = READ_DEPTH,
    scoring: ReaderScoring | None = None,
) -> tuple[AnswerVerifier, dict[str, Any]]:
    """A verifier fitted on ``reads`` and a report: out-of-fold F1 of its top answers per k, the
    threshold, and the data's sizes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    rows = build_rows(reads, ks, scoring)
    if rows.right.sum() < 10 or (1 - rows.right).sum() < 10:
        raise ValueError(
            f"too few candidates to train a verifier on ({int(rows.right.sum())} right, "
            f"{int((1 - rows.right).sum())} wrong; at least 10 of each)"
        )
    mean = rows.features.mean(axis=0)
    scale = rows.features.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = (rows.features - mean) / scale
    question_of = np.asarray([rows.asked[g][0] for g in rows.group])
    oof = np.zeros(len(x))
    for train, test in GroupKFold(n_splits=folds).split(x, rows.right, question_of):
        model = LogisticRegression(C=c, max_iter=5000).fit(x[train], rows.right[train])
        oof[test] = model.predict_proba(x[test])[:, 1]
    threshold, oof_f1 = best_threshold(oof, rows, k=serving_k if serving_k in ks else None)
    model = LogisticRegression(C=c, max_iter=5000).fit(x, rows.right)
    verifier = AnswerVerifier(
        weights=tuple(float(w) for w in model.coef_[0]),
        bias=float(model.intercept_[0]),
        mean=tuple(float(m) for m in mean),
        scale=tuple(float(s) for s in scale),
        threshold=threshold,
        scoring=scoring or ReaderScoring(),
        trained_on={
            "questions": len(reads),
            "unanswerable": sum(1 for r in reads if not r.answers),
            "candidates": len(x),
            "right_candidates": int(rows.right.sum()),
            "ks": list(ks),
            "out_of_fold_f1": round(oof_f1, 2),
            "sources": sorted({r.source for r in reads if r.source}),
        },
    )
    return verifier, verifier.trained_on


# -- answering from stored reads (evaluation without reading again) -------------------------------


def verifier_answer(verifier: AnswerVerifier, r: QuestionReads) -> str:
    ranked, no_answer = verifier.verify(r.question, r.spans, r.passages)
    if not ranked or ranked[0].score < no_answer:
        return ""
    return ranked[0].text_in([p.text for p in r.passages])


def reader_answer(ranking: AnswerRanking, temperature: float, r: QuestionReads) -> str:
    """The reader's own top answer (:func:`pipelines.spans.rank_answers`), as served without a
    verifier."""

    def score(margin: float) -> float:
        return 1.0 / (1.0 + math.exp(-margin / temperature))

    texts = [p.text for p in r.passages]
    scores = [p.dense_score or 0.0 for p in r.passages]
    ranked, no_answer = rank_answers(r.spans, scores, score, ranking, 1, texts)
    if not ranked or ranked[0].score < no_answer:
        return ""
    return ranked[0].text_in(texts)


def f1_at_ks(
    answer: Callable[[QuestionReads], str], reads: Sequence[QuestionReads], ks: Sequence[int]
) -> dict[int, dict[str, float]]:
    """EM/F1 (0-100) of ``answer`` reading the first k passages, for each k."""
    out = {}
    for k in ks:
        preds = [(r, answer(r.first(k))) for r in reads]
        out[k] = {
            "em": round(100 * float(np.mean([answer_em(r.answers, p) for r, p in preds])), 2),
            "f1": round(100 * float(np.mean([answer_f1(r.answers, p) for r, p in preds])), 2),
        }
    return out


def hide_own_passage(
    examples: Sequence[SquadExample],
    all_doc_ids: frozenset[str],
    doc_of: Callable[[SquadExample], str | None],
    share: float,
    seed: int,
) -> Callable[[SquadExample], frozenset[str] | None]:
    """A ``scope_for`` that hides, for a seeded ``share`` of the questions, the document their
    answer comes from: an asker who may not see it, for whom "no answer" is right."""
    rng = random.Random(seed)
    hidden = {ex.id for ex in examples if rng.random() < share}

    def scope_for(ex: SquadExample) -> frozenset[str] | None:
        doc = doc_of(ex)
        if ex.id not in hidden or doc is None:
            return None
        return all_doc_ids - {doc}

    return scope_for


# -- the training collections ---------------------------------------------------------------------

POOL_HOLDOUT_FRACTION = 0.04  # the reader campaign's held-out articles (CampaignSpec)
POOL_SEED = 42
# Questions per held-out part of the pool: the held-out articles are mostly one Reddit "article"
# (9,674 questions); all SQuAD and Amazon ones, a sample of Reddit's.
POOL_SAMPLE = {"dev-v1": None, "amazon_reviews_v1": None, "reddit_v1": 600}
POOL_DISTRACTORS = 400  # more Reddit contexts in the collection than the questions ask about
HIDDEN_SHARE = 1 / 3  # questions asked with their own passage hidden (unanswerable)


def pool_questions(pool: Sequence[SquadExample], seed: int = 0) -> tuple[list, list[str]]:
    """The held-out pool questions to read and the contexts of their collection."""
    from reader_training.train import split_holdout

    _, heldout = split_holdout(pool, POOL_HOLDOUT_FRACTION, POOL_SEED)
    rng = random.Random(seed)
    parts: dict[str, list[SquadExample]] = {}
    for ex in heldout:
        parts.setdefault(ex.id.split(":")[0], []).append(ex)
    chosen: list[SquadExample] = []
    for part, examples in sorted(parts.items()):
        n = POOL_SAMPLE.get(part, 300)
        chosen += examples if n is None or len(examples) <= n else rng.sample(examples, n)
    contexts = list(dict.fromkeys(ex.context for ex in chosen))
    asked = set(contexts)
    others = [c for c in dict.fromkeys(ex.context for ex in heldout) if c not in asked]
    contexts += rng.sample(others, min(POOL_DISTRACTORS, len(others)))
    return chosen, contexts


def collect_training_reads(
    settings: Any,
    shared_data: Path | None,
    work: Path,
    progress: bool = True,
    pairs: Path | None = None,
) -> list[QuestionReads]:
    """Read the verifier's training questions with ``settings``' reader: the pool's held-out
    articles (with ``shared_data``) and the demo collection's train pairs; with ``pairs``, those
    labeled pairs asked over ``settings.home``'s own index instead of the demo's. Collections are
    indexed under ``work`` (kept: a second run reuses them); reads are cached there."""
    import hashlib

    from evaluation.end_to_end import index_collection, index_contexts
    from evaluation.squad import load_squad
    from pipelines.query import QueryService
    from pipelines.settings import DEMO_COLLECTION, DEMO_LABELS
    from reader_training.campaign_data import FULL_POOL
    from reader_training.recipes import BaseRecipe, build_base_pool

    reads: list[QuestionReads] = []
    if pairs is not None:
        examples, report = load_squad(pairs)
        if not examples:
            raise ValueError(f"{pairs}: no usable pairs ({report.summary()})")
        service = QueryService(settings)
        reads += read_questions(service, examples, progress=progress, source=pairs.name)
    cached = work / "reads_demo_train.jsonl"
    if pairs is not None:
        pass  # the user's own collection replaces the demo's
    elif not cached.is_file():
        demo = settings.with_(home=work / "demo_home")
        index_collection([DEMO_COLLECTION], demo, progress)
        examples, _ = load_squad(DEMO_LABELS / "train.json")
        service = QueryService(demo)
        demo_reads = read_questions(service, examples, progress=progress, source="demo-train")
        save_reads(demo_reads, cached)
    if pairs is None:
        reads += load_reads(cached)
    if shared_data is None:
        return reads
    cached = work / "reads_pool.jsonl"
    if not cached.is_file():
        pool_file = work / "pool.json"
        if not pool_file.is_file():
            build_base_pool(shared_data, BaseRecipe(parts=FULL_POOL), pool_file)
        pool, _ = load_squad(pool_file)
        chosen, contexts = pool_questions(pool)
        where = settings.with_(home=work / "pool_home")
        doc_for, _ = index_contexts(contexts, where, progress)
        service = QueryService(where)
        every = frozenset(s.doc_id for s in service.store.sources())

        def doc_of(ex: SquadExample) -> str | None:
            return doc_for.get(hashlib.sha256(ex.context.encode("utf-8")).hexdigest())

        scope_for = hide_own_passage(chosen, every, doc_of, HIDDEN_SHARE, seed=1)
        pool_reads = read_questions(
            service, chosen, scope_for=scope_for, progress=progress, source="pool-heldout"
        )
        save_reads(pool_reads, cached)
    reads += load_reads(cached)
    return reads
