"""``docqa index FOLDER --watch`` (indexer/watch.py): a running watcher picks up added, changed
and deleted files, ignores what cannot change the index (hidden files, other types, its own
home inside the folder) and stops on Ctrl+C with the index saved."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import watchfiles

from indexer.run import plan_index
from indexer.watch import IndexedFileChanges
from pipelines.settings import REPO_ROOT, Settings


class Lines:
    """A child's output lines, read in the background so a test can wait for one."""

    def __init__(self, stream: object) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def next_matching(self, predicate: object, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if predicate(line):  # type: ignore[operator]
                return line
        raise AssertionError(f"no such line within {timeout} s; seen: {self.seen}")

    def quiet_for(self, seconds: float) -> list[str]:
        """The lines that came within ``seconds`` (none is what a quiet watcher prints)."""
        time.sleep(seconds)
        came = []
        while not self.lines.empty():
            came.append(self.lines.get())
        self.seen += came
        return came


def _next_run(stdout: Lines, timeout: float = 120) -> tuple[int, int, int]:
    """(added, updated, removed) of the watcher's next run (one JSON line each)."""
    run = json.loads(stdout.next_matching(lambda line: line.startswith("{"), timeout=timeout))
    return run["added"], run["updated"], run["removed"]


def _as_started_from_a_shell() -> None:
    """Ctrl+C reaches the child as it would from a terminal: a test run's worker process can
    hold SIGINT ignored or blocked (both are inherited), and the watcher then never stops."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_watcher_indexes_added_changed_and_deleted_files_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.txt").write_text("The cafeteria opens at 8 am on weekdays.\n", "utf-8")
    home = docs / "docqa-home"  # inside the watched folder: its own saves must not loop
    command = ["index", str(docs), "--home", str(home), "--watch", "--json", "--no-progress"]
    child = subprocess.Popen(
        [sys.executable, "-m", "docqa", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | {"PYTHONFAULTHANDLER": "1"},
        preexec_fn=_as_started_from_a_shell,
    )
    stdout, stderr = Lines(child.stdout), Lines(child.stderr)
    try:
        assert _next_run(stdout) == (1, 0, 0)
        stderr.next_matching(lambda line: line.startswith("watching "), timeout=30)
        # The watch starts just after it says so: on a busy machine the first file may come
        # before it, so it is written again until a run picks it up.
        parking = docs / "parking.md"
        for attempt in range(1, 7):
            parking.write_text(f"# Parking\n\nVisitors park on level {attempt}.\n", "utf-8")
            try:
                first = _next_run(stdout, timeout=10)
                break
            except AssertionError:
                continue
        assert first == (1, 0, 0)
        (docs / "hours.txt").write_text("The cafeteria opens at 7 am on weekdays.\n", "utf-8")
        assert _next_run(stdout) == (0, 1, 0)
        parking.unlink()
        assert _next_run(stdout) == (0, 0, 1)
        # Nothing that can change the index: no run, and the runs' own saves started none.
        (docs / ".draft.txt").write_text("not yet\n", "utf-8")
        (docs / "notes.xyz").write_text("not a document type\n", "utf-8")
        assert stdout.quiet_for(5.0) == []

        child.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            assert child.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGABRT)  # faulthandler prints where each thread is
            child.wait(timeout=30)
            raise AssertionError(
                "still running 60 s after Ctrl+C:\n" + "\n".join(stderr.quiet_for(2.0))
            ) from None
        stderr.next_matching(lambda line: line.startswith("stopped watching"), timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    # The saved index is the folder as it is now: nothing left to add, update or remove.
    plan = plan_index([docs], Settings(home=home))
    assert (plan.added, plan.updated, plan.removed, plan.unchanged) == ([], [], [], 1)


def test_only_events_that_can_change_the_index_count(tmp_path: Path) -> None:
    root, home = tmp_path / "docs", tmp_path / "docs" / "home"
    changes = IndexedFileChanges([root], ignore=[home])
    added, deleted = watchfiles.Change.added, watchfiles.Change.deleted
    assert changes(added, str(root / "hr" / "policy.pdf"))
    assert changes(watchfiles.Change.modified, str(root / "Slides.PPTX"))
    assert changes(deleted, str(root / "hr"))  # a deleted folder: its files leave the index
    assert not changes(added, str(root / "notes.xyz"))
    assert not changes(added, str(root / ".drafts" / "policy.pdf"))
    assert not changes(added, str(home / "index" / "passages.sqlite"))
    assert not changes(deleted, str(home / "index"))
    # A watched folder below a hidden one is watched as any other.
    hidden_parent = IndexedFileChanges([tmp_path / ".config" / "docs"])
    assert hidden_parent(added, str(tmp_path / ".config" / "docs" / "a.txt"))
