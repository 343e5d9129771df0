"""The no-answer threshold chosen on several held-out sets (reader_training.calibration)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evaluation.reader_metrics import ReaderPredictions, best_threshold, squad_metrics
from evaluation.squad import Answer, SquadExample, load_squad
from pipelines.reader import ReaderConfig
from pipelines.settings import REPO_ROOT
from reader_training.calibration import (
    best_shared_threshold,
    calibrate_threshold,
    f1_at_thresholds,
)


def _example(qid: str, answer: str | None) -> SquadExample:
    context = "The office opens at nine and closes at five."
    answers = (Answer(answer, context.index(answer)),) if answer else ()
    return SquadExample(qid, "office", context, "When does it open?", answers)


def test_f1_at_thresholds_matches_squad_scoring() -> None:
    examples = [_example("a", "nine"), _example("b", None), _example("c", "five")]
    preds = ReaderPredictions({"a": "nine", "b": "five", "c": "nine"}, {"a": 3, "b": 1, "c": -2})
    thresholds = np.array([-5.0, 0.0, 2.0, 5.0])
    got = f1_at_thresholds(examples, preds, thresholds)
    for thr, f1 in zip(thresholds, got, strict=True):
        assert f1 == pytest.approx(squad_metrics(examples, preds.answers(thr))["f1"])
    # One set alone: the same choice as the single-set search the trainer uses.
    shared, _ = best_shared_threshold({"only": (examples, preds)})
    single, _ = best_threshold(examples, preds.best_spans, preds.margins)
    assert squad_metrics(examples, preds.answers(shared)) == squad_metrics(
        examples, preds.answers(single)
    )


def test_each_set_weighs_the_same_whatever_its_size() -> None:
    """A small answerable set cannot be outvoted by a large one full of unanswerables, nor
    the reverse: the choice maximizes the mean of the two sets' F1."""
    small = [_example(f"s{i}", "nine") for i in range(4)]
    small_preds = ReaderPredictions({e.id: "nine" for e in small}, {e.id: -1.0 for e in small})
    large = [_example(f"l{i}", None) for i in range(40)] + [_example("l-ans", "nine")]
    large_preds = ReaderPredictions(
        {e.id: "nine" for e in large}, {e.id: (-1.0 if e.answers else -0.5) for e in large}
    )
    # Pooled, the 40 unanswerables win: never answer (the small set's F1 would be 0).
    pooled = small + large
    pooled_preds = ReaderPredictions(
        small_preds.best_spans | large_preds.best_spans, small_preds.margins | large_preds.margins
    )
    pooled_thr, _ = best_threshold(pooled, pooled_preds.best_spans, pooled_preds.margins)
    assert squad_metrics(small, small_preds.answers(pooled_thr))["f1"] == 0.0
    thr, per_set = best_shared_threshold(
        {"small": (small, small_preds), "large": (large, large_preds)}
    )
    # Equal weights: answering at margin -1 gains the small set 100 and costs the large set
    # 40/41 * 100, so the mean is higher when it answers.
    assert thr < -1.0
    assert per_set == {"small": 100.0, "large": pytest.approx(100 / 41, abs=0.01)}
    with pytest.raises(ValueError, match="non-empty"):
        best_shared_threshold({"empty": ([], small_preds)})


def test_calibrate_threshold_saves_the_choice_with_the_reader(
    tiny_reader: Path, tmp_path: Path
) -> None:
    reader = tmp_path / "reader"
    shutil.copytree(tiny_reader, reader)
    replace(ReaderConfig.load(reader), no_answer_threshold=50.0).save(reader)
    demo, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "dev.json")
    answerable = [ex for ex in demo if ex.answers][:30]
    unanswerable = [ex for ex in demo if not ex.answers][:10]
    report = calibrate_threshold(
        reader, {"answerable": answerable, "mixed": answerable[:10] + unanswerable}
    )
    saved = ReaderConfig.load(reader)
    assert saved.no_answer_threshold == pytest.approx(report["threshold"], abs=1e-3)
    assert report["previous_threshold"] == 50.0
    assert report["sets"]["mixed"] == {"questions": 20, "unanswerable": len(unanswerable)}

    def mean_f1(at: dict[str, dict[str, float]]) -> float:
        return sum(m["f1"] for m in at.values()) / len(at)

    # A threshold of +50 answers everything; the chosen one is at least as good on the mean.
    assert mean_f1(report["at_chosen"]) >= mean_f1(report["at_previous"])
    # Other settings saved with the reader are kept.
    assert saved.max_seq_length == ReaderConfig.load(tiny_reader).max_seq_length
