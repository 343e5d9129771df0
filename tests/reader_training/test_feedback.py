"""The feedback store: SQuAD v2.0 on disk, validated answers, duplicates, contradictions."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from evaluation.squad import load_squad
from reader_training.feedback import (
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
