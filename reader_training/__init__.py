"""Reader training: load and repair SQuAD files, tokenize, fine-tune, evaluate, promote.

Public surface: :func:`load_squad`, :func:`train_reader` with :class:`TrainConfig`,
:func:`evaluate_reader`, :func:`promote_model`, and the default recipe (:func:`run_recipe`).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SquadExample": "reader_training.squad",
    "SquadFormatError": "reader_training.squad",
    "load_squad": "reader_training.squad",
    "load_many": "reader_training.squad",
    "write_squad": "reader_training.squad",
    "TrainConfig": "reader_training.train",
    "train_reader": "reader_training.train",
    "evaluate_reader": "reader_training.evaluate",
    "squad_metrics": "reader_training.evaluate",
    "promote_model": "reader_training.promote",
    "PromotionError": "reader_training.promote",
    "run_recipe": "reader_training.recipes",
    "evaluate_end_to_end": "reader_training.end_to_end",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reader_training' has no attribute {name!r}")
