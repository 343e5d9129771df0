"""The passage store: FAISS vectors and SQLite passages, saved together as atomic versions.

:class:`PassageStore` (a Haystack ``DocumentStore``) is the store itself; filters become SQL in
:mod:`pipelines.store.sql_filters`; :mod:`pipelines.store.versions` owns the folder layout
(``CURRENT``, version folders, the atomic write, the locks).
"""

from pipelines.store.files import MANIFEST_FILE, PASSAGES_FILE, VECTORS_FILE, SourceRecord
from pipelines.store.passage_store import PassageStore
from pipelines.store.sql_filters import filter_to_sql
from pipelines.store.versions import (
    CURRENT_FILE,
    IndexLockedError,
    StoreError,
    current_folder,
    current_version,
    write_atomic,
    writer_lock,
)

__all__ = [
    "CURRENT_FILE",
    "MANIFEST_FILE",
    "PASSAGES_FILE",
    "VECTORS_FILE",
    "IndexLockedError",
    "PassageStore",
    "SourceRecord",
    "StoreError",
    "current_folder",
    "current_version",
    "filter_to_sql",
    "write_atomic",
    "writer_lock",
]
