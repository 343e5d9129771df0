"""What a question and an answer are, apart from the pipeline that connects them: the check every
channel (page, API, CLI) makes of a question, and :class:`AnswerResult`, the answer with its
citation that the page, the API, the CLI and the question log all read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long); the message says why."""


@dataclass
class AnswerResult:
    """One answer with its citation; ``answer`` is None for "the documents hold no answer"."""

    answer: str | None
    score: float
    document: str | None = None  # source path as shown to users
    title: str | None = None
    page: int | None = None
    section: str | None = None
    document_offsets: tuple[int, int] | None = None  # into the converted document text
    context: str | None = None  # the passage
    context_offsets: tuple[int, int] | None = None  # the answer within the passage
    doc_id: str | None = None
    path: str | None = None
    reader_score: float | None = None
    retriever_score: float | None = None
    # A case-dependent answer's values, each with its case (see case_dicts); empty otherwise.
    cases: list[dict[str, Any]] = field(default_factory=list)
    # The same passage in other documents the asker may read (copies of the file at other
    # paths): each {"document", "title", "page", "section", "doc_id"}.
    also_in: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("document_offsets", "context_offsets"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


class Question(str):
    """A question that passed :func:`validate_question` (whitespace normalized): what the page,
    the API and the CLI check before any model loads, and what the query service then takes
    without checking it again ("parse, don't validate")."""


def validate_question(question: str, max_chars: int) -> Question:
    """``question`` with its whitespace normalized, or :class:`QuestionError` saying why it
    cannot be asked. A :class:`Question` is returned as it is."""
    if isinstance(question, Question):
        return question
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty: type a question")
    question = " ".join(question.split())
    if len(question) > max_chars:
        raise QuestionError(
            f"the question is {len(question):,} characters long; the limit is {max_chars:,}"
            " (ask about one thing at a time)"
        )
    return Question(question)
