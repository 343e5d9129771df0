"""Keep an index current as files change: ``docqa index FOLDER --watch``.

The file events come from watchfiles (the Rust ``notify`` crate; uvicorn's reloader uses it),
which debounces them: a batch is reported once the folders have been quiet for ``debounce_ms``,
so an editor's save or a copied folder is one run, not one per file. Each batch runs one
incremental indexing (``run_index``: new, changed and deleted files only, checkpointed and saved
atomically as a plain ``docqa index``), so an interrupted run, Ctrl+C included, leaves the last
saved version. Only events that can change the index count: files of a supported type that are
not hidden, and deletions (a deleted folder's files); DocQA's own data (``ignore``: the home
when it lies inside a watched folder) never triggers a run, or every save would start another.

A run that fails (a store that cannot be loaded, a vanished folder) is reported and the watch
goes on; a run refused because another indexer holds the index's lock (the page's upload) is
tried again every ``retry_seconds`` until it runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import watchfiles

from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.prepare import IndexingError
from pipelines.store import StoreError
from pipelines.store.versions import IndexLockedError

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 1600
RETRY_SECONDS = 5.0


class IndexedFileChanges(watchfiles.DefaultFilter):
    """The events that can change the index (watchfiles' default filter also drops editors'
    swap files, ``.git`` and ``__pycache__``)."""

    def __init__(self, roots: Sequence[Path], ignore: Sequence[Path] = ()) -> None:
        super().__init__()
        self.roots = [Path(p).resolve() for p in roots]
        self.ignore = [Path(p).resolve() for p in ignore]

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        file = Path(path)
        if any(file == folder or folder in file.parents for folder in self.ignore):
            return False
        root = next((r for r in self.roots if r == file or r in file.parents), None)
        inside = file.relative_to(root).parts if root is not None else file.parts[-1:]
        if any(part.startswith(".") for part in inside):
            return False  # discovery ignores hidden files and folders
        return change == watchfiles.Change.deleted or file.suffix.lower() in SUPPORTED_EXTENSIONS


def watch_and_index(
    paths: Sequence[Path],
    run_index: Callable[[], object],
    *,
    ignore: Sequence[Path] = (),
    debounce_ms: int = DEBOUNCE_MS,
    retry_seconds: float = RETRY_SECONDS,
    stop_event: threading.Event | None = None,
) -> Iterator[object]:
    """Run ``run_index`` after every batch of changes under ``paths``; yields what each run
    returned, or the error (:class:`IndexingError`, ``StoreError``) of a run that failed.
    Ends when ``stop_event`` is set; Ctrl+C raises ``KeyboardInterrupt`` as usual."""
    pending = False
    for changes in watchfiles.watch(
        *paths,
        watch_filter=IndexedFileChanges(paths, ignore),
        debounce=debounce_ms,
        stop_event=stop_event,
        rust_timeout=int(retry_seconds * 1000),
        yield_on_timeout=True,  # an empty batch every retry_seconds: a locked run is retried
    ):
        if changes:
            logger.info("%d changes under the watched folders", len(changes))
            pending = True
        if not pending:
            continue
        try:
            result = run_index()
        except IndexLockedError as exc:
            logger.info("%s: trying again in %.0f s", exc, retry_seconds)
            continue
        except (IndexingError, StoreError) as exc:
            pending = False
            yield exc
            continue
        pending = False
        yield result


__all__ = ["DEBOUNCE_MS", "IndexedFileChanges", "watch_and_index"]
