"""The question log: every question users ask (the page, ``docqa ask``, the API) with what DocQA
answered, how sure it was, how long it took, which reader answered, and the feedback given.

It is what the Monitor page plots and what the label queue ranks (issue: the learning loop). It
lives in the data home (``questions.sqlite``, readable by its owner only), keeps the newest
``Settings.question_log_max_rows`` questions (trimmed every 100 questions), and is off with
``Settings(question_log=False)`` (``DOCQA_QUESTION_LOG=0``). Evaluation and benchmarks ask
through the same service without a channel and are never logged.

Plain ``sqlite3`` rather than a library: one table, appends and range reads, several processes
(the page, the CLI, API workers) writing now and then; SQLite's locking and a busy timeout are
all that needs. (No WAL journal: its side files would not be private like the database.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.query import AnswerResult

logger = logging.getLogger(__name__)

CHANNELS = ("page", "cli", "api")
VERDICTS = ("correct", "wrong", "corrected", "no_answer_in_passage")
# Old rows are trimmed every this many questions (not on every insert).
_TRIM_EVERY = 100
# A logged answer keeps this much of its passage: enough to show it again, not whole documents.
_MAX_CONTEXT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asked_at TEXT NOT NULL,        -- ISO-8601 UTC
    channel TEXT NOT NULL,         -- page, cli, api
    question TEXT NOT NULL,
    filters TEXT,                  -- JSON, or NULL without filters
    top_k INTEGER NOT NULL,
    answered INTEGER NOT NULL,     -- 1: the top result is an answer, 0: "no answer"
    top_answer TEXT,
    top_score REAL,                -- the top result's score (an answer's or "no answer"'s)
    margin REAL,                   -- top score minus the runner-up's (answer or "no answer")
    answers TEXT NOT NULL,         -- JSON list of the ranked results with their citations
    latency_ms REAL NOT NULL,
    reader TEXT NOT NULL,
    feedback TEXT,                 -- the last verdict given on one of its answers
    feedback_at TEXT
);
CREATE INDEX IF NOT EXISTS questions_asked_at ON questions(asked_at);
"""


@dataclass(frozen=True)
class LoggedQuestion:
    """One row of the log."""

    id: int
    asked_at: datetime
    channel: str
    question: str
    filters: dict[str, Any] | None
    top_k: int
    answered: bool
    top_answer: str | None
    top_score: float | None
    margin: float | None
    answers: list[dict[str, Any]]
    latency_ms: float
    reader: str
    feedback: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _result_row(result: AnswerResult) -> dict[str, Any]:
    context = result.context or ""
    return {
        "answer": result.answer,
        "score": round(float(result.score), 4),
        "document": result.document,
        "doc_id": result.doc_id,
        "page": result.page,
        "section": result.section,
        "document_offsets": list(result.document_offsets) if result.document_offsets else None,
        "context": context[:_MAX_CONTEXT_CHARS],
        "context_offsets": list(result.context_offsets) if result.context_offsets else None,
    }


def margin_of(results: Sequence[AnswerResult]) -> float | None:
    """How far the top result leads the runner-up (another answer or "no answer"), or None."""
    if len(results) < 2:
        return None
    return float(results[0].score) - float(results[1].score)


class QuestionLog:
    """Append and read questions in ``path`` (created on first use, mode 0600)."""

    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._schema_ready = False

    @contextlib.contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, under this object's lock (the schema made once)."""
        with self._lock:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Created private: questions can be confidential. O_EXCL loses no race: another
                # process that created it first simply wins.
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                self._schema_ready = False
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            try:
                if not self._schema_ready:
                    db.executescript(_SCHEMA)
                    self._schema_ready = True
                yield db
            finally:
                db.close()

    def record(
        self,
        question: str,
        results: Sequence[AnswerResult],
        *,
        channel: str,
        latency_ms: float,
        reader: str,
        top_k: int,
        filters: dict[str, Any] | None = None,
        asker: str | None = None,
    ) -> int:
        """Log one answered question; its row id (for :meth:`add_feedback`)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; one of {CHANNELS}")
        top = results[0] if results else None
        row = (
            _now(),
            channel,
            question,
            json.dumps(filters, default=str, sort_keys=True) if filters else None,
            top_k,
            int(top is not None and top.answer is not None),
            top.answer if top is not None else None,
            float(top.score) if top is not None else None,
            margin_of(results),
            json.dumps([_result_row(r) for r in results], ensure_ascii=False),
            round(float(latency_ms), 1),
            reader,
        )
        with self._database() as db:
            cursor = db.execute(
                "INSERT INTO questions (asked_at, channel, question, filters, top_k, answered,"
                " top_answer, top_score, margin, answers, latency_ms, reader)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            question_id = int(cursor.lastrowid or 0)
            if question_id % _TRIM_EVERY == 0 or self.max_rows < _TRIM_EVERY:
                db.execute("DELETE FROM questions WHERE id <= ?", (question_id - self.max_rows,))
        return question_id

    def add_feedback(self, question_id: int, verdict: str) -> bool:
        """Record the verdict given on one of a question's answers; False if it is gone."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; one of {VERDICTS}")
        with self._database() as db:
            cursor = db.execute(
                "UPDATE questions SET feedback = ?, feedback_at = ? WHERE id = ?",
                (verdict, _now(), question_id),
            )
            return cursor.rowcount == 1

    def questions(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[LoggedQuestion]:
        """Logged questions, oldest first: those asked at or after ``since``, the last
        ``limit`` of them."""
        if not self.path.exists():
            return []
        where, params = "", []
        if since is not None:
            where, params = " WHERE asked_at >= ?", [since.astimezone(UTC).isoformat()]
        sql = "SELECT * FROM questions" + where + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._database() as db:
            rows = db.execute(sql, params).fetchall()
        return [_logged(row) for row in reversed(rows)]

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self._database() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM questions").fetchone()
        return int(count)


def _logged(row: tuple[Any, ...]) -> LoggedQuestion:
    (qid, asked_at, channel, question, filters, top_k, answered, top_answer, top_score, margin,
     answers, latency_ms, reader, feedback, _feedback_at) = row  # fmt: skip
    return LoggedQuestion(
        id=int(qid),
        asked_at=datetime.fromisoformat(asked_at),
        channel=channel,
        question=question,
        filters=json.loads(filters) if filters else None,
        top_k=int(top_k),
        answered=bool(answered),
        top_answer=top_answer,
        top_score=top_score,
        margin=margin,
        answers=json.loads(answers),
        latency_ms=float(latency_ms),
        reader=reader,
        feedback=feedback,
    )


def question_log(settings: Any) -> QuestionLog | None:
    """The log of ``settings.home``, or None when logging is off."""
    if not settings.question_log:
        return None
    return QuestionLog(settings.question_log_file, settings.question_log_max_rows)
