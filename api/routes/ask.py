"""``POST /ask``, ``POST /feedback`` and ``POST /labels``: the ``ask`` role's work.

Questions go through the same :class:`~pipelines.query.QueryService` as the page and
``docqa ask``, logged with channel "api". Verdicts and labels become pairs through
:mod:`reader_training.judgments`, exactly as the page makes them, in the home's
:class:`~reader_training.feedback.FeedbackStore`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import APIRouter

from api.deps import AskKey, Context
from api.errors import ApiError
from api.schemas import (
    AnswerOut,
    AskFilters,
    AskRequest,
    AskResponse,
    FeedbackRequest,
    FeedbackResponse,
    LabelRequest,
    LabelResponse,
)
from pipelines.filters import build_filters, folders
from pipelines.models import ReaderNotFoundError, reader_version_name
from pipelines.query import (
    AnswerResult,
    IndexMissingError,
    QueryService,
    QuestionError,
    validate_question,
)
from pipelines.question_log import question_log
from pipelines.settings import Settings
from reader_training.feedback import FeedbackError, FeedbackStore
from reader_training.judgments import (
    LabeledPair,
    PassageRef,
    annotation_pair,
    judged_pair,
    locate_span,
)

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ask"])


def _question(question: str, settings: Settings) -> str:
    try:
        return validate_question(question, settings.max_question_chars)
    except QuestionError as exc:
        raise ApiError(422, "invalid_question", str(exc)) from exc


def _filters(service: QueryService, chosen: AskFilters | None) -> dict[str, Any] | None:
    """The Haystack filter of the choices (as the page builds it); unknown folders refused."""
    if chosen is None:
        return None
    records = service.store.sources()
    known = folders(r.source for r in records)
    unknown = [f for f in chosen.folders if f.rstrip("/") not in known]
    if unknown:
        raise ApiError(
            422,
            "unknown_folder",
            f"no indexed documents are in {', '.join(map(repr, unknown))}"
            f" (folders: {', '.join(known) or 'none'})",
        )
    return build_filters(
        records, chosen.folders, chosen.file_types, chosen.modified_from, chosen.modified_to
    )


def unavailable(exc: Exception) -> ApiError:
    """The 503 of a server that cannot answer yet: no index, or no reader."""
    if isinstance(exc, IndexMissingError):
        return ApiError(503, "no_index", f"{exc} (or upload documents: POST /documents)")
    return ApiError(503, "no_reader", str(exc))


@router.post("/ask", summary="Answer a question over the indexed documents, with citations")
def ask(body: AskRequest, ctx: Context, _: AskKey) -> AskResponse:
    question = _question(body.question, ctx.settings)
    try:
        service = ctx.service()
        filters = _filters(service, body.filters)
        outcome = service.answer(question, body.k, body.n, filters, channel="api")
    except QuestionError as exc:
        raise ApiError(422, "invalid_question", str(exc)) from exc
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise unavailable(exc) from exc
    reader = reader_version_name(service.reader_model)
    ctx.metrics.set_reader(reader)
    top = outcome.answers[0] if outcome.answers else None
    ctx.metrics.observe_answer(top is not None and top.answer is not None)
    return AskResponse(
        question=question,
        answers=[AnswerOut(**r.to_dict()) for r in outcome.answers],
        latency_ms=round(outcome.latency_ms, 1),
        reader=reader,
        question_id=outcome.question_id,
        index_version=service.loaded_version,
    )


def _document_text(ctx: Context, doc_id: str) -> str | None:
    store = ctx.store()
    try:
        return store.source_text(doc_id) if store is not None else None
    except KeyError:
        return None


def _judged(body: FeedbackRequest, question: str, document_text: str | None) -> LabeledPair:
    result = AnswerResult(**body.answer.model_dump())
    ref = PassageRef.of_answer(result)
    if body.verdict == "corrected":
        if body.corrected is None:
            raise FeedbackError("a 'corrected' verdict needs 'corrected': the right answer span")
        text, offset = locate_span(ref.text, body.corrected.text, body.corrected.start)
        return judged_pair(
            question,
            ref,
            "corrected",
            answer=text,
            offset=offset,
            rejected=result.answer,
            document_text=document_text,
        )
    if body.verdict == "no_answer_in_passage":
        return judged_pair(question, ref, body.verdict, rejected=result.answer)
    if result.answer is None:
        raise FeedbackError(f"a '{body.verdict}' verdict needs an answer, not 'no answer'")
    offset = result.context_offsets[0] if result.context_offsets else None
    return judged_pair(
        question,
        ref,
        body.verdict,
        answer=result.answer,
        offset=offset,
        score=result.score,
        document_text=document_text,
    )


@router.post("/feedback", status_code=201, summary="Judge an answer; stored as a labeled pair")
def feedback(body: FeedbackRequest, ctx: Context, _: AskKey) -> FeedbackResponse:
    question = _question(body.question, ctx.settings)
    doc_id = body.answer.doc_id
    try:
        pair = _judged(body, question, _document_text(ctx, doc_id) if doc_id else None)
        saved = pair.save(FeedbackStore(ctx.settings.feedback_file))
    except FeedbackError as exc:
        raise ApiError(422, "invalid_feedback", str(exc)) from exc
    noted = False
    log = question_log(ctx.settings)
    if body.question_id is not None and log is not None:
        try:
            noted = log.add_feedback(body.question_id, body.verdict)
        except sqlite3.Error as exc:  # the pair is stored; the log's note is a nicety
            logger.warning("could not note feedback in the question log: %s", exc)
    return FeedbackResponse(saved=saved, id=pair.id, verdict=body.verdict, question_noted=noted)


@router.post("/labels", status_code=201, summary="Add a SQuAD v2.0 pair about a document")
def label(body: LabelRequest, ctx: Context, _: AskKey) -> LabelResponse:
    question = _question(body.question, ctx.settings)
    try:
        store = ctx.store()
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise unavailable(exc) from exc
    record = store.source(body.doc_id) if store is not None else None
    if store is None or record is None:
        raise ApiError(404, "unknown_document", f"no indexed document has the id {body.doc_id!r}")
    passage = (body.passage.start, body.passage.end) if body.passage else None
    answer = body.answer
    try:
        pair = annotation_pair(
            question,
            record,
            store.source_text(body.doc_id),
            answer.text if answer else None,
            answer.start if answer else None,
            passage,
        )
        saved = pair.save(FeedbackStore(ctx.settings.feedback_file))
    except FeedbackError as exc:
        raise ApiError(422, "invalid_label", str(exc)) from exc
    return LabelResponse(saved=saved, id=pair.id)
