"""Crash safety of `docqa index`: killed with SIGKILL, the last saved index survives intact.

The indexer runs as a real subprocess (``python -m docqa index``) over a copy of eight demo
documents and is killed with ``kill -9`` at a point observed from outside (the index's CURRENT
file appearing, or the run's "to index" log line), never after a blind sleep. Also: a web page
that loaded the index keeps answering from it while a re-index runs, and switches when the new
version is saved.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.run import IndexSummary, index_folder
from pipelines.embedder import PassageEmbedder
from pipelines.query import QueryService
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import CURRENT_FILE, PassageStore
from tests.conftest import copy_demo_files

FIXTURES = REPO_ROOT / "tests" / "fixtures"
# Small documents of four types (about 40 passages): enough files for several checkpoints,
# little enough embedding for a 2-core machine.
SUBSET = (
    "it/backup-restore-runbook-v1.docx",
    "it/office-network-and-wifi.txt",
    "releases/beacon-firmware-4.0-release-notes.docx",
    "releases/beacon-firmware-4.1-release-notes.txt",
    "releases/beacon-firmware-4.2-release-notes.md",
    "releases/beacon-firmware-4.3-release-notes.txt",
    "releases/lumen-cloud-2024-release-notes.html",
    "releases/lumenctl-changelog.md",
)
WAIT_S = 1200.0  # generous for a busy machine: each wait ends as soon as its event happens


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_demo_files(SUBSET, tmp_path_factory.mktemp("crash") / "documents")


@pytest.fixture(scope="module")
def clean(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A clean, uninterrupted full index of the collection (the reference)."""
    settings = Settings(home=tmp_path_factory.mktemp("clean") / "home")
    summary = index_folder([collection], settings, progress=False)
    assert summary.added == len(SUBSET) and not summary.failed, summary.describe()
    return settings


class IndexProcess:
    """`python -m docqa -v index ...` in a subprocess, its stderr lines collected by a thread."""

    def __init__(self, docs: Path, home: Path, *options: str) -> None:
        env = os.environ | {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HAYSTACK_TELEMETRY_ENABLED": "False",
            "TOKENIZERS_PARALLELISM": "false",
        }
        cmd = [sys.executable, "-m", "docqa", "-v", "index", str(docs), "--home", str(home),
               "--no-progress", *options]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        """Poll ``condition`` until true; fail if the process ends first or it takes too long."""
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"the indexer ended (exit {self.proc.returncode}) before {what}:\n"
                            + "\n".join(self.lines[-30:]))  # fmt: skip
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {what} after {WAIT_S:.0f} s:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.01)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, as a power cut or the OOM killer would do."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(5)


def passages_of(store: PassageStore) -> list[tuple[str, int, str]]:
    """(source, passage index, text) of every passage: what a query can retrieve."""
    return sorted(
        (doc.meta["source"], doc.meta["passage_index"], doc.content or "")
        for doc in store.filter_documents()
    )


def assert_consistent(store: PassageStore) -> None:
    """FAISS and SQLite agree, and every stored file has all of its passages."""
    assert store.count_vectors() == store.count_documents()
    for record in store.sources():
        stored = store.filter_documents(
            {"field": "meta.doc_id", "operator": "==", "value": record.doc_id}
        )
        assert len(stored) == record.passages > 0, record.source
        assert all(doc.embedding is not None for doc in stored)


def version_files(index_dir: Path) -> dict[str, str]:
    """sha256 of CURRENT and of every file of the version it names."""
    current = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    files = {CURRENT_FILE: current}
    for path in sorted((index_dir / current).iterdir()):
        files[f"{current}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_kill_after_a_checkpoint_keeps_it_and_the_next_run_completes(
    collection: Path, clean: Settings, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    current = settings.index_dir / CURRENT_FILE
    run = IndexProcess(collection, settings.home, "--checkpoint-every", "1")
    run.wait_for("a first checkpoint", current.exists)
    assert run.proc.poll() is None, "the run ended before it could be killed"
    run.kill()
    assert run.proc.returncode == -signal.SIGKILL

    store = PassageStore.load(settings.index_dir)
    assert_consistent(store)
    saved = {record.source for record in store.sources()}
    assert 1 <= len(saved) < len(SUBSET), "killed after the first checkpoint, before the end"

    # The next run indexes only what the killed run had not saved, and ends where a clean,
    # uninterrupted run does: same passages, none twice, none missing.
    summary: IndexSummary = index_folder([collection], settings, progress=False)
    assert (summary.added, summary.updated, summary.removed) == (len(SUBSET) - len(saved), 0, 0)
    assert summary.unchanged == len(saved) and not summary.failed
    reference = PassageStore.load(clean.index_dir)
    assert summary.total_documents == len(SUBSET)
    assert summary.total_passages == reference.count_documents()
    resumed = PassageStore.load(settings.index_dir)
    assert_consistent(resumed)
    assert passages_of(resumed) == passages_of(reference)


def test_kill_before_any_checkpoint_leaves_the_older_index_unchanged(
    collection: Path, clean: Settings, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(clean.home, home)
    settings = Settings(home=home)
    before = version_files(settings.index_dir)

    # --full re-embeds every file; no checkpoint before the end of the run.
    run = IndexProcess(collection, home, "--full", "--checkpoint-every", "1000")
    run.wait_for("the 'to index' log line", lambda: run.logged("to index: "))
    # While the run works, the last good index is what a reader loads.
    during = PassageStore.load(settings.index_dir)
    assert during.count_documents() == PassageStore.load(clean.index_dir).count_documents()
    assert run.proc.poll() is None, "the run ended before it could be killed"
    run.kill()
    assert run.proc.returncode == -signal.SIGKILL
    assert not run.logged("saved the index"), "\n".join(run.lines)

    assert version_files(settings.index_dir) == before
    store = PassageStore.load(settings.index_dir)
    assert_consistent(store)
    assert passages_of(store) == passages_of(PassageStore.load(clean.index_dir))
    again = index_folder([collection], settings, progress=False)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, len(SUBSET))


def test_service_answers_from_the_old_index_while_a_reindex_runs(
    tmp_path: Path, tiny_reader: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    settings = Settings(home=tmp_path / "home", reader_model=str(tiny_reader))
    index_folder([docs], settings, progress=False)
    service = QueryService(settings)
    assert service.retrieve("When is the office open?", top_k=1)[0].meta["source"] == (
        "docs/onboarding.md"
    )
    old_version = (settings.index_dir / CURRENT_FILE).read_text(encoding="utf-8")

    # Look at the service from inside the re-index, while the new file is being embedded
    # (the indexer holds its lock and has saved nothing yet).
    seen: dict[str, object] = {}
    embed = PassageEmbedder.run

    @functools.wraps(embed)
    def embed_and_look(self: PassageEmbedder, documents: list) -> dict:
        seen["reloaded"] = service.refresh()
        seen["answers"] = service.ask("When is the office open?", top_k_passages=2)
        seen["sources"] = {record.source for record in service.store.sources()}
        return embed(self, documents)

    monkeypatch.setattr(PassageEmbedder, "run", embed_and_look)
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    summary = index_folder([docs], settings, progress=False)
    assert summary.added == 1

    assert seen["reloaded"] is False
    assert seen["sources"] == {"docs/onboarding.md"}
    answers = seen["answers"]
    assert isinstance(answers, list) and answers  # it answered, from the old index only
    assert {a.document for a in answers if a.answer is not None} <= {"docs/onboarding.md"}

    assert (settings.index_dir / CURRENT_FILE).read_text(encoding="utf-8") != old_version
    assert service.refresh() is True  # CURRENT moved on: the service switches
    assert service.retrieve("When is the office open?", top_k=1)[0].meta["source"] == (
        "docs/opening-hours.txt"
    )
