"""Uploads from the web page: safe names, refusals, duplicates, indexing and removal; names
bounded in bytes, concurrent uploads of one name, and removal erasing what the learning loop
kept of a document."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from indexer.run import LOCK_NAME, IndexLockedError, index_folder
from indexer.uploads import (
    MAX_NAME_BYTES,
    MAX_UPLOAD_BYTES,
    TRAINED_READERS_REMAIN,
    UploadError,
    UploadOutcome,
    check_upload,
    index_uploads,
    remove_document,
    safe_filename,
)
from pipelines.answers import AnswerResult
from pipelines.learning_loop.erasure import forget_document
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.settings import Settings
from pipelines.store import PassageStore
from reader_training.feedback import FeedbackStore
from reader_training.judgments import PassageRef, annotation_pair, judged_pair

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

    removed = remove_document(settings, uploaded.doc_id)
    assert removed is not None and removed.source == "uploads/hours.txt" and removed.file_deleted
    assert removed.remains == (TRAINED_READERS_REMAIN,)
    assert not (settings.uploads_dir / "hours.txt").exists()
    kept = remove_document(settings, other.doc_id)
    assert kept is not None and kept.source == "documents/onboarding.md" and not kept.file_deleted
    assert any("the file itself" in what for what in kept.remains)
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


# A 120-character Japanese name: 360 UTF-8 bytes, over the 255 a file name may have.
CJK_NAME = "社内規程" * 30 + ".md"


def test_long_names_are_bounded_in_bytes() -> None:
    safe = safe_filename(CJK_NAME)
    assert safe.endswith(".md") and safe.startswith("社内規程")
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert CJK_NAME.startswith(safe.removesuffix(".md"))  # shortened at a character boundary
    # A letter and its combining mark are never split; no name ends in a space or a dot.
    decomposed = safe_filename("e\u0301" * 150 + ".txt")
    assert len(decomposed.encode("utf-8")) <= MAX_NAME_BYTES and decomposed.endswith(".txt")
    mixed = safe_filename("a" * 65 + " " + "日本" * 60 + ".docx")
    assert len(mixed.encode("utf-8")) <= MAX_NAME_BYTES and mixed.endswith(".docx")
    # An "extension" too long to be one is shortened with the rest, not kept whole.
    odd = safe_filename("x." + "拡張" * 100)
    assert len(odd.encode("utf-8")) <= MAX_NAME_BYTES
    with pytest.raises(UploadError) as refused:
        safe_filename("/" * 300)
    assert len(str(refused.value)) < 100


def test_a_long_cjk_name_is_indexed_under_a_shortened_name(settings: Settings) -> None:
    (outcome,) = index_uploads(
        [(CJK_NAME, "規程の本文。休暇は年に二十五日です。".encode())], settings
    )
    assert outcome.status == "indexed", outcome.reason
    assert outcome.saved_as.endswith(".md") and len(outcome.saved_as.encode()) <= MAX_NAME_BYTES
    assert (settings.uploads_dir / outcome.saved_as).is_file()
    # The same name again: its "-2" still fits.
    (again,) = index_uploads([(CJK_NAME, "別の本文。".encode())], settings)
    assert again.status == "indexed" and again.saved_as.endswith("-2.md")
    assert not list((settings.uploads_dir / ".incoming").iterdir())


def _upload_until_done(
    name: str,
    data: bytes,
    settings: Settings,
    start: threading.Barrier,
    out: list[UploadOutcome],
    errors: list[str],
) -> None:
    """One user's upload, started at the same moment as the other's, and tried again while
    the other holds the writer lock (the page says "another upload is running, try again")."""
    start.wait()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            out.extend(index_uploads([(name, data)], settings))
            return
        except IndexLockedError:
            time.sleep(0.05)
        except Exception as exc:  # reported in the main thread
            errors.append(repr(exc))
            return
    errors.append("timed out")


def test_two_uploads_of_one_name_at_once_keep_both_files(settings: Settings) -> None:
    (original,) = index_uploads([("report.md", b"The original report: budget approved.")], settings)
    assert original.saved_as == "report.md"
    contents = [b"First upload: the board meets in March.", b"Second upload: audit in May."]
    outcomes: list[UploadOutcome] = []
    errors: list[str] = []
    start = threading.Barrier(len(contents))
    threads = [
        threading.Thread(
            target=_upload_until_done,
            args=("report.md", data, settings, start, outcomes, errors),
        )
        for data in contents
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(o.status for o in outcomes) == ["indexed", "indexed"]
    names = sorted(o.saved_as for o in outcomes)
    assert names == ["report-2.md", "report-3.md"]
    # Each file holds its own upload; the original was neither overwritten nor removed.
    by_name = {o.saved_as: o for o in outcomes}
    saved = {(settings.uploads_dir / n).read_bytes() for n in names}
    assert saved == set(contents)
    assert (settings.uploads_dir / "report.md").read_bytes().startswith(b"The original report")
    assert not list((settings.uploads_dir / ".incoming").iterdir())
    sources = {r.source: r for r in PassageStore.load(settings.index_dir).sources()}
    assert set(sources) == {"uploads/report.md", "uploads/report-2.md", "uploads/report-3.md"}
    assert {by_name[n].doc_id for n in names} == {sources[f"uploads/{n}"].doc_id for n in names}


def test_an_upload_that_loses_the_lock_removes_nothing_but_its_staged_file(
    settings: Settings,
) -> None:
    """The old loser's error path unlinked the indexed original of the same name."""
    (original,) = index_uploads([("report.md", b"The original report: budget approved.")], settings)
    held: list[FileLock] = []

    def another_writer_starts(done: int, total: int, message: str) -> None:
        if not held:  # between the early check and this file's turn, someone takes the lock
            lock = FileLock(str(settings.home / LOCK_NAME))
            lock.acquire()
            held.append(lock)

    try:
        with pytest.raises(IndexLockedError):
            index_uploads(
                [("report.md", b"A second report."), ("notes.txt", b"Some notes.")],
                settings,
                on_progress=another_writer_starts,
            )
    finally:
        for lock in held:
            lock.release()
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == [".incoming", "report.md"]
    assert (settings.uploads_dir / "report.md").read_bytes().startswith(b"The original report")
    assert not list((settings.uploads_dir / ".incoming").iterdir())
    assert [r.source for r in PassageStore.load(settings.index_dir).sources()] == [
        "uploads/report.md"
    ]
    assert original.doc_id


SECRET = "ZEBRACORN-77"


def test_removing_a_document_erases_its_pairs_and_questions(
    settings: Settings, tmp_path: Path
) -> None:
    text = f"Launch codes. The code for the vault is {SECRET}. " + "Routine text. " * 400
    secret, public = index_uploads(
        [("vault.md", text.encode()), ("menu.txt", b"Lunch is served at noon in the hall.")],
        settings,
    )
    store = PassageStore.load(settings.index_dir)
    record = store.source(secret.doc_id)
    assert record is not None
    doc_text = store.source_text(secret.doc_id)
    at = doc_text.index(SECRET)
    ref = PassageRef(secret.doc_id, "vault", record.source, doc_text[at - 20 : at + 40], at - 20)
    feedback = FeedbackStore(settings.feedback_file)
    judged_pair(
        "What is the vault code?", ref, "correct", answer=SECRET, offset=20,
        document_text=doc_text, author="user:alice",
    ).save(feedback)  # fmt: skip
    annotation_pair("Vault code?", record, doc_text, SECRET, None, author="key:bot").save(feedback)
    menu = store.source(public.doc_id)
    assert menu is not None
    annotation_pair(
        "When is lunch?", menu, store.source_text(public.doc_id), "noon", None, author="key:bot"
    ).save(feedback)
    log = QuestionLog(settings.question_log_file)
    for doc_id, question in ((secret.doc_id, f"Is {SECRET} the code?"), (public.doc_id, "Lunch?")):
        result = AnswerResult(answer="x", score=0.9, doc_id=doc_id, context="x")
        log.record(question, [result], channel="api", latency_ms=1, reader="r", top_k=1,
                   asker="user:alice")  # fmt: skip
    assert any(
        SECRET.encode() in p.read_bytes() for p in settings.index_dir.rglob("*") if p.is_file()
    )

    removed = remove_document(settings, secret.doc_id)

    assert removed is not None and removed.source == "uploads/vault.md"
    assert (removed.forgotten.pairs, removed.forgotten.questions) == (2, 1)
    assert removed.previous_version_purged and TRAINED_READERS_REMAIN in removed.remains
    assert "weights" in removed.describe()
    assert [r.question for r in feedback.list()] == ["When is lunch?"]
    assert [q.question for q in log.questions()] == ["Lunch?"]
    # Nothing in the data home holds its text any more: index versions (the previous one
    # too), the feedback file, the question log, the uploads folder.
    holding = [
        p.relative_to(settings.home)
        for p in settings.home.rglob("*")
        if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    assert holding == []
    # The rest is intact and loadable.
    assert [r.source for r in PassageStore.load(settings.index_dir).sources()] == [
        "uploads/menu.txt"
    ]


def test_forgetting_says_what_it_could_not_erase(settings: Settings) -> None:
    settings.feedback_file.parent.mkdir(parents=True)
    settings.feedback_file.write_text("{not json", encoding="utf-8")
    forgotten = forget_document(settings, "d1", "uploads/a.md")
    assert forgotten.pairs == 0 and forgotten.questions == 0
    assert len(forgotten.problems) == 1 and "labeled pairs not erased" in forgotten.problems[0]
    assert settings.feedback_file.read_text(encoding="utf-8") == "{not json"  # never overwritten
