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

Layout of ``index_dir``::

    CURRENT             "v-000007": the version to load
    v-000006/           the previous version, kept so that a reader that just read CURRENT
                        can still open it
    v-000007/
        vectors.faiss   faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), ids = passages.faiss_id: the
                        exact vectors (the master copy)
        ann.faiss       only for large collections: the IVF or HNSW index searched instead of
                        the master, derived from it (rebuilt from the master if it is lost)
        passages.sqlite tables ``sources`` (one row per source document, with its text) and
                        ``passages`` (one row per passage)
        manifest.json   format version, dim, counts: checked against both files on load;
                        "index": the index kind, its factory string and training size

While working, the SQLite database lives in memory (``:memory:``); ``load`` copies the saved
file into memory and ``save`` backs it up into the new version folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock
from haystack import default_from_dict, default_to_dict
from haystack.dataclasses import Document
from haystack.document_stores.errors import DocumentStoreError, DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError

from pipelines.faiss_index import IndexSpec, VectorIndex

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# SQLite schema version, kept in PRAGMA user_version so a file from another format is refused.
SCHEMA_VERSION = 1
CURRENT_FILE = "CURRENT"
VECTORS_FILE = "vectors.faiss"
PASSAGES_FILE = "passages.sqlite"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
_VERSION_RE = re.compile(r"^v-(\d+)$")
_ANY_VERSION_RE = re.compile(r"^v-(\d+)(\.tmp)?$")

# Meta fields that get their own (generated, indexed) column because DocQA filters on them.
# They are generated from the meta JSON, so they can never disagree with it.
COLUMN_FIELDS = ("doc_id", "file_type", "source", "page", "section", "modified")
# Most SQLite builds allow 32766 bound parameters; stay well below for IN (...) lists.
_CHUNK = 5000

_SCHEMA = f"""
CREATE TABLE sources (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    file_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    indexed_at TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE passages (
    faiss_id INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    content TEXT,
    meta TEXT NOT NULL,              -- JSON object: Document.meta
    has_embedding INTEGER NOT NULL,  -- 1: the vector is in FAISS under faiss_id
    -- No declared type on purpose: a typed column would coerce "100" to 100 and make SQL
    -- comparisons disagree with Haystack's Python filter semantics.
    {
    ", ".join(
        f"{name} GENERATED ALWAYS AS (json_extract(meta, '$.{name}')) STORED"
        for name in COLUMN_FIELDS
    )
}
);
CREATE INDEX passages_doc_id ON passages(doc_id);
CREATE INDEX passages_file_type ON passages(file_type);
CREATE INDEX passages_source ON passages(source);
CREATE INDEX passages_modified ON passages(modified);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class StoreError(DocumentStoreError):
    """The index on disk is missing, unreadable or inconsistent; the message names the folder."""


@dataclass
class SourceRecord:
    """One indexed source document (a file); ``passages`` is filled in when read from the store."""

    doc_id: str
    source: str
    path: str
    title: str
    file_type: str
    sha256: str
    size: int
    mtime: float
    indexed_at: str
    passages: int = 0


# -- filters ------------------------------------------------------------------------------------

_DOCUMENT_FIELDS = {"id", "content", "blob", "meta", "score", "embedding", "sparse_embedding"}
_COMPARISON_OPERATORS = {"==", "!=", ">", ">=", "<", "<=", "in", "not in"}
_LOGICAL_OPERATORS = {"AND", "OR", "NOT"}


@lru_cache(maxsize=65536)
def _iso_epoch(value: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 string, else None (SQL function ``docqa_epoch``).

    Lets ``meta.modified >= "2024-01-01"`` compare points in time, not strings. Naive times are
    taken as UTC, which is what DocQA writes (Haystack instead borrows the other side's zone).
    """
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _epoch(parsed)


def _epoch(value: datetime | date) -> float:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _filter_date(value: str) -> float:
    """A string compared with >, >=, <, <= must be an ISO date, as Haystack documents."""
    try:
        return _epoch(datetime.fromisoformat(value))
    except ValueError as exc:
        raise FilterError(
            f"Can't compare strings using operators '>', '>=', '<', '<=': {value!r} is not a date. "
            "Strings are only comparable if they are ISO formatted dates."
        ) from exc


def _field_sql(field: str) -> str:
    """The SQL expression of a filter field: a column, or json_extract on the meta JSON."""
    if field in ("id", "content"):
        return field
    if field.startswith("meta."):
        parts = field[len("meta.") :].split(".")
    elif field in _DOCUMENT_FIELDS:
        raise FilterError(f"Can't filter on the Document field {field!r}")
    else:
        # Haystack reads a field without "meta." that is not a Document field as a meta field
        # (legacy filters); do the same.
        parts = field.split(".")
    if any(not part or '"' in part or "'" in part for part in parts):
        raise FilterError(f"Invalid filter field {field!r}")
    if len(parts) == 1 and parts[0] in COLUMN_FIELDS:
        return parts[0]
    path = "$" + "".join(f'."{part}"' for part in parts)
    return f"json_extract(meta, '{path}')"


def _equal_sql(expr: str, value: Any) -> tuple[str, list[Any]]:
    """SQL that is 1 where ``expr == value`` in Haystack's sense, else 0 (never NULL)."""
    if value is None:
        return f"({expr} IS NULL)", []
    if isinstance(value, (list, dict)):
        # json_extract gives arrays/objects back as minified JSON text; json() minifies ours.
        return f"COALESCE({expr} = json(?), 0)", [json.dumps(value)]
    if isinstance(value, datetime | date):
        return f"COALESCE(docqa_epoch({expr}) = ?, 0)", [_epoch(value)]
    if isinstance(value, str):
        epoch = _iso_epoch(value)
        if epoch is not None:
            # Haystack treats two spellings of the same instant as equal.
            return f"COALESCE({expr} = ? OR docqa_epoch({expr}) = ?, 0)", [value, epoch]
        return f"COALESCE({expr} = ?, 0)", [value]
    if isinstance(value, (bool, int, float)):
        return f"COALESCE({expr} = ?, 0)", [value]
    raise FilterError(f"Unsupported filter value {value!r} of type {type(value).__name__}")


def _in_sql(expr: str, values: Any, operator: str) -> tuple[str, list[Any]]:
    if not isinstance(values, list):
        raise FilterError(
            f"Filter value must be a `list` when using operator '{operator}', "
            f"received type '{type(values).__name__}'"
        )
    scalars = [v for v in values if isinstance(v, (str, int, float))]
    others = [v for v in values if not isinstance(v, (str, int, float))]
    parts: list[str] = []
    params: list[Any] = []
    if scalars:
        parts.append(f"COALESCE({expr} IN ({', '.join('?' * len(scalars))}), 0)")
        params.extend(scalars)
    for value in others:
        sql, extra = _equal_sql(expr, value)
        parts.append(sql)
        params.extend(extra)
    return ("(" + " OR ".join(parts) + ")" if parts else "0"), params


def _ordering_sql(expr: str, operator: str, value: Any) -> tuple[str, list[Any]]:
    if value is None:
        return "0", []  # Haystack: nothing is ordered against None
    if isinstance(value, (list, tuple, dict, set)):
        raise FilterError(
            f"Filter value can't be of type {type(value).__name__} "
            "using operators '>', '>=', '<', '<='"
        )
    if isinstance(value, str):
        return f"COALESCE(docqa_epoch({expr}) {operator} ?, 0)", [_filter_date(value)]
    if isinstance(value, datetime | date):
        return f"COALESCE(docqa_epoch({expr}) {operator} ?, 0)", [_epoch(value)]
    if isinstance(value, (bool, int, float)):
        # Only numbers are ordered against numbers (SQLite would order any text above them).
        return (
            f"COALESCE(typeof({expr}) IN ('integer', 'real') AND {expr} {operator} ?, 0)",
            [value],
        )
    raise FilterError(f"Unsupported filter value {value!r} of type {type(value).__name__}")


def filter_to_sql(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """Translate a Haystack filter into an SQL condition over ``passages`` and its parameters.

    Every produced expression is 0 or 1, never NULL, so NOT / != / not in behave as in Haystack's
    Python implementation (a missing field is None: ``!=`` and ``not in`` match it).
    """
    if not isinstance(filters, dict):
        raise FilterError(f"A filter must be a dict, got {type(filters).__name__}")
    if "field" in filters:
        for key in ("operator", "value"):
            if key not in filters:
                raise FilterError(f"'{key}' key missing in {filters}")
        field, operator, value = filters["field"], filters["operator"], filters["value"]
        if not isinstance(field, str):
            raise FilterError(f"'field' must be a string in {filters}")
        op = operator.lower() if isinstance(operator, str) else operator
        if op not in _COMPARISON_OPERATORS:
            raise FilterError(
                f"Unknown comparison operator '{operator}'. "
                f"Valid operators are: {sorted(_COMPARISON_OPERATORS)}"
            )
        expr = _field_sql(field)
        if op == "==":
            return _equal_sql(expr, value)
        if op == "!=":
            sql, params = _equal_sql(expr, value)
            return f"(NOT {sql})", params
        if op == "in":
            return _in_sql(expr, value, op)
        if op == "not in":
            sql, params = _in_sql(expr, value, op)
            return f"(NOT {sql})", params
        return _ordering_sql(expr, op, value)

    if "operator" not in filters:
        raise FilterError(f"'operator' key missing in {filters}")
    if "conditions" not in filters:
        raise FilterError(f"'conditions' key missing in {filters}")
    operator, conditions = filters["operator"], filters["conditions"]
    op = operator.upper() if isinstance(operator, str) else operator
    if op not in _LOGICAL_OPERATORS:
        raise FilterError(
            f"Unknown logical operator '{operator}'. "
            f"Valid operators are: {sorted(_LOGICAL_OPERATORS)}"
        )
    if not isinstance(conditions, list):
        raise FilterError(f"'conditions' must be a list in {filters}")
    parts: list[str] = []
    params: list[Any] = []
    for condition in conditions:
        sql, extra = filter_to_sql(condition)
        parts.append(sql)
        params.extend(extra)
    if op == "OR":
        return ("(" + " OR ".join(parts) + ")" if parts else "0"), params
    conjunction = "(" + " AND ".join(parts) + ")" if parts else "1"
    return (f"(NOT {conjunction})" if op == "NOT" else conjunction), params


# -- helpers ------------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory holding it is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _connect_memory() -> sqlite3.Connection:
    # isolation_level=None: we open transactions ourselves (see PassageStore._transaction);
    # check_same_thread=False: the web app searches from several threads, serialized by a lock.
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.create_function("docqa_epoch", 1, _iso_epoch, deterministic=True)
    return db


def _meta_json(document: Document) -> str:
    try:
        return json.dumps(document.meta, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Document {document.id!r}: meta is not JSON-serializable ({exc})"
        ) from exc


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
        self._db = _connect_memory()
        self._db.executescript(_SCHEMA)
        # FAISS ids are never reused, so an id always names the same passage within a version.
        self._next_faiss_id = 0

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def exists(index_dir: Path) -> bool:
        """Whether ``index_dir`` holds a saved store (CURRENT pointing at a version folder)."""
        try:
            name = (Path(index_dir) / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return False
        return bool(_VERSION_RE.match(name)) and (Path(index_dir) / name).is_dir()

    @classmethod
    def load(cls, index_dir: Path, index: IndexSpec | None = None) -> PassageStore:
        """Load the version CURRENT names; StoreError if missing, unreadable or out of sync.

        ``index``: the index settings from now on (applied to the kind of index at the next
        save); None keeps those it was saved with.
        """
        index_dir = Path(index_dir)
        attempts = 3
        for attempt in range(attempts):
            name = cls._read_current(index_dir)
            try:
                store = cls._load_version(index_dir / name, index)
            except StoreError:
                # A save in another process may have moved CURRENT on and removed the version
                # we had just read the name of: read CURRENT again.
                if attempt + 1 < attempts and cls._read_current_or_none(index_dir) != name:
                    continue
                raise
            store.index_dir = index_dir
            return store
        raise AssertionError("unreachable")

    @staticmethod
    def _read_current_or_none(index_dir: Path) -> str | None:
        try:
            return (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    @classmethod
    def _read_current(cls, index_dir: Path) -> str:
        if not index_dir.is_dir():
            raise StoreError(f"{index_dir}: no index here (the folder does not exist)")
        name = cls._read_current_or_none(index_dir)
        if name is None:
            raise StoreError(f"{index_dir}: no index here ({CURRENT_FILE} is missing)")
        if not _VERSION_RE.match(name):
            raise StoreError(f"{index_dir / CURRENT_FILE}: does not name a version ({name!r})")
        return name

    @classmethod
    def _load_version(cls, folder: Path, spec: IndexSpec | None = None) -> PassageStore:
        if not folder.is_dir():
            raise StoreError(f"{folder}: the current index version is missing")
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            dim = int(manifest["dim"])
            expected = {key: int(manifest[key]) for key in ("vectors", "passages", "sources")}
            version = int(manifest["format_version"])
            index_section = manifest.get("index")  # absent in saves before the ANN indexes
            if not isinstance(index_section, dict | None):
                raise TypeError(f'"index" is a {type(index_section).__name__}')
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{folder}: unreadable {MANIFEST_FILE} ({exc})") from exc
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{folder}: index format {version}, this DocQA reads format {FORMAT_VERSION}"
            )

        vectors_path = folder / VECTORS_FILE
        try:
            index = faiss.read_index(str(vectors_path))
        except RuntimeError as exc:
            raise StoreError(f"{vectors_path}: unreadable FAISS index ({exc})") from exc
        inner_product = index.metric_type == faiss.METRIC_INNER_PRODUCT
        flat = isinstance(index, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(index.index), faiss.IndexFlat
        )
        if not flat or not inner_product:
            raise StoreError(f"{vectors_path}: not an IndexIDMap2 over an inner-product flat index")
        if index.d != dim:
            raise StoreError(f"{folder}: FAISS index has dim {index.d}, manifest says {dim}")

        passages_path = folder / PASSAGES_FILE
        db = _connect_memory()
        try:
            if not passages_path.is_file():
                raise sqlite3.DatabaseError("file is missing")
            source = sqlite3.connect(f"{passages_path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                source.backup(db)
            finally:
                source.close()
            (schema,) = db.execute("PRAGMA user_version").fetchone()
            if schema != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {schema}, expected {SCHEMA_VERSION}")
            (rows,) = db.execute("SELECT COUNT(*) FROM passages").fetchone()
            (n_sources,) = db.execute("SELECT COUNT(*) FROM sources").fetchone()
            sql_ids = np.fromiter(
                (
                    r[0]
                    for r in db.execute(
                        "SELECT faiss_id FROM passages WHERE has_embedding ORDER BY faiss_id"
                    )
                ),
                dtype=np.int64,
            )
            (max_id,) = db.execute("SELECT MAX(faiss_id) FROM passages").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(f"{passages_path}: unreadable passages database ({exc})") from exc

        faiss_ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
        problems = []
        if index.ntotal != expected["vectors"]:
            problems.append(
                f"FAISS has {index.ntotal} vectors, manifest says {expected['vectors']}"
            )
        if rows != expected["passages"]:
            problems.append(f"SQLite has {rows} passages, manifest says {expected['passages']}")
        if n_sources != expected["sources"]:
            problems.append(f"SQLite has {n_sources} sources, manifest says {expected['sources']}")
        if not np.array_equal(faiss_ids, sql_ids):
            only_faiss = np.setdiff1d(faiss_ids, sql_ids)
            only_sql = np.setdiff1d(sql_ids, faiss_ids)
            problems.append(
                f"FAISS ids and SQLite faiss_ids differ ({len(faiss_ids)} vs {len(sql_ids)}; "
                f"only in FAISS: {only_faiss[:5].tolist()}{'...' if len(only_faiss) > 5 else ''}, "
                f"only in SQLite: {only_sql[:5].tolist()}{'...' if len(only_sql) > 5 else ''})"
            )
        if problems:
            db.close()
            raise StoreError(
                f"{folder}: vectors and passages are out of sync: " + "; ".join(problems)
            )

        store = cls(embedding_dim=dim)
        store._db.close()
        store._db = db
        store._vectors = VectorIndex.restore(index, folder, index_section, spec)
        # Never reuse an id: removed passages may still be stale entries of an HNSW index.
        store._next_faiss_id = max(
            0 if max_id is None else int(max_id) + 1, store._vectors.max_id() + 1
        )
        logger.info(
            "Loaded %s: %d passages, %d sources, %s index",
            folder, rows, n_sources, store._vectors.kind,
        )  # fmt: skip
        return store

    def save(self, index_dir: Path) -> None:
        """Write a new version folder, then point CURRENT at it; the old version stays loadable.

        Steps: write ``v-<n>.tmp`` (vectors, database, manifest), fsync, rename to ``v-<n>``,
        replace CURRENT atomically, then remove all versions but the new and the previous one
        (and any ``.tmp`` left by a crashed save). A lock file keeps two saves from interleaving.
        """
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(index_dir / LOCK_FILE)), self._lock:
            previous = self._read_current_or_none(index_dir)
            numbers = [
                int(m.group(1)) for p in index_dir.iterdir() if (m := _ANY_VERSION_RE.match(p.name))
            ]
            name = f"v-{max(numbers, default=0) + 1:06d}"
            tmp = index_dir / f"{name}.tmp"
            tmp.mkdir()
            try:
                manifest = self._write_version(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)  # the next save would remove it anyway
                raise

            final = index_dir / name
            os.rename(tmp, final)
            _fsync_dir(index_dir)
            _write_atomic(index_dir / CURRENT_FILE, name + "\n")
            _fsync_dir(index_dir)
            self.index_dir = index_dir
            logger.info("Saved %s (%d passages)", final, manifest["passages"])

            keep = {name, previous}
            for path in index_dir.iterdir():
                if _ANY_VERSION_RE.match(path.name) and path.name not in keep:
                    shutil.rmtree(path, ignore_errors=True)

    def _write_version(self, folder: Path) -> dict[str, Any]:
        """Write vectors, passages and manifest into ``folder`` and fsync them; the manifest.

        First (re)builds the IVF/HNSW index if the collection outgrew it (see
        :meth:`VectorIndex.maintain`), so saves are where training happens.
        """
        self._vectors.maintain()
        # The CPU indexes are written (GPU copies are only search mirrors).
        index_section, vector_files = self._vectors.write(folder, VECTORS_FILE)
        target = sqlite3.connect(folder / PASSAGES_FILE)
        try:
            self._db.backup(target)
        finally:
            target.close()
        manifest = {
            "format_version": FORMAT_VERSION,
            "dim": self.embedding_dim,
            "metric": "inner_product",
            "vectors": self._vectors.ntotal,
            "passages": self.count_documents(),
            "sources": self._scalar("SELECT COUNT(*) FROM sources"),
            "index": index_section,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for file_name in (*vector_files, PASSAGES_FILE, MANIFEST_FILE):
            _fsync_file(folder / file_name)
        _fsync_dir(folder)
        return manifest

    def close(self) -> None:
        """Release the in-memory database and the GPU copy; the store is unusable afterwards."""
        with self._lock:
            self._vectors.close()
            self._db.close()

    # -- vector index -----------------------------------------------------------------------

    @property
    def index_spec(self) -> IndexSpec:
        return self._vectors.spec

    def set_index_spec(self, spec: IndexSpec) -> None:
        """New index settings: search parameters apply now, the kind of index at the next save
        (or :meth:`rebuild_index`)."""
        with self._lock:
            self._vectors.set_spec(spec)

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
        with self._lock:
            return self._vectors.ntotal

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Passages matching Haystack ``filters`` (all when None/empty), in insertion order,
        with their embeddings."""
        where, params = self._where(filters)
        with self._lock:
            rows = self._db.execute(
                "SELECT faiss_id, id, content, meta, has_embedding FROM passages"
                f" WHERE {where} ORDER BY faiss_id",
                params,
            ).fetchall()
            return self._documents(rows, with_embedding=True)

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
                " indexed_at, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(doc_id) DO UPDATE SET source=excluded.source, path=excluded.path,"
                " title=excluded.title, file_type=excluded.file_type, sha256=excluded.sha256,"
                " size=excluded.size, mtime=excluded.mtime, indexed_at=excluded.indexed_at,"
                " text=excluded.text",
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
        " s.indexed_at, (SELECT COUNT(*) FROM passages p WHERE p.doc_id = s.doc_id) FROM sources s"
    )

    def sources(self) -> list[SourceRecord]:
        """All source documents, sorted by their displayed path."""
        with self._lock:
            rows = self._db.execute(self._SOURCE_SELECT + " ORDER BY s.source, s.doc_id").fetchall()
        return [SourceRecord(*row) for row in rows]

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
    ) -> list[Document]:
        """The ``top_k`` passages with the highest inner product with the query, best first.

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
            allowed = None
            if filters:
                where, params = self._where(filters)
                allowed = np.fromiter(
                    (
                        r[0]
                        for r in self._db.execute(
                            f"SELECT faiss_id FROM passages WHERE has_embedding AND {where}", params
                        )
                    ),
                    dtype=np.int64,
                )
                if len(allowed) == 0:
                    return []
            # Filtered searches run on the CPU (GPU indexes ignore IDSelectors); see faiss_index.
            scores, ids = self._vectors.search(query, top_k, allowed)
            hits = [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
            by_id: dict[int, tuple[Any, ...]] = {}
            for chunk in _chunks([i for i, _ in hits]):
                for row in self._db.execute(
                    "SELECT faiss_id, id, content, meta, has_embedding FROM passages"
                    f" WHERE faiss_id IN ({', '.join('?' * len(chunk))})",
                    list(chunk),
                ):
                    by_id[row[0]] = row
            rows = [by_id[i] for i, _ in hits]
            return self._documents(
                rows, with_embedding=return_embedding, scores=[score for _, score in hits]
            )

    # -- internals --------------------------------------------------------------------------

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
        for chunk in _chunks(unique):
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
            rows.append((doc.id, doc.content, _meta_json(doc), int(doc.embedding is not None)))
        stacked = np.vstack(vectors) if vectors else None
        return rows, stacked

    def _delete_rows(self, column: str, values: Sequence[str]) -> np.ndarray:
        """Delete passages whose ``column`` is in ``values``; the FAISS ids to remove."""
        assert column in ("id", "doc_id")
        removed: list[int] = []
        for chunk in _chunks(list(values)):
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
