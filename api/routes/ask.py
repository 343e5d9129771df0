"""``POST /ask`` (viewer), ``POST /feedback`` and ``POST /labels`` (editor).

Questions go through the same :class:`~pipelines.query.QueryService` as the page and
``docqa ask``, logged with channel "api" and the caller's identity, and searched within the
caller's scope (the documents their key's groups may see: inside FAISS and BM25, never by
dropping hits afterwards). Filters narrow that scope further; a folder the caller cannot see is
refused exactly like one that does not exist.

Verdicts and labels become pairs through :mod:`reader_training.judgments`, as the page makes
them, in the home's :class:`~reader_training.feedback.FeedbackStore`. Training data comes from
the index only: feedback names the passage by its document and offsets, the passage's text is
read from the index, and an answer that does not match it is refused (the client's text never
becomes a training context). A document outside the caller's scope is answered 404, as an
unknown one.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import APIRouter
from haystack import Document

from api.deps import AskCaller, Context, FeedbackCaller, LabelCaller
from api.errors import ApiError, unavailable_error
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
from identity.roles import Action, Caller
from pipelines.answers import Question, QuestionError, validate_question
from pipelines.filters import build_filters, folders
from pipelines.learning_loop.question_log import question_log
from pipelines.query import AskOutcome, IndexMissingError, QueryService, page_and_section
from pipelines.reader_registry import ReaderNotFoundError, reader_version_name
from pipelines.settings import Settings
from pipelines.store import PassageStore
from reader_training.feedback import FeedbackError, FeedbackStore, LabeledPair
from reader_training.judgments import (
    PassageRef,
    annotation_pair,
    judged_pair,
    locate_span,
)

logger = logging.getLogger(__name__)
router = APIRouter(tags=["ask"])


def _question(question: str, settings: Settings) -> Question:
    try:
        return validate_question(question, settings.max_question_chars)
    except QuestionError as exc:
        raise ApiError(422, "invalid_question", str(exc)) from exc


def _filters(
    store: PassageStore, scope: frozenset[str] | None, chosen: AskFilters | None
) -> dict[str, Any] | None:
    """The Haystack filter of the choices (as the page builds it), over the documents the
    caller may see: a folder holding none of them is refused as unknown, and the refusal lists
    only the folders they are in."""
    if chosen is None:
        return None
    records = store.sources(scope)
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
    """The 503 of a server that cannot answer yet: no index, or no reader (the paths involved
    go to the server's log, not to the client)."""
    if isinstance(exc, IndexMissingError):
        return unavailable_error(
            "no_index", "no index yet: upload documents (POST /documents) or run `docqa index`", exc
        )
    return unavailable_error("no_reader", "no reader to answer with", exc)


def _answer(
    ctx: Context, caller: Caller, body: AskRequest, question: Question
) -> tuple[QueryService, AskOutcome]:
    service = ctx.service()
    store = service.store
    version = service.loaded_version
    scope = ctx.scope(caller, store)
    filters = _filters(store, scope, body.filters)
    outcome = service.answer(
        question, body.k, body.n, filters, "api", scope=scope, asker=caller.identity
    )
    if scope is None and not caller.sees_everything and service.loaded_version != version:
        # "Everything visible" held for the version the scope was worked out on; a new version
        # loaded meanwhile may hold documents this caller may not see: answer again within it.
        store = service.store
        scope = ctx.scope(caller, store)
        if scope is not None:
            filters = _filters(store, scope, body.filters)
            outcome = service.answer(
                question, body.k, body.n, filters, "api", scope=scope, asker=caller.identity
            )
    return service, outcome


@router.post("/ask", summary="Answer a question over the documents the key may see, with citations")
def ask(body: AskRequest, ctx: Context, caller: AskCaller) -> AskResponse:
    question = _question(body.question, ctx.settings)
    try:
        service, outcome = _answer(ctx, caller, body, question)
    except QuestionError as exc:
        raise ApiError(422, "invalid_question", str(exc)) from exc
    except (IndexMissingError, ReaderNotFoundError) as exc:
        ctx.audit.record(caller, Action.ASK.value, "failed", detail=type(exc).__name__)
        raise unavailable(exc) from exc
    # The question's text only where the question log may keep it (it can be personal).
    ctx.audit.record(
        caller, Action.ASK.value, detail=question if ctx.settings.question_log else None
    )
    reader = reader_version_name(service.reader_model)
    ctx.metrics.set_reader(reader)
    top = outcome.answers[0] if outcome.answers else None
    ctx.metrics.observe_answer(top is not None and top.answer is not None)
    return AskResponse(
        question=question,
        answers=[AnswerOut.of(r) for r in outcome.answers],
        latency_ms=round(outcome.latency_ms, 1),
        reader=reader,
        question_id=outcome.question_id,
        index_version=service.loaded_version,
    )


def _store(ctx: Context) -> PassageStore | None:
    try:
        return ctx.store()
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise unavailable(exc) from exc


def _pair(offsets: list[int] | None, what: str) -> tuple[int, int]:
    if offsets is None or len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1]:
        raise FeedbackError(f"the answer's {what} must be [start, end], got {offsets!r}")
    return offsets[0], offsets[1]


def _indexed_passage(store: PassageStore, answer: AnswerOut) -> tuple[PassageRef, int]:
    """The indexed passage ``answer`` cites (by its document and offsets) and where the answer
    starts in it; FeedbackError when the index holds no such passage or the answer's text is not
    the indexed text there."""
    assert answer.doc_id is not None
    doc_start, doc_end = _pair(answer.document_offsets, "document_offsets")
    start, end = _pair(answer.context_offsets, "context_offsets")
    if end - start != doc_end - doc_start:
        raise FeedbackError("the answer's document_offsets and context_offsets disagree")
    passages = store.filter_documents(
        {"field": "meta.doc_id", "operator": "==", "value": answer.doc_id},
        return_embedding=False,
    )
    at = doc_start - start
    passage = next((p for p in passages if int(p.meta.get("start", 0)) == at), None)
    text = (passage.content or "") if passage is not None else ""
    if passage is None or end > len(text):
        raise FeedbackError(
            f"the index holds no passage at offset {at} of document {answer.doc_id!r} that"
            " contains the answer (re-indexed since it was asked? ask again)"
        )
    if answer.context is not None and answer.context != text:
        raise FeedbackError("the answer's context is not the indexed passage at its offsets")
    if answer.answer is not None and text[start:end] != answer.answer:
        raise FeedbackError(
            f"{answer.answer[:60]!r} is not the indexed text at {doc_start}-{doc_end}"
        )
    return _cited(passage, start), start


def _cited(passage: Document, offset: int) -> PassageRef:
    """The passage as a citation, with the page and section where the answer is (as
    :func:`pipelines.query.to_result` names them)."""
    ref = PassageRef.of_passage(passage)
    page, section = page_and_section(passage, offset)
    return PassageRef(ref.doc_id, ref.title, ref.source, ref.text, ref.start, page, section)


def _judged(
    body: FeedbackRequest,
    question: str,
    ref: PassageRef,
    offset: int,
    document_text: str,
    author: str,
) -> LabeledPair:
    answer = body.answer.answer  # the indexed text at the cited offsets (checked), or None
    # Judgments are per author: one key's verdict never replaces another's pair.
    common: dict[str, Any] = {"document_text": document_text, "author": author}
    if body.verdict == "corrected":
        if body.corrected is None:
            raise FeedbackError("a 'corrected' verdict needs 'corrected': the right answer span")
        text, at = locate_span(ref.text, body.corrected.text, body.corrected.start)
        return judged_pair(
            question, ref, "corrected", answer=text, offset=at, rejected=answer, **common
        )
    if body.verdict == "no_answer_in_passage":
        return judged_pair(question, ref, body.verdict, rejected=answer, **common)
    if answer is None:
        raise FeedbackError(f"a '{body.verdict}' verdict needs an answer, not 'no answer'")
    return judged_pair(
        question,
        ref,
        body.verdict,
        answer=answer,
        offset=offset,
        score=body.answer.score,
        **common,
    )


@router.post("/feedback", status_code=201, summary="Judge an answer; stored as a labeled pair")
def feedback(body: FeedbackRequest, ctx: Context, caller: FeedbackCaller) -> FeedbackResponse:
    question = _question(body.question, ctx.settings)
    doc_id = body.answer.doc_id
    try:
        if doc_id is None or body.answer.context_offsets is None:
            raise FeedbackError("the answer cites no passage (a 'no answer' result)")
        store, _ = ctx.visible_source(caller, _store(ctx), doc_id, Action.FEEDBACK)
        ref, offset = _indexed_passage(store, body.answer)
        text = store.source_text(doc_id)
        pair = _judged(body, question, ref, offset, text, caller.identity)
        saved = pair.save(FeedbackStore(ctx.settings.feedback_file))
    except FeedbackError as exc:
        raise ApiError(422, "invalid_feedback", str(exc)) from exc
    ctx.audit.record(caller, Action.FEEDBACK.value, target=doc_id, detail=body.verdict)
    noted = False
    log = question_log(ctx.settings)
    if body.question_id is not None and log is not None:
        try:
            # Only on the caller's own question: another's verdict is not theirs to set.
            noted = log.add_feedback(body.question_id, body.verdict, asker=caller.identity)
        except sqlite3.Error as exc:  # the pair is stored; the log's note is a nicety
            logger.warning("could not note feedback in the question log: %s", exc)
    return FeedbackResponse(saved=saved, id=pair.id, verdict=body.verdict, question_noted=noted)


@router.post("/labels", status_code=201, summary="Add a SQuAD v2.0 pair about a document")
def label(body: LabelRequest, ctx: Context, caller: LabelCaller) -> LabelResponse:
    question = _question(body.question, ctx.settings)
    store, record = ctx.visible_source(caller, _store(ctx), body.doc_id, Action.LABEL)
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
            author=caller.identity,
        )
        saved = pair.save(FeedbackStore(ctx.settings.feedback_file))
    except FeedbackError as exc:
        raise ApiError(422, "invalid_label", str(exc)) from exc
    ctx.audit.record(caller, Action.LABEL.value, target=body.doc_id)
    return LabelResponse(saved=saved, id=pair.id)
