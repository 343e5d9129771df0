"""Dense and keyword (BM25) retrieval over a :class:`~pipelines.store.PassageStore`, as thin
Haystack components: the store does the retrieving, as Haystack's document stores do.

Filters and the caller's scope (the documents their access rules let them see) are passed down
to the store, which applies them inside the search (FAISS or BM25), so a filtered query still
gets ``top_k`` passages when that many match, and nothing outside the scope is ever ranked.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document

from pipelines.store import PassageStore

logger = logging.getLogger(__name__)


def _checked(store: PassageStore, top_k: int) -> tuple[PassageStore, int]:
    if not isinstance(store, PassageStore):
        raise ValueError(f"store must be a PassageStore, got {type(store).__name__}")
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    return store, top_k


@component
class DenseRetriever:
    """The ``top_k`` passages closest to a query embedding (``Document.score`` = inner product).

    Serialized with the store's ``index_dir``, so a pipeline loaded from YAML reloads the saved
    index.
    """

    def __init__(self, store: PassageStore, top_k: int = 10) -> None:
        self.store, self.top_k = _checked(store, top_k)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: np.ndarray | list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scope: frozenset[str] | None = None,
    ) -> dict[str, list[Document]]:
        """Retrieve passages; ``filters`` use Haystack's filter syntax, ``top_k`` overrides,
        ``scope`` (the ids of the documents the caller may see) restricts inside the search."""
        k = self.top_k if top_k is None else top_k
        documents = self.store.embedding_retrieval(
            query_embedding, top_k=k, filters=filters, scope=scope
        )
        logger.debug("Retrieved %d passages (top_k=%d, filters=%s)", len(documents), k, filters)
        return {"documents": documents}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, store=self.store.to_dict(), top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DenseRetriever:
        # default_from_dict rebuilds the nested store through PassageStore.from_dict.
        return default_from_dict(cls, data)


@component
class BM25Retriever:
    """The ``top_k`` passages of a store that best match a query's words (``score`` = BM25).

    Given the question's embedding, every passage also carries its dense cosine score in
    ``meta["dense_score"]``, so :class:`~pipelines.fusion.RankFusion` can score the passages only
    BM25 found the way the dense retriever scores the others. The BM25 index belongs to the store
    (cached in its version folder); ``warm_up`` loads or builds it.
    """

    def __init__(self, store: PassageStore, top_k: int = 10) -> None:
        self.store, self.top_k = _checked(store, top_k)

    def warm_up(self) -> None:
        self.store.keyword_index()

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        query_embedding: np.ndarray | list[float] | None = None,
        scope: frozenset[str] | None = None,
    ) -> dict[str, list[Document]]:
        """Retrieve passages; ``filters`` use Haystack's filter syntax, ``top_k`` overrides,
        ``scope`` (the ids of the documents the caller may see) restricts inside the search."""
        k = self.top_k if top_k is None else top_k
        documents = self.store.bm25_retrieval(
            query, k, filters, query_embedding=query_embedding, scope=scope
        )
        logger.debug(
            "BM25 retrieved %d passages (top_k=%d, filters=%s)", len(documents), k, filters
        )
        return {"documents": documents}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, store=self.store.to_dict(), top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Retriever:
        return default_from_dict(cls, data)
