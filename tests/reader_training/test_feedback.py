"""The feedback store: SQuAD v2.0 on disk, validated answers, duplicates, contradictions, pairs
per author, bounds, and forgetting a deleted document."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from evaluation.squad import load_squad
from reader_training.feedback import (
    MAX_CONTEXT_CHARS,
    MAX_PAIRS_PER_AUTHOR,
    FeedbackError,
    FeedbackStore,
    find_occurrences,
    locate_answer,
)

DOC = (
    "Annual leave. Full-time employees receive 25 days of paid annual leave per calendar year.\n"
    "Sick leave. Report sickness to your manager before 09:30 on the first day."
)
PASSAGE_START = DOC.index("Sick leave.")
PASSAGE = DOC[PASSAGE_START:]
Q = "How many days of annual leave?"


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "feedback" / "feedback.json")


def test_pairs_are_squad_v2_that_the_trainer_reads(store: FeedbackStore) -> None:
    assert store.list() == []
    assert store.add(Q, DOC, "25 days", None, "Handbook", {"origin": "annotation"})
    assert store.add(
        "Who approves remote work?",
        PASSAGE,
        None,
        None,
        "Handbook",
        {"origin": "feedback", "verdict": "wrong"},
    )
    examples, report = load_squad(store.path)
    assert report.kept == 2 and not report.skipped and report.repaired == 0
    by_q = {ex.question: ex for ex in examples}
    assert by_q[Q].answers[0].text == "25 days"
    assert by_q[Q].answers[0].start == DOC.index("25 days")
    assert by_q["Who approves remote work?"].is_impossible
    raw = json.loads(store.path.read_text(encoding="utf-8"))
    assert raw["version"] == "v2.0"
    records = store.list()
    assert [r.meta.get("origin") for r in records] == ["annotation", "feedback"]
    assert all(r.created for r in records)
    assert not list(store.path.parent.glob("*.tmp"))  # written by rename, nothing left over


def test_duplicates_are_refused(store: FeedbackStore) -> None:
    assert store.add(Q, DOC, "25 days", DOC.index("25 days"), "Handbook")
    assert not store.add("  How many days of   annual leave? ", DOC, "25 days", None, "Handbook")
    assert len(store) == 1


def test_answers_must_occur_where_they_are_said_to(store: FeedbackStore) -> None:
    with pytest.raises(FeedbackError, match="does not occur in the text"):
        store.add(Q, DOC, "30 days", None)
    with pytest.raises(FeedbackError, match="does not occur at offset 3"):
        store.add(Q, DOC, "25 days", 3)
    with pytest.raises(FeedbackError, match="occurs 3 times"):
        store.add(Q, DOC, "leave", None)
    with pytest.raises(FeedbackError, match="question is empty"):
        store.add("   ", DOC, "25 days", None)
    assert not store.path.exists()


def test_the_latest_judgment_replaces_the_one_it_contradicts(store: FeedbackStore) -> None:
    question = "When must sickness be reported?"
    store.add(
        question,
        PASSAGE,
        None,
        None,
        "Handbook",
        {"doc_id": "d1", "doc_start": PASSAGE_START, "verdict": "wrong"},
    )
    (wrong,) = store.list()
    assert wrong.meta["region"] == [PASSAGE_START, len(DOC)]
    # The user then marks the answer inside that passage, in the whole-document context.
    start = DOC.index("before 09:30")
    assert store.add(
        question,
        DOC,
        "before 09:30",
        start,
        "Handbook",
        {"doc_id": "d1", "doc_start": 0, "verdict": "corrected"},
    )
    (kept,) = store.list()
    assert kept.meta["verdict"] == "corrected"
    assert kept.meta["region"] == [start, start + len("before 09:30")]
    # Another answer to the same question in the same context replaces it too.
    assert store.add(question, DOC, "09:30", DOC.index("09:30"), "Handbook", {"doc_id": "d1"})
    assert [r.answer_text for r in store.list()] == ["09:30"]
    # A judgment about a passage of another document does not.
    assert store.add(question, "Other text.", None, None, "", {"doc_id": "d2", "doc_start": 0})
    assert len(store) == 2


def test_update_delete_and_export(store: FeedbackStore, tmp_path: Path) -> None:
    store.add(Q, DOC, "25 days", None, "Handbook", {"doc_id": "d1", "doc_start": 0})
    (record,) = store.list()
    updated = store.update(
        record.id,
        question="How much paid leave?",
        answer_text="25 days of paid annual leave",
        answer_start=None,
    )
    assert updated.id != record.id and updated.question == "How much paid leave?"
    assert updated.meta["region"] == [DOC.index("25 days"), DOC.index(" per calendar")]
    with pytest.raises(FeedbackError, match="does not occur"):
        store.update(updated.id, answer_text="26 days")
    unanswerable = store.update(updated.id, no_answer=True)
    assert unanswerable.answer_text is None and unanswerable.answer_start is None
    with pytest.raises(KeyError):
        store.update("fb-unknown", question="?")

    out = tmp_path / "export.json"
    assert store.export(out) == 1
    exported = json.loads(out.read_text(encoding="utf-8"))
    qa = exported["data"][0]["paragraphs"][0]["qas"][0]
    assert qa["is_impossible"] is True and "docqa" not in qa  # plain SQuAD
    assert store.delete(unanswerable.id)
    assert not store.delete(unanswerable.id)
    assert store.list() == []


def test_an_unreadable_file_is_never_overwritten(store: FeedbackStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(FeedbackError, match="invalid JSON at line 1"):
        store.add(Q, DOC, "25 days", None)
    assert store.path.read_text(encoding="utf-8") == "{not json"


def test_concurrent_adds_are_all_kept(store: FeedbackStore) -> None:
    def add(n: int) -> None:
        FeedbackStore(store.path).add(f"Question {n}?", DOC, "25 days", None)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 8


def test_locating_a_typed_answer() -> None:
    assert find_occurrences("a-a-a", "a-a") == [0, 2]
    text = "Core hours are from 10:00\n  to 15:00; outside core hours"
    assert locate_answer(text, "10:00 to 15:00") == [(20, 36)]  # whitespace differs
    at = text.index("core hours")
    assert locate_answer(text, " core hours ") == [(at, at + 10)]
    assert locate_answer(text, "   ") == []


def test_each_author_has_their_own_pairs(store: FeedbackStore) -> None:
    alice, bob = {"author": "user:alice"}, {"author": "key:bot"}
    assert store.add(Q, DOC, "25 days", None, "Handbook", alice)
    assert not store.add(Q, DOC, "25 days", None, "Handbook", alice)  # her duplicate
    # Bob agrees: his own pair (another id), so that either may change their mind alone.
    assert store.add(Q, DOC, "25 days", None, "Handbook", bob)
    first, second = store.list()
    assert first.id != second.id and {first.author, second.author} == {"user:alice", "key:bot"}
    # Bob's other answer replaces his pair, not Alice's.
    assert store.add(Q, DOC, "25 days of paid annual leave", None, "Handbook", bob)
    assert sorted((r.author, r.answer_text) for r in store.list()) == [
        ("key:bot", "25 days of paid annual leave"),
        ("user:alice", "25 days"),
    ]
    # The author is not editable: it decides whose judgments replace a pair.
    mine = next(r for r in store.list() if r.author == "user:alice")
    edited = store.update(mine.id, question="Annual leave?", meta={"author": "key:bot"})
    assert edited.author == "user:alice"


def _file_with_pairs(path: Path, author: str, n: int) -> None:
    """A feedback file as FeedbackStore writes it, holding ``n`` pairs of ``author``."""
    qas = [
        {
            "id": f"fb-{i:016x}",
            "question": f"Question {i}?",
            "is_impossible": True,
            "answers": [],
            "docqa": {"created": "2026-01-01T00:00:00+00:00", "author": author},
        }
        for i in range(n)
    ]
    data = {
        "version": "v2.0",
        "data": [{"title": "", "paragraphs": [{"context": DOC, "qas": qas}]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_one_author_can_store_only_so_much(store: FeedbackStore) -> None:
    _file_with_pairs(store.path, "key:bot", MAX_PAIRS_PER_AUTHOR)
    with pytest.raises(FeedbackError, match=r"key:bot already keeps 5,000 labeled pairs"):
        store.add("One more?", DOC, None, None, "", {"author": "key:bot"})
    assert len(store) == MAX_PAIRS_PER_AUTHOR
    # Others are not held back by one author's pairs.
    assert store.add("Another author?", DOC, None, None, "", {"author": "user:alice"})
    # A pair that replaces one of the author's own still fits (the count does not grow).
    (first,) = [r for r in store.list() if r.question == "Question 0?"]
    assert store.add("Question 0?", DOC, "25 days", None, "", {"author": "key:bot"})
    assert store.get(first.id) is None and len(store) == MAX_PAIRS_PER_AUTHOR + 1


def test_a_context_is_bounded(store: FeedbackStore) -> None:
    long = "word " * (MAX_CONTEXT_CHARS // 5 + 1)
    with pytest.raises(FeedbackError, match=r"more than the 4,000 a labeled pair may keep"):
        store.add(Q, long, None, None)
    assert store.add(Q, long[:MAX_CONTEXT_CHARS], None, None)


def test_forgetting_a_document_removes_its_pairs_only(store: FeedbackStore) -> None:
    store.add(Q, DOC, "25 days", None, "Handbook", {"doc_id": "d1", "author": "user:alice"})
    store.add("Sick?", PASSAGE, None, None, "Handbook", {"doc_id": "d1", "author": "key:bot"})
    store.add("Other?", "Other text.", None, None, "Other", {"doc_id": "d2"})
    store.add("Old?", "Old text.", None, None, "Old", {"source": "documents/old.md"})
    assert store.forget_document("d1") == 2
    assert [r.question for r in store.list()] == ["Other?", "Old?"]
    assert store.forget_document("d9", "documents/old.md") == 1  # older pairs name the source
    assert [r.question for r in store.list()] == ["Other?"]
    examples, report = load_squad(store.path)  # still a training file
    assert [e.question for e in examples] == ["Other?"] and not report.skipped
    assert store.forget_document("d1") == 0
    raw = store.path.read_text(encoding="utf-8")
    assert "25 days" not in raw and "Sick leave" not in raw and "Handbook" not in raw
    # An unreadable file is never overwritten.
    store.path.write_text("{broken", encoding="utf-8")
    with pytest.raises(FeedbackError, match="cannot be read"):
        store.forget_document("d2")
    assert store.path.read_text(encoding="utf-8") == "{broken"
