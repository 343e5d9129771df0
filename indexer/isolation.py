"""Convert files in a child process with a time and a memory limit per file.

A PDF or ZIP bomb, a 100,000-page PDF or a pathological HTML file can hang a parser for hours or
take all memory; in-process there is no way to stop a C parser or to cap its memory without
capping the whole indexer (and ``signal.alarm`` works only on the main thread, which Streamlit's
scripts are not on). So conversion runs in one long-lived child process, whose address space is
capped with ``RLIMIT_AS``; a file that runs past the time limit gets the child killed and
restarted. Either way the file is reported as failed with why, and the run goes on.

The child is ``python -m indexer.isolation`` talking over a socket pair, not a multiprocessing
``spawn``: that would re-run the caller's main script in the child, which breaks any script that
calls the indexer without an ``if __name__ == "__main__"`` guard (and ``fork`` would copy the
parent's torch threads). If the child cannot start, files are converted in-process, unbounded,
with a warning.

The worker is shared by the runs of one process (the page indexes uploads many times) and
restarted when its limits change or it died. While a long file converts, the child sends its
OCR progress ("page 12 of 80") ahead of the result, for the caller's progress bar.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from indexer.convert import convert_file
from indexer.document import ConversionError, ConvertedDocument

logger = logging.getLogger(__name__)


# A child's message ahead of a file's result: (_PROGRESS, pages done, pages to read).
_PROGRESS = "progress"
Progress = Callable[[int, int], None]


class WorkerUnavailableError(RuntimeError):
    """The child process could not be started."""


@dataclass(frozen=True)
class ConversionLimits:
    """Per-file bounds; ``None`` turns one off."""

    seconds: float | None = 120.0
    memory_mb: int | None = 4096
    file_mb: int | None = 512


# Imported before the child says it is ready, so a file's time limit never pays for them.
_CONVERTER_MODULES = (
    "pypdf", "docx", "bs4", "lxml", "markdown_it", "charset_normalizer", "pptx", "openpyxl",
)  # fmt: skip


def _serve(conn: Connection, memory_mb: int | None) -> None:
    """The child: convert each path received, send back the document or the error."""
    import importlib

    for module in _CONVERTER_MODULES:
        importlib.import_module(module)
    if memory_mb:
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):  # not Linux: the time limit still holds
            pass
    from indexer.formats.ocr import PAGE_PROGRESS

    PAGE_PROGRESS.set(lambda done, total: conn.send((_PROGRESS, done, total)))
    conn.send("ready")
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        try:
            result: Any = convert_file(path)
        except ConversionError as exc:
            result = ("error", str(exc.path), exc.reason)
        except MemoryError:
            result = ("error", str(path), f"needs more than {memory_mb} MB to convert")
        try:
            conn.send(result)
        except MemoryError:
            conn.send(("error", str(path), f"needs more than {memory_mb} MB to convert"))


class ConversionWorker:
    """One child process converting files one at a time under :class:`ConversionLimits`."""

    def __init__(self, limits: ConversionLimits) -> None:
        self.limits = limits
        self._process: Any = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = socket.socketpair()
        # The child imports this package the way the parent did, wherever it was run from.
        path = os.pathsep.join(p for p in sys.path if p)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "indexer.isolation", str(child.fileno()),
                 str(self.limits.memory_mb or 0)],
                pass_fds=(child.fileno(),),
                env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child.close()
        self._conn = Connection(parent.detach())
        # Starting Python and importing the parsers is not the first file's time.
        try:
            ready = self._conn.poll(_START_SECONDS) and self._conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.close()
            raise WorkerUnavailableError("the conversion worker did not start")

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def convert(self, path: Path, on_progress: Progress | None = None) -> ConvertedDocument:
        """Like :func:`convert_file`, bounded; raises :class:`ConversionError`.
        ``on_progress(done, total)``: the pages OCR'd so far, as the child reports them."""
        path = Path(path)
        if self.limits.file_mb is not None:
            try:
                size = path.stat().st_size
            except OSError:
                size = 0  # convert_file reports the problem
            if size > self.limits.file_mb * 1024 * 1024:
                raise ConversionError(
                    path, f"larger than the {self.limits.file_mb} MB limit for one file"
                )
        if not self._alive():
            self._start()
        assert self._conn is not None
        self._conn.send(path)
        limit = self.limits.seconds
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not self._conn.poll(left):
                self.close()
                raise ConversionError(
                    path, f"took longer than {self.limits.seconds:g} s to convert (stopped)"
                )
            try:
                result = self._conn.recv()
            except (EOFError, OSError):
                code = self._process.poll() if self._process is not None else None
                self.close()
                raise ConversionError(path, f"the converter crashed (exit code {code})") from None
            if not (isinstance(result, tuple) and result[0] == _PROGRESS):
                break
            if on_progress is not None:
                on_progress(result[1], result[2])
        if isinstance(result, tuple):
            _, failed, reason = result
            raise ConversionError(failed, reason)
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=30)
            self._process = None


_START_SECONDS = 120.0
_LOCK = threading.Lock()
_WORKERS: dict[ConversionLimits, ConversionWorker] = {}


def convert_bounded(
    path: Path, limits: ConversionLimits, on_progress: Progress | None = None
) -> ConvertedDocument:
    """Convert ``path`` in the shared worker for ``limits`` (one file at a time per process);
    ``on_progress(done, total)`` hears of each page OCR'd."""
    with _LOCK:
        worker = _WORKERS.get(limits)
        if worker is None:
            for old in _WORKERS.values():
                old.close()
            _WORKERS.clear()
            worker = _WORKERS[limits] = ConversionWorker(limits)
        try:
            return worker.convert(path, on_progress)
        except WorkerUnavailableError:
            logger.warning("converting %s in-process, without time or memory limits", path)
            from indexer.formats.ocr import PAGE_PROGRESS

            token = PAGE_PROGRESS.set(on_progress)
            try:
                return convert_file(path)
            finally:
                PAGE_PROGRESS.reset(token)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]) or None)
