"""The settings of one training run (``docqa train`` derives its options and defaults from
these fields), kept apart from the training code so the command line can read them without
loading torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Everything one training run needs; saved in the model card and ``metrics.json``."""

    train_files: list[str]
    base_model: str
    output_dir: str
    learning_rate: float = 5e-5
    epochs: float = 2.0
    batch_size: int = 32
    gradient_accumulation: int = 1
    warmup: float = 0.1  # fraction of steps
    weight_decay: float = 0.01
    max_seq_length: int = 256
    doc_stride: int = 128
    max_negative_windows: int = 2
    seed: int = 42
    synthetic_negatives: float = 0.0  # unanswerables made per answerable example
    holdout_fraction: float = 0.05  # share of articles held out for early stopping/threshold
    holdout_files: list[str] = field(default_factory=list)  # explicit held-out files instead
    # K >= 2: the no-answer threshold is chosen on K-fold out-of-fold predictions (K models
    # trained on the other folds) and the reader trains on every pair; for a few dozen labeled
    # pairs, where a held-out split leaves a handful to choose it on (few_pair_folds).
    threshold_folds: int = 0
    max_holdout_questions: int = 1500
    replay_files: list[str] = field(default_factory=list)
    replay_ratio: float = 0.0  # replayed base examples per new example
    max_train_examples: int | None = None
    lora: bool = False
    lora_rank: int = 16
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    eval_steps: int | None = None  # None: once per epoch
    early_stopping_patience: int = 3
    save_steps: int = 500
    resume: bool = False
    save_fp16: bool = False
    description: str = ""
    extra_card: dict[str, Any] = field(default_factory=dict)


# Fewer labeled pairs than this: a run without a held-out file cross-fits its threshold.
CROSS_FIT_BELOW = 200


def few_pair_folds(pairs: int, holdout_files: list[str] | None = None) -> int:
    """The ``threshold_folds`` a run of ``pairs`` labeled pairs should use: 2 below
    ``CROSS_FIT_BELOW`` pairs without a held-out file, else 0 (a held-out split is big enough).

    Why: with 50 pairs a 20% split chooses the threshold on about ten, and it moved demo dev F1
    by up to 10 points between two random draws of 50 (README, the learning loop)."""
    return 2 if 2 <= pairs < CROSS_FIT_BELOW and not holdout_files else 0
