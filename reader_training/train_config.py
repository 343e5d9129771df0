"""The settings of one training run, kept apart from the training code so the command line can
read them without loading torch.

``docqa train`` derives its options from these fields (each field's ``metadata``: the option's
name where it is not ``--field-name``, and its help; ``command_line=False`` for the fields the
command fills in itself), and a config checks itself when it is made
(:class:`TrainConfigError` names the field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class TrainConfigError(ValueError):
    """A training setting out of its range: ``field`` names it, ``problem`` says what is
    wrong (the command line shows it as ``--option problem``)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name} {problem}")
        self.field = field_name
        self.problem = problem


def _cli(help: str, option: str | None = None) -> dict[str, Any]:
    """A field's metadata for ``docqa train``: its help, and its option where it is not
    ``--field-name``."""
    return {"help": help, **({"option": option} if option else {})}


# The fields ``docqa train`` fills in itself (from its arguments, --name and the starting point).
_BY_COMMAND = {"command_line": False}


@dataclass
class TrainConfig:
    """Everything one training run needs; saved in the model card and ``metrics.json``."""

    train_files: list[str] = field(metadata=_BY_COMMAND)
    base_model: str = field(metadata=_BY_COMMAND)
    output_dir: str = field(metadata=_BY_COMMAND)
    learning_rate: float = field(default=5e-5, metadata=_cli("Peak learning rate.", "--lr"))
    epochs: float = field(default=2.0, metadata=_cli("Passes over the training pairs."))
    batch_size: int = field(
        default=32, metadata=_cli("Windows per optimizer step (before accumulation).")
    )
    gradient_accumulation: int = field(
        default=1, metadata=_cli("Batches accumulated per optimizer step.")
    )
    warmup: float = field(default=0.1, metadata=_cli("Warm-up as a fraction of the steps."))
    weight_decay: float = field(default=0.01, metadata=_cli("AdamW weight decay."))
    max_seq_length: int = field(default=256, metadata=_cli("Tokens per question-passage window."))
    doc_stride: int = field(
        default=128, metadata=_cli("Overlap of consecutive windows of one context, in tokens.")
    )
    max_negative_windows: int = field(
        default=2, metadata=_cli("Windows without the answer kept per example.")
    )
    seed: int = field(
        default=42, metadata=_cli("Random seed (data order, held-out split, initialization).")
    )
    synthetic_negatives: float = field(
        default=0.0,
        metadata=_cli("Synthetic unanswerables made per answerable example.", "--negatives"),
    )
    holdout_fraction: float = field(
        default=0.05,
        metadata=_cli("Share of articles held out for early stopping and the no-answer threshold."),
    )
    holdout_files: list[str] = field(
        default_factory=list,
        metadata=_cli("Held-out SQuAD file(s) instead of a share of the articles.", "--holdout"),
    )
    max_holdout_questions: int = field(
        default=1500, metadata=_cli("At most this many held-out questions.")
    )
    replay_files: list[str] = field(default_factory=list, metadata=_BY_COMMAND)
    replay_ratio: float = field(default=0.0, metadata=_BY_COMMAND)  # per new example
    max_train_examples: int | None = field(
        default=None, metadata=_cli("Train on at most this many examples.")
    )
    lora: bool = field(
        default=False, metadata=_cli("Train a LoRA adapter (merged into the weights on save).")
    )
    lora_rank: int = field(default=16, metadata=_cli("Rank of the LoRA adapter."))
    precision: str = field(
        default="auto", metadata=_cli(f"Training precision: {', '.join(PRECISIONS)}.")
    )
    cpu_dropout: bool = field(
        default=True,
        metadata=_cli(
            "On a CPU, draw dropout masks four to a random draw (reader_training.dropout): "
            "steps about 1.5x faster than with torch's masks (--torch-dropout), which differ, so "
            "results differ as with another seed.",
            "--cpu-dropout/--torch-dropout",
        ),
    )
    eval_steps: int | None = field(
        default=None, metadata=_cli("Evaluate every N steps (default: once an epoch).")
    )
    early_stopping_patience: int = field(
        default=3, metadata=_cli("Stop after N evaluations without a better F1.")
    )
    save_steps: int = field(default=500, metadata=_cli("Checkpoint every N steps."))
    resume: bool = field(
        default=False, metadata=_cli("Continue from the last checkpoint of the same --name.")
    )
    save_fp16: bool = field(
        default=False, metadata=_cli("Store the weights in fp16 (half the size).")
    )
    description: str = field(default="", metadata=_cli("A line for the model card."))
    extra_card: dict[str, Any] = field(default_factory=dict, metadata=_BY_COMMAND)

    def __post_init__(self) -> None:
        positive = ("learning_rate", "epochs", "batch_size", "gradient_accumulation")
        for name in (*positive, "max_holdout_questions", "save_steps", "lora_rank"):
            if getattr(self, name) <= 0:
                raise TrainConfigError(name, f"must be above 0, not {getattr(self, name)}")
        for name in ("weight_decay", "synthetic_negatives", "max_negative_windows"):
            if getattr(self, name) < 0:
                raise TrainConfigError(name, f"must be 0 or more, not {getattr(self, name)}")
        if not 0 <= self.warmup < 1:
            raise TrainConfigError("warmup", f"must be a fraction in [0, 1), not {self.warmup}")
        if not 0 < self.holdout_fraction < 1:
            raise TrainConfigError(
                "holdout_fraction", f"must be a fraction in (0, 1), not {self.holdout_fraction}"
            )
        if not 32 <= self.max_seq_length <= 512:
            raise TrainConfigError(
                "max_seq_length", f"must be 32 to 512 tokens, not {self.max_seq_length}"
            )
        if not 0 < self.doc_stride < self.max_seq_length:
            raise TrainConfigError(
                "doc_stride",
                f"must be above 0 and below max_seq_length ({self.max_seq_length}), "
                f"not {self.doc_stride}",
            )
        if self.precision not in PRECISIONS:
            raise TrainConfigError(
                "precision", f"must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"
            )
        for name in ("eval_steps", "max_train_examples", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TrainConfigError(name, f"must be above 0, not {value}")
