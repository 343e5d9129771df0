"""The question log: every question users ask (the page, ``docqa ask``, the API) with what DocQA
answered, how sure it was, how long it took, which reader answered, and the feedback given.

It is what the Monitor page plots and what the label queue ranks (issue: the learning loop). It
lives in the data home (``questions.sqlite``, readable by its owner only), keeps the newest
``Settings.question_log_max_rows`` questions asked in the last
``Settings.question_log_retention_days`` days (trimmed when opened and every 100 questions; rows
past the retention are never read back even before that), and is off with
``Settings(question_log=False)`` (``DOCQA_QUESTION_LOG=0``). Evaluation and benchmarks ask
through the same service without a channel and are never logged.

Each row names who asked (``asker``, e.g. "user:alice"; None for the CLI and rows logged before
it was recorded) and the documents its answers cite (``doc_ids``), so that reads can be
narrowed to one asker and to a caller's scope inside SQL (a row is visible to a scope only when
every document it cites is in it: its answers quote their passages), and deleting a document
can erase the questions that quote it (:meth:`QuestionLog.forget_document`). Older databases
get the two columns when first opened (their ``doc_ids`` filled in from the logged answers).

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.answers import AnswerResult

logger = logging.getLogger(__name__)

CHANNELS = ("page", "cli", "api")
VERDICTS = ("correct", "wrong", "corrected", "no_answer_in_passage")
# Old rows are trimmed every this many questions (not on every insert).
_TRIM_EVERY = 100
# A logged answer keeps this much of its passage: enough to show it again, not whole documents.
_MAX_CONTEXT_CHARS = 2000
# The columns a row is read with (named: migrated databases have their columns in another order
# than new ones would if the table grew in the middle).
_COLUMNS = (
    "id, asked_at, channel, question, filters, top_k, answered, top_answer, top_score, margin,"
    " answers, latency_ms, reader, feedback, asker, doc_ids"
)
# Columns added since the first release, with their SQL types: added to older databases.
ADDED_COLUMNS = (("asker", "TEXT"), ("doc_ids", "TEXT"))
# Older rows' cited documents, from the doc_id of each logged answer (JSON1 is built into the
# SQLite of every supported Python).
_BACKFILL_DOC_IDS = """
UPDATE questions SET doc_ids = (
    SELECT json_group_array(DISTINCT json_extract(a.value, '$.doc_id'))
    FROM json_each(questions.answers) AS a
    WHERE json_extract(a.value, '$.doc_id') IS NOT NULL
) WHERE doc_ids IS NULL
"""
# A row is inside a scope (a JSON list bound as the parameter) when none of its cited documents
# is outside it. Rows whose citations are unknown (NULL) are never in a scope.
_IN_SCOPE = (
    "doc_ids IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each(questions.doc_ids) AS d"
    " WHERE d.value NOT IN (SELECT value FROM json_each(?)))"
)
_CITES = "EXISTS (SELECT 1 FROM json_each(questions.doc_ids) AS d WHERE d.value = ?)"

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
    feedback_at TEXT,
    asker TEXT,                    -- "user:alice", "key:bot"... NULL: not known (CLI, old rows)
    doc_ids TEXT                   -- JSON list of the documents its answers cite
);
CREATE INDEX IF NOT EXISTS questions_asked_at ON questions(asked_at);
"""
# Made after the migration: the column must exist first.
_ASKER_INDEX = "CREATE INDEX IF NOT EXISTS questions_asker ON questions(asker, id)"


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
    asker: str | None = None
    doc_ids: tuple[str, ...] = ()


def _now() -> str:
    return _timestamp(datetime.now(UTC))


def _timestamp(when: datetime) -> str:
    # One format for stored and compared times: they are compared as strings in SQL.
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def cited_doc_ids(results: Sequence[AnswerResult]) -> list[str]:
    """The documents ``results`` cite, each once, in rank order."""
    return list(dict.fromkeys(r.doc_id for r in results if r.doc_id))


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
    """Append and read questions in ``path`` (created on first use, mode 0600).

    ``retention_days``: rows older than this are deleted when trimming and never read back
    (None: kept until ``max_rows`` newer ones push them out).
    """

    def __init__(
        self, path: Path, max_rows: int = 100_000, retention_days: int | None = None
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        if retention_days is not None and retention_days < 1:
            raise ValueError(f"retention_days must be at least 1 (or None), got {retention_days}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.retention_days = retention_days
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
                # Deleted rows (trimmed, or erased with a document) are overwritten on disk, not
                # left in free pages, whatever the SQLite build's default.
                db.execute("PRAGMA secure_delete = ON")
                if not self._schema_ready:
                    self._prepare(db)
                    self._schema_ready = True
                yield db
            finally:
                db.close()

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Create or migrate the table, then apply the retention (a log opened after a quiet
        month must not show month-old questions until 100 more are asked)."""
        db.executescript(_SCHEMA)
        # IMMEDIATE: two processes opening an old database at once migrate it one after the
        # other; the second finds the columns there.
        db.execute("BEGIN IMMEDIATE")
        try:
            present = {row[1] for row in db.execute("PRAGMA table_info(questions)")}
            for name, kind in ADDED_COLUMNS:
                if name not in present:
                    db.execute(f"ALTER TABLE questions ADD COLUMN {name} {kind}")
                    logger.info("question log %s: added the column %s", self.path, name)
            if "doc_ids" not in present:
                db.execute(_BACKFILL_DOC_IDS)  # a scan of the table: once, when migrating
            db.execute(_ASKER_INDEX)
            self._trim(db, None)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _cutoff(self) -> str | None:
        """The oldest time a kept row may have been asked at, None without a retention."""
        if self.retention_days is None:
            return None
        return _timestamp(datetime.now(UTC) - timedelta(days=self.retention_days))

    def _trim(self, db: sqlite3.Connection, last_id: int | None) -> None:
        if last_id is not None:
            db.execute("DELETE FROM questions WHERE id <= ?", (last_id - self.max_rows,))
        cutoff = self._cutoff()
        if cutoff is not None:
            db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,))

    def trim(self) -> None:
        """Delete the rows past ``max_rows`` and the retention now (also done every 100
        questions and when the log is first opened)."""
        if not self.path.exists():
            return
        with self._database() as db:
            row = db.execute("SELECT MAX(id) FROM questions").fetchone()
            self._trim(db, int(row[0]) if row and row[0] is not None else None)

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
        """Log one answered question; its row id (for :meth:`add_feedback`). ``asker``: who
        asked ("user:alice", "key:bot"), None when not known (the CLI)."""
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
            asker,
            json.dumps(cited_doc_ids(results)),
        )
        with self._database() as db:
            cursor = db.execute(
                "INSERT INTO questions (asked_at, channel, question, filters, top_k, answered,"
                " top_answer, top_score, margin, answers, latency_ms, reader, asker, doc_ids)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            question_id = int(cursor.lastrowid or 0)
            if question_id % _TRIM_EVERY == 0 or self.max_rows < _TRIM_EVERY:
                self._trim(db, question_id)
        return question_id

    def add_feedback(self, question_id: int, verdict: str, *, asker: str | None = None) -> bool:
        """Record the verdict given on one of a question's answers; False if it is gone (or,
        with ``asker``, was not asked by them: a caller notes verdicts on its own questions)."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; one of {VERDICTS}")
        sql = "UPDATE questions SET feedback = ?, feedback_at = ? WHERE id = ?"
        params: list[Any] = [verdict, _now(), question_id]
        if asker is not None:
            sql += " AND asker = ?"
            params.append(asker)
        with self._database() as db:
            return db.execute(sql, params).rowcount == 1

    def _where(
        self, since: datetime | None, asker: str | None, scope: frozenset[str] | None
    ) -> tuple[str, list[Any]]:
        """The WHERE clause (and its parameters) of a read: within the retention, at or after
        ``since``, asked by ``asker`` (None: anyone), citing only documents in ``scope``
        (None: any)."""
        clauses, params = [], []
        for bound in (self._cutoff(), _timestamp(since) if since is not None else None):
            if bound is not None:
                clauses.append("asked_at >= ?")
                params.append(bound)
        if asker is not None:
            clauses.append("asker = ?")
            params.append(asker)
        if scope is not None:
            clauses.append(_IN_SCOPE)
            params.append(json.dumps(sorted(scope)))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def questions(
        self,
        since: datetime | None = None,
        limit: int | None = None,
        *,
        asker: str | None = None,
        scope: frozenset[str] | None = None,
    ) -> list[LoggedQuestion]:
        """Logged questions, oldest first: those asked at or after ``since``, the last
        ``limit`` of them.

        ``asker``: only the questions this caller asked ("user:alice"); None: everyone's (an
        admin's view). ``scope``: only questions whose answers cite documents in it (the
        caller's visible doc_ids); None: all. Both narrow the SQL, so ``limit`` counts the
        rows the caller may see.
        """
        if not self.path.exists():
            return []
        where, params = self._where(since, asker, scope)
        sql = f"SELECT {_COLUMNS} FROM questions{where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._database() as db:
            rows = db.execute(sql, params).fetchall()
        return [_logged(row) for row in reversed(rows)]

    def count(self, *, asker: str | None = None, scope: frozenset[str] | None = None) -> int:
        """How many questions :meth:`questions` would return with these ``asker`` and
        ``scope``."""
        if not self.path.exists():
            return 0
        where, params = self._where(None, asker, scope)
        with self._database() as db:
            (count,) = db.execute(f"SELECT COUNT(*) FROM questions{where}", params).fetchone()
        return int(count)

    def __len__(self) -> int:
        return self.count()

    def forget_document(self, doc_id: str) -> int:
        """Delete every question whose answers cite ``doc_id`` (they quote its passages); how
        many were deleted."""
        if not self.path.exists():
            return 0
        with self._database() as db:
            # Rows an older DocQA wrote since the migration have no doc_ids yet: fill them in
            # first, so they are found too (a scan, but deleting a document is rare).
            db.execute(_BACKFILL_DOC_IDS)
            cursor = db.execute(f"DELETE FROM questions WHERE {_CITES}", (doc_id,))
            return max(0, cursor.rowcount)


def _logged(row: tuple[Any, ...]) -> LoggedQuestion:
    (qid, asked_at, channel, question, filters, top_k, answered, top_answer, top_score, margin,
     answers, latency_ms, reader, feedback, asker, doc_ids) = row  # fmt: skip
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
        asker=asker,
        doc_ids=tuple(json.loads(doc_ids)) if doc_ids else (),
    )


def question_log(settings: Any) -> QuestionLog | None:
    """The log of ``settings.home``, or None when logging is off."""
    if not settings.question_log:
        return None
    return QuestionLog(
        settings.question_log_file,
        settings.question_log_max_rows,
        settings.question_log_retention_days,
    )
