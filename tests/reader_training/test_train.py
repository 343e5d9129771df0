"""Fine-tuning the tiny BERT: the loss falls, the model folder is complete and atomic, resume
works, and held-out articles never overlap training ones."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    TrainerCallback,
    set_seed,
)

from evaluation.squad import SquadExample, load_squad, write_squad
from pipelines.reader import READER_CONFIG_FILE, ReaderConfig, SpanPredictor
from pipelines.reader_registry import is_model_folder
from pipelines.settings import REPO_ROOT
from reader_training.features import FeatureParams, prepare_train_features
from reader_training.train import (
    TrainConfig,
    resolve_precision,
    split_holdout,
    train_reader,
    write_model_folder,
)

SHARED = REPO_ROOT.parent / "shared" / "data"
DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"


def work_dir(model_dir: Path) -> Path:
    return model_dir.parent / f".{model_dir.name}.work"


def log_records(model_dir: Path) -> list[dict[str, Any]]:
    path = work_dir(model_dir) / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- the session's tiny reader (trained once in conftest) ---------------------------------------


def test_training_writes_a_complete_loadable_model_folder(tiny_reader: Path) -> None:
    assert is_model_folder(tiny_reader)
    names = {p.name for p in tiny_reader.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        READER_CONFIG_FILE,
        "metrics.json",
        "README.md",
    } <= names
    assert names & {"tokenizer.json", "vocab.txt"}
    reader_config = json.loads((tiny_reader / READER_CONFIG_FILE).read_text(encoding="utf-8"))
    assert math.isfinite(reader_config["no_answer_threshold"])
    assert (reader_config["max_seq_length"], reader_config["doc_stride"]) == (192, 64)

    meta = json.loads((tiny_reader / "metrics.json").read_text(encoding="utf-8"))
    assert meta["created"] and meta["config"]["seed"] == 1
    held = meta["metrics"]["heldout"]
    assert 0.0 <= held["f1"] <= 100.0 and held["total"] == meta["metrics"]["heldout_questions"]
    assert held["threshold"] == pytest.approx(reader_config["no_answer_threshold"])
    assert meta["metrics"]["train_examples"] == 120
    assert meta["metrics"]["validation"]["kept"] > 120

    card = (tiny_reader / "README.md").read_text(encoding="utf-8")
    assert card.startswith("# DocQA reader: tiny\n")
    assert "| overall |" in card and "No-answer threshold:" in card
    assert "Base model:" in card and "train.json" in card

    # Nothing else was left beside it; checkpoints are gone, the log stays.
    leftovers = [
        p.name for p in tiny_reader.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name
    ]
    assert leftovers == []
    assert not (work_dir(tiny_reader) / "checkpoints").exists()

    predictor = SpanPredictor(tiny_reader)
    context = "The guest network is called Lumen-Guest. Its password changes every day."
    cands = predictor.predict(["What is the guest network called?"], [context])[0]
    assert cands and all(0 <= c.start_char < c.end_char <= len(context) for c in cands)


def test_training_lowered_the_loss(tiny_reader: Path, tiny_base: str) -> None:
    losses = [r["loss"] for r in log_records(tiny_reader) if "loss" in r]
    assert len(losses) >= 3
    assert losses[-1] < losses[0]
    evals = [r for r in log_records(tiny_reader) if "eval_f1" in r]
    assert evals and all(0.0 <= r["eval_f1"] <= 100.0 for r in evals)

    # The same windows, before (the seeded fresh head the run started from) and after.
    examples = [ex for ex in load_squad(DEMO_TRAIN)[0] if ex.answers][:24]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    features = prepare_train_features(examples, tokenizer, FeatureParams(192, 64, 1))
    set_seed(1)
    before = AutoModelForQuestionAnswering.from_pretrained(tiny_base)
    after = AutoModelForQuestionAnswering.from_pretrained(tiny_reader)
    with torch.inference_mode():
        loss_before = before.eval()(**features).loss.item()
        loss_after = after.eval()(**features).loss.item()
    assert loss_after < loss_before - 0.3, (loss_before, loss_after)


# -- resume from a checkpoint -------------------------------------------------------------------


class _Interrupted(Exception):
    pass


class _StopAtFirstCheckpoint(TrainerCallback):
    """Simulates a run killed right after its first checkpoint was written."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        raise _Interrupted(f"stopped at step {state.global_step}")


@pytest.fixture(scope="module")
def small_squad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four SQuAD v1.1 articles, eight questions each, with short paragraphs (fast to train)."""
    examples, _ = load_squad(SHARED / "squad" / "dev-v1.1.json")
    by_title: dict[str, list[SquadExample]] = defaultdict(list)
    for ex in examples:
        if len(by_title) < 4 or ex.title in by_title:
            by_title[ex.title].append(ex)
    chosen = [ex for exs in by_title.values() for ex in exs[:8]]
    path = tmp_path_factory.mktemp("squad") / "small.json"
    write_squad(chosen, path)
    return path


def small_config(train_file: Path, tiny_base: str, out: Path, **changes: Any) -> TrainConfig:
    config = TrainConfig(
        train_files=[str(train_file)],
        base_model=tiny_base,
        output_dir=str(out),
        learning_rate=3e-4,
        epochs=1,
        batch_size=4,
        max_seq_length=128,
        doc_stride=48,
        max_negative_windows=1,
        holdout_fraction=0.25,
        max_holdout_questions=3,
        seed=3,
        eval_steps=2,
        early_stopping_patience=10,
        precision="fp32",
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_resume_continues_from_the_checkpoint(
    small_squad: Path, tiny_base: str, tmp_path: Path
) -> None:
    out = tmp_path / "models" / "resumed"
    with pytest.raises(_Interrupted, match="stopped at step 2"):
        train_reader(
            small_config(small_squad, tiny_base, out),
            progress=False,
            callbacks=[_StopAtFirstCheckpoint()],
        )
    assert [p.name for p in (work_dir(out) / "checkpoints").iterdir()] == ["checkpoint-2"]
    assert not out.exists()  # an interrupted run leaves no model folder
    interrupted_steps = [r["step"] for r in log_records(out)]
    assert interrupted_steps and max(interrupted_steps) == 2

    result = train_reader(small_config(small_squad, tiny_base, out, resume=True), progress=False)
    assert result.model_dir == out and is_model_folder(out)
    records = log_records(out)
    resumed = records[len(interrupted_steps) :]
    assert resumed and min(r["step"] for r in resumed) > 2  # continued, not restarted
    final_step = resumed[-1]["step"]
    assert "train_runtime" in resumed[-1] and final_step > 2
    assert not (work_dir(out) / "checkpoints").exists()

    # An uninterrupted run of the same config ends with the same weights.
    reference = tmp_path / "models" / "reference"
    train_reader(small_config(small_squad, tiny_base, reference), progress=False)
    assert log_records(reference)[-1]["step"] == final_step
    resumed_weights = load_file(out / "model.safetensors")
    reference_weights = load_file(reference / "model.safetensors")
    assert resumed_weights.keys() == reference_weights.keys()
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-4, atol=1e-5)


def test_a_fresh_run_ignores_stale_checkpoints(
    small_squad: Path, tiny_base: str, tmp_path: Path
) -> None:
    out = tmp_path / "models" / "fresh"
    stale = work_dir(out) / "checkpoints" / "checkpoint-999"
    stale.mkdir(parents=True)
    (work_dir(out) / "train_log.jsonl").write_text('{"step": 999, "loss": 1.0}\n', encoding="utf-8")
    with pytest.raises(_Interrupted):
        train_reader(
            small_config(small_squad, tiny_base, out),
            progress=False,
            callbacks=[_StopAtFirstCheckpoint()],
        )
    assert not stale.exists()
    assert max(r["step"] for r in log_records(out)) == 2


def test_unusable_training_data_is_refused(tmp_path: Path, tiny_base: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "Some text.",
                                "qas": [{"id": "1", "question": "Q?", "answers": []}],
                            }
                        ],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"no usable training questions in .*bad\.json"):
        train_reader(small_config(bad, tiny_base, tmp_path / "models" / "x"), progress=False)
    assert not (tmp_path / "models" / "x").exists()


# -- atomic model folder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tiny_reader: Path) -> tuple[Any, Any]:
    return (
        AutoModelForQuestionAnswering.from_pretrained(tiny_reader),
        AutoTokenizer.from_pretrained(tiny_reader),
    )


def folder_config(out: Path, tiny_base: str) -> TrainConfig:
    return TrainConfig(train_files=["train.json"], base_model=tiny_base, output_dir=str(out))


METRICS = {"heldout": {"exact": 50.0, "f1": 60.0, "total": 4, "threshold": -0.5}}


def test_model_folder_replaces_an_old_one_only_when_complete(
    loaded: tuple[Any, Any], tiny_base: str, tmp_path: Path
) -> None:
    model, tokenizer = loaded
    out = tmp_path / "models" / "v1"
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}", encoding="utf-8")
    (out / "stale-file.txt").write_text("from the old version", encoding="utf-8")

    write_model_folder(
        model,
        tokenizer,
        ReaderConfig(no_answer_threshold=-0.5),
        out,
        folder_config(out, tiny_base),
        METRICS,
    )
    assert is_model_folder(out)
    assert not (out / "stale-file.txt").exists()
    assert ReaderConfig.load(out).no_answer_threshold == -0.5
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["metrics"] == METRICS
    assert sorted(p.name for p in out.parent.iterdir()) == ["v1"]  # no .tmp- / .old- leftovers
    SpanPredictor(out)  # loads


def test_failed_model_folder_write_keeps_the_old_folder(
    loaded: tuple[Any, Any], tiny_base: str, tmp_path: Path
) -> None:
    model, tokenizer = loaded
    out = tmp_path / "models" / "v1"
    write_model_folder(
        model, tokenizer, ReaderConfig(), out, folder_config(out, tiny_base), METRICS
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = {"heldout": {"f1": 1.0}, "not-json": object()}  # fails after weights are written
    with pytest.raises(TypeError):
        write_model_folder(
            model,
            tokenizer,
            ReaderConfig(no_answer_threshold=3.0),
            out,
            folder_config(out, tiny_base),
            broken,
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["v1"]


# -- held-out split -----------------------------------------------------------------------------


def test_split_holdout_never_shares_a_title() -> None:
    examples, _ = load_squad(DEMO_TRAIN)
    titles = {ex.title for ex in examples}
    for fraction in (0.0, 0.05, 0.2, 0.5):
        for seed in (1, 2, 42):
            train, held = split_holdout(examples, fraction, seed)
            assert held and train
            assert not {ex.title for ex in train} & {ex.title for ex in held}
            assert len(train) + len(held) == len(examples)
            assert {ex.title for ex in train} | {ex.title for ex in held} == titles
            assert split_holdout(examples, fraction, seed) == (train, held)  # deterministic
    _, held = split_holdout(examples, 0.5, 1)
    assert 0.25 * len(titles) < len({ex.title for ex in held}) < 0.75 * len(titles)


def test_split_holdout_of_a_single_article_holds_out_questions() -> None:
    examples = [ex for ex in load_squad(DEMO_TRAIN)[0] if ex.title == "faq/hr-faq.html"]
    train, held = split_holdout(examples, 0.3, 7)
    assert train and held and len(train) + len(held) == len(examples)
    assert not {ex.id for ex in train} & {ex.id for ex in held}


def test_resolve_precision() -> None:
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in {"fp32", "bf16", "fp16"}
    if not torch.cuda.is_available():
        from pipelines.reader import cpu_supports_bf16

        assert resolve_precision("auto") == ("bf16" if cpu_supports_bf16() else "fp32")


def test_a_half_precision_reader_is_fine_tuned_in_fp32(tiny_reader: Path, tmp_path: Path) -> None:
    """The shipped reader is stored in fp16; training from it must run (and save) in fp32."""
    import shutil

    from transformers import AutoModelForQuestionAnswering

    half = tmp_path / "half"
    shutil.copytree(tiny_reader, half)
    AutoModelForQuestionAnswering.from_pretrained(half, dtype=torch.float16).save_pretrained(half)
    assert all(v.dtype == torch.float16 for v in load_file(half / "model.safetensors").values())
    config = TrainConfig(
        train_files=[str(DEMO_TRAIN)],
        base_model=str(half),
        output_dir=str(tmp_path / "tuned"),
        epochs=1,
        batch_size=8,
        max_seq_length=128,
        doc_stride=64,
        max_train_examples=16,
        holdout_fraction=0.15,
        max_holdout_questions=8,
        precision="fp32",
    )
    result = train_reader(config, progress=False)
    weights = load_file(result.model_dir / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in weights.values())
    assert math.isfinite(result.metrics["training_loss"])
