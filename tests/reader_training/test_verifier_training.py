"""Training the answer verifier from questions read over a real index with the shipped reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.squad import load_squad
from pipelines.query import QueryService
from pipelines.settings import REPO_ROOT, SHIPPED_READER, Settings
from pipelines.verifier import VERIFIER_FILE, AnswerVerifier
from reader_training.verifier_training import (
    QuestionReads,
    answer_f1,
    best_threshold,
    build_rows,
    fit_verifier,
    hide_own_passage,
    load_reads,
    read_questions,
    save_reads,
    verifier_answer,
)

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"


@pytest.fixture(scope="module")
def reads(demo_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> list[QuestionReads]:
    """50 demo train questions about the five indexed files, read with the shipped reader; a
    third asked by someone who may not see the file the answer is in."""
    settings = demo_home.with_(reader_model=str(SHIPPED_READER))
    service = QueryService(settings)
    # Demo labels are titled by path under the collection ("hr/leave-policy.pdf").
    doc_of_title = {s.source.removeprefix("documents/"): s.doc_id for s in service.store.sources()}
    examples, _ = load_squad(DEMO_TRAIN)
    indexed = [ex for ex in examples if ex.title in doc_of_title and ex.answers]
    assert len(indexed) >= 50, len(indexed)
    chosen = indexed[:50]
    every = frozenset(doc_of_title.values())
    scope_for = hide_own_passage(
        chosen, every, lambda ex: doc_of_title.get(ex.title), share=1 / 3, seed=3
    )
    out = list(read_questions(service, chosen, top_k=5, scope_for=scope_for, progress=False))
    path = tmp_path_factory.mktemp("reads") / "reads.jsonl"
    assert save_reads(out, path) == 50
    loaded = load_reads(path)  # what is cached reads back the same (logits to 1e-4)
    assert [(r.id, r.answers, r.passages) for r in loaded] == [
        (r.id, r.answers, r.passages) for r in out
    ]
    for mine, theirs in zip(loaded, out, strict=True):
        for a, b in zip(mine.spans, theirs.spans, strict=True):
            assert [(c.start_char, c.end_char) for c in a] == [
                (c.start_char, c.end_char) for c in b
            ]
            assert [c.margin for c in a] == pytest.approx([c.margin for c in b], abs=1e-4)
    return out


def test_hidden_answers_are_unanswerable_for_the_asker(reads: list[QuestionReads]) -> None:
    hidden = [r for r in reads if not r.answers]
    assert 5 <= len(hidden) <= 30
    for r in hidden:  # no passage this asker was shown holds a gold answer
        assert r.passages


def test_fitted_verifier_chooses_a_threshold_and_round_trips(
    reads: list[QuestionReads], tmp_path: Path
) -> None:
    verifier, report = fit_verifier(reads, ks=(1, 5), folds=3)
    assert 0 < verifier.threshold < 1
    assert report["questions"] == 50 and report["candidates"] > 50
    assert 0 < report["out_of_fold_f1"] <= 100
    verifier.save(tmp_path)
    assert AnswerVerifier.load(tmp_path) == verifier
    assert json.loads((tmp_path / VERIFIER_FILE).read_text())["model"] == "logistic_regression"
    # It answers from the passages it was given: every answer is a span of one of them.
    for r in reads:
        answer = verifier_answer(verifier, r)
        assert answer == "" or any(answer in p.text for p in r.passages)


def test_threshold_is_the_f1_best_cut() -> None:
    """Two questions: one answerable whose top candidate is right at P 0.9, one unanswerable
    whose top candidate has P 0.4: the cut lies between them and scores F1 100."""
    from pipelines.spans import SpanCandidate
    from pipelines.verifier import PassageEvidence

    passage = PassageEvidence("The limit is 25 days.", 0.9, 1.0, 1, 1)
    span = SpanCandidate(0, 13, 20, 1.0, 1.0, 0.0)
    answerable = QuestionReads("a", "How many days?", ["25 days"], [passage], [[span]])
    unanswerable = QuestionReads("b", "How many weeks?", [], [passage], [[span]])
    rows = build_rows([answerable, unanswerable], ks=(1,))
    import numpy as np

    threshold, f1 = best_threshold(np.array([0.9, 0.4]), rows)
    assert 0.4 < threshold < 0.9 and f1 == 100.0
    assert answer_f1([], "") == 1.0 and answer_f1(["25 days"], "") == 0.0
