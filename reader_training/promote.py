"""Promotion: a new reader serves only if it is not worse than the serving one.

Both readers are scored on the same evaluation file (by default the demo collection's dev pairs)
with the official SQuAD v2.0 F1, each at the no-answer threshold it serves with (saved beside its
weights), never at one chosen on the evaluation pairs: that is the F1 users would get. A lower F1
is refused unless forced.
"""

from __future__ import annotations

import logging
from pathlib import Path

from evaluation.reader_metrics import evaluate_reader
from evaluation.squad import load_squad
from pipelines.reader_registry import (
    is_model_folder,
    model_path,
    resolve_reader_or_none,
    set_serving,
)
from pipelines.settings import DEMO_LABELS, Settings

logger = logging.getLogger(__name__)

DEFAULT_EVAL_FILE = DEMO_LABELS / "dev.json"
# Best-span HasAns F1 points a new reader may lose on the fixed SQuAD sample (forgetting) and
# still be recommended or promoted (the page's retrain jobs and the campaign's domain gate).
MAX_FORGETTING = 1.0


class PromotionError(RuntimeError):
    pass


def promote_model(
    settings: Settings, name: str, eval_file: Path | None = None, force: bool = False
) -> str:
    """Serve ``name``; returns a one-line account of the comparison."""
    candidate = model_path(settings, name)
    if not is_model_folder(candidate):
        raise PromotionError(f"{name}: no complete model folder at {candidate}")
    serving = resolve_reader_or_none(settings)
    if serving is None or Path(serving) == candidate or force:
        set_serving(settings, name)
        return f"{name} now serves" + (" (forced)" if force and serving else "")
    eval_file = eval_file or DEFAULT_EVAL_FILE
    examples, _ = load_squad(eval_file)
    new_f1 = evaluate_reader(candidate, examples, progress=False)[0]["f1"]
    old_f1 = evaluate_reader(serving, examples, progress=False)[0]["f1"]
    if new_f1 < old_f1:
        raise PromotionError(
            f"{name}: F1 {new_f1:.2f} on {eval_file.name} is lower than the serving reader's "
            f"{old_f1:.2f} ({serving}); not promoted (use --force to serve it anyway)"
        )
    set_serving(settings, name)
    return f"{name} now serves: F1 {new_f1:.2f} on {eval_file.name} (was {old_f1:.2f})"
