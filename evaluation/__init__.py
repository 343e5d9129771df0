"""Evaluation: SQuAD files, the official EM/F1, the reader alone and the pipeline end to end.

Public surface: :func:`load_squad` (validate and repair SQuAD v1.1/v2.0 files),
:func:`evaluate_reader` and :func:`squad_metrics` (official SQuAD v2.0 EM/F1),
:func:`evaluate_end_to_end` and :func:`tune_answer_ranking` (retrieval + reading, EM/F1 against
k, latency), :func:`write_plots`; :mod:`evaluation.environment` says what a number was measured
on.
Imports only ``pipelines`` (and ``indexer`` to index a collection it evaluates over).
"""

from __future__ import annotations

import lazy_loader

# Names load on first use (PEP 562, through lazy_loader) so that importing one light
# module of the package (settings, convert, squad) does not load torch or FAISS.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "squad": ["SquadExample", "SquadFormatError", "load_squad", "load_many", "write_squad"],
        "reader_metrics": ["evaluate_reader", "squad_metrics"],
        "end_to_end": ["evaluate_end_to_end", "tune_answer_ranking"],
        "plots": ["write_plots"],
    },
)
