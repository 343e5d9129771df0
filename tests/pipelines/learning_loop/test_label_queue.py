"""The label queue: wrong answers first, then undecided ones, then frequent ones; labeled gone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipelines.answers import AnswerResult
from pipelines.learning_loop.label_queue import label_queue
from pipelines.learning_loop.question_log import LoggedQuestion, QuestionLog


def logged(
    i: int, question: str, margin: float | None, feedback: str | None = None, null_second=False
) -> LoggedQuestion:
    answers = [
        {"answer": "x", "score": 0.6, "doc_id": f"doc{i}"},
        {"answer": None if null_second else "y", "score": 0.6 - (margin or 0.0), "doc_id": None},
    ]
    return LoggedQuestion(
        id=i, asked_at=datetime(2026, 12, 1, tzinfo=UTC), channel="page", question=question,
        filters=None, top_k=10, answered=True, top_answer="x", top_score=0.6, margin=margin,
        answers=answers, latency_ms=100.0, reader="v0.4", feedback=feedback,
    )  # fmt: skip


def test_queue_order_and_reasons() -> None:
    rows = [
        logged(1, "Who approves travel?", 0.45),
        logged(2, "How many vacation days?", 0.9, feedback="wrong"),
        logged(3, "When is payday?", 0.02, null_second=True),
        logged(4, "Where is the VPN guide?", 0.9),  # sure and unjudged: nothing to learn
        logged(5, "who approves travel", 0.45),
        logged(6, "Who approves travel?  ", 0.45),
        logged(7, "How do I reset my password?", 0.05),
    ]
    queue = label_queue(rows, labeled=["How do I reset my password?"])
    assert [item.question for item in queue] == [
        "How many vacation days?",  # marked wrong
        "When is payday?",  # a tiny margin between an answer and "no answer"
        "Who approves travel?  ",  # asked 3 times (normalized), a wider margin
    ]
    wrong, undecided, frequent = queue
    assert wrong.reasons == ("marked wrong",)
    assert frequent.times_asked == 3 and "asked 3 times" in frequent.reasons
    assert undecided.reasons == ("margin 0.02 between answer and no answer",)
    assert undecided.top_answer == {"answer": "x", "score": 0.6, "doc_id": "doc3"}
    assert label_queue(rows, limit=1)[0].question == "How many vacation days?"
    corrected = [*rows, logged(8, "How many vacation days?", 0.9, feedback="correct")]
    assert label_queue(corrected)[0].question == "How many vacation days?"  # still once wrong
    assert "How many vacation days?" not in [
        i.question for i in label_queue(rows, labeled=["how many vacation days"])
    ]


def test_queue_spreads_over_documents() -> None:
    """Three wrong answers citing one document and a less undecided wrong answer citing
    another: the other document's question comes second, not fourth; without spreading, by
    priority. A question nobody marked wrong still comes after every wrong answer."""
    rows = [logged(i, f"Which setting of the table {i}?", 0.1, feedback="wrong") for i in (1, 2, 3)]
    for row in rows:
        row.answers[0]["doc_id"] = "manual"
    rows.append(logged(4, "Who signs off the budget?", 0.4, feedback="wrong"))
    rows.append(logged(5, "When is payday?", 0.0))  # undecided, not marked wrong
    spread = [item.question for item in label_queue(rows, spread_decay=0.7)]
    assert spread[1] == "Who signs off the budget?"
    assert spread[-1] == "When is payday?"
    assert sorted(spread) == sorted(row.question for row in rows)
    by_priority = [item.question for item in label_queue(rows)]  # the default
    assert by_priority[3:] == ["Who signs off the budget?", "When is payday?"]


def test_the_queue_offers_only_what_the_caller_may_see(tmp_path: Path) -> None:
    """Read with the caller's asker and scope, the queue holds neither another user's
    questions nor a question whose answers quote a document outside the scope."""
    log = QuestionLog(tmp_path / "questions.sqlite")

    def ask(question: str, doc_ids: tuple[str, ...], asker: str) -> None:
        results = [
            AnswerResult(answer=f"from {d}", score=0.5 - i * 0.1, doc_id=d, context=d)
            for i, d in enumerate(doc_ids)
        ]
        log.record(question, results, channel="page", latency_ms=1, reader="r", top_k=3,
                   asker=asker)  # fmt: skip

    ask("How do we deploy?", ("eng1", "eng2"), "user:eve")
    ask("Who is on call?", ("eng2", "hr1"), "user:eve")  # an answer quotes an hr document
    ask("What is Margot's salary?", ("hr1", "hr2"), "user:harriet")
    eng = frozenset({"eng1", "eng2"})
    mine = label_queue(log.questions(asker="user:eve", scope=eng))
    assert [item.question for item in mine] == ["How do we deploy?"]
    everyone = label_queue(log.questions())  # an admin's queue
    assert len(everyone) == 3
