"""The API's request and response bodies as pydantic models (they make the OpenAPI docs).

An answer (:class:`AnswerOut`) is :meth:`pipelines.query.AnswerResult.to_dict` without the
server's file path (``path``): the objects ``docqa ask --json`` prints, so a client can read
both the same way and send an answer back as it got it (``POST /feedback``). Request models
refuse unknown fields, so a misspelt option is an error rather than silently ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from pipelines.answers import AnswerResult
from pipelines.learning_loop.question_log import VERDICTS

Verdict = Literal["correct", "wrong", "corrected", "no_answer_in_passage"]
assert set(get_args(Verdict)) == set(VERDICTS), "the question log's verdicts changed"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- ask ----------------------------------------------------------------------------------------


class AskFilters(_Request):
    """Which documents to search, as the page's sidebar chooses them (all given must hold)."""

    folders: list[str] = Field(
        default_factory=list,
        description="Folders of the displayed source paths, e.g. 'documents/hr' (any of them).",
    )
    file_types: list[str] = Field(
        default_factory=list, description="File types, e.g. 'pdf', 'md' (any of them)."
    )
    modified_from: dt.date | None = Field(None, description="Modified on or after (UTC day).")
    modified_to: dt.date | None = Field(None, description="Modified on or before (UTC day).")


class AskRequest(_Request):
    question: str = Field(description="The question (at most the server's question limit).")
    filters: AskFilters | None = None
    k: int | None = Field(
        None, ge=1, le=50, description="Passages to retrieve and read (default: the server's)."
    )
    n: int | None = Field(
        None, ge=1, le=10, description="Answers to return (default: the server's)."
    )


class CaseOut(BaseModel):
    """One case of a case-dependent answer: the value the passage gives for it."""

    case: str = Field(description="The phrase naming the case, as the passage spells it.")
    value: str = Field(description="The value for that case, as the passage spells it.")
    start: int = Field(description="Start of the value in the passage (as context_offsets).")
    end: int = Field(description="End of the value in the passage.")
    document_start: int = Field(description="Start of the value in the document text.")
    document_end: int = Field(description="End of the value in the document text.")
    case_start: int = Field(description="Start of the case's phrase in the passage.")
    case_end: int = Field(description="End of the case's phrase in the passage.")


class CopyOut(BaseModel):
    """Another document holding the same passage, cited."""

    document: str | None = None
    title: str | None = None
    page: int | None = None
    section: str | None = None
    doc_id: str | None = None


class AnswerOut(BaseModel):
    """One ranked answer with its citation; ``answer`` null means "the documents hold no
    answer" (its ``score`` is that verdict's confidence). Same keys as ``docqa ask --json``."""

    answer: str | None
    score: float
    document: str | None = Field(None, description="Source path as shown to users.")
    title: str | None = None
    page: int | None = None
    section: str | None = None
    document_offsets: list[int] | None = Field(
        None, description="[start, end] of the answer in the converted document text."
    )
    context: str | None = Field(None, description="The passage the answer was read from.")
    context_offsets: list[int] | None = Field(
        None, description="[start, end] of the answer in the passage."
    )
    doc_id: str | None = None
    reader_score: float | None = None
    retriever_score: float | None = None
    cases: list[CaseOut] = Field(
        default_factory=list,
        description="When the passage gives different values for different cases (countries, "
        "plans, versions): each value with its case; the answer is one of them. Empty otherwise.",
    )

    also_in: list[CopyOut] = Field(
        default_factory=list,
        description="The same passage in other documents the caller may read (copies of the "
        "file at other paths), each with its citation.",
    )

    @classmethod
    def of(cls, result: AnswerResult) -> AnswerOut:
        """The answer as the API shows it: never the server's absolute file path (``path`` is
        not a field, so it is left behind)."""
        return cls.model_validate(result, from_attributes=True)


class AskResponse(BaseModel):
    question: str = Field(description="The question as asked (whitespace normalized).")
    answers: list[AnswerOut]
    latency_ms: float = Field(description="Time spent retrieving and reading.")
    reader: str = Field(description="The reader version that answered.")
    question_id: int | None = Field(
        None, description="The question log's row (send it with feedback); null when off."
    )
    index_version: str | None = None


# -- feedback and labels ------------------------------------------------------------------------


class Span(_Request):
    text: str = Field(min_length=1, description="The answer exactly as the text spells it.")
    start: int | None = Field(
        None, ge=0, description="Its offset in the text; omitted: it must occur exactly once."
    )


class FeedbackRequest(_Request):
    """A verdict on one answer of ``POST /ask``, sent back as received. Only its citation
    (``doc_id``, ``document_offsets``, ``context_offsets``) is used, to find the passage in the
    index: the pair is made from the indexed text, and an answer that does not match it is
    refused."""

    question: str
    question_id: int | None = Field(None, description="From the /ask response: noted in the log.")
    verdict: Verdict = Field(
        description="correct: the answer is right. wrong: it is not. corrected: `corrected` is "
        "the right answer in the same passage. no_answer_in_passage: the passage holds none."
    )
    answer: AnswerOut
    corrected: Span | None = Field(
        None, description="For 'corrected': the right answer, offsets into the answer's context."
    )


class FeedbackResponse(BaseModel):
    saved: bool = Field(description="False when the same pair was already stored.")
    id: str = Field(description="The labeled pair's id in the feedback file.")
    verdict: Verdict
    question_noted: bool = Field(description="Whether the verdict was noted in the question log.")


class PassageRange(_Request):
    start: int = Field(ge=0)
    end: int = Field(gt=0)


class LabelRequest(_Request):
    """A SQuAD v2.0 pair written by a person: a question about an indexed document."""

    question: str
    doc_id: str = Field(description="The document (see GET /documents).")
    passage: PassageRange | None = Field(
        None,
        description="Limit the context to [start, end) of the document text (default: all).",
    )
    answer: Span | None = Field(
        description="The answer, offsets into the context; null: the context holds no answer."
    )


class LabelResponse(BaseModel):
    saved: bool = Field(description="False when the same pair was already stored.")
    id: str


# -- documents ----------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    file_type: str
    passages: int
    size: int
    modified: str = Field(description="The file's modification time (ISO 8601, UTC).")
    indexed_at: str
    uploaded: bool = Field(description="Uploaded through the API or page (deleting deletes it).")


UploadStatus = Literal["indexed", "duplicate", "rejected", "failed"]


class UploadResult(BaseModel):
    name: str = Field(description="The name the file was uploaded under.")
    status: UploadStatus
    reason: str = ""
    saved_as: str = ""
    doc_id: str = ""
    passages: int = 0


class UploadResponse(BaseModel):
    files: list[UploadResult]
    indexed: int
    index_version: str | None


class RemovedOut(BaseModel):
    doc_id: str
    removed: str = Field(description="The source path it had.")
    index_version: str | None
    erased: str = Field(
        description="What else was erased: its labeled pairs and logged questions (and anything "
        "that could not be)."
    )
    remains: list[str] = Field(description="What still holds something of it (trained readers).")


class IndexStatus(BaseModel):
    index_version: str | None = Field(description="The version on disk (CURRENT).")
    loaded_version: str | None = Field(description="The version this worker answers from.")
    documents: int
    passages: int
    indexing: bool = Field(description="Whether an indexer (or an upload) is writing now.")
    reader: str | None


# -- models, health -----------------------------------------------------------------------------


class ModelOut(BaseModel):
    name: str
    created: str
    serving: bool
    heldout_f1: float | None
    metrics: dict[str, Any]


class PromoteRequest(_Request):
    force: bool = Field(False, description="Serve it even if it scores lower.")


class PromoteResponse(BaseModel):
    message: str
    serving: str | None
    fixed_reader: str | None = Field(
        description="Set when the server was started with a fixed reader: then a promotion "
        "changes what serves only after a restart without it."
    )


class Health(BaseModel):
    status: Literal["ok", "loading", "no_index", "no_reader"]
    index_version: str | None = Field(description="The version on disk.")
    index_loaded: bool
    reader: str | None
    reader_loaded: bool


class Ready(BaseModel):
    ready: bool = Field(description="Whether this worker has the index and the reader loaded.")
