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
