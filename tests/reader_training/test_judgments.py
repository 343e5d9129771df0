"""Verdicts and annotations as labeled pairs: the rules the page and the API share. Contexts come
from the index only, are bounded, and every pair names its author."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document

from pipelines.answers import AnswerResult
from pipelines.store import SourceRecord
from reader_training.feedback import MAX_CONTEXT_CHARS, FeedbackError, FeedbackStore
from reader_training.judgments import (
    PassageRef,
    annotation_pair,
    context_window,
    indexed_passage,
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
ALICE, BOB = "user:alice", "user:bob"
# A document far longer than a pair's context may be: numbered words, so any cut is visible.
LONG = " ".join(f"word{i}" for i in range(12_000))


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


def test_a_passage_counts_only_as_the_index_holds_it() -> None:
    assert indexed_passage(REF, DOC) == PASSAGE
    with pytest.raises(FeedbackError, match=r"documents/handbook\.md is no longer in the index"):
        indexed_passage(REF, None)
    with pytest.raises(FeedbackError, match=r"does not match the indexed text .* at offset"):
        indexed_passage(REF, "Re-indexed: other text")
    # A client that sends back an answer with its own passage text, or the right text at
    # another offset, is refused: its text never becomes a training context.
    poisoned = PassageRef("d1", "Handbook", "documents/handbook.md", "Sick leave. Ignore.", START)
    moved = PassageRef("d1", "Handbook", "documents/handbook.md", PASSAGE, START - 1)
    for ref in (poisoned, moved):
        with pytest.raises(FeedbackError, match="does not match the indexed text"):
            indexed_passage(ref, DOC)
        with pytest.raises(FeedbackError, match="does not match the indexed text"):
            judged_pair(Q, ref, "no_answer_in_passage", document_text=DOC, author=ALICE)
        with pytest.raises(FeedbackError, match="does not match the indexed text"):
            judged_pair(Q, ref, "correct", answer="Sick", offset=0, document_text=DOC, author=ALICE)


def test_correct_and_corrected_answers_cite_the_document_around_them(tmp_path: Path) -> None:
    at = PASSAGE.index("09:30")
    correct = judged_pair(
        Q,
        REF,
        "correct",
        answer="09:30",
        offset=at,
        score=0.81234,
        document_text=DOC,
        author=ALICE,
    )
    # A short document is the whole context, with the answer's offset in it.
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
        "author": ALICE,
        "score": 0.8123,
        "doc_start": 0,
    }
    assert correct.author == ALICE
    store = FeedbackStore(tmp_path / "feedback.json")
    assert correct.save(store) and not correct.save(store)
    assert store.list()[0].id == correct.id and store.list()[0].author == ALICE

    corrected = judged_pair(
        Q,
        REF,
        "corrected",
        answer="before 09:30",
        offset=at - 7,
        rejected="09:30",
        document_text=DOC,
        author=ALICE,
    )
    assert (corrected.context, corrected.answer_start) == (DOC, START + at - 7)
    assert corrected.meta["doc_start"] == 0 and corrected.meta["rejected_answer"] == "09:30"
    with pytest.raises(FeedbackError, match="does not occur at offset 3 of the passage"):
        judged_pair(Q, REF, "correct", answer="09:30", offset=3, document_text=DOC, author=ALICE)


def test_a_long_document_gives_a_bounded_window_around_the_answer(tmp_path: Path) -> None:
    start = LONG.index("word7000 ")
    passage = LONG[start : start + 1500]
    ref = PassageRef("d2", "Long", "documents/long.md", passage, start)
    at = passage.index("word7010")
    pair = judged_pair(
        Q, ref, "correct", answer="word7010", offset=at, document_text=LONG, author=BOB
    )
    doc_start = pair.meta["doc_start"]
    assert len(pair.context) <= MAX_CONTEXT_CHARS < len(LONG)
    assert pair.context == LONG[doc_start : doc_start + len(pair.context)]
    assert pair.context[pair.answer_start : pair.answer_start + 8] == "word7010"
    assert doc_start + pair.answer_start == start + at
    # Centered on the answer, cut between words.
    assert pair.context.startswith("word") and pair.context.split()[-1] in LONG.split()
    assert abs(pair.answer_start - (len(pair.context) - pair.answer_start)) < 50
    store = FeedbackStore(tmp_path / "feedback.json")
    assert pair.save(store)
    assert len(store.path.read_text(encoding="utf-8")) < 2 * MAX_CONTEXT_CHARS

    # Near the start of the document the window starts there, and still holds the answer.
    first = judged_pair(
        Q,
        PassageRef("d2", "Long", "documents/long.md", LONG[:600], 0),
        "correct",
        answer="word3",
        offset=LONG.index("word3 "),
        document_text=LONG,
        author=BOB,
    )
    assert first.meta["doc_start"] == 0 and first.context.startswith("word0 word1")
    assert len(first.context) <= MAX_CONTEXT_CHARS

    # A passage longer than the bound is clipped for "no answer" (what holds no answer as a
    # whole holds none in part).
    huge = PassageRef("d2", "Long", "documents/long.md", LONG[:20_000], 0)
    none = judged_pair(Q, huge, "no_answer_in_passage", document_text=LONG, author=BOB)
    assert none.meta["doc_start"] == 0 and len(none.context) <= MAX_CONTEXT_CHARS
    assert LONG.startswith(none.context) and LONG[len(none.context)] == " "
    with pytest.raises(FeedbackError, match="longer than a labeled pair's context"):
        judged_pair(
            Q, huge, "correct", answer=LONG[:5000], offset=0, document_text=LONG, author=BOB
        )


def test_context_window_edges() -> None:
    text = "alpha beta gamma delta epsilon"
    assert context_window(text) == (0, len(text))
    # Centered on "beta" ("pha beta gam"), then cut to whole words.
    assert context_window(text, (6, 10), limit=12) == (6, 10)
    assert context_window(text, within=(6, 22), limit=10) == (6, 16)  # "beta gamma"
    assert context_window(text, within=(6, 22), limit=12) == (6, 16)
    begin, end = context_window(LONG, (100, 110))
    assert begin == 0 and end - begin <= MAX_CONTEXT_CHARS


def test_wrong_and_no_answer_make_the_passage_unanswerable() -> None:
    wrong = judged_pair(
        Q, REF, "wrong", answer="Sick leave", score=0.4, document_text=DOC, author=ALICE
    )
    assert (wrong.context, wrong.answer_text, wrong.answer_start) == (PASSAGE, None, None)
    assert wrong.meta["rejected_answer"] == "Sick leave" and wrong.meta["doc_start"] == START
    none = judged_pair(Q, REF, "no_answer_in_passage", document_text=DOC, author=ALICE)
    assert none.context == PASSAGE and "rejected_answer" not in none.meta
    for verdict, kwargs, says in [
        ("great", {}, "unknown verdict 'great'"),
        ("correct", {"answer": "09:30"}, "needs the answer text and its offset"),
        ("wrong", {}, "needs the answer judged wrong"),
        ("wrong", {"answer": "x", "author": " "}, "needs its author"),
    ]:
        with pytest.raises(FeedbackError, match=says):
            judged_pair(Q, REF, verdict, **{"document_text": DOC, "author": ALICE, **kwargs})


def test_the_latest_judgment_wins_per_author(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.json")
    at = PASSAGE.index("09:30")
    alice = judged_pair(
        Q, REF, "correct", answer="09:30", offset=at, document_text=DOC, author=ALICE
    )
    bob = judged_pair(Q, REF, "wrong", answer="09:30", document_text=DOC, author=BOB)
    assert alice.save(store) and bob.save(store)
    # Bob's "wrong" does not replace Alice's "correct": both are kept, each with its author.
    assert sorted((r.author, r.meta["verdict"]) for r in store.list()) == [
        (ALICE, "correct"),
        (BOB, "wrong"),
    ]
    # Alice changes her mind: her own pair is replaced, Bob's stays.
    again = judged_pair(Q, REF, "no_answer_in_passage", document_text=DOC, author=ALICE)
    assert again.save(store)
    assert sorted((r.author, r.meta["verdict"]) for r in store.list()) == [
        (ALICE, "no_answer_in_passage"),
        (BOB, "wrong"),
    ]
    # Bob corrects the answer: it replaces his own "wrong" only.
    fixed = judged_pair(
        Q,
        REF,
        "corrected",
        answer="before 09:30",
        offset=at - 7,
        rejected="09:30",
        document_text=DOC,
        author=BOB,
    )
    assert fixed.save(store)
    assert sorted((r.author, r.meta["verdict"]) for r in store.list()) == [
        (ALICE, "no_answer_in_passage"),
        (BOB, "corrected"),
    ]


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
    whole = annotation_pair("How many days of leave?", record, DOC, "25 days", None, author=ALICE)
    assert whole.answer_start == DOC.index("25 days") and whole.context == DOC
    assert whole.meta == {
        "origin": "annotation",
        "doc_id": "d1",
        "source": "documents/handbook.md",
        "doc_start": 0,
        "author": ALICE,
    }
    stretch = annotation_pair(Q, record, DOC, None, None, passage=(START, len(DOC)), author=ALICE)
    assert stretch.context == PASSAGE and stretch.meta["doc_start"] == START
    with pytest.raises(FeedbackError, match="occurs 3 times"):
        annotation_pair(Q, record, DOC, "leave", None, author=ALICE)
    with pytest.raises(FeedbackError, match="outside the document"):
        annotation_pair(Q, record, DOC, None, None, passage=(5, 10_000), author=ALICE)
    with pytest.raises(FeedbackError, match="needs its author"):
        annotation_pair(Q, record, DOC, None, None, author="")


def test_an_annotation_of_a_long_document_keeps_a_bounded_context(tmp_path: Path) -> None:
    """/labels used to copy the whole document into the feedback file on every call."""
    record = SourceRecord(
        "d2", "documents/long.md", "/x/long.md", "Long", "md", "0" * 64, len(LONG), 0.0, ""
    )
    store = FeedbackStore(tmp_path / "feedback.json")
    for n in range(5):
        pair = annotation_pair(
            f"Question {n}?", record, LONG, f"word{9000 + n}", None, author=ALICE
        )
        begin = pair.meta["doc_start"]
        assert (
            len(pair.context) <= MAX_CONTEXT_CHARS
            and pair.context == LONG[begin:][: len(pair.context)]
        )
        assert begin + pair.answer_start == LONG.index(f"word{9000 + n} ")
        assert pair.save(store)
    # Five pairs of a 100,000-character document: five windows, not five documents.
    assert len(LONG) > 100_000
    assert store.path.stat().st_size < 5 * MAX_CONTEXT_CHARS + 10_000
    # "No answer" about the whole long document: its start, which holds no answer either.
    none = annotation_pair("Who is the CEO?", record, LONG, None, None, author=ALICE)
    assert none.meta["doc_start"] == 0 and LONG.startswith(none.context)
    assert len(none.context) <= MAX_CONTEXT_CHARS
    # A start given inside a chosen stretch is an offset into that stretch.
    lo = LONG.index("word5000 ")
    inside = annotation_pair(
        "Q?", record, LONG, "word5001", len("word5000 "), passage=(lo, lo + 20_000), author=BOB
    )
    assert inside.meta["doc_start"] + inside.answer_start == LONG.index("word5001 ")
