"""Index versions on disk: the only code that reads or writes ``CURRENT``, the one atomic-write
helper, and the locks.

Layout of an ``index_dir``::

    CURRENT             "v-000007": the version to load
    .lock               held while a version is saved (two saves never interleave)
    v-000006/           the previous version, kept so that a reader that just read CURRENT
                        can still open it
    v-000007/           the current version (the store writes its files: vectors, passages,
                        manifest)

A save writes ``v-<n>.tmp``, fsyncs it, renames it to ``v-<n>``, then replaces ``CURRENT``
atomically; a crash at any point leaves the previous version loadable. Writers of the index
(the indexer, uploads, removals) also hold :func:`writer_lock` in the data home, so that only one
of them changes the collection at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from haystack.document_stores.errors import DocumentStoreError

CURRENT_FILE = "CURRENT"
SAVE_LOCK_FILE = ".lock"
WRITER_LOCK_FILE = "index.lock"  # in the data home
_VERSION_RE = re.compile(r"^v-(\d+)$")
_ANY_VERSION_RE = re.compile(r"^v-(\d+)(\.tmp)?$")


class StoreError(DocumentStoreError):
    """The index on disk is missing, unreadable or inconsistent; the message names the folder."""


class IndexLockedError(StoreError):
    """Another process is changing the index (it holds the writer lock); nothing was written."""


# -- durable files ----------------------------------------------------------------------------


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory holding it is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half:
    a temporary file beside it, flushed to disk, then renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- CURRENT ------------------------------------------------------------------------------------


def current_version(index_dir: Path) -> str | None:
    """The version ``CURRENT`` names, or None when there is none (no index, or a bad pointer)."""
    try:
        name = (Path(index_dir) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name if _VERSION_RE.match(name) else None


def require_current_version(index_dir: Path) -> str:
    """The version ``CURRENT`` names; :class:`StoreError` saying what is wrong otherwise."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise StoreError(f"{index_dir}: no index here (the folder does not exist)")
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        raise StoreError(f"{index_dir}: no index here ({CURRENT_FILE} is missing)") from None
    if not _VERSION_RE.match(name):
        raise StoreError(f"{index_dir / CURRENT_FILE}: does not name a version ({name!r})")
    return name


def has_index(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds a saved index (CURRENT naming an existing version folder)."""
    name = current_version(index_dir)
    return name is not None and (Path(index_dir) / name).is_dir()


def current_folder(index_dir: Path) -> Path | None:
    """The folder of the version ``CURRENT`` names, or None."""
    name = current_version(index_dir)
    return Path(index_dir) / name if name else None


@contextmanager
def new_version(index_dir: Path) -> Iterator[Path]:
    """A fresh ``v-<n>.tmp`` folder to write a version into; on leaving without error it becomes
    ``v-<n>``, ``CURRENT`` names it, and every other version but the previous one is removed.

    Holds the index's save lock throughout, so two saves never interleave. An error inside
    removes the temporary folder and leaves ``CURRENT`` as it was.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(index_dir / SAVE_LOCK_FILE)):
        previous = current_version(index_dir)
        numbers = [
            int(m.group(1)) for p in index_dir.iterdir() if (m := _ANY_VERSION_RE.match(p.name))
        ]
        name = f"v-{max(numbers, default=0) + 1:06d}"
        tmp = index_dir / f"{name}.tmp"
        tmp.mkdir()
        try:
            yield tmp
            os.rename(tmp, index_dir / name)
            fsync_dir(index_dir)
            write_atomic(index_dir / CURRENT_FILE, name + "\n")
            fsync_dir(index_dir)
        except (OSError, sqlite3.Error) as exc:
            # A full disk or a quota: the half-written version goes, CURRENT is untouched.
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(
                f"{index_dir}: could not save the index ({exc}; is the disk full?); "
                "the last saved version is unchanged"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # the next save would remove it anyway
            raise
        keep = {name, previous}
        for path in index_dir.iterdir():
            if _ANY_VERSION_RE.match(path.name) and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


# -- the writer lock ----------------------------------------------------------------------------


@contextmanager
def writer_lock(home: Path) -> Iterator[None]:
    """Hold the data home's writer lock, or raise :class:`IndexLockedError` at once when another
    process (an indexer, an upload) holds it."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home / WRITER_LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        path = home / WRITER_LOCK_FILE
        raise IndexLockedError(f"another indexer is running (lock: {path})") from None
    try:
        yield
    finally:
        lock.release()


def writer_lock_free(home: Path) -> None:
    """Raise :class:`IndexLockedError` now if another process holds the writer lock (to fail
    before doing work that would have to wait for it)."""
    with writer_lock(home):
        pass
