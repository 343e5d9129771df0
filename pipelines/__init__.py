"""The core of DocQA: settings, the document store, retrieval, the reader and the query pipeline.

Nothing here imports the indexer, reader training or the UI; they import this package.
Heavy modules (torch, FAISS, transformers) load on first use of the names below.
"""

from __future__ import annotations

import importlib
from typing import Any

from pipelines.settings import Settings

_LAZY = {
    "PassageStore": "pipelines.store",
    "SourceRecord": "pipelines.store",
    "StoreError": "pipelines.store",
    "PassageEmbedder": "pipelines.embedder",
    "QuestionEmbedder": "pipelines.embedder",
    "DenseRetriever": "pipelines.retrievers",
    "BM25Retriever": "pipelines.bm25",
    "RankFusion": "pipelines.bm25",
    "ExtractiveReader": "pipelines.reader",
    "ReaderConfig": "pipelines.reader",
    "AnswerResult": "pipelines.query",
    "QuestionError": "pipelines.query",
    "QueryService": "pipelines.query",
    "ask": "pipelines.query",
    "build_query_pipeline": "pipelines.query",
    "build_filters": "pipelines.filters",
    "resolve_reader": "pipelines.models",
    "list_models": "pipelines.models",
    "set_serving": "pipelines.models",
    "QuestionLog": "pipelines.question_log",
    "label_queue": "pipelines.label_queue",
    "drift_alert": "pipelines.monitoring",
}

__all__ = ["Settings", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
