"""End-to-end evaluation of the query pipeline on labeled questions over an indexed collection.

For every question the passages are retrieved once, at the largest ``k``, and each passage is read
once. That gives, from one pass:

* retrieval: the rank of the first gold passage, hence recall@k and MRR;
* answers when reading the first ``k`` passages, for several ``k``. The reader ranks spans of all
  passages together and lets "no answer" (``1 - best reader score``) compete with them, so the top
  answer over the first ``k`` passages is the best of those passages' own best spans: reading
  each passage once and taking the best among the first ``k`` gives exactly what ``ask`` with
  ``k`` passages answers (:func:`answer_at_k`; a test compares the two);
* latency per question: embedding, retrieval and reading ``top_k`` passages.

A passage is *gold* for an answerable question when (first rule that applies):

1. ``offsets``: the question's context is an indexed document's text, and the passage comes from
   that document and its character range contains a gold answer (the demo labels);
2. ``document+text``: the context was indexed as a document whose converted text differs (text
   files are cleaned: spaces, newlines), and the passage comes from it and contains a gold
   answer's text;
3. ``answer text``: the context is not a document of the collection, and the passage contains a
   gold answer's text (normalized as the official script normalizes answers).

``reader closed`` metrics read the labels' own contexts (:func:`evaluate_reader`), so the gap
between closed and open EM/F1 is what retrieval costs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document
from tqdm.auto import tqdm

from evaluation.environment import environment
from evaluation.reader_metrics import evaluate_reader, metric_rows, normalize_answer, squad_metrics
from evaluation.squad import SquadExample
from pipelines.answers import QuestionError, validate_question
from pipelines.query import QueryService, get_service
from pipelines.reader import SpanPredictor
from pipelines.reader_config import AnswerRanking
from pipelines.settings import Settings
from pipelines.spans import SpanCandidate, rank_answers
from pipelines.verifier import AnswerVerifier, PassageEvidence

logger = logging.getLogger(__name__)

RECALL_KS = (1, 5, 10, 20)  # recall@k reported for these k up to top_k, and top_k itself
READ_KS = (1, 3, 5, 10, 20)  # open EM/F1 reported when reading the first k passages
CONTEXTS_FOLDER = "contexts"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading: each passage once, answers for every k --------------------------------------------


@dataclass(frozen=True)
class PassageRead:
    """What the reader found in one retrieved passage: its candidate spans (best first) and the
    passage's retriever score. Read once; every k, weight and offset is then decided from it."""

    content: str
    candidates: tuple[SpanCandidate, ...]
    retriever_score: float
    evidence: PassageEvidence | None = None  # retrieval's scores and ranks, for the verifier


def read_passages(
    predictor: SpanPredictor,
    question: str,
    passages: Sequence[Document],
    max_seq_length: int | None = None,
    whole_words: bool | None = None,
) -> list[PassageRead]:
    """The candidate spans of each passage, in passage order (empty passages have none);
    ``max_seq_length``: read windows of that length (``Settings.reader_max_seq_length``);
    ``whole_words``: override the reader's own (``ReaderConfig.whole_words``)."""
    reads = [
        PassageRead(
            p.content or "",
            (),
            float(p.score) if p.score is not None else 0.0,
            PassageEvidence.of(p),
        )
        for p in passages
    ]
    with_text = [i for i, p in enumerate(passages) if p.content]
    if not with_text:
        return reads
    contents = [passages[i].content or "" for i in with_text]
    candidates = predictor.predict(
        [question] * len(contents),
        contents,
        max_seq_length=max_seq_length,
        whole_words=whole_words,
    )
    for i, cands in zip(with_text, candidates, strict=True):
        reads[i] = replace(reads[i], candidates=tuple(cands))
    return reads


def rank_reads(
    reads: Sequence[PassageRead],
    k: int,
    score: Callable[[float], float],
    ranking: AnswerRanking,
    verifier: AnswerVerifier | None = None,
    question: str = "",
) -> tuple[list[SpanCandidate], float]:
    """:func:`pipelines.spans.rank_answers` over the first ``k`` passages read (each passage's
    best span, as :func:`answer_at_k` takes them): the spans best first and "no answer"'s score.
    With a ``verifier`` it ranks instead, as ``ExtractiveReader`` does."""
    first = list(reads[:k])
    if verifier is not None:
        evidence = [r.evidence or PassageEvidence(r.content) for r in first]
        return verifier.verify(question, [list(r.candidates) for r in first], evidence)
    return rank_answers(
        [r.candidates for r in first],
        [r.retriever_score for r in first],
        score,
        ranking,
        spans_per_passage=1,
        passage_texts=[r.content for r in first],
    )


def answer_at_k(
    reads: Sequence[PassageRead],
    k: int,
    score: Callable[[float], float],
    ranking: AnswerRanking,
    verifier: AnswerVerifier | None = None,
    question: str = "",
) -> str | None:
    """The top answer of ``ExtractiveReader`` reading the first ``k`` passages (None: no answer):
    the same :func:`pipelines.spans.rank_answers` over the same candidates. ``score``: the
    reader's margin -> confidence (``SpanPredictor.score``)."""
    ranked, no_answer = rank_reads(reads, k, score, ranking, verifier, question)
    if not ranked or ranked[0].score < no_answer:
        return None
    return ranked[0].text_in([r.content for r in reads])


# -- gold passages --------------------------------------------------------------------------------


def _contains_text(passage: str, answers: Iterable[str]) -> bool:
    """Whether a normalized answer occurs as whole words in the normalized passage."""
    haystack = f" {normalize_answer(passage)} "
    return any(f" {n} " in haystack for a in answers if (n := normalize_answer(a)))


class GoldPassages:
    """Decides which retrieved passages hold a question's gold answer (see the module doc)."""

    def __init__(self, store: Any, doc_for_context: dict[str, str] | None = None) -> None:
        """``doc_for_context``: sha256 of a context -> doc_id of the document indexed from it.

        Default: the documents whose converted text is exactly a context.
        """
        self._store = store
        self._texts: dict[str, str] = {}
        if doc_for_context is None:
            doc_for_context = {}
            for record in store.sources():
                text = self._text(record.doc_id)
                if text is not None:
                    doc_for_context.setdefault(_sha(text), record.doc_id)
        self._doc_for_context = doc_for_context

    def _text(self, doc_id: str) -> str | None:
        """The document's converted text; None when it is not in the store (it failed)."""
        if doc_id not in self._texts:
            try:
                self._texts[doc_id] = self._store.source_text(doc_id)
            except KeyError:
                return None
        return self._texts[doc_id]

    def rule(self, ex: SquadExample) -> str:
        doc_id = self._doc_for_context.get(_sha(ex.context))
        text = self._text(doc_id) if doc_id is not None else None
        if text is None:
            return "answer text"
        return "offsets" if text == ex.context else "document+text"

    def rank(self, ex: SquadExample, passages: Sequence[Document]) -> int | None:
        """1-based rank of the first gold passage, None when none was retrieved."""
        doc_id = self._doc_for_context.get(_sha(ex.context))
        rule = self.rule(ex)
        texts = [a.text for a in ex.answers]
        for rank, p in enumerate(passages, 1):
            if rule == "answer text":
                gold = _contains_text(p.content or "", texts)
            elif p.meta.get("doc_id") != doc_id:
                gold = False
            elif rule == "offsets":
                gold = any(
                    p.meta["start"] <= a.start and a.start + len(a.text) <= p.meta["end"]
                    for a in ex.answers
                )
            else:
                gold = _contains_text(p.content or "", texts)
            if gold:
                return rank
        return None


def retrieval_metrics(ranks: Sequence[int | None], ks: Iterable[int]) -> dict[str, float]:
    """recall@k for each k and MRR over answerable questions (``ranks``: None = not retrieved)."""
    n = len(ranks)
    out = {
        f"recall@{k}": (sum(1 for r in ranks if r is not None and r <= k) / n if n else 0.0)
        for k in sorted(set(ks))
    }
    out["mrr"] = sum(1.0 / r for r in ranks if r) / n if n else 0.0
    return out


# -- metrics --------------------------------------------------------------------------------------


def report_ks(top_k: int, ks: Iterable[int]) -> list[int]:
    return sorted({k for k in ks if k <= top_k} | {top_k})


def answer_metrics(examples: Sequence[SquadExample], predictions: dict[str, str]) -> dict[str, Any]:
    """Official EM/F1 (overall, HasAns, NoAns) plus how often "no answer" was given."""
    metrics = squad_metrics(examples, predictions)
    has = [ex for ex in examples if ex.answers]
    no = [ex for ex in examples if not ex.answers]
    abstained = {q for q, a in predictions.items() if not a}
    metrics["answered"] = 1.0 - len(abstained) / len(predictions) if predictions else 0.0
    # NoAns questions correctly left unanswered; HasAns questions wrongly left unanswered.
    metrics["no_answer_accuracy"] = (
        sum(1 for ex in no if ex.id in abstained) / len(no) if no else None
    )
    metrics["has_answer_abstained"] = (
        sum(1 for ex in has if ex.id in abstained) / len(has) if has else None
    )
    return metrics


def latency_summary(seconds: Sequence[float], bins: int = 20) -> dict[str, Any]:
    """p50/p95/mean/max in seconds and a histogram in milliseconds (for plots)."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0, "histogram_ms": None}
    ms = np.asarray(seconds) * 1000.0
    counts, edges = np.histogram(ms, bins=max(1, min(bins, len(ms))))
    return {
        "p50": float(np.percentile(seconds, 50)),
        "p95": float(np.percentile(seconds, 95)),
        "mean": statistics.fmean(seconds),
        "max": max(seconds),
        "histogram_ms": {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()},
    }


def sample_examples(
    examples: Sequence[SquadExample], n: int | None, seed: int = 0
) -> list[SquadExample]:
    """A fixed random sample of ``n`` examples in file order (all of them when ``n`` is None)."""
    if n is None or n >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


# -- the evaluation -------------------------------------------------------------------------------


def evaluate_end_to_end(
    examples: Sequence[SquadExample],
    settings: Settings,
    top_k: int = 10,
    progress: bool = True,
    *,
    closed: bool = False,
    doc_for_context: dict[str, str] | None = None,
    read_ks: Iterable[int] = READ_KS,
    recall_ks: Iterable[int] = RECALL_KS,
    recall_depth: int | None = None,
    service: QueryService | None = None,
) -> dict[str, Any]:
    """Retrieval, open (and with ``closed``, gold-passage) EM/F1 and latency on ``examples``.

    ``doc_for_context`` maps sha256 of a context to the doc_id indexed from it (see
    :class:`GoldPassages`); ``service`` defaults to the process's one for ``settings``. The
    report is JSON-serializable; ``answers`` holds the metrics when reading ``top_k`` passages,
    ``answers_at_k`` those for each k of ``read_ks`` up to ``top_k``. With ``recall_depth``
    above ``top_k``, that many passages are retrieved for recall@k and only the first ``top_k``
    are read.
    """
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    depth = max(top_k, recall_depth or top_k)
    service = service or get_service(settings)
    store = service.store
    predictor = service.reader_predictor  # the reader as the product serves it
    weight = settings.retriever_weight
    if weight is None:
        weight = predictor.config.ranking.retriever_weight
    gold = GoldPassages(store, doc_for_context)
    ranking = predictor.config.ranking.with_weight(weight)
    verifier = predictor.verifier if settings.answer_verifier else None
    ks = report_ks(top_k, read_ks)
    ranks: list[int | None] = []
    rules: dict[str, int] = {}
    predictions: dict[int, dict[str, str]] = {k: {} for k in ks}
    latencies: list[float] = []
    for ex in tqdm(examples, desc="asking", unit="q", disable=not progress):
        try:
            question = validate_question(ex.question, settings.max_question_chars)
        except QuestionError as exc:
            logger.warning("question %s not asked: %s", ex.id, exc)
            question, passages, reads = "", [], []
        else:
            started = time.perf_counter()
            passages = service.retrieve(question, top_k=depth)
            reads = read_passages(
                predictor, question, passages[:top_k], settings.reader_max_seq_length
            )
            latencies.append(time.perf_counter() - started)
        for k in ks:
            predictions[k][ex.id] = (
                answer_at_k(reads, k, predictor.score, ranking, verifier, question) or ""
            )
        if ex.answers:
            rule = gold.rule(ex)
            rules[rule] = rules.get(rule, 0) + 1
            ranks.append(gold.rank(ex, passages))
    report: dict[str, Any] = {
        "questions": len(examples),
        "answerable": sum(1 for ex in examples if ex.answers),
        "top_k": top_k,
        "retrieved": depth,
        "reader": service.reader_model,
        "reader_backend": predictor.backend,
        "retriever_weight": weight,
        "null_scope": predictor.config.ranking.null_scope,
        "answer_verifier": verifier is not None,
        "collection": {"documents": len(store.sources()), "passages": store.count_documents()},
        "retrieval": retrieval_metrics(ranks, report_ks(depth, recall_ks)),
        "recall_curve": [retrieval_metrics(ranks, [k])[f"recall@{k}"] for k in range(1, depth + 1)],
        "gold_passage_rule": rules,
        "answers": answer_metrics(examples, predictions[top_k]),
        "answers_at_k": [{"k": k, **answer_metrics(examples, predictions[k])} for k in ks],
        "closed": None,
        "latency_seconds": latency_summary(latencies),
        "environment": environment(),
    }
    if closed:
        report["closed"], _ = evaluate_reader(service.reader_model, examples, progress=progress)
    return report


# -- the file's own contexts as the collection ---------------------------------------------------


def contexts_of(examples: Iterable[SquadExample]) -> list[str]:
    """The distinct contexts of ``examples`` in order of first appearance."""
    return list(dict.fromkeys(ex.context for ex in examples))


def context_file_name(context: str) -> str:
    return f"ctx-{_sha(context)[:16]}.txt"


def write_contexts(contexts: Iterable[str], folder: Path) -> dict[str, Path]:
    """Each distinct non-blank context as a text file in ``folder``; others there are removed.

    Files are named by content, so a folder reused for the same contexts is left untouched and
    the next incremental index run has nothing to do. Returns sha256(context) -> file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for context in contexts:
        key = _sha(context)
        if key in files or not context.strip():
            continue
        path = folder / context_file_name(context)
        if not path.is_file() or path.read_text(encoding="utf-8") != context:
            path.write_text(context, encoding="utf-8")
        files[key] = path
    keep = {p.name for p in files.values()}
    for stale in folder.glob("ctx-*.txt"):
        if stale.name not in keep:
            stale.unlink()
    return files


def index_collection(folders: Sequence[Path], settings: Settings, progress: bool = True) -> Any:
    """Index document folders into ``settings.home`` for an end-to-end evaluation or tuning
    (incremental: a home that already holds them is not embedded again); returns the summary."""
    from indexer.run import index_folder

    return index_folder(list(folders), settings, progress=progress)


def index_contexts(
    contexts: Iterable[str], settings: Settings, progress: bool = True
) -> tuple[dict[str, str], Any]:
    """Index contexts as text documents in ``settings.home``; returns (doc_for_context, summary).

    The files go to ``<home>/contexts``; the index is incremental, so a home reused for the same
    contexts is not embedded again.
    """
    from indexer.split import doc_id_for

    files = write_contexts(contexts, settings.home / CONTEXTS_FOLDER)
    if not files:
        raise ValueError("no contexts to index")
    summary = index_collection([settings.home / CONTEXTS_FOLDER], settings, progress=progress)
    if summary.failed:
        logger.warning("%d contexts failed to index: %s", len(summary.failed), summary.failed[:3])
    return {key: doc_id_for(path) for key, path in files.items()}, summary


def evaluate_over_contexts(
    examples: Sequence[SquadExample],
    settings: Settings,
    contexts: Iterable[str],
    home: Path | None = None,
    top_k: int = 10,
    progress: bool = True,
    *,
    closed: bool = False,
    recall_depth: int | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_end_to_end` over a collection made of ``contexts`` (one document each).

    The collection is indexed in ``home`` (kept, and reused by the next run), else in a temporary
    folder. The reader is the one ``settings`` resolves to (``settings.home``'s serving reader);
    ``settings.home``'s own index is neither read nor changed.
    """
    from pipelines.reader_registry import resolve_reader

    reader = resolve_reader(settings)
    with contextlib.ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docqa-eval-")))
        where = settings.with_(home=Path(home).expanduser().resolve(), reader_model=reader)
        started = time.perf_counter()
        doc_for_context, summary = index_contexts(contexts, where, progress)
        index_seconds = time.perf_counter() - started
        report = evaluate_end_to_end(
            examples,
            where,
            top_k,
            progress,
            closed=closed,
            doc_for_context=doc_for_context,
            recall_depth=recall_depth,
            service=QueryService(where),  # not cached: the folder may be temporary
        )
    report["collection"] |= {
        "built_from": "contexts",
        "contexts": len(doc_for_context),
        "failed": len(summary.failed),
        "embedded_passages": summary.passages,
        "index_seconds": round(index_seconds, 2),
    }
    return report


# -- text -----------------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """A terminal table of a report from :func:`evaluate_end_to_end`."""
    ret, lat = report["retrieval"], report["latency_seconds"]
    coll = report.get("collection") or {}
    lines = [
        f"{report['questions']} questions, top {report['top_k']} passages"
        + (
            f" read of {report['retrieved']}"
            if report.get("retrieved", 0) > report["top_k"]
            else ""
        )
        + f", reader {report['reader']}",
        f"collection: {coll.get('documents', '?')} documents, {coll.get('passages', '?')} "
        f"passages; gold passages by {_rules(report.get('gold_passage_rule') or {})}",
        "retrieval: " + ", ".join(f"{k} {v:.3f}" for k, v in ret.items()),
        "",
        f"{'answers':30} {'EM':>7} {'F1':>7} {'n':>6}",
    ]
    closed = report.get("closed")
    if closed:
        lines += _metric_lines("closed (gold passages)", closed)
    lines += _metric_lines(f"open (top {report['top_k']})", report["answers"])
    ans = report["answers"]
    if ans.get("no_answer_accuracy") is not None:
        lines.append(f"no-answer accuracy {100 * ans['no_answer_accuracy']:.1f}%")
    if ans.get("has_answer_abstained") is not None:
        lines.append(f"answerable left unanswered {100 * ans['has_answer_abstained']:.1f}%")
    lines += ["", f"{'passages read':14} {'EM':>7} {'F1':>7} {'HasAns F1':>10} {'NoAns F1':>9}"]
    for row in report.get("answers_at_k", []):
        has, no = row.get("HasAns_f1"), row.get("NoAns_f1")
        lines.append(
            f"{row['k']:<14} {row['exact']:7.2f} {row['f1']:7.2f} {_num(has):>10} {_num(no):>9}"
        )
    lines += [
        "",
        f"latency per question p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms",
    ]
    if report.get("plots"):
        lines.append("plots: " + ", ".join(report["plots"]))
    return "\n".join(lines)


def _rules(rules: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in rules.items()) or "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _metric_lines(title: str, metrics: dict[str, Any]) -> list[str]:
    rows = metric_rows(metrics)
    return [
        f"{(title if i == 0 else ''):22} {name:7} {em:7.2f} {f1:7.2f} {n:6d}"
        for i, (name, em, f1, n) in enumerate(rows)
    ]


# -- tuning the score mix -------------------------------------------------------------------------


@dataclass(frozen=True)
class TunedRanking(AnswerRanking):
    """The :class:`AnswerRanking` that scored best on held-out pairs, and F1 for each tried."""

    heldout_f1: dict[AnswerRanking, float] = field(default_factory=dict)  # each one tried

    def report(self) -> dict[str, Any]:
        """As JSON: the chosen settings, and each setting tried with its F1."""
        tried = [asdict(ranking) | {"f1": f1} for ranking, f1 in self.heldout_f1.items()]
        return asdict(self.plain()) | {"heldout_f1": tried}


def tune_answer_ranking(
    examples: Sequence[SquadExample],
    settings: Settings,
    weights: Sequence[float] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    offsets: Sequence[float] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    top_k: int = 10,
    progress: bool = True,
    null_scopes: Sequence[str] = ("window", "question"),
    rank_priors: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
) -> TunedRanking:
    """The ``retriever_weight``, ``open_null_offset``, ``null_scope`` and ``rank_prior`` that
    maximize end-to-end F1 on ``examples``, and F1 for each combination.

    Each question is retrieved and read once (each passage's best span, its margin and its
    window's null); every combination then re-scores the same spans, as BERTserini and cdQA
    tune their score mix, and :func:`answer_at_k` picks the answer as the pipeline would: spans
    score ``(1 - w) * sigmoid((margin - offset) / T) + w * retriever``, "no answer" one minus
    the best span's reader part; with the "question" scope every margin is taken against the
    mean null of the passages read; a rank prior lowers the margins of the r-th passage by
    ``prior * ln(r)``. Ties go to the window scope, the smaller prior, weight and offset.
    Use held-out pairs, never the pairs you report on. Offsets may be negative: with one
    question-level null a reader can also be too shy.
    """
    service = get_service(settings)
    predictor = service.reader_predictor
    reads_of: dict[str, list[PassageRead]] = {}
    for ex in tqdm(examples, desc="reading", unit="q", disable=not progress):
        passages = service.retrieve(ex.question, top_k=top_k)
        reads_of[ex.id] = read_passages(
            predictor, ex.question, passages, settings.reader_max_seq_length
        )
    table: dict[AnswerRanking, float] = {}
    best: tuple[tuple[float, ...], AnswerRanking] | None = None
    for rank, scope in enumerate(null_scopes):
        for prior in rank_priors:
            for offset in offsets:
                for w in weights:
                    ranking = AnswerRanking(w, offset, scope, rank_prior=prior)
                    predictions = {
                        qid: answer_at_k(reads, top_k, predictor.score, ranking) or ""
                        for qid, reads in reads_of.items()
                    }
                    f1 = squad_metrics(examples, predictions)["f1"]
                    table[ranking] = round(f1, 2)
                    key = (f1, -rank, -prior, -w, -offset)  # ties: the simpler setting
                    if best is None or key > best[0]:
                        best = (key, ranking)
    assert best is not None
    return TunedRanking(**asdict(best[1]), heldout_f1=table)
