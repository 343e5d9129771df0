"""Backup and restore of a real indexed home (pipelines/operations/backup.py): the restored home
answers the same and holds the same accounts, keys, rules, labels and logs; a damaged, partial,
hostile or unknown archive is refused before anything is written; a backup taken while the question
log and the audit log are written is consistent."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest

from api.keys import KeyStore
from identity import AccessRules, AuditLog, UserStore
from pipelines.answers import AnswerResult
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.operations.backup import (
    MANIFEST,
    BackupError,
    backup_home,
    restore_home,
    verify_archive,
)
from pipelines.query import QueryService
from pipelines.settings import Settings
from reader_training.feedback import FeedbackStore
from tests.pipelines.conftest import ADMIN, QUESTION


def answers(settings: Settings) -> list[tuple[str | None, float, str | None]]:
    found = QueryService(settings).ask(QUESTION)
    return [(a.answer, round(a.score, 5), a.document) for a in found]


def is_private(root: Path) -> bool:
    paths = [root, *root.rglob("*")]
    want = {True: 0o700, False: 0o600}
    return all(stat.S_IMODE(p.stat().st_mode) == want[p.is_dir()] for p in paths)


def test_restore_gives_back_the_same_home(full_home: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "out" / "home.tar.gz"
    done = backup_home(full_home.home, archive)
    names = {f.path for f in done.manifest.files}
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert not any(p.name.startswith(".") for p in archive.parent.iterdir())  # no temp left
    assert done.manifest.index_version == "v-000001" and "index/CURRENT" in names
    assert {"users.json", "api_keys.json", "access_rules.json", "questions.sqlite"} <= names
    assert {"feedback/feedback.json", "audit/audit.jsonl"} <= names
    assert not any(n.startswith(("cache/", "index/v-000000")) or n.endswith(".lock") for n in names)
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == MANIFEST

    restored = full_home.with_(home=tmp_path / "restored")
    result = restore_home(archive, restored.home)
    assert result.written and is_private(restored.home)
    assert answers(restored) == answers(full_home)
    assert UserStore.of(restored).list() == UserStore.of(full_home).list()
    assert KeyStore.of(restored).list() == KeyStore.of(full_home).list()
    assert AccessRules.of(restored).list() == AccessRules.of(full_home).list()
    assert (
        FeedbackStore(restored.feedback_file).list()
        == FeedbackStore(full_home.feedback_file).list()
    )
    logged = [q.question for q in QuestionLog(restored.question_log_file).questions()]
    assert QUESTION in logged
    assert [e.action for e in AuditLog.of(restored).events()] == ["user_create"]


def test_a_restore_needs_an_empty_home_or_replace(full_home: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "home.tar"
    backup_home(full_home.home, archive)
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore_home(archive, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    done = restore_home(archive, target, replace=True)
    assert done.moved_aside is not None and (done.moved_aside / "keep.txt").read_text() == "mine"
    assert (target / "index" / "CURRENT").is_file() and not (target / "keep.txt").exists()


def test_a_dry_run_writes_nothing(full_home: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "home.tar"
    backup_home(full_home.home, archive)
    before = sorted(tmp_path.iterdir())
    done = restore_home(archive, tmp_path / "new", dry_run=True)
    assert not done.written and len(done.manifest.files) > 5
    assert sorted(tmp_path.iterdir()) == before


def _data_offset(archive: Path, name: str) -> int:
    with tarfile.open(archive) as tar:
        return tar.getmember(name).offset_data


def refused(archive: Path, tmp_path: Path, match: str) -> None:
    before = sorted(tmp_path.iterdir())
    with pytest.raises(BackupError, match=match) as caught:
        restore_home(archive, tmp_path / "restored")
    message = str(caught.value)
    assert message.startswith(str(archive)) and "\n" not in message
    assert sorted(tmp_path.iterdir()) == before  # no home, no temporary folder


def test_a_flipped_byte_is_refused_before_anything_is_written(
    full_home: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "home.tar"
    backup_home(full_home.home, archive)
    data = bytearray(archive.read_bytes())
    data[_data_offset(archive, "users.json") + 20] ^= 0x01
    archive.write_bytes(bytes(data))
    refused(archive, tmp_path, "'users.json' does not match its checksum")

    packed = tmp_path / "home.tar.gz"
    backup_home(full_home.home, packed)
    size = packed.stat().st_size
    # A byte inside a file's data, and one of gzip's trailer (the CRC and size it checks).
    for at, problem in ((size // 2, "does not match its checksum"), (size - 3, "not a complete")):
        data = bytearray(packed.read_bytes())
        data[at] ^= 0x01
        damaged = tmp_path / "damaged.tar.gz"
        damaged.write_bytes(bytes(data))
        refused(damaged, tmp_path, problem)


def test_a_partial_archive_is_refused(full_home: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "home.tar"
    backup_home(full_home.home, archive)
    data = archive.read_bytes()
    archive.write_bytes(data[: _data_offset(archive, "users.json")])
    refused(archive, tmp_path, "truncated|missing")


def _rewrite(archive: Path, out: Path, extra: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """``archive``'s members, then ``extra`` ones."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        for info, data in extra:
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def test_hostile_names_links_and_unknown_formats_are_refused(
    full_home: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "home.tar"
    backup_home(full_home.home, archive)
    evil = tmp_path / "evil.tar"
    _rewrite(archive, evil, [(tarfile.TarInfo("../evil"), b"pwned")])
    refused(evil, tmp_path, "unsafe member name '../evil'")
    assert not (tmp_path.parent / "evil").exists()

    _rewrite(archive, evil, [(tarfile.TarInfo("/etc/evil"), b"pwned")])
    refused(evil, tmp_path, "unsafe member name")

    link = tarfile.TarInfo("models/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _rewrite(archive, evil, [(link, b"")])
    refused(evil, tmp_path, "not a regular file")

    _rewrite(archive, evil, [(tarfile.TarInfo("extra.txt"), b"not listed")])
    refused(evil, tmp_path, "not listed in the manifest")

    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    manifest["format_version"] = 99
    future = tmp_path / "future.tar"
    with tarfile.open(future, "w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    refused(future, tmp_path, "unknown backup format version 99")


def test_a_backup_while_logs_are_written_is_consistent(full_home: Settings, tmp_path: Path) -> None:
    """A thread logs questions and another writes audit events (rotating every few lines) while
    backups are taken: each archive holds a sound database and whole audit lines."""
    log = QuestionLog(full_home.question_log_file)
    audit = AuditLog(full_home.home / "audit", max_bytes=2000, keep=3)
    stop = threading.Event()
    answer = AnswerResult(answer="25 days", score=0.9, context="x" * 1500, doc_id="d")

    def ask() -> None:
        while not stop.is_set():
            log.record(QUESTION, [answer], channel="api", latency_ms=1, reader="r", top_k=10)

    def act() -> None:
        while not stop.is_set():
            audit.record(ADMIN, "key_create", target="k" * 50)

    threads = [threading.Thread(target=ask), threading.Thread(target=act)]
    for thread in threads:
        thread.start()
    try:
        while not (full_home.home / "audit" / "audit.jsonl.2").exists():  # rotating already
            time.sleep(0.01)
        for n in range(3):
            archive = tmp_path / f"b{n}.tar"
            backup_home(full_home.home, archive)
            home = tmp_path / f"r{n}"
            restore_home(archive, home)
            db = sqlite3.connect(home / "questions.sqlite")
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT count(*) FROM questions").fetchone()[0] >= 1
            db.close()
            events = list(AuditLog(home / "audit").events())  # skips (and warns) broken lines
            lines = sum(len(p.read_text().splitlines()) for p in (home / "audit").iterdir())
            assert len(events) == lines >= 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert verify_archive(tmp_path / "b2.tar").index_version == "v-000001"
