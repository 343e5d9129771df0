"""Reader training: fine-tune, the reader campaign with its gate, and promotion.

Public surface: :func:`train_reader` with :class:`TrainConfig`; the campaign
(:func:`run_chunk`, :func:`finish_chunk`), :func:`hard_negatives`, :func:`promote_model`;
retraining from the page in the background (:func:`start_retrain`, :func:`current_job`).
SQuAD files and evaluation live in :mod:`evaluation`; this package imports only ``pipelines``
and ``evaluation``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "reader_training.train",
    "train_reader": "reader_training.train",
    "run_chunk": "reader_training.campaign",
    "CampaignSpec": "reader_training.campaign",
    "finish_chunk": "reader_training.chunk_gate",
    "hard_negatives": "reader_training.hard_negatives",
    "promote_model": "reader_training.promote",
    "PromotionError": "reader_training.promote",
    "start_retrain": "reader_training.jobs",
    "current_job": "reader_training.jobs",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reader_training' has no attribute {name!r}")
