"""The question log per asker and scope, its retention in days, older databases, and erasing
the questions that cite a deleted document."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.learning_loop.question_log import QuestionLog, question_log
from pipelines.query import AnswerResult, QueryService
from pipelines.settings import Settings
from pipelines.store import PassageStore


def cited(*doc_ids: str | None) -> list[AnswerResult]:
    """Results citing ``doc_ids`` in rank order (None: a "no answer" result)."""
    return [
        AnswerResult(
            answer=f"answer from {d}" if d else None,
            score=0.9 - i / 10,
            document=f"collection/{d}.md" if d else None,
            context=f"passage of {d}" if d else None,
            doc_id=d,
        )
        for i, d in enumerate(doc_ids)
    ]


def ask(log: QuestionLog, question: str, results: list[AnswerResult], asker: str | None) -> int:
    return log.record(
        question, results, channel="api", latency_ms=5, reader="r", top_k=3, asker=asker
    )


def test_reads_narrow_to_an_asker_and_a_scope(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "questions.sqlite")
    ask(log, "eng only", cited("eng1", "eng2", "eng1"), "user:eve")
    ask(log, "hr and eng", cited("hr1", "eng1"), "user:eve")
    ask(log, "no answer", cited(None), "user:eve")
    ask(log, "hr only", cited("hr1"), "user:harriet")
    ask(log, "from the cli", cited("eng2"), None)

    everything = log.questions()  # an admin's view
    assert [q.question for q in everything] == [
        "eng only", "hr and eng", "no answer", "hr only", "from the cli",
    ]  # fmt: skip
    assert everything[0].asker == "user:eve" and everything[0].doc_ids == ("eng1", "eng2")
    assert everything[2].doc_ids == () and everything[4].asker is None

    eve = [q.question for q in log.questions(asker="user:eve")]
    assert eve == ["eng only", "hr and eng", "no answer"]
    eng = frozenset({"eng1", "eng2"})
    # A question is in a scope only when every document it cites is: its answers quote them.
    assert [q.question for q in log.questions(scope=eng)] == [
        "eng only", "no answer", "from the cli",
    ]  # fmt: skip
    assert [q.question for q in log.questions(asker="user:eve", scope=eng)] == [
        "eng only", "no answer",
    ]  # fmt: skip
    assert [q.question for q in log.questions(scope=frozenset())] == ["no answer"]
    # The limit counts the rows the caller may see, not rows filtered out afterwards.
    assert [q.question for q in log.questions(limit=1, asker="user:eve", scope=eng)] == [
        "no answer"
    ]
    assert log.count(asker="user:eve", scope=eng) == 2 and len(log) == 5
    assert log.count(asker="user:nobody") == 0
    assert log.questions(asker="user:harriet", scope=eng) == []
    # A verdict noted by a caller counts on its own questions only.
    first = everything[0].id
    assert not log.add_feedback(first, "wrong", asker="user:harriet")
    assert log.questions()[0].feedback is None
    assert log.add_feedback(first, "wrong", asker="user:eve")
    assert log.questions()[0].feedback == "wrong"


def test_old_rows_go_after_the_retention(tmp_path: Path) -> None:
    path = tmp_path / "questions.sqlite"
    log = QuestionLog(path, retention_days=30)
    for n in range(3):
        ask(log, f"question {n}", cited("d1"), "user:eve")
    # Two of them were asked long ago (written as an older process would have).
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="milliseconds")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE questions SET asked_at = ? WHERE question != 'question 2'", (old,))
    # Never read back, even before a trim deletes them...
    assert [q.question for q in log.questions()] == ["question 2"]
    assert log.count() == 1 and log.questions(since=datetime(2000, 1, 1, tzinfo=UTC))[0].id
    # ... which a log opened later does at once (a quiet month must not keep them).
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM questions").fetchone() == (3,)
    QuestionLog(path, retention_days=30).questions()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM questions").fetchone() == (1,)
    # Without a retention, old rows stay until max_rows newer ones push them out.
    keep = QuestionLog(tmp_path / "kept.sqlite", retention_days=None)
    ask(keep, "old", cited("d1"), None)
    with sqlite3.connect(keep.path) as db:
        db.execute("UPDATE questions SET asked_at = ?", (old,))
    keep.trim()
    assert [q.question for q in keep.questions()] == ["old"]
    with pytest.raises(ValueError, match="retention_days"):
        QuestionLog(path, retention_days=0)


def test_the_retention_setting(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.question_log_retention_days == 90
    log = question_log(settings)
    assert log is not None and log.retention_days == 90
    unbounded = question_log(settings.with_(question_log_retention_days=None))
    assert unbounded is not None and unbounded.retention_days is None


# The table as the first release made it (no asker, no doc_ids).
OLD_SCHEMA = """
CREATE TABLE questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, asked_at TEXT NOT NULL, channel TEXT NOT NULL,
    question TEXT NOT NULL, filters TEXT, top_k INTEGER NOT NULL, answered INTEGER NOT NULL,
    top_answer TEXT, top_score REAL, margin REAL, answers TEXT NOT NULL,
    latency_ms REAL NOT NULL, reader TEXT NOT NULL, feedback TEXT, feedback_at TEXT
);
CREATE INDEX questions_asked_at ON questions(asked_at);
"""


def _old_database(path: Path) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    rows = [
        ("eng question", [{"answer": "x", "doc_id": "eng1"}, {"answer": None, "doc_id": None}]),
        ("hr question", [{"answer": "y", "doc_id": "hr1"}, {"answer": "z", "doc_id": "eng1"}]),
        ("unanswered", [{"answer": None, "doc_id": None}]),
    ]
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for question, answers in rows:
            db.execute(
                "INSERT INTO questions (asked_at, channel, question, top_k, answered, answers,"
                " latency_ms, reader) VALUES (?, 'page', ?, 3, 1, ?, 10, 'r')",
                (now, question, json.dumps(answers)),
            )
    path.chmod(0o600)


def test_an_older_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "questions.sqlite"
    _old_database(path)
    # Several processes may open it at once: each finds the columns there or adds them.
    logs = [QuestionLog(path) for _ in range(4)]
    errors: list[BaseException] = []

    def read(log: QuestionLog) -> None:
        try:
            log.questions()
        except BaseException as exc:  # reported below, in this thread
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = logs[0]
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(questions)")]
    assert columns[-2:] == ["asker", "doc_ids"]
    rows = log.questions()
    assert [(q.question, q.doc_ids, q.asker) for q in rows] == [
        ("eng question", ("eng1",), None),
        ("hr question", ("hr1", "eng1"), None),
        ("unanswered", (), None),
    ]
    assert [q.question for q in log.questions(scope=frozenset({"eng1"}))] == [
        "eng question", "unanswered",
    ]  # fmt: skip
    assert log.questions(asker="user:eve") == []  # rows without an asker are nobody's
    # New rows go in beside the old ones, and the file stays private.
    ask(log, "new", cited("eng1"), "user:eve")
    assert [q.question for q in log.questions(asker="user:eve")] == ["new"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_forgetting_a_document_erases_the_questions_that_cite_it(tmp_path: Path) -> None:
    path = tmp_path / "questions.sqlite"
    _old_database(path)  # older rows are found by the citations filled in from their answers
    log = QuestionLog(path)
    ask(log, "What is the ZEBRACORN code?", cited("hr1"), "user:harriet")
    ask(log, "Deploy steps?", cited("eng2", None), "user:eve")
    # A row an older DocQA wrote after the migration, without doc_ids: found all the same.
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO questions (asked_at, channel, question, top_k, answered, answers,"
            " latency_ms, reader) VALUES (?, 'cli', 'hr again', 3, 1, ?, 10, 'r')",
            (datetime.now(UTC).isoformat(), json.dumps([{"answer": "x", "doc_id": "hr1"}])),
        )
    assert log.questions(scope=frozenset({"hr1"}))[-1].question != "hr again"  # unknown: hidden
    assert log.forget_document("hr1") == 3
    assert [q.question for q in log.questions()] == ["eng question", "unanswered", "Deploy steps?"]
    assert log.forget_document("hr1") == 0
    assert log.forget_document("eng1") == 1
    # Gone from the file itself, not only from reads (no copy left in free pages).
    assert b"ZEBRACORN" not in path.read_bytes()
    assert QuestionLog(tmp_path / "absent.sqlite").forget_document("hr1") == 0


def test_questions_asked_with_a_scope_are_logged_with_asker_and_citations(
    access_home: Settings, tmp_path: Path
) -> None:
    home = access_home.with_(home=tmp_path / "home")
    shutil.copytree(access_home.index_dir, home.index_dir)
    store = PassageStore.load(home.index_dir)
    eng = frozenset(r.doc_id for r in store.sources() if r.source.startswith("collection/eng/"))
    hr = frozenset(r.doc_id for r in store.sources()) - eng
    service = QueryService(home)
    asked = service.answer("How do we deploy?", channel="api", scope=eng, asker="user:eve")
    service.answer("What is Margot's salary?", channel="page", scope=hr, asker="user:harriet")
    log = QuestionLog(home.question_log_file)
    (eve,) = log.questions(asker="user:eve", scope=eng)
    assert eve.id == asked.question_id and eve.doc_ids and set(eve.doc_ids) <= eng
    assert set(eve.doc_ids) == {a.doc_id for a in asked.answers if a.doc_id}
    # The eng viewer's scope never shows the hr question, whoever reads.
    assert [q.question for q in log.questions(scope=eng)] == ["How do we deploy?"]
    (harriet,) = log.questions(asker="user:harriet")
    assert set(harriet.doc_ids) <= hr
