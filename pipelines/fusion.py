"""Joining rankings: reciprocal rank fusion of the dense and BM25 passage lists, as a Haystack
joiner component.

Scores: RRF scores (about 1/61) have nothing in common with the cosine similarities the
reader's ``retriever_weight`` was tuned on, so :class:`RankFusion` orders passages by RRF but
sets ``Document.score`` to the passage's dense cosine similarity with the question (for a
passage only BM25 found, the one the store worked out during the BM25 search,
``meta["dense_score"]``: see :meth:`pipelines.store.PassageStore.bm25_retrieval`), and keeps the
other numbers in ``meta`` (``rrf_score``, ``dense_score``, ``bm25_score``, ``dense_rank``,
``bm25_rank``). The reader therefore always mixes in the same kind of score, whatever the
retrieval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Document]],
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[Document, float, list[int | None]]]:
    """Fuse rankings: ``score(d) = sum_i weights[i] / (k + rank_i(d))`` with 1-based ranks.

    Returns ``(document, rrf score, [rank in each ranking or None])``, best first. The document
    kept is its first occurrence (rankings in order). Ties keep first-seen order: all of ranking
    0, then the new documents of ranking 1, and so on.
    """
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[str, tuple[Document, float, list[int | None]]] = {}
    for i, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        for rank, doc in enumerate(ranking, 1):
            if doc.id in fused and fused[doc.id][2][i] is not None:
                continue  # a duplicate within one ranking counts once, at its best rank
            entry = fused.get(doc.id) or (doc, 0.0, [None] * len(rankings))
            entry[2][i] = rank
            fused[doc.id] = (entry[0], entry[1] + weight / (k + rank), entry[2])
    return sorted(fused.values(), key=lambda item: -item[1])  # stable: ties keep first-seen


@component
class RankFusion:
    """Joins the dense and BM25 rankings by reciprocal rank fusion (Cormack et al., 2009).

    The output is ordered by RRF score; ``Document.score`` is the dense cosine similarity (see
    the module docstring), ``meta`` holds ``rrf_score``, ``dense_score``, ``bm25_score``,
    ``dense_rank`` and ``bm25_rank``. With only one input connected it re-scores that ranking
    the same way (used by the BM25-only pipeline, so the reader sees cosine scores there too).

    :param k: the RRF constant; 60 as in the paper (larger flattens the rank differences).
    :param dense_weight: weight of the dense ranking.
    :param bm25_weight: weight of the BM25 ranking.
    :param top_k: passages to return (``run`` can override it).
    """

    def __init__(
        self,
        k: int = RRF_K,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        top_k: int = 10,
    ) -> None:
        if k < 0:
            raise ValueError(f"k must be non-negative, got {k}")
        if dense_weight < 0 or bm25_weight < 0:
            raise ValueError("weights must be non-negative")
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        self.k = k
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(
        self,
        dense_documents: list[Document] | None = None,
        bm25_documents: list[Document] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        k = self.top_k if top_k is None else top_k
        dense = dense_documents or []
        bm25 = bm25_documents or []
        fused = reciprocal_rank_fusion(
            [dense, bm25], k=self.k, weights=[self.dense_weight, self.bm25_weight]
        )[:k]
        dense_scores = {doc.id: doc.score for doc in dense}
        bm25_scores = {doc.id: doc.score for doc in bm25}
        bm25_docs = {doc.id: doc for doc in bm25}
        documents = []
        for doc, rrf, (dense_rank, bm25_rank) in fused:
            cosine = dense_scores.get(doc.id)
            if cosine is None and doc.id in bm25_docs:
                # Worked out once, by the store with the BM25 search (given the question's
                # embedding): never again here.
                cosine = bm25_docs[doc.id].meta.get("dense_score")
            meta = dict(doc.meta)
            meta.update(
                rrf_score=rrf,
                dense_score=cosine,
                bm25_score=bm25_scores.get(doc.id),
                dense_rank=dense_rank,
                bm25_rank=bm25_rank,
            )
            # Embeddings were only needed for the cosine; the dense retriever returns none either.
            documents.append(replace(doc, score=cosine, meta=meta, embedding=None))
        return {"documents": documents}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            k=self.k,
            dense_weight=self.dense_weight,
            bm25_weight=self.bm25_weight,
            top_k=self.top_k,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankFusion:
        return default_from_dict(cls, data)
