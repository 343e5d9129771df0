"""The question check every channel makes (pipelines.answers)."""

from __future__ import annotations

import pytest

from pipelines.answers import Question, QuestionError, validate_question


def test_a_question_is_normalized_once_and_then_taken_as_it_is() -> None:
    checked = validate_question("  How many\tdays of\n leave? ", 100)
    assert isinstance(checked, Question) and checked == "How many days of leave?"
    # The query service takes a checked question without checking it again.
    assert validate_question(checked, 100) is checked


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ("", "the question is empty"),
        (" \n\t ", "the question is empty"),
        ("x" * 10_000, "the question is 10,000 characters long; the limit is 2,000"),
    ],
)
def test_a_question_that_cannot_be_asked_says_why(question: str, problem: str) -> None:
    with pytest.raises(QuestionError, match=problem):
        validate_question(question, 2_000)
