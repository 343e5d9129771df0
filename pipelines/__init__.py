"""The core of DocQA: settings, the document store, retrieval, the reader and the query pipeline.

Nothing here imports the indexer, reader training or the UI; they import this package.
Heavy modules (torch, FAISS, transformers) load on first use of the names below.
"""

from __future__ import annotations

import os

import lazy_loader

# ONNX Runtime's Linux build sends telemetry (DNS for mobile.events.data.microsoft.com about
# 9 s after a session opens) unless this is set before it is imported; its
# disable_telemetry_events() does not stop it. Every DocQA entry point imports this package first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Names load on first use (PEP 562, through lazy_loader) so that importing one light
# module of the package (settings, convert, squad) does not load torch or FAISS.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "settings": ["Settings"],
        "store": ["PassageStore", "SourceRecord", "StoreError"],
        "embedder": ["PassageEmbedder", "QuestionEmbedder"],
        "retrievers": ["DenseRetriever", "BM25Retriever"],
        "fusion": ["RankFusion"],
        "reader": ["ExtractiveReader"],
        "reader_config": ["ReaderConfig"],
        "answers": ["AnswerResult", "Question", "QuestionError"],
        "query": ["QueryService", "ask", "build_query_pipeline"],
        "filters": ["build_filters"],
        "reader_registry": ["resolve_reader", "list_models", "set_serving"],
        "learning_loop.question_log": ["QuestionLog"],
        "learning_loop.label_queue": ["label_queue"],
        "learning_loop.monitoring": ["drift_alert"],
    },
)
