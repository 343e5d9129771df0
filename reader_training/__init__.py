"""Reader training: fine-tune, the reader campaign with its gate, and promotion.

Public surface: :func:`train_reader` with :class:`TrainConfig`; the campaign
(:func:`run_chunk`, :func:`finish_chunk`), :func:`hard_negatives`, :func:`promote_model`;
retraining from the page in the background (:func:`start_retrain`, :func:`current_job`).
SQuAD files and evaluation live in :mod:`evaluation`; this package imports only ``pipelines``
and ``evaluation``.
"""

from __future__ import annotations

import lazy_loader

# Names load on first use (PEP 562, through lazy_loader) so that importing one light
# module of the package (settings, convert, squad) does not load torch or FAISS.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "train": ["TrainConfig", "train_reader"],
        "campaign": ["run_chunk"],
        "campaign_spec": ["CampaignSpec"],
        "chunk_gate": ["finish_chunk"],
        "hard_negatives": ["hard_negatives"],
        "promote": ["promote_model", "PromotionError"],
        "jobs": ["start_retrain", "current_job"],
    },
)
