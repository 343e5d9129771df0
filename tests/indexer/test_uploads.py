"""Uploads from the web page: safe names, refusals, duplicates, indexing and removal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from indexer.run import LOCK_NAME, IndexLockedError, index_folder
from indexer.uploads import (
    MAX_UPLOAD_BYTES,
    UploadError,
    check_upload,
    index_uploads,
    remove_document,
    safe_filename,
)
from pipelines.settings import Settings
from pipelines.store import PassageStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.md", "win.ini.md"),
        (".hidden.md", "hidden.md"),
        ("...md", "md"),
        ("a/..", "_"),  # nothing usable... see the refusal test
        ("notes <script>.md", "notes _script_.md"),
        ("Überstunden Café.txt", "Überstunden Café.txt"),
        ("tab\there\x00.md", "tabhere.md"),
        ("x" * 300 + ".docx", "x" * 115 + ".docx"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    if safe == "_":
        with pytest.raises(UploadError, match="not a usable file name"):
            safe_filename(name)
        return
    result = safe_filename(name)
    assert result == safe
    assert "/" not in result and "\\" not in result and not result.startswith(".")


def test_refused_names_types_and_sizes() -> None:
    for name in ("..", "/", "   ", "con.txt", "___.md"):
        with pytest.raises(UploadError):
            check_upload(name, 10)
    with pytest.raises(UploadError, match=r"unsupported file type '\.exe'"):
        check_upload("setup.exe", 10)
    with pytest.raises(UploadError, match="unsupported file type '\\(none\\)'"):
        check_upload("README", 10)
    with pytest.raises(UploadError, match="the file is empty"):
        check_upload("a.txt", 0)
    with pytest.raises(UploadError, match="over the upload limit of 50 MB"):
        check_upload("big.pdf", MAX_UPLOAD_BYTES + 1)
    assert check_upload("Big.PDF", MAX_UPLOAD_BYTES) == "Big.PDF"


def test_uploads_are_indexed_one_by_one_with_progress(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    docs.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    index_folder([docs], settings, progress=False)

    calls: list[tuple[int, int, str]] = []
    outcomes = index_uploads(
        [
            ("hours.txt", (FIXTURES / "opening-hours.txt").read_bytes()),
            ("../hours.txt", b"Another file with the same name, other content."),
            ("again.md", (FIXTURES / "onboarding.md").read_bytes()),  # already indexed
            ("twice.txt", (FIXTURES / "opening-hours.txt").read_bytes()),  # same as the first
            ("corrupt.pdf", (FIXTURES / "corrupt.pdf").read_bytes()),
            ("tool.exe", b"MZ"),
        ],
        settings,
        on_progress=lambda done, total, message: calls.append((done, total, message)),
    )
    summary = [(o.name, o.status, o.saved_as) for o in outcomes]
    assert summary == [
        ("hours.txt", "indexed", "hours.txt"),
        ("../hours.txt", "indexed", "hours-2.txt"),
        ("again.md", "duplicate", ""),
        ("twice.txt", "duplicate", ""),
        ("corrupt.pdf", "failed", ""),
        ("tool.exe", "rejected", ""),
    ]
    assert outcomes[2].reason == "same content as documents/onboarding.md"
    assert outcomes[4].reason.startswith("not a readable PDF")
    assert outcomes[0].passages == 1 and outcomes[0].doc_id
    assert calls == [
        (0, 3, "Indexing hours.txt"),
        (1, 3, "Indexing hours-2.txt"),
        (2, 3, "Indexing corrupt.pdf"),
        (3, 3, "Done"),
    ]
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == [
        ".incoming",
        "hours-2.txt",
        "hours.txt",
    ]
    assert not list((settings.uploads_dir / ".incoming").iterdir())
    store = PassageStore.load(settings.index_dir)
    assert sorted(r.source for r in store.sources()) == [
        "documents/onboarding.md",
        "uploads/hours-2.txt",
        "uploads/hours.txt",
    ]
    # A name that differs only in case from an upload gets its own name too.
    later = index_uploads([("HOURS.txt", b"Capital letters, other content.")], settings)
    assert [(o.status, o.saved_as) for o in later] == [("indexed", "HOURS-3.txt")]


def test_remove_document_deletes_uploads_but_never_other_files(
    settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "documents"
    docs.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    index_folder([docs], settings, progress=False)
    (uploaded,) = index_uploads(
        [("hours.txt", (FIXTURES / "opening-hours.txt").read_bytes())], settings
    )
    store = PassageStore.load(settings.index_dir)
    other = next(r for r in store.sources() if r.source == "documents/onboarding.md")

    assert remove_document(settings, uploaded.doc_id) == "uploads/hours.txt"
    assert not (settings.uploads_dir / "hours.txt").exists()
    assert remove_document(settings, other.doc_id) == "documents/onboarding.md"
    assert (docs / "onboarding.md").is_file()
    assert PassageStore.load(settings.index_dir).sources() == []
    assert remove_document(settings, other.doc_id) is None


def test_nothing_is_written_while_another_indexer_runs(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    with FileLock(str(settings.home / LOCK_NAME)):
        with pytest.raises(IndexLockedError):
            index_uploads([("a.txt", b"text")], settings)
        with pytest.raises(IndexLockedError):
            remove_document(settings, "0123456789abcdef")
    assert not (settings.uploads_dir / "a.txt").exists()
