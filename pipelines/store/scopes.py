"""The passages of a caller's scope: the documents their access rules let them see.

A scope is a frozenset of document ids (made by the ``identity`` package); the store ranks only
its passages, inside the search: its FAISS ids become the ID selector of the vector search and
its passage ids the BM25 mask, exactly as a filter does. Working the passages out costs one SQL
query per scope, so they are cached per scope until the store changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SCOPES = 32
# Most SQLite builds allow 32766 bound parameters; stay well below for IN (...) lists.
CHUNK = 5000


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class IdSet(list[str]):
    """Passage ids as a list (what the BM25 index takes) with a set's membership test."""

    def __init__(self, ids: Iterable[str]) -> None:
        super().__init__(ids)
        self._set = frozenset(self)

    def __contains__(self, item: object) -> bool:
        return item in self._set


@dataclass
class ScopeRows:
    faiss_ids: np.ndarray  # sorted; passages with an embedding
    ids: IdSet
    _keyword_mask: np.ndarray | None = None

    def keyword_mask(self, index: Any) -> np.ndarray:
        """The scope's rows in the store's BM25 index (``BM25Index.mask``), made once: both are
        forgotten together when the passages change, so the mask always matches the index."""
        if self._keyword_mask is None or len(self._keyword_mask) != len(index):
            self._keyword_mask = index.mask(self.ids)
        return self._keyword_mask


class ScopeRowsCache:
    """:class:`ScopeRows` per scope; :meth:`clear` when the passages change."""

    def __init__(self) -> None:
        self._rows: dict[frozenset[str], ScopeRows] = {}

    def clear(self) -> None:
        self._rows = {}

    def rows(self, db: sqlite3.Connection, scope: frozenset[str]) -> ScopeRows:
        found = self._rows.get(scope)
        if found is None:
            faiss_ids: list[int] = []
            ids: list[str] = []
            for chunk in chunks(sorted(scope)):
                for faiss_id, passage_id, has_embedding in db.execute(
                    "SELECT faiss_id, id, has_embedding FROM passages"
                    f" WHERE doc_id IN ({', '.join('?' * len(chunk))})",
                    list(chunk),
                ):
                    ids.append(passage_id)
                    if has_embedding:
                        faiss_ids.append(faiss_id)
            if len(self._rows) >= MAX_SCOPES:
                self._rows.clear()
            found = self._rows[scope] = ScopeRows(
                np.unique(np.asarray(faiss_ids, dtype=np.int64)), IdSet(ids)
            )
        return found
