"""Exact match and F1 with the official SQuAD v2.0 semantics, and the no-answer threshold.

The normalization and scoring functions follow ``evaluate-v2.0.py`` (the official script) line
for line, so our numbers agree with it on the same predictions; a test checks that they do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from evaluation.squad import SquadExample
from pipelines.answer_scores import compute_exact, compute_f1, normalize_answer
from pipelines.reader import SpanPredictor

logger = logging.getLogger(__name__)


def gold_texts(ex: SquadExample) -> list[str]:
    texts = [a.text for a in ex.answers if normalize_answer(a.text)]
    return texts or [""]


def raw_scores(
    examples: Sequence[SquadExample], predictions: dict[str, str]
) -> tuple[dict[str, int], dict[str, float]]:
    exact, f1 = {}, {}
    for ex in examples:
        if ex.id not in predictions:
            continue
        golds, pred = gold_texts(ex), predictions[ex.id]
        exact[ex.id] = max(compute_exact(g, pred) for g in golds)
        f1[ex.id] = max(compute_f1(g, pred) for g in golds)
    return exact, f1


def squad_metrics(examples: Sequence[SquadExample], predictions: dict[str, str]) -> dict[str, Any]:
    """Overall, HasAns and NoAns exact/f1 in percent, as the official script prints them."""
    exact, f1 = raw_scores(examples, predictions)
    ids = [ex.id for ex in examples]

    def block(sel: list[str]) -> dict[str, float]:
        n = len(sel)
        return {
            "exact": 100.0 * sum(exact.get(i, 0) for i in sel) / n if n else 0.0,
            "f1": 100.0 * sum(f1.get(i, 0.0) for i in sel) / n if n else 0.0,
            "total": n,
        }

    out: dict[str, Any] = block(ids)
    has = [ex.id for ex in examples if ex.answers]
    no = [ex.id for ex in examples if not ex.answers]
    if has:
        out.update({f"HasAns_{k}": v for k, v in block(has).items()})
    if no:
        out.update({f"NoAns_{k}": v for k, v in block(no).items()})
    return out


def best_threshold(
    examples: Sequence[SquadExample], best_spans: dict[str, str], margins: dict[str, float]
) -> tuple[float, float]:
    """The margin threshold that maximizes F1: answer when ``margin > threshold``.

    Returns ``(threshold, f1)``. Mirrors the official ``find_best_thresh`` over na_prob = -margin
    for the F1. The threshold lies halfway between the last margin answered and the next one
    down, not just under the last: any cut in that gap gives the same F1 here, and the middle
    is the one least likely to move a new question to the wrong side (with the few held-out
    pairs a user labels, the gaps are wide).
    """
    by_id = {ex.id: ex for ex in examples}
    order = sorted(margins, key=lambda q: -margins[q])
    # Start with "no answer" everywhere and switch questions to their span in margin order.
    score = sum(1.0 for ex in examples if not ex.answers)
    best, best_thr = score, max(margins.values(), default=0.0) + 1e-6
    for i, qid in enumerate(order):
        ex = by_id[qid]
        golds = gold_texts(ex)
        f1 = max(compute_f1(g, best_spans[qid]) for g in golds)
        score += f1 - (0.0 if ex.answers else 1.0)
        if score > best:
            below = margins[order[i + 1]] if i + 1 < len(order) else None
            cut = margins[qid] - 1e-6
            if below is not None and below < cut:
                cut = (margins[qid] + below) / 2
            best, best_thr = score, cut
    return best_thr, 100.0 * best / max(1, len(examples))


@dataclass
class ReaderPredictions:
    best_spans: dict[str, str]  # best non-null span of each question
    margins: dict[str, float]  # its margin with threshold 0 (span logit - null logit)

    def answers(self, threshold: float = 0.0) -> dict[str, str]:
        """Official-format predictions: the span where ``margin > threshold``, else ""."""
        return {q: (s if self.margins[q] > threshold else "") for q, s in self.best_spans.items()}


def predict(
    predictor: SpanPredictor,
    examples: Sequence[SquadExample],
    batch_questions: int = 64,
    progress: bool = True,
) -> ReaderPredictions:
    spans: dict[str, str] = {}
    margins: dict[str, float] = {}
    bar = tqdm(total=len(examples), desc="reading", unit="q", disable=not progress)
    for lo in range(0, len(examples), batch_questions):
        batch = examples[lo : lo + batch_questions]
        cands = predictor.predict(
            [ex.question for ex in batch],
            [ex.context for ex in batch],
            n_best=10,
            no_answer_threshold=0.0,
        )
        for ex, cs in zip(batch, cands, strict=True):
            if cs:
                spans[ex.id] = ex.context[cs[0].start_char : cs[0].end_char]
                margins[ex.id] = cs[0].margin
            else:
                spans[ex.id], margins[ex.id] = "", -1e9
        bar.update(len(batch))
    bar.close()
    return ReaderPredictions(spans, margins)


def evaluate_reader(
    model: str | Path,
    examples: Sequence[SquadExample],
    threshold: float | None = None,
    cpu_precision: str = "auto",
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Metrics and official-format predictions of a reader on examples.

    ``threshold`` defaults to the one saved with the model. The metrics also report the best
    threshold on these examples and the F1 it would give (for information, never for picking on
    an evaluation set), and the HasAns F1 when the best span is always given.
    """
    predictor = SpanPredictor(model, cpu_precision=cpu_precision, batch_size=64)
    preds = predict(predictor, examples, progress=progress)
    thr = predictor.config.no_answer_threshold if threshold is None else threshold
    answers = preds.answers(-thr)  # margins here exclude the threshold; answer if m + thr > 0
    metrics = squad_metrics(examples, answers)
    metrics["threshold"] = thr
    best_thr, best_f1 = best_threshold(examples, preds.best_spans, preds.margins)
    metrics["best_f1"] = best_f1
    metrics["best_threshold"] = -best_thr
    has = [ex for ex in examples if ex.answers]
    if has:
        metrics["HasAns_f1_best_span"] = squad_metrics(has, preds.best_spans)["f1"]
    return metrics, answers


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, float, float, int]]:
    """(split, EM, F1, n) for overall, HasAns and NoAns, where present."""
    return [
        (name, metrics[f"{prefix}exact"], metrics[f"{prefix}f1"], int(metrics[f"{prefix}total"]))
        for name, prefix in (("overall", ""), ("HasAns", "HasAns_"), ("NoAns", "NoAns_"))
        if f"{prefix}f1" in metrics
    ]


def format_table(metrics: dict[str, Any]) -> str:
    lines = [f"{'':10} {'EM':>7} {'F1':>7} {'n':>7}"]
    lines += [f"{name:10} {em:7.2f} {f1:7.2f} {n:7d}" for name, em, f1, n in metric_rows(metrics)]
    return "\n".join(lines)
