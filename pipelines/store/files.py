"""The files of one index version: reading them with every consistency check, writing them
durably.

A version folder holds ``vectors.faiss`` (``IndexIDMap2`` over an inner-product flat index: the
exact vectors, the master copy), ``ann.faiss`` for large collections (the IVF or HNSW index
derived from it), ``passages.sqlite`` (tables ``sources`` and ``passages``) and
``manifest.json`` (format version, dim, counts, the index kind). Loading checks the manifest
against both files and that FAISS ids and SQLite rows are the same set.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from haystack.dataclasses import Document

from pipelines.faiss_index import VectorIndex
from pipelines.store.sql_filters import COLUMN_FIELDS, iso_epoch
from pipelines.store.versions import StoreError, fsync_dir, fsync_file

FORMAT_VERSION = 1
# SQLite schema version, kept in PRAGMA user_version so a file from another format is refused.
# 2: sources.text_format (read_version migrates a version-1 file in memory).
SCHEMA_VERSION = 2
VECTORS_FILE = "vectors.faiss"
PASSAGES_FILE = "passages.sqlite"
MANIFEST_FILE = "manifest.json"


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
    text TEXT NOT NULL,
    text_format TEXT NOT NULL DEFAULT ''  -- how text and passages were made (indexer)
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


def connect_memory() -> sqlite3.Connection:
    # isolation_level=None: we open transactions ourselves (see PassageStore._transaction);
    # check_same_thread=False: the web app searches from several threads, serialized by a lock.
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    # A removed document's text is overwritten, not left in free pages that the backup into a
    # version folder would copy to disk (not every SQLite build does this by default).
    db.execute("PRAGMA secure_delete = ON")
    db.create_function("docqa_epoch", 1, iso_epoch, deterministic=True)
    return db


def empty_database() -> sqlite3.Connection:
    """A new in-memory passages database with the current schema."""
    db = connect_memory()
    db.executescript(_SCHEMA)
    return db


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
    # The converter and splitter settings its text and passages were made with
    # (indexer.prepare.passage_format); "" in indexes saved before it was recorded.
    text_format: str = ""


def meta_json(document: Document) -> str:
    try:
        return json.dumps(document.meta, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Document {document.id!r}: meta is not JSON-serializable ({exc})"
        ) from exc


@dataclass
class VersionContents:
    """What :func:`read_version` read and checked: the FAISS master index and an in-memory copy
    of the passages database."""

    dim: int
    index: Any  # faiss.IndexIDMap2
    index_section: dict[str, Any] | None
    db: sqlite3.Connection
    passages: int
    sources: int
    next_id: int  # the smallest FAISS id never used


def read_version(folder: Path) -> VersionContents:
    """Read a version folder; :class:`StoreError` naming the file and the problem otherwise."""
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
    db = connect_memory()
    try:
        if not passages_path.is_file():
            raise sqlite3.DatabaseError("file is missing")
        source = sqlite3.connect(f"{passages_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            source.backup(db)
        finally:
            source.close()
        (schema,) = db.execute("PRAGMA user_version").fetchone()
        if schema == 1:  # the in-memory copy only: the file changes at the next save
            db.executescript(
                "ALTER TABLE sources ADD COLUMN text_format TEXT NOT NULL DEFAULT '';"
                f"PRAGMA user_version = {SCHEMA_VERSION};"
            )
            schema = SCHEMA_VERSION
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
        problems.append(f"FAISS has {index.ntotal} vectors, manifest says {expected['vectors']}")
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
        raise StoreError(f"{folder}: vectors and passages are out of sync: " + "; ".join(problems))
    return VersionContents(
        dim=dim,
        index=index,
        index_section=index_section,
        db=db,
        passages=rows,
        sources=n_sources,
        next_id=0 if max_id is None else int(max_id) + 1,
    )


def write_version(
    folder: Path,
    db: sqlite3.Connection,
    vectors: VectorIndex,
    dim: int,
    passages: int,
    sources: int,
) -> dict[str, Any]:
    """Write vectors, passages and manifest into ``folder`` and fsync them; the manifest."""
    # The CPU indexes are written (GPU copies are only search mirrors).
    index_section, vector_files = vectors.write(folder, VECTORS_FILE)
    target = sqlite3.connect(folder / PASSAGES_FILE)
    try:
        db.backup(target)
    finally:
        target.close()
    manifest = {
        "format_version": FORMAT_VERSION,
        "dim": dim,
        "metric": "inner_product",
        "vectors": vectors.ntotal,
        "passages": passages,
        "sources": sources,
        "index": index_section,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for file_name in (*vector_files, PASSAGES_FILE, MANIFEST_FILE):
        fsync_file(folder / file_name)
    fsync_dir(folder)
    return manifest
