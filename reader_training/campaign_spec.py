"""What a reader campaign is (:class:`CampaignSpec`, the schedule fixed when it starts) and where
it stands (:class:`CampaignState`, its ``campaign.json``), apart from the training code
(:mod:`reader_training.campaign`) and the data it lays out (:mod:`reader_training.campaign_data`),
which both read them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from evaluation.squad import write_json_atomic
from reader_training.hard_negatives import DEFAULT_MIX

STATE_FILE = "campaign.json"
# Written into a shipped reader's folder: where in the schedule its base weights stand.
POSITION_FILE = "campaign_position.json"


@dataclass(frozen=True)
class CampaignSpec:
    """The schedule; fixed when a campaign starts and stored in its ``campaign.json``."""

    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup: float = 0.05  # share of the whole schedule
    weight_decay: float = 0.01
    max_seq_length: int = 256
    doc_stride: int = 128
    max_negative_windows: int = 1  # answerless windows kept per answerable question
    unanswerable_share: float = 1 / 3  # of each epoch's windows
    negative_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    holdout_fraction: float = 0.04
    max_holdout_questions: int = 800
    # Frozen: the A/B (benchmarks/bench_campaign_ab.py, 10k windows, same seed) showed no loss
    # (held-out F1 49.16 vs 48.78 trained) and it saves their gradients and optimizer state.
    freeze_word_embeddings: bool = True
    # The last epochs train with shared normalization (reader_training.shared_norm): each
    # question's window grouped with this many retrieved windows that lack the answer.
    shared_norm_epochs: int = 1
    shared_norm_distractors: int = 1
    seed: int = 42
    eval_steps: int = 500
    save_steps: int = 150


def cooldown_spec(parent: CampaignSpec) -> CampaignSpec:
    """The spec of a cool-down phase after ``parent``'s finished schedule.

    One more epoch from its final reader at a fifth of its peak learning rate, decaying to zero
    without a warm-up (the optimizer starts fresh, so a high rate would undo the decayed end of
    the schedule), with shared normalization throughout: the serving-time objective (one
    no-answer per question across its passages) for a whole epoch instead of the last one only.
    Pool, held-out articles, held-out unanswerables and seed stay the parent's, so the phase's
    held-out F1 compares with the parent's chunks.
    """
    return replace(
        parent,
        epochs=1.0,
        learning_rate=parent.learning_rate / 5,
        warmup=0.0,
        shared_norm_epochs=1,
    )


@dataclass
class CampaignState:
    spec: CampaignSpec
    epoch_windows: int
    total_steps: int
    base_step: int = 0  # a warm start begins the schedule here
    step: int = 0  # schedule steps done
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def position(self) -> dict[str, Any]:
        """What a shipped reader records so that a new machine can warm-start from it."""
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch_windows": self.epoch_windows,
            "windows_seen": self.step * self.spec.batch_size,
            "epochs_done": round(self.step * self.spec.batch_size / self.epoch_windows, 3),
            "spec": asdict(self.spec),
        }

    def summary(self) -> str:
        """One line on where the schedule stands and how the last chunk went."""
        chunk = self.chunks[-1] if self.chunks else {}
        f1 = chunk.get("heldout", {}).get("f1", float("nan"))
        return (
            f"step {self.step} of {self.total_steps} ({self.step * self.spec.batch_size} "
            f"windows); held-out F1 {f1:.2f}; {chunk.get('windows_per_second', 0)} windows/s "
            f"on {chunk.get('cpu', '?')}"
        )

    def save(self, folder: Path) -> None:
        data = {
            "spec": asdict(self.spec),
            "epoch_windows": self.epoch_windows,
            "total_steps": self.total_steps,
            "base_step": self.base_step,
            "step": self.step,
            "chunks": self.chunks,
        }
        write_json_atomic(data, folder / STATE_FILE)

    @classmethod
    def load(cls, folder: Path) -> CampaignState:
        data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        return cls(
            spec=CampaignSpec(**data["spec"]),
            epoch_windows=data["epoch_windows"],
            total_steps=data["total_steps"],
            base_step=data.get("base_step", 0),
            step=data.get("step", 0),
            chunks=data.get("chunks", []),
        )


def parse_budget(text: str) -> float:
    """Seconds in "150m", "2h", "2h30m", "90s" or a plain number of minutes."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty budget")
    try:
        return float(text) * 60
    except ValueError:
        pass
    seconds, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            seconds += float(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"budget {text!r}: use e.g. 150m, 2h, 2h30m or 90s")
    if number:
        raise ValueError(f"budget {text!r}: a number without a unit (h, m or s)")
    return seconds
