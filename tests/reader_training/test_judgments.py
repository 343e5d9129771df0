"""Verdicts and annotations as labeled pairs: the rules the page and the API share."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document

from pipelines.query import AnswerResult
from pipelines.store import SourceRecord
from reader_training.feedback import FeedbackError, FeedbackStore
from reader_training.judgments import (
    PassageRef,
    annotation_pair,
    document_context,
    judged_pair,
    locate_span,
)

DOC = (
    "Annual leave. Full-time employees receive 25 days of paid annual leave per calendar year.\n"
    "Sick leave. Report sickness to your manager before 09:30 on the first day."
)
START = DOC.index("Sick leave.")
PASSAGE = DOC[START:]
Q = "When must sickness be reported?"
REF = PassageRef("d1", "Handbook", "documents/handbook.md", PASSAGE, START, page=2)


def test_a_ref_cites_an_answer_or_a_passage() -> None:
    at = PASSAGE.index("09:30")
    answer = AnswerResult(
        answer="09:30",
        score=0.8,
        document="documents/handbook.md",
        title="Handbook",
        page=2,
        document_offsets=(START + at, START + at + 5),
        context=PASSAGE,
        context_offsets=(at, at + 5),
        doc_id="d1",
    )
    assert PassageRef.of_answer(answer) == REF
    doc = Document(
        content=PASSAGE,
        meta={
            "doc_id": "d1",
            "title": "Handbook",
            "page": 2,
            "source": "documents/handbook.md",
            "start": START,
        },
    )
    assert PassageRef.of_passage(doc) == REF
    with pytest.raises(FeedbackError, match="cites no passage"):
        PassageRef.of_answer(AnswerResult(answer=None, score=0.9))


def test_the_context_is_the_document_while_it_holds_the_passage() -> None:
    assert document_context(REF, DOC) == (DOC, 0)
    assert document_context(REF, None) == (PASSAGE, START)  # the document is gone
    assert document_context(REF, "Re-indexed: other text") == (PASSAGE, START)


def test_correct_and_corrected_answers_cite_the_whole_document(tmp_path: Path) -> None:
    at = PASSAGE.index("09:30")
    correct = judged_pair(
        Q, REF, "correct", answer="09:30", offset=at, score=0.81234, document_text=DOC
    )
    assert (correct.context, correct.answer_text, correct.answer_start) == (
        DOC,
        "09:30",
        START + at,
    )
    assert correct.meta == {
        "doc_id": "d1",
        "source": "documents/handbook.md",
        "page": 2,
        "origin": "feedback",
        "verdict": "correct",
        "score": 0.8123,
        "doc_start": 0,
    }
    store = FeedbackStore(tmp_path / "feedback.json")
    assert correct.save(store) and not correct.save(store)
    assert store.list()[0].id == correct.id

    # Without the document text the passage is the context, offsets relative to it.
    corrected = judged_pair(
        Q, REF, "corrected", answer="before 09:30", offset=at - 7, rejected="09:30"
    )
    assert (corrected.context, corrected.answer_start) == (PASSAGE, at - 7)
    assert corrected.meta["doc_start"] == START and corrected.meta["rejected_answer"] == "09:30"


def test_wrong_and_no_answer_make_the_passage_unanswerable() -> None:
    wrong = judged_pair(Q, REF, "wrong", answer="Sick leave", score=0.4)
    assert (wrong.context, wrong.answer_text, wrong.answer_start) == (PASSAGE, None, None)
    assert wrong.meta["rejected_answer"] == "Sick leave" and wrong.meta["doc_start"] == START
    none = judged_pair(Q, REF, "no_answer_in_passage")
    assert none.context == PASSAGE and "rejected_answer" not in none.meta
    for verdict, kwargs, says in [
        ("great", {}, "unknown verdict 'great'"),
        ("correct", {"answer": "09:30"}, "needs the answer text and its offset"),
        ("wrong", {}, "needs the answer judged wrong"),
    ]:
        with pytest.raises(FeedbackError, match=says):
            judged_pair(Q, REF, verdict, **kwargs)


def test_locate_span() -> None:
    assert locate_span(PASSAGE, "09:30") == ("09:30", PASSAGE.index("09:30"))
    assert locate_span(PASSAGE, "your  manager") == ("your manager", PASSAGE.index("your"))
    with pytest.raises(FeedbackError, match="occurs 3 times in the text: give its start"):
        locate_span(DOC, "leave")
    with pytest.raises(FeedbackError, match="does not occur at offset 3"):
        locate_span(PASSAGE, "09:30", 3)


def test_an_annotation_is_a_pair_about_a_document_or_a_stretch_of_it() -> None:
    record = SourceRecord(
        "d1",
        "documents/handbook.md",
        "/x/handbook.md",
        "Handbook",
        "md",
        "0" * 64,
        len(DOC),
        0.0,
        "2024-01-01T00:00:00",
    )
    whole = annotation_pair("How many days of leave?", record, DOC, "25 days", None)
    assert whole.answer_start == DOC.index("25 days") and whole.context == DOC
    assert whole.meta == {
        "origin": "annotation",
        "doc_id": "d1",
        "source": "documents/handbook.md",
        "doc_start": 0,
    }
    stretch = annotation_pair(Q, record, DOC, None, None, passage=(START, len(DOC)))
    assert stretch.context == PASSAGE and stretch.meta["doc_start"] == START
    with pytest.raises(FeedbackError, match="occurs 3 times"):
        annotation_pair(Q, record, DOC, "leave", None)
    with pytest.raises(FeedbackError, match="outside the document"):
        annotation_pair(Q, record, DOC, None, None, passage=(5, 10_000))
