"""Backups of a home in use, and interrupted ones (on ``full_home``, tests/pipelines/conftest.py):
backups taken while another process re-indexes and ten askers ask restore to a home that loads
and answers as the home did at the version the archive names, with the same keys, users, rules
and labels; ``kill -9`` of a backup or of a restore leaves the home as it was, still answering,
and the next run works."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from api.keys import KeyStore
from identity import AccessRules, UserStore
from pipelines.operations.backup import backup_home, restore_home, verify_archive
from pipelines.query import QueryService
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore
from pipelines.store.versions import current_version
from reader_training.feedback import FeedbackStore
from tests.pipelines.conftest import QUESTION

FIXTURES = REPO_ROOT / "tests" / "fixtures"
ASKERS = 10
CLI = "from docqa.cli import main; main()"


def answers(settings: Settings) -> list[tuple[str | None, float, str | None]]:
    found = QueryService(settings.with_(question_log=False)).ask(QUESTION)
    return [(a.answer, round(a.score, 4), a.document) for a in found]


def people(settings: Settings) -> tuple[object, ...]:
    return (
        [(k.name, k.role, k.groups, k.sha256) for k in KeyStore.of(settings).list()],
        [(u.name, u.role, u.groups) for u in UserStore.of(settings).list()],
        AccessRules.of(settings).path.read_bytes(),
        [(r.question, r.answer_text) for r in FeedbackStore(settings.feedback_file).list()],
    )


def digests(home: Path) -> dict[str, str]:
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_backups_during_a_reindex_and_ten_askers_restore_consistent_homes(
    full_home: Settings, tmp_path: Path
) -> None:
    settings = full_home
    first = current_version(settings.index_dir)
    before = answers(settings)
    expected = {first: before}
    more = tmp_path / "more"
    more.mkdir()
    for name in ("opening-hours.txt", "security.html", "onboarding.md", "travel-policy.docx"):
        shutil.copy2(FIXTURES / name, more / name)

    service = QueryService(settings)  # logs every question, as the page and the API do
    stop, asked, failures = threading.Event(), [0] * ASKERS, []

    def ask(n: int) -> None:
        while not stop.is_set():
            try:
                service.ask(QUESTION)
                asked[n] += 1
            except Exception as exc:  # the test reports what an asker met
                failures.append(repr(exc))

    askers = [threading.Thread(target=ask, args=(n,)) for n in range(ASKERS)]
    for thread in askers:
        thread.start()
    indexer = subprocess.Popen(
        [sys.executable, "-c", CLI, "index", str(more), "--home", str(settings.home),
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    archives = []
    try:
        while indexer.poll() is None:
            archive = tmp_path / f"b{len(archives)}.tar"
            backup_home(settings.home, archive)
            archives.append(archive)
        archive = tmp_path / f"b{len(archives)}.tar"  # one more, of the re-indexed home
        backup_home(settings.home, archive)
        archives.append(archive)
    finally:
        stop.set()
        for thread in askers:
            thread.join()
        _, err = indexer.communicate(timeout=600)
    assert indexer.returncode == 0, err
    assert not failures and min(asked) >= 1, (failures[:3], asked)
    last = current_version(settings.index_dir)
    assert last != first and len(archives) >= 2
    expected[last] = answers(settings)

    for archive in (archives[0], archives[len(archives) // 2], archives[-1]):
        manifest = verify_archive(archive)
        assert manifest.index_version in expected, (manifest.index_version, expected.keys())
        restored = restore_home(archive, tmp_path / f"restored-{archive.stem}").home
        home = settings.with_(home=restored)
        store = PassageStore.load(home.index_dir)  # the version's files agree with each other
        store.close()
        assert answers(home) == expected[manifest.index_version]
        assert people(home) == people(settings)


def _kill_when(process: subprocess.Popen[bytes], appears: Path, pattern: str) -> None:
    """SIGKILL ``process`` as soon as a file matching ``pattern`` shows up in ``appears``."""
    deadline = time.monotonic() + 120
    while not any(appears.glob(pattern)):
        assert process.poll() is None, "it finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)


def test_kill_9_during_a_backup_and_during_a_restore_leaves_the_home_serving(
    full_home: Settings, tmp_path: Path
) -> None:
    settings = full_home
    # Incompressible bulk (an uploaded archive) so that each run lasts long enough to be killed.
    (settings.uploads_dir).mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / "scans.zip").write_bytes(os.urandom(96 * 2**20))
    before, files = answers(settings), digests(settings.home)
    dest = tmp_path / "out" / "home.tar"
    dest.parent.mkdir()

    backup = subprocess.Popen(
        [sys.executable, "-c", CLI, "backup", str(dest), "--home", str(settings.home),
         "--no-progress"],
        cwd=REPO_ROOT,
    )  # fmt: skip
    _kill_when(backup, dest.parent, f".{dest.name}.*.tmp")
    assert backup.returncode == -signal.SIGKILL
    assert not dest.exists()  # never a partial archive under the name
    assert digests(settings.home) == files and answers(settings) == before
    done = backup_home(settings.home, dest)  # the next run works, beside what the killed one left
    assert done.archive == dest and verify_archive(dest).index_version

    # A restore over the home (--replace) killed while it writes: the home stays as it was.
    restore = subprocess.Popen(
        [sys.executable, "-c", CLI, "restore", str(dest), "--home", str(settings.home),
         "--replace", "--no-progress"],
        cwd=REPO_ROOT,
    )  # fmt: skip
    _kill_when(restore, settings.home.parent, f".{settings.home.name}.restore-*")
    assert restore.returncode == -signal.SIGKILL
    assert digests(settings.home) == files and answers(settings) == before
    assert restore_home(dest, tmp_path / "fresh").written
    assert answers(settings.with_(home=tmp_path / "fresh")) == before
