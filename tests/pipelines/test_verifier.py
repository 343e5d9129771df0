"""The answer verifier: what a question asks for, a candidate's features, the model file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from pipelines.spans import SpanCandidate
from pipelines.verifier import (
    FEATURES,
    VERIFIER_FILE,
    AnswerVerifier,
    PassageEvidence,
    answer_kinds,
    candidates_of,
    question_type,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many days of annual leave do I get?", "number"),
        ("What is the maximum length of a string?", "number"),
        ("When was SQLite first released?", "date"),
        ("What year did the war end?", "date"),
        ("Who approves remote work?", "person"),
        ("Which pragma turns on foreign keys?", "code"),
        ("Why is the sky blue?", None),
    ],
)
def test_question_type(question: str, kind: str | None) -> None:
    assert question_type(question) == kind


def test_answer_kinds() -> None:
    assert "number" in answer_kinds("25 days")
    assert "date" in answer_kinds("March 2024")
    assert "person" in answer_kinds("People Operations")
    assert "code" in answer_kinds("PRAGMA foreign_keys")
    assert "code" in answer_kinds("--enable-fts5")
    assert answer_kinds("the manager") == set()


def _span(start: int, end: int, logit: float, null: float = 0.0) -> SpanCandidate:
    return SpanCandidate(0, start, end, logit - null, logit, null)


PASSAGES = [
    PassageEvidence("Leave: employees get 25 days a year.", 0.8, 12.0, 1, 1),
    PassageEvidence("Some colleagues get 25 days, others 20 days.", 0.6, None, 2, None),
]


def test_candidates_carry_features_of_span_passage_and_question() -> None:
    text0, text1 = PASSAGES[0].text, PASSAGES[1].text
    spans = [
        [_span(text0.index("25"), text0.index(" a year"), 6.0), _span(0, 5, 1.0)],
        [_span(text1.index("25"), text1.index(","), 2.0)],
    ]
    cands = candidates_of("How many days of leave do I get?", spans, PASSAGES, spans_per_passage=3)
    assert [c.text for c in cands] == ["25 days", "Leave", "25 days"]
    f = {name: i for i, name in enumerate(FEATURES)}
    first, word, other = (c.features for c in cands)
    assert first.shape == (len(FEATURES),)
    assert first[f["type_match"]] == 1 and word[f["type_mismatch"]] == 1
    assert first[f["gap_to_best"]] == 0 and word[f["gap_to_best"]] > 0
    assert first[f["rank_in_passage"]] == 0 and word[f["rank_in_passage"]] == 1
    assert first[f["log_support"]] > 0 and word[f["log_support"]] == 0  # "25 days" twice
    assert first[f["found_by_both"]] == 1 and other[f["found_by_both"]] == 0
    assert first[f["bm25_relative"]] == 1 and other[f["bm25_relative"]] == 0


def test_overlapping_spans_of_a_passage_are_one_candidate() -> None:
    text0 = PASSAGES[0].text
    start = text0.index("25")
    spans = [[_span(start, start + 7, 5.0), _span(start, start + 2, 4.0)], []]
    assert [c.text for c in candidates_of("How many days?", spans, PASSAGES)] == ["25 days"]


def _verifier(threshold: float = 0.5, bias: float = 0.0) -> AnswerVerifier:
    n = len(FEATURES)
    weights = [0.0] * n
    weights[FEATURES.index("margin")] = 1.0
    return AnswerVerifier(tuple(weights), bias, (0.0,) * n, (1.0,) * n, threshold)


def test_verify_answers_above_the_threshold_and_declines_below() -> None:
    text0 = PASSAGES[0].text
    start = text0.index("25")
    strong = [[_span(start, start + 7, 3.0)], []]
    weak = [[_span(start, start + 7, -3.0)], []]
    ranked, no_answer = _verifier().verify("How many days?", strong, PASSAGES)
    assert ranked[0].score > 0.5 > no_answer
    ranked, no_answer = _verifier().verify("How many days?", weak, PASSAGES)
    assert ranked[0].score < 0.5 < no_answer
    # A threshold of sigmoid(-3): P = threshold scores exactly 0.5.
    cut = float(1 / (1 + np.exp(3.0)))
    ranked, no_answer = _verifier(threshold=cut).verify("How many days?", weak, PASSAGES)
    assert ranked[0].score == pytest.approx(0.5) and no_answer == pytest.approx(0.5)
    assert _verifier().verify("How many days?", [[], []], PASSAGES) == ([], 1.0)


def test_file_round_trip_and_refusals(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    verifier = _verifier(threshold=0.3, bias=-0.5)
    verifier.save(tmp_path)
    assert AnswerVerifier.load(tmp_path) == verifier
    data = json.loads((tmp_path / VERIFIER_FILE).read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / VERIFIER_FILE).write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert AnswerVerifier.load(tmp_path) is None
    assert "other features" in caplog.text
    (tmp_path / VERIFIER_FILE).write_text("{not json")
    assert AnswerVerifier.load(tmp_path) is None
    assert AnswerVerifier.load(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="threshold"):
        _verifier(threshold=1.0)


def test_the_reader_ranks_with_the_verifier_beside_it(tiny_reader: Path, tmp_path: Path) -> None:
    """A reader folder with ``answer_verifier.json``: ``ExtractiveReader`` scores its answers
    with the verifier (the same scores as calling it on the same spans); ``verifier=False``, or
    a folder without the file, ranks as the reader alone does."""
    import shutil

    from haystack import Document

    from pipelines.reader import ExtractiveReader, SpanPredictor

    with_verifier = tmp_path / "reader"
    shutil.copytree(tiny_reader, with_verifier)
    _verifier(threshold=0.3).save(with_verifier)
    docs = [
        Document(content="Employees get 25 days of annual leave each year.", score=0.8),
        Document(content="The office opens at 8 o'clock on weekdays.", score=0.5),
    ]
    question = "How many days of annual leave do employees get?"
    verified = ExtractiveReader(with_verifier, top_k=5).run(query=question, documents=docs)
    plain = ExtractiveReader(with_verifier, top_k=5, verifier=False).run(
        query=question, documents=docs
    )
    predictor = SpanPredictor(with_verifier)
    assert predictor.verifier is not None
    spans = predictor.predict([question] * 2, [d.content or "" for d in docs])
    expected, no_answer = predictor.verifier.verify(
        question, spans, [PassageEvidence.of(d) for d in docs]
    )
    got = [a.score for a in verified["answers"] if a.data is not None]
    assert got == pytest.approx([r.score for r in expected][: len(got)])
    assert any(a.data is None and a.score == pytest.approx(no_answer) for a in verified["answers"])
    assert [a.score for a in plain["answers"]] != [a.score for a in verified["answers"]]
    assert SpanPredictor(tiny_reader).verifier is None
