"""Our EM/F1 against the official SQuAD v2.0 script, and the no-answer threshold search."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evaluation.reader_metrics import (
    ReaderPredictions,
    best_threshold,
    compute_f1,
    format_table,
    normalize_answer,
    squad_metrics,
)
from evaluation.squad import SquadExample, load_squad
from pipelines.settings import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"
OFFICIAL = SHARED / "squad" / "evaluate-v2.0.py"
KEYS = (
    "exact",
    "f1",
    "total",
    "HasAns_exact",
    "HasAns_f1",
    "HasAns_total",
    "NoAns_exact",
    "NoAns_f1",
    "NoAns_total",
)

CONTEXT = (
    "The Beacon G3 ships with firmware 4.2. Its battery lasts about 18 hours, and the LED "
    "turns amber when the battery is below 20 percent. The Beacon G3 costs $349 in the US."
)


def official(
    data_file: Path,
    predictions: dict[str, str],
    tmp_path: Path,
    na_probs: dict[str, float] | None = None,
) -> dict[str, Any]:
    pred_file = tmp_path / "predictions.json"
    pred_file.write_text(json.dumps(predictions), encoding="utf-8")
    cmd = [sys.executable, str(OFFICIAL), str(data_file), str(pred_file)]
    if na_probs is not None:
        na_file = tmp_path / "na_probs.json"
        na_file.write_text(json.dumps(na_probs), encoding="utf-8")
        cmd += ["--na-prob-file", str(na_file)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def assert_same(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for key in KEYS:
        if key in theirs:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    assert {k for k in KEYS if k in ours} == {k for k in KEYS if k in theirs}


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    def qa(qid: str, question: str, *texts: str) -> dict[str, Any]:
        answers = [{"text": t, "answer_start": CONTEXT.index(t)} for t in texts]
        return {"id": qid, "question": question, "answers": answers, "is_impossible": not answers}

    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Beacon G3",
                "paragraphs": [
                    {
                        "context": CONTEXT,
                        "qas": [
                            qa("exact", "Which firmware?", "firmware 4.2", "4.2"),
                            qa("normalized", "How long does the battery last?", "about 18 hours"),
                            qa(
                                "partial",
                                "When does the LED turn amber?",
                                "when the battery is below 20 percent",
                            ),
                            qa("wrong", "What colour is the LED?", "amber"),
                            qa("empty", "How much is the G3?", "$349"),
                            qa("article", "What ships with firmware 4.2?", "The Beacon G3"),
                            qa("no-right", "Who designed the G3?"),
                            qa("no-wrong", "What is the G3's weight?"),
                            qa("no-blank", "Which colour is the case?"),
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "small-v2.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


PREDICTIONS = {
    "exact": "4.2",
    "normalized": "About 18 hours.",
    "partial": "below 20 percent",
    "wrong": "18 hours",
    "empty": "",
    "article": "Beacon G3",
    "no-right": "",
    "no-wrong": "firmware 4.2",
    "no-blank": "the",  # normalizes to nothing: counts as "no answer"
}


def test_metrics_equal_the_official_script_on_a_small_file(
    small_file: Path, tmp_path: Path
) -> None:
    examples, _ = load_squad(small_file)
    ours = squad_metrics(examples, PREDICTIONS)
    theirs = official(small_file, PREDICTIONS, tmp_path)
    assert_same(ours, theirs)
    assert (ours["HasAns_total"], ours["NoAns_total"]) == (6, 3)
    assert 0 < ours["HasAns_f1"] < 100 and ours["exact"] < ours["f1"]


def test_metrics_equal_the_official_script_on_real_squad_dev(tmp_path: Path) -> None:
    data = json.loads((SHARED / "squad" / "dev-v2.0-half.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:2]
    data_file = tmp_path / "dev-slice.json"
    data_file.write_text(json.dumps(data), encoding="utf-8")
    examples, report = load_squad(data_file)
    assert report.kept > 100 and not report.skipped
    rng = random.Random(0)
    predictions = {}
    for ex in examples:
        words = ex.context.split()
        kind = rng.random()
        if ex.answers and kind < 0.4:
            predictions[ex.id] = rng.choice(ex.answers).text  # exact
        elif ex.answers and kind < 0.7:
            gold = rng.choice(ex.answers).text.split()
            predictions[ex.id] = " ".join(gold[: max(1, len(gold) // 2)] + words[:2])  # partial
        elif kind < 0.85:
            i = rng.randrange(len(words))
            predictions[ex.id] = " ".join(words[i : i + rng.randint(1, 6)])  # some span
        else:
            predictions[ex.id] = ""
    ours = squad_metrics(examples, predictions)
    theirs = official(data_file, predictions, tmp_path)
    assert_same(ours, theirs)
    assert ours["NoAns_total"] > 0 and ours["HasAns_total"] > 0


def test_normalization_and_f1_match_the_definitions() -> None:
    assert normalize_answer("  The  Beacon, G3! ") == "beacon g3"
    assert compute_f1("the Beacon G3", "Beacon") == pytest.approx(2 / 3)
    assert compute_f1("", "") == 1.0 and compute_f1("", "a") == 1.0  # "a" normalizes to ""
    assert compute_f1("", "amber") == 0.0 and compute_f1("amber", "") == 0.0


def hand_made() -> tuple[list[SquadExample], dict[str, str], dict[str, float]]:
    from evaluation.squad import Answer

    def ex(qid: str, answer: str | None) -> SquadExample:
        answers = (Answer(answer, CONTEXT.index(answer)),) if answer else ()
        return SquadExample(qid, "t", CONTEXT, f"question {qid}?", answers)

    examples = [
        ex("a1", "4.2"),
        ex("n1", None),
        ex("a2", "amber"),
        ex("n2", None),
        ex("a3", "$349"),
    ]
    spans = {"a1": "4.2", "n1": "18 hours", "a2": "amber", "n2": "amber", "a3": "18 hours"}
    # Margin order: a1 (right), n1 (should abstain), a2 (right), n2, a3 (wrong anyway).
    margins = {"a1": 3.0, "n1": 2.0, "a2": 1.0, "n2": -1.0, "a3": -2.0}
    return examples, spans, margins


def test_best_threshold_maximizes_f1_on_a_hand_made_case() -> None:
    examples, spans, margins = hand_made()
    threshold, f1 = best_threshold(examples, spans, margins)
    # Answering a1 and a2 (and n1) gives 3/5; answering only a1 gives a1 + n1 + n2 = 3/5 too,
    # reached first: ties keep the higher threshold, halfway between a1's margin and n1's.
    assert threshold == pytest.approx(2.5)
    assert f1 == pytest.approx(60.0)
    preds = ReaderPredictions(spans, margins)
    assert preds.answers(threshold) == {"a1": "4.2", "n1": "", "a2": "", "n2": "", "a3": ""}
    assert squad_metrics(examples, preds.answers(threshold))["f1"] == pytest.approx(f1)
    # No threshold does better (brute force over all cuts).
    cuts = [m + d for m in margins.values() for d in (-1e-3, 1e-3)]
    assert max(squad_metrics(examples, preds.answers(c))["f1"] for c in cuts) == pytest.approx(f1)


def test_best_threshold_when_abstaining_everywhere_is_best() -> None:
    examples, spans, margins = hand_made()
    spans = dict.fromkeys(spans, "18 hours")  # every span wrong
    threshold, f1 = best_threshold(examples, spans, margins)
    assert threshold > max(margins.values())
    assert f1 == pytest.approx(40.0)
    assert set(ReaderPredictions(spans, margins).answers(threshold).values()) == {""}


def test_best_threshold_agrees_with_the_official_script(small_file: Path, tmp_path: Path) -> None:
    examples, _ = load_squad(small_file)
    spans = {qid: p or "18 hours" for qid, p in PREDICTIONS.items() if qid != "no-blank"}
    spans["no-blank"] = "amber"
    margins = {ex.id: 1.5 - 0.5 * i for i, ex in enumerate(examples)}
    threshold, f1 = best_threshold(examples, spans, margins)
    theirs = official(small_file, spans, tmp_path, na_probs={q: -m for q, m in margins.items()})
    assert f1 == pytest.approx(theirs["best_f1"], abs=1e-6)
    # Official: abstain where na_prob > best_f1_thresh; ours: answer where margin > threshold.
    answered = {q for q, m in margins.items() if m > threshold}
    assert answered == {q for q, m in margins.items() if -m <= theirs["best_f1_thresh"]}


def test_format_table_lists_the_splits(small_file: Path) -> None:
    examples, _ = load_squad(small_file)
    table = format_table(squad_metrics(examples, PREDICTIONS)).splitlines()
    assert [line.split()[0] for line in table[1:]] == ["overall", "HasAns", "NoAns"]
    assert table[1].split()[-1] == "9"
