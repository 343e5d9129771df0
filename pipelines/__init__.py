"""The core of DocQA: settings, the document store, retrieval, the reader and the query pipeline.

Nothing here imports the indexer, reader training or the UI; they import this package.
Heavy modules (torch, FAISS, transformers) load on first use of the names below.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# ONNX Runtime's Linux build sends telemetry (DNS for mobile.events.data.microsoft.com about
# 9 s after a session opens) unless this is set before it is imported; its
# disable_telemetry_events() does not stop it. Every DocQA entry point imports this package first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from pipelines.settings import Settings

_LAZY = {
    "PassageStore": "pipelines.store",
    "SourceRecord": "pipelines.store",
    "StoreError": "pipelines.store",
    "PassageEmbedder": "pipelines.embedder",
    "QuestionEmbedder": "pipelines.embedder",
    "DenseRetriever": "pipelines.retrievers",
    "BM25Retriever": "pipelines.retrievers",
    "RankFusion": "pipelines.fusion",
    "ExtractiveReader": "pipelines.reader",
    "ReaderConfig": "pipelines.reader",
    "AnswerResult": "pipelines.answers",
    "QuestionError": "pipelines.answers",
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
