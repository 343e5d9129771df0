"""Homes written by older releases (tests/fixtures/homes, made by their own code with
make_old_homes.sh) open in this one: migrated once, a backup taken first, the same answers,
passages, key, logged questions and labels after; a home of a newer release is refused
untouched; an indexer running blocks a migration without harm."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from api.keys import KeyStore
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.operations.backup import restore_home, verify_archive
from pipelines.operations.home_format import (
    BACKUPS_DIR,
    HOME_FILE,
    HOME_FORMAT_VERSION,
    HomeFormatError,
    home_format,
    open_home,
)
from pipelines.query import QueryService
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore
from pipelines.store.files import PASSAGES_FILE, SCHEMA_VERSION
from pipelines.store.versions import current_folder, writer_lock
from reader_training.feedback import FeedbackStore

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "homes"
FIRST_RELEASE = FIXTURES / "release-2026-11-24-461226f.tar.gz"
API_RELEASE = FIXTURES / "release-2026-12-02-c917935.tar.gz"
# The key the 2026-12-02 release printed when make_old_homes.sh made the fixture (a test secret).
BOT_TOKEN = "docqa_nP90NMnhp_g53iCXkLgm2VN1pFQ06eY6K2dmJOlwH2Y"
QUESTIONS = (
    "How many days of annual leave do employees in the Netherlands get?",
    "What is the guest Wi-Fi network called?",
)


def unpack(archive: Path, home: Path) -> Settings:
    home.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    return Settings(home=home, question_log=False)


def answers(settings: Settings) -> list[list[tuple[str | None, float, str | None, object]]]:
    service = QueryService(settings)
    found = [service.ask(q) for q in QUESTIONS]
    return [
        [(a.answer, round(a.score, 4), a.document, a.document_offsets) for a in r] for r in found
    ]


def passages(settings: Settings) -> list[tuple[str, str, int]]:
    store = PassageStore.load(settings.index_dir)
    try:
        docs = store.filter_documents()
        return sorted(
            (d.content or "", str(d.meta.get("source")), len(d.embedding or [])) for d in docs
        )
    finally:
        store.close()


def digests(home: Path) -> dict[str, str]:
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def schema_of_serving_index(settings: Settings) -> int:
    folder = current_folder(settings.index_dir)
    assert folder is not None
    db = sqlite3.connect(folder / PASSAGES_FILE)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_the_first_release_home_is_migrated_once_backup_first(tmp_path: Path) -> None:
    settings = unpack(FIRST_RELEASE, tmp_path / "home")
    before_files = digests(settings.home)
    assert home_format(settings.home) == 1 and schema_of_serving_index(settings) == 1
    before = (answers(settings), passages(settings))
    assert any(a[0] == "LF-Guest" for a in before[0][1]), "the old home answers before migrating"

    report = open_home(settings)

    assert report is not None and (report.from_version, report.to_version) == (1, 2)
    assert any("passages schema 1 -> 2" in line for line in report.changes)
    assert home_format(settings.home) == HOME_FORMAT_VERSION
    assert schema_of_serving_index(settings) == SCHEMA_VERSION  # on disk, not only in memory
    assert (answers(settings), passages(settings)) == before

    # The backup holds the home as the old release left it, and restores to it byte for byte.
    assert report.backup is not None and report.backup.parent == settings.home / BACKUPS_DIR
    verify_archive(report.backup)
    restored = restore_home(report.backup, tmp_path / "restored").home
    assert digests(restored) == before_files and home_format(restored) == 1

    # Once: the next start finds the current format and neither migrates nor backs up again.
    assert open_home(settings) is None
    assert len(list((settings.home / BACKUPS_DIR).iterdir())) == 1


def test_the_api_release_home_keeps_its_key_questions_and_labels(tmp_path: Path) -> None:
    settings = unpack(API_RELEASE, tmp_path / "home")
    old_keys = json.loads((settings.home / "api_keys.json").read_text())["keys"]
    assert [k["role"] for k in old_keys] == ["ask"] and "groups" not in old_keys[0]
    before = answers(settings)
    pairs_before = FeedbackStore(settings.feedback_file).list()

    report = open_home(settings)

    assert report is not None
    assert any(line.startswith("API keys: 1 of 1") for line in report.changes)
    assert any("asker" in line for line in report.changes)
    keys = json.loads((settings.home / "api_keys.json").read_text())["keys"]
    assert [(k["name"], k["role"], k["groups"]) for k in keys] == [("bot", "viewer", [])]
    key = KeyStore.of(settings).authenticate(BOT_TOKEN)
    assert key is not None and key.caller().role.value == "viewer"
    assert KeyStore.of(settings).authenticate(BOT_TOKEN[:-1] + "x") is None
    log = QuestionLog(settings.question_log_file)
    assert sorted(q.question for q in log.questions(limit=10)) == sorted(QUESTIONS)
    assert FeedbackStore(settings.feedback_file).list() == pairs_before and pairs_before
    assert answers(settings) == before


def test_a_home_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    settings = unpack(API_RELEASE, tmp_path / "home")
    (settings.home / HOME_FILE).write_text(
        json.dumps({"format": "docqa-home", "format_version": HOME_FORMAT_VERSION + 1})
    )
    before = digests(settings.home)
    with pytest.raises(HomeFormatError, match=r"newer DocQA \(home format 3; this release reads"):
        open_home(settings)
    assert digests(settings.home) == before and not (settings.home / BACKUPS_DIR).exists()


def test_a_damaged_format_file_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / HOME_FILE).write_text('{"format": "something else", "format_version": 2}')
    with pytest.raises(HomeFormatError, match=f"{HOME_FILE}: not a DocQA home format file"):
        open_home(Settings(home=home))


def test_a_new_home_is_stamped_without_a_migration(tmp_path: Path) -> None:
    home = tmp_path / "new"
    assert open_home(Settings(home=home)) is None and not home.exists()  # nothing made
    home.mkdir()
    assert open_home(Settings(home=home)) is None
    assert home_format(home) == HOME_FORMAT_VERSION and not (home / BACKUPS_DIR).exists()


def test_a_running_indexer_blocks_the_migration_and_nothing_changes(tmp_path: Path) -> None:
    settings = unpack(FIRST_RELEASE, tmp_path / "home")
    before = digests(settings.home)
    with writer_lock(settings.home), pytest.raises(HomeFormatError, match="indexer is running"):
        open_home(settings)
    after = {k: v for k, v in digests(settings.home).items() if not k.startswith(BACKUPS_DIR)}
    assert after == before and home_format(settings.home) == 1
    assert open_home(settings) is not None  # the next start, with the indexer gone, migrates
    assert home_format(settings.home) == HOME_FORMAT_VERSION
