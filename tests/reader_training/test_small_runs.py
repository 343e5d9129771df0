"""Small runs keep a sound no-answer threshold (issue 28).

A run chooses its threshold on its held-out pairs only when they hold enough questions of both
kinds; otherwise it serves the threshold of the reader it started from and reports its held-out
F1 at that threshold. The gates (``docqa promote``, the page's retraining) compare readers at the
thresholds they serve with, never at one chosen on the evaluation pairs.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluation.reader_metrics import evaluate_reader, squad_metrics
from evaluation.squad import SquadExample, load_squad, write_squad
from pipelines.reader import ReaderConfig
from pipelines.reader_registry import set_serving
from pipelines.settings import REPO_ROOT, SHIPPED_READER, Settings
from reader_training.jobs import gate
from reader_training.promote import PromotionError, promote_model
from reader_training.train import (
    MIN_THRESHOLD_QUESTIONS,
    TrainConfig,
    threshold_choice,
    train_reader,
)

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"
DEMO_DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
START_THRESHOLD = 2.5  # the starting reader's (distinctive: no run would choose it)


def by_kind(path: Path) -> tuple[list[SquadExample], list[SquadExample]]:
    examples, _ = load_squad(path)
    return [ex for ex in examples if ex.answers], [ex for ex in examples if not ex.answers]


def test_a_threshold_is_chosen_only_on_enough_questions_of_both_kinds() -> None:
    has, no = by_kind(DEMO_TRAIN)
    n = MIN_THRESHOLD_QUESTIONS
    assert n >= 20
    chosen = threshold_choice(has[:n] + no[:n], -4.0)
    assert chosen.choose
    assert (
        chosen.reason
        == f"chosen on the {2 * n} held-out questions ({n} answerable, {n} unanswerable)"
    )
    too_few = {
        "none": [],
        "issue 28's two answerable": has[:2],
        "answerable only": has[:300],
        "unanswerable only": no[:100],
        "a few of each": has[:12] + no[:4],
        "one answerable short": has[: n - 1] + no[:100],
        "one unanswerable short": has[:300] + no[: n - 1],
    }
    for name, heldout in too_few.items():
        kept = threshold_choice(heldout, -4.0)
        assert not kept.choose and kept.start == -4.0, name
        assert kept.reason.startswith("kept from the starting reader: the "), name
        assert f"(at least {n} of each kind)" in kept.reason, name
    assert "the 2 held-out questions (2 answerable, 0 unanswerable) are too few" in (
        threshold_choice(has[:2], -4.0).reason
    )


def test_the_tiny_reader_from_a_bare_encoder_kept_the_span_heads_own_rule(
    tiny_reader: Path,
) -> None:
    """conftest's run holds out 40 questions, 11 unanswerable: too few, so the bare encoder's
    0.0 (answer when the best span outscores "no answer") serves."""
    meta = json.loads((tiny_reader / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    assert meta["threshold_choice"]["chosen_on_heldout"] is False
    assert meta["heldout"]["threshold"] == 0.0
    assert ReaderConfig.load(tiny_reader).no_answer_threshold == 0.0


@pytest.fixture(scope="module")
def start_reader(tiny_reader: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny reader with a tuned-looking threshold and ranking setting of its own."""
    folder = tmp_path_factory.mktemp("start") / "reader"
    shutil.copytree(tiny_reader, folder)
    config = ReaderConfig.load(folder)
    ranking = config.ranking.with_weight(0.7)
    dataclasses.replace(config, no_answer_threshold=START_THRESHOLD, ranking=ranking).save(folder)
    return folder


def heldout_file(folder: Path, answerable: int, unanswerable: int) -> Path:
    has, no = by_kind(DEMO_DEV)
    path = folder / f"held-{answerable}-{unanswerable}.json"
    write_squad(has[:answerable] + no[:unanswerable], path)
    return path


def small_run(base: Path, held: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        train_files=[str(DEMO_TRAIN)],
        base_model=str(base),
        output_dir=str(out),
        holdout_files=[str(held)],
        learning_rate=3e-4,
        epochs=1,
        batch_size=8,
        max_seq_length=128,
        doc_stride=64,
        max_negative_windows=1,
        max_train_examples=16,
        seed=5,
        precision="fp32",
    )


@pytest.mark.parametrize(("answerable", "unanswerable"), [(8, 0), (12, 5)])
def test_a_small_run_keeps_the_starting_readers_threshold(
    start_reader: Path, tmp_path: Path, answerable: int, unanswerable: int
) -> None:
    """One-sided (issue 28: all answerable) or both kinds but few: the starting threshold
    serves, and the held-out F1 the run reports is the F1 at that threshold."""
    held = heldout_file(tmp_path, answerable, unanswerable)
    result = train_reader(small_run(start_reader, held, tmp_path / "mine"), progress=False)
    saved = ReaderConfig.load(result.model_dir)
    assert saved.no_answer_threshold == START_THRESHOLD
    assert saved.ranking.retriever_weight == 0.7  # the tuned ranking settings carry over too
    metrics = result.metrics
    assert metrics["threshold_choice"]["chosen_on_heldout"] is False
    assert metrics["threshold_choice"]["starting_reader_threshold"] == START_THRESHOLD
    assert (
        f"{answerable + unanswerable} held-out questions" in metrics["threshold_choice"]["reason"]
    )
    heldout = metrics["heldout"]
    assert heldout["threshold"] == START_THRESHOLD
    assert heldout["best_threshold"] != START_THRESHOLD  # what choosing would have served
    served, _ = evaluate_reader(
        result.model_dir, result.heldout, cpu_precision="fp32", progress=False
    )
    assert heldout["f1"] == pytest.approx(served["f1"], abs=1e-6)
    assert served["threshold"] == START_THRESHOLD
    card = (result.model_dir / "README.md").read_text(encoding="utf-8")
    assert f"No-answer threshold: {START_THRESHOLD:.3f} (kept from the starting reader: " in card


def test_a_run_with_enough_of_both_kinds_chooses_its_threshold(
    start_reader: Path, tmp_path: Path
) -> None:
    n = MIN_THRESHOLD_QUESTIONS
    held = heldout_file(tmp_path, n, n)
    result = train_reader(small_run(start_reader, held, tmp_path / "mine"), progress=False)
    heldout = result.metrics["heldout"]
    assert result.metrics["threshold_choice"]["chosen_on_heldout"] is True
    assert heldout["threshold"] == heldout["best_threshold"] != START_THRESHOLD
    assert heldout["f1"] == pytest.approx(heldout["best_f1"])
    assert ReaderConfig.load(result.model_dir).no_answer_threshold == heldout["threshold"]


# -- the gates compare readers at the thresholds they serve with ---------------------------------


@pytest.fixture
def same_weights(tiny_reader: Path, tmp_path: Path) -> Settings:
    """The tiny reader serving, and a version with its weights that answers every question."""
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(tiny_reader, settings.models_dir / "tiny")
    shutil.copytree(tiny_reader, settings.models_dir / "answers-all")
    config = ReaderConfig.load(tiny_reader)
    dataclasses.replace(config, no_answer_threshold=1000.0).save(
        settings.models_dir / "answers-all"
    )
    set_serving(settings, "tiny")
    return settings


def ten_dev_pairs(folder: Path) -> Path:
    has, no = by_kind(DEMO_DEV)
    path = folder / "ten.json"
    write_squad(has[:6] + no[:4], path)
    return path


def test_promotion_compares_at_the_thresholds_the_readers_serve_with(
    same_weights: Settings, tmp_path: Path
) -> None:
    """Same weights, so the same F1 at the best threshold: a gate on that would promote it."""
    eval_file = ten_dev_pairs(tmp_path)
    examples, _ = load_squad(eval_file)
    models = same_weights.models_dir
    serving = evaluate_reader(models / "tiny", examples, progress=False)[0]
    candidate = evaluate_reader(models / "answers-all", examples, progress=False)[0]
    assert candidate["best_f1"] == pytest.approx(serving["best_f1"])
    assert candidate["f1"] < serving["f1"]
    with pytest.raises(PromotionError, match="is lower than the serving reader's"):
        promote_model(same_weights, "answers-all", eval_file)


def test_the_retraining_gate_compares_at_the_thresholds_the_readers_serve_with(
    same_weights: Settings, tmp_path: Path
) -> None:
    eval_file = ten_dev_pairs(tmp_path)
    examples, _ = load_squad(eval_file)
    models = same_weights.models_dir
    verdict = gate(str(models / "tiny"), models / "answers-all", examples, eval_file)
    assert verdict["heldout_f1_after"] < verdict["heldout_f1_before"]
    assert verdict["recommend_promotion"] is False


def test_a_users_three_articles_hold_out_one_and_keep_the_starting_threshold(
    start_reader: Path, tmp_path: Path
) -> None:
    """A user's pairs from a few documents (the first 40 demo train pairs, of three FAQ
    articles), split as ``docqa train`` splits them by default: one article is held out, 16
    questions of both kinds but too few, so the starting reader's threshold serves. (Whether
    such a run keeps the shipped reader's F1 is measured over seeds by
    ``benchmarks/bench_training_dropout.py --pairs three-articles``.)"""
    train, _ = load_squad(DEMO_TRAIN)
    new = tmp_path / "new.json"
    write_squad(train[:40], new)
    config = dataclasses.replace(
        small_run(start_reader, new, tmp_path / "mine"),
        train_files=[str(new)],
        holdout_files=[],
        max_train_examples=None,
        seed=TrainConfig.seed,  # the default split, as the user's run gets it
    )
    result = train_reader(config, progress=False)
    metrics = result.metrics
    assert metrics["heldout_questions"] == 16
    assert sum(1 for ex in result.heldout if not ex.answers) == 4
    assert len({ex.title for ex in result.heldout}) == 1  # one whole article
    assert metrics["threshold_choice"]["reason"] == (
        "kept from the starting reader: the 16 held-out questions (12 answerable, "
        f"4 unanswerable) are too few to choose one (at least {MIN_THRESHOLD_QUESTIONS} of each "
        "kind)"
    )
    assert ReaderConfig.load(result.model_dir).no_answer_threshold == START_THRESHOLD
    assert metrics["heldout"]["threshold"] == START_THRESHOLD


# -- issue 28's run: the shipped reader, 40 demo pairs, `docqa train` with defaults --------------

ISSUE_PAIRS = 60  # "on the 60 others it scores ... overall 49.3 against the serving reader's 80.3"
ONE_QUESTION = 100 / ISSUE_PAIRS  # the F1 one of the 60 questions moves


@pytest.mark.slow
@pytest.mark.first(minutes=5)
@pytest.mark.usefixtures("every_core")
def test_retraining_on_40_pairs_keeps_the_serving_readers_f1(tmp_path: Path) -> None:
    """Issue 28's run: ``docqa train new.json --name mine`` with defaults on a seeded sample of
    40 demo train pairs continues the serving (shipped) reader, replaying the pairs it learned,
    and keeps F1 at the served thresholds within a point of the serving reader's on the 190 demo
    dev pairs (what ``docqa promote`` compares on; the run never saw their articles).

    On the issue's 60 of them (which resolve F1 to 1.7 points a question) it stays within a
    point and one question: over five seeds and both dropout masks this run scored 78.65-81.58
    there against the shipped reader's 80.33, and 73.93-77.08 on all 190 against 74.46
    (``bench_training_dropout.py``, AMD EPYC Zen 4); the issue's run scored 49.3."""
    from docqa.cli import app

    train, _ = load_squad(DEMO_TRAIN)
    dev, _ = load_squad(DEMO_DEV)
    new = tmp_path / "new.json"
    write_squad(random.Random(0).sample(train, 40), new)
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app, ["train", str(new), "--name", "mine", "--home", str(home)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert f"continuing from the reader {SHIPPED_READER} (loaded in fp32)" in result.stdout
    assert "replaying up to 3 pairs per new pair from " in result.stdout
    shipped = ReaderConfig.load(SHIPPED_READER)
    threshold = shipped.no_answer_threshold
    assert f"no-answer threshold {threshold:.3f}: kept from the starting reader: " in result.stdout
    mine = Settings(home=home).models_dir / "mine"
    tuned = ReaderConfig.load(mine)
    assert tuned.no_answer_threshold == threshold
    assert tuned.ranking == shipped.ranking  # the tuned ranking settings carry over too
    card = json.loads((mine / "metrics.json").read_text(encoding="utf-8"))
    assert card["config"]["base_model"] == str(SHIPPED_READER)
    assert card["metrics"]["train_examples"] > 40  # the new pairs and the replayed ones

    before, served_before = evaluate_reader(SHIPPED_READER, dev, progress=False)
    after, served_after = evaluate_reader(mine, dev, progress=False)
    assert after["f1"] >= before["f1"] - 1.0, (before, after)
    # The reader keeps what it knew (v0.2 trained from the bare encoder on 50 pairs fell to
    # F1 20.6, HasAns 0.7), at the best threshold and in its best spans too.
    assert after["best_f1"] >= before["best_f1"] - 2.0, (before, after)
    assert after["HasAns_f1_best_span"] >= before["HasAns_f1_best_span"] - 3.0, (before, after)
    others = random.Random(0).sample(dev, ISSUE_PAIRS)
    before_60 = squad_metrics(others, served_before)["f1"]
    after_60 = squad_metrics(others, served_after)["f1"]
    assert after_60 >= before_60 - 1.0 - ONE_QUESTION, (before_60, after_60)
