"""Evaluation: SQuAD files, the official EM/F1, the reader alone and the pipeline end to end.

Public surface: :func:`load_squad` (validate and repair SQuAD v1.1/v2.0 files),
:func:`evaluate_reader` and :func:`squad_metrics` (official SQuAD v2.0 EM/F1),
:func:`evaluate_end_to_end` and :func:`tune_answer_ranking` (retrieval + reading, EM/F1 against
k, latency), :func:`write_plots`; :mod:`evaluation.environment` says what a number was measured
on.
Imports only ``pipelines`` (and ``indexer`` to index a collection it evaluates over).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SquadExample": "evaluation.squad",
    "SquadFormatError": "evaluation.squad",
    "load_squad": "evaluation.squad",
    "load_many": "evaluation.squad",
    "write_squad": "evaluation.squad",
    "evaluate_reader": "evaluation.reader_metrics",
    "squad_metrics": "evaluation.reader_metrics",
    "evaluate_end_to_end": "evaluation.end_to_end",
    "tune_answer_ranking": "evaluation.end_to_end",
    "write_plots": "evaluation.plots",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
