"""The no-answer threshold, chosen on several held-out sets at once.

A threshold chosen on one small, mostly answerable set answers too often elsewhere: the
campaign's domain stage chose -4.03 on 120 demo held-out pairs (25 unanswerable), and the
reader that is better at every threshold-free measure lost SQuAD 2.0 overall F1 on it (NoAns 39).
:func:`calibrate_threshold` reads each held-out set once and picks the threshold that maximizes
the **mean** of the sets' F1, each set weighing the same whatever its size, so the domain pairs
are not drowned by a larger general set and a set with hard unanswerables keeps the threshold
honest. The sets must be held out of training (never an evaluation set such as
``dev-v2.0-half``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.reader_metrics import (
    ReaderPredictions,
    compute_f1,
    gold_texts,
    predict,
    squad_metrics,
)
from evaluation.squad import SquadExample
from pipelines.reader import ReaderConfig, SpanPredictor

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "threshold_calibration.json"


def _question_scores(
    examples: Sequence[SquadExample], preds: ReaderPredictions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question: its margin, the F1 when it answers, the F1 when it abstains."""
    margins = np.array([preds.margins[ex.id] for ex in examples], dtype=np.float64)
    # The official script's rule: gold texts that normalize to nothing mean "no answer".
    golds = [gold_texts(ex) for ex in examples]
    answer_f1 = np.array(
        [
            max(compute_f1(g, preds.best_spans[ex.id]) for g in gs)
            for ex, gs in zip(examples, golds, strict=True)
        ]
    )
    abstain_f1 = np.array([max(compute_f1(g, "") for g in gs) for gs in golds])
    return margins, answer_f1, abstain_f1


def f1_at_thresholds(
    examples: Sequence[SquadExample], preds: ReaderPredictions, thresholds: np.ndarray
) -> np.ndarray:
    """F1 (0-100) of ``preds`` on ``examples`` for each margin threshold (answer when
    ``margin > threshold``)."""
    margins, answer_f1, abstain_f1 = _question_scores(examples, preds)
    answers = margins[None, :] > thresholds[:, None]
    per_question = np.where(answers, answer_f1[None, :], abstain_f1[None, :])
    return 100.0 * per_question.mean(axis=1)


def best_shared_threshold(
    sets: Mapping[str, tuple[Sequence[SquadExample], ReaderPredictions]],
) -> tuple[float, dict[str, float]]:
    """The margin threshold that maximizes the mean F1 over ``sets``, and each set's F1 there.

    The candidates are just below every margin seen, plus one above them all (never answer).
    """
    if not sets or any(not examples for examples, _ in sets.values()):
        raise ValueError("calibration needs at least one non-empty held-out set")
    all_margins = np.concatenate(
        [np.array([p.margins[ex.id] for ex in exs]) for exs, p in sets.values()]
    )
    candidates = np.unique(np.concatenate([all_margins - 1e-6, [all_margins.max() + 1e-6]]))
    table = np.stack([f1_at_thresholds(exs, p, candidates) for exs, p in sets.values()])
    mean = table.mean(axis=0)
    # Ties: the middle of the best plateau, so the choice does not sit on one question's margin.
    best = np.flatnonzero(np.isclose(mean, mean.max()))
    index = int(best[len(best) // 2])
    return float(candidates[index]), {
        name: round(float(table[i, index]), 2) for i, name in enumerate(sets)
    }


def calibrate_threshold(
    reader_dir: Path,
    heldout_sets: Mapping[str, Sequence[SquadExample]],
    cpu_precision: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Choose ``reader_dir``'s no-answer threshold on ``heldout_sets`` (mean F1, equal weights)
    and save it in its ``docqa_reader.json``; returns what was chosen and measured.

    The report gives every set's F1, HasAns F1 and NoAns F1 at the reader's previous threshold
    and at the new one, so the trade is visible.
    """
    predictor = SpanPredictor(reader_dir, cpu_precision=cpu_precision, batch_size=64)
    previous = predictor.config.no_answer_threshold
    sets = {
        name: (list(examples), predict(predictor, list(examples), progress=progress))
        for name, examples in heldout_sets.items()
    }
    margin_threshold, _ = best_shared_threshold(sets)
    chosen = -margin_threshold  # stored as the amount added to margins (answer when m + t > 0)

    def measured(threshold: float) -> dict[str, dict[str, float]]:
        out = {}
        for name, (examples, preds) in sets.items():
            m = squad_metrics(examples, preds.answers(-threshold))
            keys = ("f1", "HasAns_f1", "NoAns_f1")
            out[name] = {k: round(float(m[k]), 2) for k in keys if k in m}
        return out

    report = {
        "policy": "mean F1 over the held-out sets, each set weighing the same",
        "sets": {
            name: {
                "questions": len(examples),
                "unanswerable": sum(1 for ex in examples if not ex.answers),
            }
            for name, (examples, _) in sets.items()
        },
        "previous_threshold": round(previous, 3),
        "threshold": round(chosen, 3),
        "at_previous": measured(previous),
        "at_chosen": measured(chosen),
    }
    config = ReaderConfig.load(reader_dir)
    dataclasses.replace(config, no_answer_threshold=chosen).save(reader_dir)
    logger.info("no-answer threshold %.3f -> %.3f (%s)", previous, chosen, report["at_chosen"])
    return report
