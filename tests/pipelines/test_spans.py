"""Answers ranked across passages (pipelines.spans.rank_answers)."""

from __future__ import annotations

import math

import pytest

from pipelines.reader_config import AnswerRanking
from pipelines.spans import SpanCandidate, answer_key, rank_answers

PASSAGES = [
    "Colleagues in India get 21 days of earned leave a year.",
    "Earned leave can be carried over up to 30 days.",
    "India: 21 days of earned leave, accrued monthly.",
]


def _candidate(passage: int, text: str, margin: float) -> SpanCandidate:
    start = PASSAGES[passage].index(text)
    return SpanCandidate(passage, start, start + len(text), margin, margin)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


CANDIDATES = [
    [_candidate(0, "21 days", 0.4)],
    [_candidate(1, "up to 30 days", 0.8)],
    [_candidate(2, "21 days", 0.2)],
]


def _top(ranked: list[SpanCandidate], texts: list[str] = PASSAGES) -> str:
    return ranked[0].text_in(texts)


def test_without_pooling_the_single_best_span_wins() -> None:
    ranked, no_answer = rank_answers(CANDIDATES, [0.5, 0.5, 0.5], sigmoid)
    assert _top(ranked) == "up to 30 days"
    assert no_answer == pytest.approx(1 - sigmoid(0.8))
    assert len(ranked) == 3


def test_a_ranked_span_names_the_passage_it_was_read_from() -> None:
    """Spans decoded in a second read (the cascade's rest) count their pairs from 0 again;
    ranked, each names its passage among all those read, and keeps what decoding found."""
    second_read = [[], [], [SpanCandidate(0, 7, 14, 0.7, 2.0, 1.3)]]  # "21 days" of passage 2
    ranked, _ = rank_answers(second_read, [0.5] * 3, sigmoid)
    (span,) = ranked
    assert span.pair == 2 and span.text_in(PASSAGES) == "21 days"
    assert (span.margin, span.span_logit, span.null_logit) == (0.7, 2.0, 1.3)
    assert span.reader_score == pytest.approx(sigmoid(0.7)) == span.score
    assert second_read[2][0].score is None  # the decoded candidate is left as it was


def test_pooling_combines_the_evidence_of_passages_that_agree() -> None:
    ranked, no_answer = rank_answers(
        CANDIDATES,
        [0.5, 0.5, 0.9],
        sigmoid,
        AnswerRanking(answer_pooling="noisy_or"),
        passage_texts=PASSAGES,
    )
    # Two passages say "21 days": 1 - (1 - s(0.4)) (1 - s(0.2)) beats s(0.8).
    pooled = 1 - (1 - sigmoid(0.4)) * (1 - sigmoid(0.2))
    assert _top(ranked) == "21 days" and ranked[0].pair == 0  # shown at its best span
    assert ranked[0].reader_score == pytest.approx(pooled)
    assert [r.start_char for r in ranked].count(PASSAGES[0].index("21")) == 1
    assert len(ranked) == 2
    assert no_answer == pytest.approx(1 - pooled)
    # The retriever part is the best of the agreeing passages'.
    weighted, _ = rank_answers(
        CANDIDATES,
        [0.5, 0.5, 0.9],
        sigmoid,
        AnswerRanking(retriever_weight=0.5, answer_pooling="noisy_or"),
        passage_texts=PASSAGES,
    )
    assert weighted[0].score == pytest.approx(0.5 * pooled + 0.5 * 0.9)


def test_pooling_needs_the_texts_and_a_known_mode() -> None:
    with pytest.raises(ValueError, match="passage texts"):
        rank_answers(CANDIDATES, [0.5] * 3, sigmoid, AnswerRanking(answer_pooling="noisy_or"))
    with pytest.raises(ValueError, match="answer_pooling"):
        AnswerRanking(answer_pooling="sum")


def test_answer_key_ignores_case_punctuation_and_spacing() -> None:
    assert answer_key("21  Days.") == answer_key("21 days") != answer_key("31 days")


def test_a_rank_prior_asks_more_of_spans_from_lower_ranked_passages() -> None:
    # The same margin in the first and the third passage: without a prior the tie keeps
    # retrieval order; with one, the third passage's span scores lower by prior * ln(3).
    same = [[_candidate(0, "21 days", 0.5)], [], [_candidate(2, "21 days", 0.5)]]
    ranked, _ = rank_answers(same, [0.5] * 3, sigmoid)
    assert [r.reader_score for r in ranked] == [sigmoid(0.5), sigmoid(0.5)]
    ranked, _ = rank_answers(same, [0.5] * 3, sigmoid, AnswerRanking(rank_prior=1.0))
    assert ranked[0].pair == 0 and ranked[0].reader_score == pytest.approx(sigmoid(0.5))
    assert ranked[1].reader_score == pytest.approx(sigmoid(0.5 - math.log(3)))

    # A weak span found only in the third passage answers without a prior and not with one.
    weak = [[], [], [_candidate(2, "21 days", 0.3)]]
    ranked, no_answer = rank_answers(weak, [0.5] * 3, sigmoid)
    assert ranked[0].score > no_answer
    ranked, no_answer = rank_answers(weak, [0.5] * 3, sigmoid, AnswerRanking(rank_prior=1.0))
    assert ranked[0].score < no_answer

    # The prior is a setting of a reader's ranking, saved with it (flat in docqa_reader.json).
    from pipelines.reader_config import ReaderConfig

    saved = ReaderConfig(ranking=AnswerRanking(rank_prior=1.0)).to_dict()
    assert saved["rank_prior"] == 1.0
    assert ReaderConfig.from_dict(saved).ranking == AnswerRanking(rank_prior=1.0)
