"""End-to-end evaluation of the query pipeline on labeled questions over an indexed collection.

For every question: were the gold passages retrieved (recall@k, MRR), is the top answer right
(official EM/F1, with "no answer" counted as the empty string), and how long did it take. A passage
is gold when it comes from the document whose converted text is the question's context and its
character range contains a gold answer.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from pipelines.query import get_service
from pipelines.settings import Settings
from reader_training.evaluate import metric_rows, squad_metrics
from reader_training.squad import SquadExample

logger = logging.getLogger(__name__)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def evaluate_end_to_end(
    examples: Sequence[SquadExample], settings: Settings, top_k: int = 10, progress: bool = True
) -> dict[str, Any]:
    service = get_service(settings)
    store = service.store
    text_to_doc = {_sha(store.source_text(s.doc_id)): s.doc_id for s in store.sources()}
    ranks: list[int | None] = []
    predictions: dict[str, str] = {}
    latencies: list[float] = []
    for ex in tqdm(examples, desc="asking", unit="q", disable=not progress):
        started = time.perf_counter()
        results = service.ask(ex.question, top_k_passages=top_k, top_n_answers=1)
        latencies.append(time.perf_counter() - started)
        top = results[0] if results else None
        predictions[ex.id] = (top.answer or "") if top else ""
        if not ex.answers:
            continue
        doc_id = text_to_doc.get(_sha(ex.context))
        passages = service.retrieve(ex.question, top_k=top_k)
        rank = None
        for i, p in enumerate(passages, 1):
            if p.meta.get("doc_id") == doc_id and any(
                p.meta["start"] <= a.start and a.start + len(a.text) <= p.meta["end"]
                for a in ex.answers
            ):
                rank = i
                break
        ranks.append(rank)
    answerable = len(ranks)
    report: dict[str, Any] = {
        "questions": len(examples),
        "top_k": top_k,
        "retrieval": {
            f"recall@{k}": (
                sum(1 for r in ranks if r is not None and r <= k) / answerable
                if answerable
                else 0.0
            )
            for k in sorted({1, 5, top_k})
        }
        | {"mrr": sum(1 / r for r in ranks if r) / answerable if answerable else 0.0},
        "answers": squad_metrics(examples, predictions),
        "latency_seconds": {
            "p50": statistics.median(latencies) if latencies else 0.0,
            "p95": (
                statistics.quantiles(latencies, n=20)[18]
                if len(latencies) >= 2
                else (latencies[0] if latencies else 0.0)
            ),
        },
        "reader": service.reader_model,
    }
    return report


def format_report(report: dict[str, Any]) -> str:
    ans, ret, lat = report["answers"], report["retrieval"], report["latency_seconds"]
    lines = [
        f"{report['questions']} questions, top {report['top_k']} passages, "
        f"reader {report['reader']}",
        "retrieval: " + ", ".join(f"{k} {v:.3f}" for k, v in ret.items()),
    ]
    lines += [f"{name:8} EM {em:6.2f}  F1 {f1:6.2f}  n {n}" for name, em, f1, n in metric_rows(ans)]
    lines.append(f"latency p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms")
    return "\n".join(lines)


def tune_retriever_weight(
    examples: Sequence[SquadExample],
    settings: Settings,
    weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    top_k: int = 10,
    progress: bool = True,
) -> tuple[float, dict[float, float]]:
    """The weight of the retriever's score that maximizes end-to-end F1 on ``examples``.

    Each question is read once (reader weight 0, many candidates kept); every weight then
    re-ranks the same candidates, as BERTserini and cdQA tune their score mix. Use held-out
    pairs, never the pairs you report on.
    """
    service = get_service(settings.with_(retriever_weight=0.0))
    candidates: dict[str, list[tuple[str | None, float, float]]] = {}
    for ex in tqdm(examples, desc="reading", unit="q", disable=not progress):
        results = service.ask(ex.question, top_k_passages=top_k, top_n_answers=20)
        candidates[ex.id] = [
            (r.answer, r.reader_score if r.answer else r.score, r.retriever_score or 0.0)
            for r in results
        ]
    table: dict[float, float] = {}
    for w in weights:
        predictions = {}
        for qid, cands in candidates.items():
            spans = [(a, (1 - w) * rs + w * ret, rs) for a, rs, ret in cands if a is not None]
            no_answer = next((rs for a, rs, _ in cands if a is None), 0.0)
            best = max(spans, key=lambda c: c[1], default=None)
            answer = best[0] if best is not None and best[1] >= no_answer else None
            predictions[qid] = answer or ""
        table[w] = squad_metrics(examples, predictions)["f1"]
    best_weight = max(table, key=lambda w: (table[w], -w))
    return best_weight, table
