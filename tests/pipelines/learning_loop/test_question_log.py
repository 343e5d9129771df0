"""The question log: what users asked and got, bounded, private, off when asked to be."""

from __future__ import annotations

import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.learning_loop.question_log import QuestionLog, question_log
from pipelines.query import AnswerResult, QueryService
from pipelines.settings import Settings


def results(top: str | None, scores: tuple[float, ...] = (0.8, 0.3)) -> list[AnswerResult]:
    out = [
        AnswerResult(
            answer=top,
            score=scores[0],
            document="documents/hr/leave.pdf" if top else None,
            page=2 if top else None,
            document_offsets=(10, 10 + len(top)) if top else None,
            context=f"You get {top} a year." if top else None,
            context_offsets=(8, 8 + len(top)) if top else None,
            doc_id="abc" if top else None,
        )
    ]
    out += [AnswerResult(answer=None if top else "maybe", score=s) for s in scores[1:]]
    return out


def test_a_question_is_logged_with_its_answers_and_can_get_feedback(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "home" / "questions.sqlite")
    qid = log.record(
        "How many vacation days?",
        results("25 days"),
        channel="page",
        latency_ms=123.456,
        reader="v0.4",
        top_k=10,
        filters={"field": "meta.file_type", "operator": "==", "value": "pdf"},
    )
    log.record("Who is the CEO?", results(None, (0.9, 0.85)), channel="cli", latency_ms=80,
               reader="v0.4", top_k=5)  # fmt: skip
    first, second = log.questions()
    assert first.id == qid and first.question == "How many vacation days?"
    assert first.channel == "page" and first.answered and first.top_answer == "25 days"
    assert first.top_score == pytest.approx(0.8) and first.margin == pytest.approx(0.5)
    assert first.latency_ms == pytest.approx(123.5) and first.reader == "v0.4"
    assert first.filters == {"field": "meta.file_type", "operator": "==", "value": "pdf"}
    assert first.answers[0]["document"] == "documents/hr/leave.pdf"
    assert first.answers[0]["context_offsets"] == [8, 15]
    assert not second.answered and second.top_answer is None
    assert second.margin == pytest.approx(0.05)  # "no answer" barely ahead: a question to label
    assert first.asked_at.tzinfo is not None
    assert datetime.now(UTC) - first.asked_at < timedelta(minutes=5)

    assert log.add_feedback(qid, "wrong")
    assert log.questions()[0].feedback == "wrong"
    assert not log.add_feedback(999, "correct")
    with pytest.raises(ValueError, match="verdict"):
        log.add_feedback(qid, "meh")
    with pytest.raises(ValueError, match="channel"):
        log.record("q", results("x"), channel="email", latency_ms=1, reader="r", top_k=1)
    # Readable by its owner only: questions can be confidential.
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_the_log_keeps_only_the_newest_questions(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "questions.sqlite", max_rows=5)
    for i in range(12):
        log.record(f"question {i}", results("x"), channel="api", latency_ms=1, reader="r",
                   top_k=1)  # fmt: skip
    kept = log.questions()
    assert [q.question for q in kept] == [f"question {i}" for i in range(7, 12)]
    assert len(log) == 5
    assert [q.question for q in log.questions(limit=2)] == ["question 10", "question 11"]
    assert log.questions(since=datetime.now(UTC) + timedelta(hours=1)) == []


@pytest.fixture
def home(demo_home: Settings, tmp_path: Path) -> Settings:
    """A copy of the demo home (index only), so the logs of these tests are their own."""
    shutil.copytree(demo_home.index_dir, tmp_path / "home" / "index")
    return demo_home.with_(home=tmp_path / "home")


def test_questions_asked_with_a_channel_are_logged_and_evaluation_is_not(home: Settings) -> None:
    service = QueryService(home)
    asked = service.answer("Which laptop model do office staff receive?", channel="page")
    service.answer("Which days are the company-wide anchor days?")  # evaluation: no channel
    logged = QuestionLog(home.question_log_file).questions()
    assert [q.id for q in logged] == [asked.question_id]
    entry = logged[0]
    assert entry.question == "Which laptop model do office staff receive?"
    assert entry.channel == "page" and entry.top_k == home.top_k_passages
    assert entry.reader == Path(str(home.reader_model)).name
    assert entry.latency_ms == pytest.approx(asked.latency_ms, abs=0.1)
    assert [a["answer"] for a in entry.answers] == [a.answer for a in asked.answers]
    assert entry.answered == (asked.answers[0].answer is not None)


def test_the_log_can_be_turned_off(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    off = home.with_(question_log=False)
    assert question_log(off) is None
    QueryService(off).answer("Which laptop model do office staff receive?", channel="cli")
    assert not home.question_log_file.exists()
    monkeypatch.setenv("DOCQA_QUESTION_LOG", "0")
    assert Settings.from_env(home.home).question_log is False
