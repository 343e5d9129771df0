"""The query pipeline and ``ask()``: a question in, ranked answers with citations out.

``QuestionEmbedder -> DenseRetriever -> ExtractiveReader`` as a Haystack ``Pipeline``. Every answer
is turned into an :class:`AnswerResult` that cites its source: the document (path and title), the
page or section where the passage starts, the answer's character offsets in the converted document
text (``document_text[start:end] == answer``) and the passage around it.

:class:`QueryService` keeps one loaded store and pipeline per data directory and reloads them when
another process (``docqa index``) has written a new index version, so a long-running web page
keeps answering from the last good index and switches when the new one is complete.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from haystack import Pipeline
from haystack.dataclasses import ExtractedAnswer

from pipelines.embedder import QuestionEmbedder
from pipelines.models import resolve_reader
from pipelines.reader import ExtractiveReader
from pipelines.retrievers import DenseRetriever
from pipelines.settings import Settings
from pipelines.store import CURRENT_FILE, PassageStore, StoreError

logger = logging.getLogger(__name__)


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long); the message says why."""


class IndexMissingError(RuntimeError):
    """No index exists yet in the data directory."""


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("document_offsets", "context_offsets"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def validate_question(question: str, max_chars: int) -> str:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty: type a question")
    question = " ".join(question.split())
    if len(question) > max_chars:
        raise QuestionError(
            f"the question is {len(question):,} characters long; the limit is {max_chars:,}"
            " (ask about one thing at a time)"
        )
    return question


def build_query_pipeline(settings: Settings, store: PassageStore, reader_model: str) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("embedder", QuestionEmbedder(settings))
    pipe.add_component("retriever", DenseRetriever(store, top_k=settings.top_k_passages))
    pipe.add_component(
        "reader",
        ExtractiveReader(
            reader_model,
            top_k=settings.top_n_answers,
            retriever_weight=settings.retriever_weight,
            batch_size=settings.reader_batch_size,
            cpu_precision=settings.cpu_precision,
        ),
    )
    pipe.connect("embedder.embedding", "retriever.query_embedding")
    pipe.connect("retriever.documents", "reader.documents")
    return pipe


def to_result(answer: ExtractedAnswer) -> AnswerResult:
    doc = answer.document
    if answer.data is None or doc is None or answer.document_offset is None:
        return AnswerResult(answer=None, score=float(answer.score))
    start = int(doc.meta.get("start", 0)) + answer.document_offset.start
    end = int(doc.meta.get("start", 0)) + answer.document_offset.end
    meta = answer.meta or {}
    page, section = doc.meta.get("page"), doc.meta.get("section")
    for offset, boundary_page, boundary_section in doc.meta.get("boundaries") or []:
        if offset <= answer.document_offset.start:
            page, section = boundary_page, boundary_section
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
    )


class QueryService:
    """A loaded index and query pipeline for one data directory, reloaded when the index changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._version: str | None = None
        self._store: PassageStore | None = None
        self._pipeline: Pipeline | None = None
        self.reader_model: str = resolve_reader(settings)

    def _current_version(self) -> str | None:
        try:
            return (
                (Path(self.settings.index_dir) / CURRENT_FILE).read_text(encoding="utf-8").strip()
            )
        except OSError:
            return None

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
            except StoreError:
                if self._store is None:
                    raise
                logger.exception(
                    "new index version %s failed to load; keeping %s", version, self._version
                )
                return False
            self._store, self._version = store, version
            self._pipeline = build_query_pipeline(self.settings, store, self.reader_model)
            self._pipeline.warm_up()
            logger.info("serving index version %s (%d passages)", version, store.count_documents())
            return True

    @property
    def store(self) -> PassageStore:
        self.refresh()
        assert self._store is not None
        return self._store

    def ask(
        self,
        question: str,
        top_k_passages: int | None = None,
        top_n_answers: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[AnswerResult]:
        """Ranked answers, best first; a "no answer" result (answer None) is ranked among them."""
        question = validate_question(question, self.settings.max_question_chars)
        k = top_k_passages or self.settings.top_k_passages
        n = top_n_answers or self.settings.top_n_answers
        if k <= 0 or n <= 0:
            raise QuestionError("the numbers of passages and answers must be positive")
        self.refresh()
        assert self._pipeline is not None
        started = time.perf_counter()
        with self._lock:
            out = self._pipeline.run(
                {
                    "embedder": {"text": question},
                    "retriever": {"top_k": k, "filters": filters},
                    "reader": {"query": question, "top_k": n},
                }
            )
        results = [to_result(a) for a in out["reader"]["answers"]]
        logger.info("answered in %.0f ms: %r", 1000 * (time.perf_counter() - started), question)
        return results

    def retrieve(
        self, question: str, top_k: int | None = None, filters: dict[str, Any] | None = None
    ) -> list[Any]:
        """The passages the reader would read (for showing them when there is no answer)."""
        question = validate_question(question, self.settings.max_question_chars)
        self.refresh()
        assert self._pipeline is not None
        embedder = self._pipeline.get_component("embedder")
        emb = embedder.run(text=question)["embedding"]
        return self.store.embedding_retrieval(
            emb, top_k=top_k or self.settings.top_k_passages, filters=filters
        )


_SERVICES: dict[tuple[str, str], QueryService] = {}
_SERVICES_LOCK = threading.Lock()


def get_service(settings: Settings) -> QueryService:
    """One QueryService per (data directory, resolved reader) in this process.

    Keyed on the resolved reader, so promoting another version takes effect on the next call.
    """
    key = (str(settings.home), resolve_reader(settings))
    with _SERVICES_LOCK:
        service = _SERVICES.get(key)
        if service is None or service.settings != settings:
            service = _SERVICES[key] = QueryService(settings)
        return service


def ask(
    question: str,
    settings: Settings,
    top_k_passages: int | None = None,
    top_n_answers: int | None = None,
    filters: dict[str, Any] | None = None,
) -> list[AnswerResult]:
    """Answer ``question`` over the index in ``settings.home``."""
    validate_question(question, settings.max_question_chars)  # before loading any model
    return get_service(settings).ask(question, top_k_passages, top_n_answers, filters)
