"""The extractive reader: a Haystack component over any ``AutoModelForQuestionAnswering``.

Reading is split in three steps, as in the transformers QA example (``utils_qa.py``), so that
training-time evaluation and query-time reading decode spans the same way:

1. :func:`tokenize_pairs` cuts each (question, context) pair into windows of ``max_seq_length``
   tokens with ``doc_stride`` overlap and keeps each token's character offsets in the context.
2. :class:`SpanPredictor` runs the model over all windows of all pairs in batches (in bf16 or
   with bf16 autocast on CPU when asked, fp16 on GPU) and returns start/end logits.
3. :func:`decode_spans` turns logits into candidate spans with a *margin*: span logit minus the
   window's null ("no answer") logit plus the model's calibrated no-answer threshold. A margin above
   zero means "answer"; ``sigmoid(margin / temperature)`` is the score in [0, 1]. Because every
   window was trained to put its null logit above any span when it lacks the answer, the margin is
   comparable across passages, which raw span logits are not.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ExtractedAnswer

from pipelines.reader_backends import (
    BF16_WEIGHTS,
    READER_BACKENDS,
    OnnxQAModel,
    choose_backend,
    cpu_supports_bf16,
    default_cache_dir,
    onnx_int8_path,
    onnx_model_path,
    resolve_device,
)
from pipelines.reader_config import READER_CONFIG_FILE, AnswerRanking, ReaderConfig
from pipelines.span_predictor import SpanPredictor
from pipelines.spans import (
    SpanCandidate,
    Windows,
    decode_spans,
    question_null_shifts,
    rank_answers,
    tokenize_pairs,
    widen_candidates,
    widen_to_words,
)
from pipelines.verifier import PassageEvidence

# The reader's building blocks are part of its public surface.
__all__ = [
    "BF16_WEIGHTS",
    "READER_BACKENDS",
    "READER_CONFIG_FILE",
    "AnswerRanking",
    "ExtractiveReader",
    "OnnxQAModel",
    "ReaderConfig",
    "SpanCandidate",
    "SpanPredictor",
    "Windows",
    "choose_backend",
    "cpu_supports_bf16",
    "decode_spans",
    "default_cache_dir",
    "get_predictor",
    "onnx_int8_path",
    "onnx_model_path",
    "question_null_shifts",
    "rank_answers",
    "tokenize_pairs",
    "widen_candidates",
    "widen_to_words",
]

logger = logging.getLogger(__name__)

# Loaded readers, bounded: a page that switches readers (or a service answering with several)
# keeps at most this many models in memory. The lock makes two threads asking for the same
# reader at once load it once.
MAX_CACHED_PREDICTORS = 4
_PREDICTORS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=MAX_CACHED_PREDICTORS)
def _load_predictor(
    model: str,
    device: str | None,
    cpu_precision: str,
    batch_size: int,
    backend: str,
    cache_dir: str | None,
) -> SpanPredictor:
    logger.info("loading reader %s on %s (%s)", model, resolve_device(device), backend)
    return SpanPredictor(
        model, device, batch_size, cpu_precision, backend=backend, cache_dir=cache_dir
    )


def get_predictor(
    model: str | Path,
    device: str | None = None,
    cpu_precision: str = "fp32",
    batch_size: int = 16,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
) -> SpanPredictor:
    """A process-wide cache so pipelines and pages load each reader once (thread-safe; the
    least recently used reader is dropped beyond :data:`MAX_CACHED_PREDICTORS`).

    ``backend`` "auto" on CPU with a reader folder and a ``cache_dir`` (a home's cache) reads
    with the backend measured fastest within 0.5 F1 of fp32 on this CPU
    (:func:`pipelines.backend_choice.auto_backend`, cached; until it is measured, in the
    background, the fixed rule); otherwise the fixed rule of
    :func:`pipelines.reader_backends.choose_backend`."""
    if (
        backend == "auto"
        and cache_dir is not None
        and resolve_device(device).type == "cpu"
        and Path(model).is_dir()
    ):
        from pipelines.backend_choice import auto_backend

        measured = auto_backend(model, cache_dir)
        if measured is not None:
            backend, cpu_precision = measured[0], measured[1] or cpu_precision
    # The torch backend caches nothing on disk: the same reader for every home.
    cache = None if backend == "torch" or cache_dir is None else str(cache_dir)
    with _PREDICTORS_LOCK:
        return _load_predictor(
            str(model), str(resolve_device(device)), cpu_precision, batch_size, backend, cache
        )


@component
class ExtractiveReader:
    """Reads the retrieved passages of a question and returns the best answer spans.

    Answers from all passages are ranked together by their reader score, optionally mixed with
    the retriever's score (``retriever_weight``). A "no answer" (``data=None``) with score
    ``1 - max(reader scores)`` competes for the ``top_k`` places, so callers can tell "not in the
    documents" from a weak answer.
    """

    def __init__(
        self,
        model: str | Path,
        top_k: int = 3,
        retriever_weight: float | None = None,
        device: str | None = None,
        batch_size: int = 16,
        cpu_precision: str = "fp32",
        no_answer: bool = True,
        backend: str = "torch",
        cache_dir: str | None = None,
        max_seq_length: int | None = None,
        verifier: bool = True,
    ) -> None:
        self.model = str(model)
        # Rank answers with the reader's answer verifier where it ships one (answer_verifier.json).
        self.verifier = verifier
        # Read windows of this many tokens instead of the reader's own (Settings).
        self.max_seq_length = max_seq_length
        self.top_k = top_k
        self.retriever_weight = retriever_weight
        self.device = device
        self.batch_size = batch_size
        self.cpu_precision = cpu_precision
        self.no_answer = no_answer
        self.backend = backend  # one of READER_BACKENDS (Settings.reader_backend)
        self.cache_dir = cache_dir  # where the ONNX export is cached
        self._predictor: SpanPredictor | None = None
        # "auto" on a CPU not measured yet: the measurement running in the background, after
        # which the reader is loaded again with the measured backend.
        self._measuring: threading.Thread | None = None

    @property
    def predictor(self) -> SpanPredictor:
        """The loaded model this component reads with (loaded on first use)."""
        self.warm_up()
        assert self._predictor is not None
        return self._predictor

    def warm_up(self) -> None:
        measured = self._measuring is not None and not self._measuring.is_alive()
        if self._predictor is None or measured:
            self._predictor = get_predictor(
                self.model,
                self.device,
                self.cpu_precision,
                self.batch_size,
                backend=self.backend,
                cache_dir=self.cache_dir,
            )
            self._measuring = None
            if self.backend == "auto" and self.cache_dir is not None:
                from pipelines.backend_choice import pending_measurement

                self._measuring = pending_measurement(self.model, self.cache_dir)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            top_k=self.top_k,
            retriever_weight=self.retriever_weight,
            device=self.device,
            batch_size=self.batch_size,
            cpu_precision=self.cpu_precision,
            no_answer=self.no_answer,
            backend=self.backend,
            cache_dir=self.cache_dir,
            max_seq_length=self.max_seq_length,
            verifier=self.verifier,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveReader:
        return default_from_dict(cls, data)

    @component.output_types(answers=list[ExtractedAnswer])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[ExtractedAnswer]]:
        self.warm_up()
        assert self._predictor is not None
        top_k = top_k or self.top_k
        ranking = self._predictor.config.ranking.with_weight(self.retriever_weight)
        docs = [d for d in documents if d.content]
        if not docs:
            return {"answers": [ExtractedAnswer(query=query, score=1.0, data=None)]}
        ranked, no_answer, docs = self._read(query, docs, ranking, top_k)
        answers: list[ExtractedAnswer] = []
        for c in ranked:
            doc = docs[c.pair]
            answers.append(
                ExtractedAnswer(
                    query=query,
                    score=c.score or 0.0,
                    data=(doc.content or "")[c.start_char : c.end_char],
                    document=doc,
                    context=doc.content,
                    document_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                    context_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                    meta={
                        "reader_score": c.reader_score,
                        "retriever_score": float(doc.score) if doc.score is not None else 0.0,
                    },
                )
            )
        answers = _dedupe_text(answers)
        if self.no_answer:
            # "No answer" competes with the spans for the top_k places.
            answers.append(ExtractedAnswer(query=query, score=no_answer, data=None))
            answers.sort(key=lambda a: a.score, reverse=True)
        return {"answers": answers[:top_k]}

    def _read(
        self, query: str, docs: list[Document], ranking: AnswerRanking, top_k: int
    ) -> tuple[list[SpanCandidate], float, list[Document]]:
        """Read the passages (all, or the cascade's first ones when they settle it) and rank
        their spans; returns the ranking, "no answer"'s score and the passages it indexes."""
        assert self._predictor is not None
        predictor = self._predictor
        texts = [d.content or "" for d in docs]
        scores = [float(d.score) if d.score is not None else 0.0 for d in docs]
        first = predictor.config.cascade_passages
        head = len(docs) if first <= 0 else min(first, len(docs))
        window = self.max_seq_length
        verifier = predictor.verifier if self.verifier else None
        evidence = [PassageEvidence.of(d) for d in docs] if verifier is not None else []

        def rank(spans: list[list[SpanCandidate]]) -> tuple[list[SpanCandidate], float]:
            """The spans of the first ``len(spans)`` passages ranked: by the verifier where the
            reader has one (trained at several numbers of passages read, its scores mean the
            same after the cascade's first passages as after all), else the reader's ranking."""
            n = len(spans)
            if verifier is not None:
                return verifier.verify(query, spans, evidence[:n])
            return rank_answers(spans, scores[:n], predictor.score, ranking, top_k, texts[:n])

        candidates = predictor.predict([query] * head, texts[:head], max_seq_length=window)
        ranked, no_answer = rank(candidates)
        top = max([no_answer] + [r.score or 0.0 for r in ranked[:1]])
        if head == len(docs) or top >= predictor.config.cascade_min_score:
            return ranked, no_answer, docs[:head]
        candidates += predictor.predict(
            [query] * (len(docs) - head), texts[head:], max_seq_length=window
        )
        ranked, no_answer = rank(candidates)
        return ranked, no_answer, docs


def _dedupe_text(answers: list[ExtractedAnswer]) -> list[ExtractedAnswer]:
    """Merge answers with the same text from overlapping passages; keep the best-scored one."""
    seen: set[tuple[str, str]] = set()
    kept = []
    # The same span of the same passage text in another document (a copy of a file at another
    # path): one answer, the other documents listed in its meta["same_text_in"].
    copies: dict[tuple[str, str, int], ExtractedAnswer] = {}
    for a in answers:
        doc = a.document
        key = ((a.data or "").strip().lower(), str(doc.meta.get("doc_id")) if doc else "")
        # Overlapping passages of one document give the same span twice: merge those.
        if doc is not None and doc.meta.get("start") is not None and a.document_offset:
            abs_start = int(doc.meta["start"]) + a.document_offset.start
            key = (key[0], f"{key[1]}@{abs_start}")
        if key in seen:
            continue
        seen.add(key)
        if doc is not None and a.document_offset is not None:
            copy_key = (key[0], doc.content or "", a.document_offset.start)
            first = copies.setdefault(copy_key, a)
            if first is not a:
                first.meta.setdefault("same_text_in", []).append(doc)
                continue
        kept.append(a)
    return kept
