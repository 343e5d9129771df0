"""The query pipeline and ``ask()``: a question in, ranked answers with citations out.

``QuestionEmbedder -> DenseRetriever -> ExtractiveReader`` as a Haystack ``Pipeline``; with
``Settings.retrieval`` "bm25" or "hybrid", a ``BM25Retriever`` and a ``RankFusion`` replace or join
the dense retriever (see :mod:`pipelines.bm25`). Every answer is turned into an
:class:`AnswerResult` that cites its source: the document (path and title), the page or section
where the passage starts, the answer's character offsets in the converted document text
(``document_text[start:end] == answer``) and the passage around it. An answer whose passage gives
different values for different cases (countries, plans, versions) carries them all in ``cases``
(:mod:`pipelines.cases`), and such an answer replaces the reader's "no answer": torn between the
values, the reader abstains where the honest answer is "it depends".

:class:`QueryService` keeps one loaded store and pipeline per data directory and reloads them when
another process (``docqa index``) has written a new index version, so a long-running web page
keeps answering from the last good index and switches when the new one is complete.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from haystack import Pipeline
from haystack.dataclasses import Document, ExtractedAnswer

from pipelines.answers import AnswerResult, QuestionError, validate_question
from pipelines.cases import find_cases, has_parallel_values, question_names_a_case
from pipelines.embedder import QuestionEmbedder
from pipelines.fusion import RankFusion
from pipelines.learning_loop.question_log import question_log
from pipelines.reader import ExtractiveReader, SpanPredictor
from pipelines.reader_registry import reader_version_name, resolve_reader
from pipelines.retrievers import BM25Retriever, DenseRetriever
from pipelines.settings import Settings
from pipelines.store import PassageStore, StoreError, current_version
from pipelines.verifier import content_words, question_type

logger = logging.getLogger(__name__)


class IndexMissingError(RuntimeError):
    """No index exists yet in the data directory."""


@dataclass
class AskOutcome:
    """What one question got: ranked answers, the passages read, the time, the log row."""

    answers: list[AnswerResult]
    passages: list[Document]
    latency_ms: float
    question_id: int | None = None  # the question log's row, when the question was logged


def candidate_depth(settings: Settings, top_k: int) -> int:
    """Passages each retriever returns for a final ``top_k``: deeper lists for the fusion."""
    return max(top_k, settings.hybrid_candidates) if settings.retrieval == "hybrid" else top_k


def passages_component(settings: Settings) -> str:
    """The component of ``build_query_pipeline`` whose ``documents`` are the passages read."""
    return "retriever" if settings.retrieval == "dense" else "fusion"


def _add_retrieval(pipe: Pipeline, settings: Settings, store: PassageStore) -> str:
    """Add the retrieval graph of ``settings.retrieval`` to ``pipe``: "embedder", then
    "retriever" (dense) and/or "bm25" and "fusion". Returns the component whose ``documents``
    are the passages to read. The one definition of the graph, for both pipelines below."""
    mode = settings.retrieval
    depth = candidate_depth(settings, settings.top_k_passages)
    pipe.add_component("embedder", QuestionEmbedder.from_settings(settings))
    if mode in ("dense", "hybrid"):
        pipe.add_component("retriever", DenseRetriever(store, top_k=depth))
    if mode in ("bm25", "hybrid"):
        pipe.add_component("bm25", BM25Retriever(store, top_k=depth))
        # In BM25 mode the fusion only re-scores (cosine for the reader's retriever weight).
        pipe.add_component(
            "fusion", RankFusion(bm25_weight=settings.bm25_weight, top_k=settings.top_k_passages)
        )
    if mode in ("dense", "hybrid"):
        pipe.connect("embedder.vector", "retriever.query_embedding")
    if mode == "hybrid":
        pipe.connect("retriever.documents", "fusion.dense_documents")
    if mode in ("bm25", "hybrid"):
        # BM25 passages come with their dense score, not their embeddings: the pipeline copies
        # every component's inputs, and 20 embeddings of 384 floats cost more than the fusion.
        # The question's own embedding travels as one array ("vector") for the same reason.
        pipe.connect("embedder.vector", "bm25.query_embedding")
        pipe.connect("bm25.documents", "fusion.bm25_documents")
    return passages_component(settings)


def build_retrieval_pipeline(settings: Settings, store: PassageStore) -> Pipeline:
    """The retrieval graph alone: the passages a question's reader would read."""
    pipe = Pipeline()
    _add_retrieval(pipe, settings, store)
    return pipe


def build_query_pipeline(settings: Settings, store: PassageStore, reader_model: str) -> Pipeline:
    """The retrieval graph of ``settings.retrieval``, then "reader"."""
    pipe = Pipeline()
    passages = _add_retrieval(pipe, settings, store)
    pipe.add_component(
        "reader",
        ExtractiveReader(
            reader_model,
            top_k=settings.top_n_answers,
            retriever_weight=settings.retriever_weight,
            batch_size=settings.reader_batch_size,
            cpu_precision=settings.cpu_precision,
            backend=settings.reader_backend,
            cache_dir=str(settings.home / "cache"),
            max_seq_length=settings.reader_max_seq_length,
            verifier=settings.answer_verifier,
        ),
    )
    pipe.connect(f"{passages}.documents", "reader.documents")
    return pipe


def retrieval_inputs(
    settings: Settings,
    question: str,
    top_k: int,
    filters: dict[str, Any] | None,
    scope: frozenset[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run inputs of the retrieval components for one question; ``scope``: the ids of the
    documents the caller may see (None: all), applied inside every search."""
    mode = settings.retrieval
    depth = candidate_depth(settings, top_k)
    inputs: dict[str, dict[str, Any]] = {"embedder": {"text": question}}
    if mode in ("dense", "hybrid"):
        inputs["retriever"] = {"top_k": depth, "filters": filters, "scope": scope}
    if mode in ("bm25", "hybrid"):
        inputs["bm25"] = {"query": question, "top_k": depth, "filters": filters, "scope": scope}
        inputs["fusion"] = {"top_k": top_k}
    return inputs


# Spans per passage the reader offers when it abstains, to find a case-dependent answer in the
# passages its best spans came from (QueryService.answer).
CASE_SPANS = 10


def case_dicts(passage: str, start: int, end: int, passage_start: int, question: str) -> list[dict]:
    """The cases of the answer ``passage[start:end]`` as the API shows them: ``case`` and
    ``value`` as the text spells them, ``start``/``end`` the value's offsets in the passage,
    ``document_start``/``document_end`` in the document, ``case_start``/``case_end`` the case's
    in the passage. Empty when the passage gives one value, or ``question`` picks the case."""
    cases = find_cases(passage, start, end)
    if not cases or question_names_a_case(question, cases):
        return []
    return [
        {
            "case": c.case,
            "value": c.value,
            "start": c.value_start,
            "end": c.value_end,
            "document_start": passage_start + c.value_start,
            "document_end": passage_start + c.value_end,
            "case_start": c.case_start,
            "case_end": c.case_end,
        }
        for c in cases
    ]


def to_result(answer: ExtractedAnswer) -> AnswerResult:
    doc = answer.document
    if answer.data is None or doc is None or answer.document_offset is None:
        return AnswerResult(answer=None, score=float(answer.score))
    start = int(doc.meta.get("start", 0)) + answer.document_offset.start
    end = int(doc.meta.get("start", 0)) + answer.document_offset.end
    meta = answer.meta or {}
    page, section = page_and_section(doc, answer.document_offset.start)
    return AnswerResult(
        answer=answer.data,
        score=float(answer.score),
        document=doc.meta.get("source"),
        title=doc.meta.get("title"),
        page=page,
        section=section,
        document_offsets=(start, end),
        context=doc.content,
        context_offsets=(answer.document_offset.start, answer.document_offset.end),
        doc_id=doc.meta.get("doc_id"),
        path=doc.meta.get("path"),
        reader_score=meta.get("reader_score"),
        retriever_score=meta.get("retriever_score"),
        cases=case_dicts(
            doc.content or "",
            answer.document_offset.start,
            answer.document_offset.end,
            int(doc.meta.get("start", 0)),
            answer.query,
        ),
        also_in=[
            _copy_cited(copy, answer.document_offset.start) for copy in meta.get("same_text_in", [])
        ],
    )


def _copy_cited(copy: Document, offset: int) -> dict[str, Any]:
    """Another document's passage with the same text, cited at the answer's ``offset``."""
    page, section = page_and_section(copy, offset)
    return {
        "document": copy.meta.get("source"),
        "title": copy.meta.get("title"),
        "page": page,
        "section": section,
        "doc_id": copy.meta.get("doc_id"),
    }


def page_and_section(doc: Document, offset: int) -> tuple[Any, Any]:
    """The page and section of ``offset`` in a passage (a passage may cross a page): what an
    answer there is cited with, here and in the API's feedback."""
    page, section = doc.meta.get("page"), doc.meta.get("section")
    for start, boundary_page, boundary_section in doc.meta.get("boundaries") or []:
        if start <= offset:
            page, section = boundary_page, boundary_section
    return page, section


def _shown_as_case(
    result: AnswerResult, cased: AnswerResult, cases: list[dict[str, Any]] | None = None
) -> bool:
    """Whether ``result`` overlaps one of the values ``cased`` shows (or of ``cases``)."""
    if result.doc_id != cased.doc_id or result.document_offsets is None:
        return False
    start, end = result.document_offsets
    return any(
        c["document_start"] < end and start < c["document_end"]
        for c in (cased.cases if cases is None else cases)
    )


def _torn(cased: AnswerResult, spans: list[AnswerResult]) -> bool:
    """Whether two or more of ``cased``'s values are among ``spans`` (the reader's candidates)."""
    return sum(any(_shown_as_case(s, cased, [c]) for s in spans) for c in cased.cases) >= 2


# The kinds of question (pipelines.verifier.question_type) a case-dependent answer may answer.
CASE_QUESTION_TYPES = ("number", "date")


def _about(cased: AnswerResult, asked: set[str]) -> bool:
    """Whether the cases' own words (cases and values) share a content word with the question:
    a list of leave days does not answer a question about the Wi-Fi."""
    said = " ".join(f"{c['case']} {c['value']}" for c in cased.cases)
    return bool(asked & content_words(said))


def put_cases_first(results: list[AnswerResult], cased: AnswerResult) -> list[AnswerResult]:
    """``cased`` (an answer with cases) first, then ``results`` without the values it shows, as
    many as ``results`` had: the lowest-ranked answers make way, never "no answer"."""
    ranked = [cased, *(r for r in results if r is not cased and not _shown_as_case(r, cased))]
    while len(ranked) > max(1, len(results)):
        last = max(i for i, r in enumerate(ranked) if r.answer is not None)
        if last == 0:
            break
        del ranked[last]
    return ranked


class QueryService:
    """A loaded index and query pipeline for one data directory, reloaded when the index changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._version: str | None = None
        self._store: PassageStore | None = None
        self._pipeline: Pipeline | None = None
        self._retrieval: Pipeline | None = None
        self.reader_model: str = resolve_reader(settings)
        self._question_log = question_log(settings)  # one per service: its schema made once

    def _current_version(self) -> str | None:
        return current_version(self.settings.index_dir)

    def refresh(self) -> bool:
        """Load the newest complete index if it changed; True when something was (re)loaded."""
        with self._lock:
            version = self._current_version()
            if version is None:
                raise IndexMissingError(
                    f"no index in {self.settings.index_dir}: run `docqa index FOLDER` first"
                )
            if version == self._version and self._pipeline is not None:
                return False
            try:
                store = PassageStore.load(self.settings.index_dir)
                # Search parameters (nprobe, ef_search) set in the settings apply now.
                store.apply_index_settings(self.settings)
            except StoreError:
                if self._store is None:
                    raise
                logger.exception(
                    "new index version %s failed to load; keeping %s", version, self._version
                )
                return False
            # The version the store holds (CURRENT may have moved on while it loaded).
            loaded = store.version_folder
            self._store, self._version = store, loaded.name if loaded else version
            self._pipeline = build_query_pipeline(self.settings, store, self.reader_model)
            self._retrieval = build_retrieval_pipeline(self.settings, store)
            self._pipeline.warm_up()
            self._retrieval.warm_up()
            logger.info("serving index version %s (%d passages)", version, store.count_documents())
            return True

    @property
    def loaded_version(self) -> str | None:
        """The index version loaded now; None before the first question (nothing loaded)."""
        return self._version

    @property
    def store(self) -> PassageStore:
        self.refresh()
        assert self._store is not None
        return self._store

    @property
    def reader_predictor(self) -> SpanPredictor:
        """The reader's loaded model, as the pipeline reads with it (backend, precision)."""
        self.refresh()
        assert self._pipeline is not None
        return self._pipeline.get_component("reader").predictor

    def ask(
        self,
        question: str,
        top_k_passages: int | None = None,
        top_n_answers: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[AnswerResult]:
        """Ranked answers, best first; a "no answer" result (answer None) is ranked among them."""
        return self.ask_with_passages(question, top_k_passages, top_n_answers, filters)[0]

    def ask_with_passages(
        self,
        question: str,
        top_k_passages: int | None = None,
        top_n_answers: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[AnswerResult], list[Document]]:
        """:meth:`ask`'s answers and the passages the reader read, from one pipeline run."""
        outcome = self.answer(question, top_k_passages, top_n_answers, filters)
        return outcome.answers, outcome.passages

    def answer(
        self,
        question: str,
        top_k_passages: int | None = None,
        top_n_answers: int | None = None,
        filters: dict[str, Any] | None = None,
        channel: str | None = None,
        *,
        scope: frozenset[str] | None = None,
        asker: str | None = None,
    ) -> AskOutcome:
        """Answers, the passages read (the page shows them when there is no answer, without
        retrieving again) and the time taken. With a ``channel`` ("page", "cli", "api") the
        question is written to the question log (when it is on) with ``asker`` (who asked) and
        ``question_id`` names it; evaluation asks without one. ``scope``: the ids of the
        documents the caller may see (None: all); nothing outside it is retrieved or read."""
        question = validate_question(question, self.settings.max_question_chars)
        k = top_k_passages or self.settings.top_k_passages
        n = top_n_answers or self.settings.top_n_answers
        if k <= 0 or n <= 0:
            raise QuestionError("the numbers of passages and answers must be positive")
        self.refresh()
        assert self._pipeline is not None
        started = time.perf_counter()
        passages_from = passages_component(self.settings)
        with self._lock:
            out = self._pipeline.run(
                retrieval_inputs(self.settings, question, k, filters, scope)
                | {"reader": {"query": question, "top_k": n}},
                include_outputs_from={passages_from},
            )
        results = [to_result(a) for a in out["reader"]["answers"]]
        if results and results[0].answer is None:
            results = self._case_dependent(question, results, out["reader"]["answers"])
        latency_ms = 1000 * (time.perf_counter() - started)
        # The question itself stays out of the logs: it can be personal (question log only).
        logger.info("answered in %.0f ms (%d characters)", latency_ms, len(question))
        question_id = None
        log = self._question_log
        if channel is not None and log is not None:
            try:
                question_id = log.record(
                    question,
                    results,
                    channel=channel,
                    latency_ms=latency_ms,
                    reader=reader_version_name(self.reader_model),
                    top_k=k,
                    filters=filters,
                    asker=asker,
                )
            except (sqlite3.Error, OSError) as exc:  # the answer matters more than its log
                logger.warning("could not log the question in %s: %s", log.path, exc)
        return AskOutcome(results, out[passages_from]["documents"], latency_ms, question_id)

    def _case_dependent(
        self, question: str, results: list[AnswerResult], answers: list[ExtractedAnswer]
    ) -> list[AnswerResult]:
        """``results`` of a reader that abstained, with a case-dependent answer first when the
        reader was torn between its cases' values: two or more of them are among its spans.
        The spans are ``results`` and the next ones (up to :data:`CASE_SPANS` per passage) of
        the passages they came from that hold parallel values, read again (a fraction of the
        first read: at most ``top_n_answers - 1`` passages)."""
        if question_type(question) not in CASE_QUESTION_TYPES:
            return results  # "it depends" answers how many, how much or when, nothing else
        asked = content_words(question)
        docs = {a.document.id: a.document for a in answers if a.document is not None}
        passages = [d for d in docs.values() if has_parallel_values(d.content or "")]
        if not passages:
            return results
        assert self._pipeline is not None
        with self._lock:
            more = self._pipeline.get_component("reader").run(
                query=question, documents=passages, top_k=CASE_SPANS
            )["answers"]
        spans = [r for r in results if r.answer is not None]
        spans += [r for r in map(to_result, more) if r.answer is not None]
        cased = next((r for r in spans if r.cases and _torn(r, spans) and _about(r, asked)), None)
        if cased is None:
            return results
        logger.info("a case-dependent answer (%d cases) replaces no answer", len(cased.cases))
        return put_cases_first(results, cased)

    def retrieve(
        self,
        question: str,
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        scope: frozenset[str] | None = None,
    ) -> list[Any]:
        """The passages the reader would read (for showing them when there is no answer)."""
        question = validate_question(question, self.settings.max_question_chars)
        self.refresh()
        assert self._pipeline is not None
        assert self._retrieval is not None
        inputs = retrieval_inputs(
            self.settings, question, top_k or self.settings.top_k_passages, filters, scope
        )
        with self._lock:
            out = self._retrieval.run(inputs)
        return out[passages_component(self.settings)]["documents"]


# Services (each a loaded index and reader), bounded like the readers; the lock makes two
# threads asking at once load one service.
MAX_CACHED_SERVICES = 4
_SERVICES_LOCK = threading.Lock()


@functools.lru_cache(maxsize=MAX_CACHED_SERVICES)
def _load_service(settings: Settings, reader: str) -> QueryService:
    return QueryService(settings)


def get_service(settings: Settings) -> QueryService:
    """One QueryService per (settings, resolved reader) in this process.

    Keyed on the resolved reader, so promoting another version takes effect on the next call.
    """
    with _SERVICES_LOCK:
        return _load_service(settings, resolve_reader(settings))


def ask(
    question: str,
    settings: Settings,
    top_k_passages: int | None = None,
    top_n_answers: int | None = None,
    filters: dict[str, Any] | None = None,
    channel: str | None = None,
) -> list[AnswerResult]:
    """Answer ``question`` over the index in ``settings.home`` (logged when ``channel`` is
    given, see :meth:`QueryService.answer`)."""
    question = validate_question(question, settings.max_question_chars)  # before any model loads
    service = get_service(settings)
    return service.answer(question, top_k_passages, top_n_answers, filters, channel).answers
