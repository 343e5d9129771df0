"""DocQA's passage store: FAISS vectors and SQLite passages, saved together atomically.

Why not ``faiss-haystack`` or Haystack's ``InMemoryDocumentStore``: faiss-haystack keeps the
embeddings in a JSON file next to the index, supports L2 distance only, and applies metadata
filters *after* the vector search, so a selective filter ("only PDFs of the HR folder") throws
away most of its top-k and returns a handful of passages, or none. DocQA needs

* inner product on L2-normalized vectors (= cosine similarity, what MiniLM was trained for);
* filters pushed down into the search: the filter is run as SQL over the passages table and the
  matching FAISS ids become an ``IDSelector``, so FAISS only ranks passages that pass the filter
  and a filter matching 1% of the collection still returns its full ``top_k``;
* the vectors and the passages/metadata saved as *one* version: a new folder ``v-<n>`` is written
  next to the current one and a pointer file ``CURRENT`` is swapped with ``os.replace``, so a
  crash at any point leaves the previous version loadable, and a loaded version is checked to
  have the same FAISS ids as SQLite rows;
* the index to scale: exact search while the collection is small, IVF (or HNSW, optionally
  compressed) once it is large, retrained as it grows, with the exact vectors kept so that
  filters, removals and scores stay exact (:mod:`pipelines.faiss_index`).

Layout of a version folder (see :mod:`pipelines.store.versions` for ``CURRENT`` and the
versions around it)::

    v-000007/
        vectors.faiss   faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), ids = passages.faiss_id: the
                        exact vectors (the master copy)
        ann.faiss       only for large collections: the IVF or HNSW index searched instead of
                        the master, derived from it (rebuilt from the master if it is lost)
        passages.sqlite tables ``sources`` (one row per source document, with its text) and
                        ``passages`` (one row per passage)
        manifest.json   format version, dim, counts: checked against both files on load;
                        "index": the index kind, its factory string and training size

The SQLite database lives in memory; ``load`` copies the saved file in, ``save`` backs it up.
A caller's scope (the documents they may see, :mod:`pipelines.store.scopes`) narrows a search
inside it, as a filter does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from haystack import default_from_dict, default_to_dict
from haystack.dataclasses import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from pipelines.faiss_index import IndexSpec, VectorIndex
from pipelines.store.files import (
    SourceRecord,
    empty_database,
    meta_json,
    read_version,
    write_version,
)
from pipelines.store.scopes import ScopeRowsCache, chunks
from pipelines.store.sql_filters import filter_to_sql
from pipelines.store.versions import (
    StoreError,
    current_version,
    has_index,
    new_version,
    require_current_version,
)

logger = logging.getLogger(__name__)


class PassageStore:
    """Passages (Haystack Documents) with their vectors; a Haystack ``DocumentStore``.

    Thread-safe: every public method holds one lock, so the web app's threads can share a store
    and a search never sees half a write. Documents without an embedding are stored (the
    DocumentStore protocol allows them) but are not searchable.
    """

    def __init__(
        self, embedding_dim: int = 384, index: IndexSpec | dict[str, Any] | None = None
    ) -> None:
        """``index``: how vectors are indexed (:class:`IndexSpec`; default: auto by size)."""
        if embedding_dim <= 0:
            raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
        self.embedding_dim = embedding_dim
        # The folder this store was loaded from or last saved to (for to_dict).
        self.index_dir: Path | None = None
        self._lock = threading.RLock()
        spec = IndexSpec.from_dict(index) if isinstance(index, dict) else index
        # The exact vectors plus, for large collections, an IVF/HNSW index (and GPU copies).
        self._vectors = VectorIndex(embedding_dim, spec)
        self._db = empty_database()
        # FAISS ids are never reused, so an id always names the same passage within a version.
        self._next_faiss_id = 0
        # The saved version these passages are exactly (where derived data such as the BM25
        # index is cached), and the BM25 index, built on first use; a change forgets both.
        self._version_folder: Path | None = None
        self._keyword_index: Any = None
        self._scopes = ScopeRowsCache()  # the passages of callers' scopes (scopes.py)

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def exists(index_dir: Path) -> bool:
        """Whether ``index_dir`` holds a saved store (CURRENT pointing at a version folder)."""
        return has_index(index_dir)

    @classmethod
    def load(cls, index_dir: Path, index: IndexSpec | None = None) -> PassageStore:
        """Load the version CURRENT names; StoreError if missing, unreadable or out of sync.

        ``index``: the index settings from now on (applied to the kind of index at the next
        save); None keeps those it was saved with.
        """
        index_dir = Path(index_dir)
        attempts = 3
        for attempt in range(attempts):
            name = require_current_version(index_dir)
            try:
                store = cls._load_version(index_dir / name, index)
            except StoreError:
                # A save in another process may have moved CURRENT on and removed the version
                # we had just read the name of: read CURRENT again.
                if attempt + 1 < attempts and current_version(index_dir) != name:
                    continue
                raise
            store.index_dir = index_dir
            store._version_folder = index_dir / name
            return store
        raise AssertionError("unreachable")

    @classmethod
    def _load_version(cls, folder: Path, spec: IndexSpec | None = None) -> PassageStore:
        contents = read_version(folder)
        store = cls(embedding_dim=contents.dim)
        store._db.close()
        store._db = contents.db
        store._vectors = VectorIndex.restore(contents.index, folder, contents.index_section, spec)
        # Never reuse an id: removed passages may still be stale entries of an HNSW index.
        store._next_faiss_id = max(contents.next_id, store._vectors.max_id() + 1)
        logger.info(
            "Loaded %s: %d passages, %d sources, %s index",
            folder, contents.passages, contents.sources, store._vectors.kind,
        )  # fmt: skip
        return store

    def save(self, index_dir: Path) -> None:
        """Write a new version folder, then point CURRENT at it; the old version stays loadable
        (:func:`pipelines.store.versions.new_version`)."""
        index_dir = Path(index_dir)
        with self._lock, new_version(index_dir) as folder:
            manifest = self._write_version(folder)
        self.index_dir = index_dir
        self._version_folder = folder.with_name(folder.name.removesuffix(".tmp"))
        logger.info("Saved %s (%d passages)", index_dir, manifest["passages"])

    def _write_version(self, folder: Path) -> dict[str, Any]:
        """Write this store's version files into ``folder``; the manifest.

        First (re)builds the IVF/HNSW index if the collection outgrew it (see
        :meth:`VectorIndex.maintain`), so saves are where training happens.
        """
        self._vectors.maintain()
        return write_version(
            folder,
            self._db,
            self._vectors,
            self.embedding_dim,
            passages=self.count_documents(),
            sources=self._scalar("SELECT COUNT(*) FROM sources"),
        )

    def close(self) -> None:
        """Release the in-memory database and the GPU copy; the store is unusable afterwards."""
        with self._lock:
            self._vectors.close()
            self._db.close()

    # -- vector index -----------------------------------------------------------------------

    @property
    def index_spec(self) -> IndexSpec:
        return self._vectors.spec

    def apply_index_settings(self, settings: Any) -> IndexSpec | None:
        """Use the index fields ``settings`` sets (:meth:`IndexSpec.from_settings`; the others
        keep this index's own); the new spec if it differs, else None. Search parameters apply
        now, the kind of index at the next save."""
        with self._lock:
            spec = IndexSpec.from_settings(settings, self._vectors.spec)
            if spec == self._vectors.spec:
                return None
            self._vectors.set_spec(spec)
            return spec

    def rebuild_index(self, force: bool = False) -> bool:
        """(Re)build the IVF/HNSW index now if the collection outgrew it (always with
        ``force``); whether it was rebuilt. Saves do this on their own."""
        with self._lock:
            return self._vectors.maintain(force=force)

    def index_info(self) -> dict[str, Any]:
        """The kind of index searched now, its factory string, vector and stale counts."""
        with self._lock:
            return self._vectors.describe()

    # -- serialization ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialize the settings (not the contents: those live in ``index_dir``)."""
        return default_to_dict(
            self,
            embedding_dim=self.embedding_dim,
            index=self._vectors.spec.to_dict(),
            index_dir=str(self.index_dir) if self.index_dir else None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassageStore:
        """Reload the store from ``index_dir`` when it was saved there, else an empty store."""
        params = dict(data.get("init_parameters", {}))
        index_dir = params.pop("index_dir", None)
        if index_dir and cls.exists(Path(index_dir)):
            spec = params.get("index")
            return cls.load(Path(index_dir), IndexSpec.from_dict(spec) if spec else None)
        store = default_from_dict(cls, {**data, "init_parameters": params})
        store.index_dir = Path(index_dir) if index_dir else None
        return store

    # -- DocumentStore protocol -------------------------------------------------------------

    def count_documents(self) -> int:
        """Number of passages."""
        return self._scalar("SELECT COUNT(*) FROM passages")

    def count_vectors(self) -> int:
        """Number of vectors in FAISS (passages that have an embedding)."""
        return self._vectors.ntotal

    def filter_documents(
        self, filters: dict[str, Any] | None = None, *, return_embedding: bool = True
    ) -> list[Document]:
        """Passages matching Haystack ``filters`` (all when None/empty), in insertion order,
        with their embeddings unless ``return_embedding`` is False."""
        where, params = self._where(filters)
        with self._lock:
            rows = self._db.execute(
                "SELECT faiss_id, id, content, meta, has_embedding FROM passages"
                f" WHERE {where} ORDER BY faiss_id",
                params,
            ).fetchall()
            return self._documents(rows, with_embedding=return_embedding)

    def filter_ids(self, filters: dict[str, Any] | None = None) -> list[str]:
        """Ids of the passages matching ``filters``, in insertion order (nothing else read)."""
        where, params = self._where(filters)
        with self._lock:
            return [
                row[0]
                for row in self._db.execute(
                    f"SELECT id FROM passages WHERE {where} ORDER BY faiss_id", params
                )
            ]

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        """Write passages; ``DuplicatePolicy.NONE`` means FAIL (as in Haystack's in-memory store).

        Returns the number written (with SKIP, the duplicates are not counted).
        """
        if not isinstance(documents, list | tuple) or any(
            not isinstance(doc, Document) for doc in documents
        ):
            raise ValueError("Please provide a list of Documents.")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        with self._lock:
            existing = self._existing_ids([doc.id for doc in documents])
            batch: dict[str, Document] = {}
            for doc in documents:
                duplicate = doc.id in existing or doc.id in batch
                if duplicate and policy == DuplicatePolicy.FAIL:
                    raise DuplicateDocumentError(f"ID '{doc.id}' already exists.")
                if duplicate and policy == DuplicatePolicy.SKIP:
                    logger.warning("ID '%s' already exists, skipped", doc.id)
                    continue
                batch[doc.id] = doc  # OVERWRITE: the last one of a batch wins
            rows, vectors = self._prepare(list(batch.values()))
            with self._transaction():
                removed = self._delete_rows("id", sorted(existing & batch.keys()))
                self._insert(rows, vectors, removed)
        return len(documents) if policy == DuplicatePolicy.OVERWRITE else len(batch)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete the passages with these ids; unknown ids are ignored."""
        with self._lock, self._transaction():
            removed = self._delete_rows("id", list(document_ids))
            self._insert([], None, removed)

    # -- source documents -------------------------------------------------------------------

    def replace_source(self, record: SourceRecord, text: str, passages: list[Document]) -> None:
        """Store (or re-store) one source document: its record, its text and all its passages.

        The passages it had before are removed in the same transaction, so a re-indexed file
        never shows old and new passages together. Every passage needs ``meta["doc_id"] ==
        record.doc_id`` and an embedding.
        """
        for doc in passages:
            if not isinstance(doc, Document):
                raise ValueError("Please provide a list of Documents.")
            if doc.meta.get("doc_id") != record.doc_id:
                raise ValueError(
                    f"Passage {doc.id!r} has doc_id {doc.meta.get('doc_id')!r}, "
                    f"expected {record.doc_id!r}"
                )
            if doc.embedding is None:
                raise ValueError(f"Passage {doc.id!r} has no embedding")
        ids = [doc.id for doc in passages]
        if len(set(ids)) != len(ids):
            raise DuplicateDocumentError(f"Duplicate passage ids for {record.source}")
        rows, vectors = self._prepare(passages)
        with self._lock, self._transaction():
            removed = self._delete_rows("doc_id", [record.doc_id])
            clash = self._existing_ids(ids)
            if clash:
                raise DuplicateDocumentError(
                    f"Passage ids of {record.source} already belong to another document: "
                    f"{sorted(clash)[:5]}"
                )
            self._db.execute(
                "INSERT INTO sources (doc_id, source, path, title, file_type, sha256, size, mtime,"
                " indexed_at, text, text_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(doc_id) DO UPDATE SET source=excluded.source, path=excluded.path,"
                " title=excluded.title, file_type=excluded.file_type, sha256=excluded.sha256,"
                " size=excluded.size, mtime=excluded.mtime, indexed_at=excluded.indexed_at,"
                " text=excluded.text, text_format=excluded.text_format",
                (
                    record.doc_id,
                    record.source,
                    record.path,
                    record.title,
                    record.file_type,
                    record.sha256,
                    record.size,
                    record.mtime,
                    record.indexed_at,
                    text,
                    record.text_format,
                ),
            )
            self._insert(rows, vectors, removed)

    def remove_source(self, doc_id: str) -> None:
        """Remove a source document and its passages (nothing happens if it is not there)."""
        with self._lock, self._transaction():
            removed = self._delete_rows("doc_id", [doc_id])
            self._db.execute("DELETE FROM sources WHERE doc_id = ?", (doc_id,))
            self._insert([], None, removed)

    _SOURCE_SELECT = (
        "SELECT s.doc_id, s.source, s.path, s.title, s.file_type, s.sha256, s.size, s.mtime,"
        " s.indexed_at, (SELECT COUNT(*) FROM passages p WHERE p.doc_id = s.doc_id),"
        " s.text_format FROM sources s"
    )

    def sources(self, scope: frozenset[str] | None = None) -> list[SourceRecord]:
        """The source documents (those in ``scope`` when given), sorted by displayed path."""
        with self._lock:
            rows = self._db.execute(self._SOURCE_SELECT + " ORDER BY s.source, s.doc_id").fetchall()
        return [SourceRecord(*row) for row in rows if scope is None or row[0] in scope]

    def source(self, doc_id: str) -> SourceRecord | None:
        with self._lock:
            row = self._db.execute(
                self._SOURCE_SELECT + " WHERE s.doc_id = ?", (doc_id,)
            ).fetchone()
        return SourceRecord(*row) if row else None

    def source_text(self, doc_id: str) -> str:
        """The converted text of a source document (passage offsets index into it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT text FROM sources WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"No source document with doc_id {doc_id!r}")
        return row[0]

    # -- retrieval --------------------------------------------------------------------------

    def embedding_retrieval(
        self,
        query_embedding: np.ndarray | list[float],
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        return_embedding: bool = False,
        scope: frozenset[str] | None = None,
    ) -> list[Document]:
        """The ``top_k`` passages with the highest inner product with the query, best first.

        ``scope``: the ids of the documents the caller may see (None: all); only their passages
        are ranked, inside the search, like a filter.

        With ``filters``, only matching passages are ranked (an IDSelector inside the FAISS
        search), so ``min(top_k, matches)`` passages come back; the true top_k of the filtered
        set for filters matching up to 5% of the passages (searched exactly), an approximate
        one through IVF/HNSW for broader ones. Scores are exact inner products.
        """
        query = np.asarray(query_embedding, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.embedding_dim:
            raise ValueError(
                f"query_embedding has {query.shape[1]} dimensions, the store {self.embedding_dim}"
            )
        if not np.all(np.isfinite(query)):
            raise ValueError("query_embedding contains NaN or infinite values")
        query = np.ascontiguousarray(query)
        with self._lock:
            if top_k <= 0 or self._vectors.ntotal == 0:
                return []
            allowed = None if scope is None else self._scopes.rows(self._db, scope).faiss_ids
            if filters:
                where, params = self._where(filters)
                sql = f"SELECT faiss_id FROM passages WHERE has_embedding AND {where}"
                matching = np.fromiter((r[0] for r in self._db.execute(sql, params)), np.int64)
                allowed = matching if allowed is None else np.intersect1d(allowed, matching)
            if allowed is not None and len(allowed) == 0:
                return []
            # Filtered searches run on the CPU (GPU indexes ignore IDSelectors); see faiss_index.
            scores, ids = self._vectors.search(query, top_k, allowed)
            hits = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
            return self._scored_documents("faiss_id", hits, return_embedding)

    # -- keyword retrieval (BM25) -------------------------------------------------------------

    @property
    def version_folder(self) -> Path | None:
        """The saved version folder these passages are exactly, or None (never saved, or
        changed since): derived data such as the BM25 index is cached there."""
        return self._version_folder

    def keyword_index(self) -> Any:
        """The BM25 index of the passages (:class:`pipelines.bm25.BM25Index`): loaded from the
        version folder's cache, else built (from text and metadata only) and cached there."""
        from pipelines.bm25 import load_or_build_index

        with self._lock:
            if self._keyword_index is None:
                self._keyword_index = load_or_build_index(self, self._version_folder)
            return self._keyword_index

    def bm25_retrieval(
        self,
        query: str,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        return_embedding: bool = False,
        query_embedding: np.ndarray | Sequence[float] | None = None,
        scope: frozenset[str] | None = None,
    ) -> list[Document]:
        """The ``top_k`` passages that best match the query's words (``score`` = BM25), best
        first. ``filters`` restrict the ranking before top-k is taken, as in
        :meth:`embedding_retrieval`, so a filtered query still gets ``top_k`` when that many
        match. Only passages sharing a term with the query come back. With ``query_embedding``,
        each passage's cosine similarity to it is in ``meta["dense_score"]`` (None for a passage
        without an embedding)."""
        index = self.keyword_index()
        with self._lock:
            allowed: Any = self.filter_ids(filters) if filters else None  # ids, or a mask
            if scope is not None:
                rows = self._scopes.rows(self._db, scope)
                if not rows.ids:
                    return []
                allowed = (
                    [i for i in allowed if i in rows.ids]
                    if allowed is not None
                    else rows.keyword_mask(index)
                )
            hits = index.search(query, top_k, allowed)
            if not hits:
                return []
            documents = self._scored_documents(
                "id", hits, return_embedding, query_embedding=query_embedding
            )
            if len(documents) < len(hits):
                logger.warning("%d BM25 hits are not in the store", len(hits) - len(documents))
            return documents

    # -- internals --------------------------------------------------------------------------

    def _scored_documents(
        self,
        column: str,
        hits: Sequence[tuple[Any, float]],
        with_embedding: bool,
        query_embedding: np.ndarray | Sequence[float] | None = None,
    ) -> list[Document]:
        """The passages named by ``hits`` (``(value of column, score)``, best first) as scored
        Documents in that order; hits not in the store are left out."""
        key = {"faiss_id": 0, "id": 1}[column]
        by_key: dict[Any, tuple[Any, ...]] = {}
        for chunk in chunks([value for value, _ in hits]):
            for row in self._db.execute(
                "SELECT faiss_id, id, content, meta, has_embedding FROM passages"
                f" WHERE {column} IN ({', '.join('?' * len(chunk))})",
                list(chunk),
            ):
                by_key[row[key]] = row
        found = [(by_key[value], score) for value, score in hits if value in by_key]
        documents = self._documents(
            [row for row, _ in found],
            with_embedding=with_embedding,
            scores=[score for _, score in found],
        )
        if query_embedding is not None:
            with_vectors = [row[0] for row, _ in found if row[4]]
            cosines = self._vectors.similarities(with_vectors, query_embedding)
            for document, (row, _) in zip(documents, found, strict=True):
                document.meta["dense_score"] = cosines.get(row[0])
        return documents

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return int(self._db.execute(sql, params).fetchone()[0])

    @staticmethod
    def _where(filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
        if not filters:
            return "1", []
        return filter_to_sql(filters)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # The passages change: derived data no longer matches them or any saved version.
        self._version_folder = None
        self._keyword_index = None
        self._scopes.clear()
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(ids))
        for chunk in chunks(unique):
            found.update(
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM passages WHERE id IN ({', '.join('?' * len(chunk))})",
                    list(chunk),
                )
            )
        return found

    def _prepare(
        self, documents: Sequence[Document]
    ) -> tuple[list[tuple[str, str | None, str, int]], np.ndarray | None]:
        """Validate documents before anything is changed; rows and the stacked vectors."""
        rows = []
        vectors = []
        for doc in documents:
            if doc.embedding is not None:
                vector = np.asarray(doc.embedding, dtype=np.float32)
                if vector.shape != (self.embedding_dim,):
                    raise ValueError(
                        f"Document {doc.id!r}: embedding has shape {vector.shape}, "
                        f"the store expects ({self.embedding_dim},)"
                    )
                if not np.all(np.isfinite(vector)):
                    raise ValueError(f"Document {doc.id!r}: embedding has NaN or infinite values")
                vectors.append(vector)
            rows.append((doc.id, doc.content, meta_json(doc), int(doc.embedding is not None)))
        stacked = np.vstack(vectors) if vectors else None
        return rows, stacked

    def _delete_rows(self, column: str, values: Sequence[str]) -> np.ndarray:
        """Delete passages whose ``column`` is in ``values``; the FAISS ids to remove."""
        assert column in ("id", "doc_id")
        removed: list[int] = []
        for chunk in chunks(list(values)):
            marks = ", ".join("?" * len(chunk))
            removed.extend(
                r[0]
                for r in self._db.execute(
                    f"SELECT faiss_id FROM passages WHERE has_embedding AND {column} IN ({marks})",
                    list(chunk),
                )
            )
            self._db.execute(f"DELETE FROM passages WHERE {column} IN ({marks})", list(chunk))
        return np.asarray(removed, dtype=np.int64)

    def _insert(
        self,
        rows: list[tuple[str, str | None, str, int]],
        vectors: np.ndarray | None,
        removed: np.ndarray,
    ) -> None:
        """Insert prepared rows and apply the FAISS changes, inside the caller's transaction.

        FAISS goes last: everything that can fail (validation, SQL constraints) has failed
        before the index is touched. If FAISS still raises (out of memory), the removed vectors
        are put back (:meth:`VectorIndex.update`) and the caller rolls the SQL back, so both
        stay in sync.
        """
        start = self._next_faiss_id
        self._db.executemany(
            "INSERT INTO passages (faiss_id, id, content, meta, has_embedding)"
            " VALUES (?, ?, ?, ?, ?)",
            [(start + n, *row) for n, row in enumerate(rows)],
        )
        new_ids = np.asarray([start + n for n, row in enumerate(rows) if row[3]], dtype=np.int64)
        self._vectors.update(removed, vectors, new_ids)
        self._next_faiss_id = start + len(rows)

    def _documents(
        self,
        rows: Iterable[tuple[Any, ...]],
        with_embedding: bool,
        scores: Sequence[float] | None = None,
    ) -> list[Document]:
        rows = list(rows)
        ranks: Sequence[float | None] = [None] * len(rows) if scores is None else scores
        embeddings: dict[int, list[float]] = {}
        if with_embedding:
            ids = np.asarray([r[0] for r in rows if r[4]], dtype=np.int64)
            if len(ids):
                matrix = self._vectors.reconstruct_batch(ids)
                embeddings = dict(zip(ids.tolist(), matrix.tolist(), strict=True))
        return [
            Document(
                id=passage_id,
                content=content,
                meta=json.loads(meta),
                embedding=embeddings.get(faiss_id),
                score=score,
            )
            for (faiss_id, passage_id, content, meta, _), score in zip(rows, ranks, strict=True)
        ]
