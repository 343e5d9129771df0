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

import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ExtractedAnswer

from pipelines.light_tokenizer import load_tokenizer
from pipelines.reader_backends import (
    BF16_WEIGHTS,
    CPU_PRECISIONS,
    READER_BACKENDS,
    OnnxQAModel,
    choose_backend,
    cpu_supports_bf16,
    default_cache_dir,
    load_backend,
    onnx_int8_path,
    onnx_model_path,
    resolve_device,
)
from pipelines.spans import (
    AnswerRanking,
    RankedSpan,
    SpanCandidate,
    Windows,
    decode_spans,
    question_null_shifts,
    rank_answers,
    tokenize_pairs,
    widen_candidates,
    widen_to_words,
)
from pipelines.store.versions import write_atomic
from pipelines.verifier import AnswerVerifier, PassageEvidence

# The reader's building blocks are part of its public surface.
__all__ = [
    "BF16_WEIGHTS",
    "READER_BACKENDS",
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

READER_CONFIG_FILE = "docqa_reader.json"


@dataclass(frozen=True)
class ReaderConfig:
    """Decoding settings saved beside a trained reader (``docqa_reader.json``)."""

    no_answer_threshold: float = 0.0  # added to span-minus-null margins; tuned on held-out pairs
    temperature: float = 2.0
    max_seq_length: int = 384
    doc_stride: int = 128
    max_answer_tokens: int = 30
    max_answer_chars: int = 300  # an answer is a span a person reads, never a whole blob
    retriever_weight: float = 0.0  # tuned end to end on held-out pairs (docqa tune-weight)
    # Subtracted from every margin when answers are ranked across retrieved passages: "no
    # answer" competes with the best span of k passages, a max that grows with k (open SQuAD
    # NoAns F1 falls as k grows: README). Tuned with the weight.
    open_null_offset: float = 0.0
    # Where "no answer" is decided across passages: "window" judges each span against its own
    # window's null logit (so the best of k passages grows with k); "question" judges every span
    # against one null for the question, the mean null logit of the passages read (the null a
    # shared-normalization reader is trained with). Tuned with the weight on held-out pairs.
    null_scope: str = "window"
    # How spans of the same text from several passages score: "max" (the best one) or
    # "noisy_or" (evidence combined; pipelines.spans.rank_answers).
    answer_pooling: str = "max"
    # Margins of the passage retrieved r-th lowered by rank_prior * ln(r) (0: off): a span from
    # a low-ranked passage needs more evidence to beat better-ranked spans and "no answer".
    rank_prior: float = 0.0
    # A cascade (0: off): read the best ``cascade_passages`` passages first and stop there when
    # their top answer, or "no answer", scores at least ``cascade_min_score`` (the verifier's
    # score where the reader has one); read the rest otherwise. Reading costs time in proportion
    # to the passages read.
    cascade_passages: int = 0
    cascade_min_score: float = 1.0
    # Spans widened to whole words and code tokens (pipelines.spans.widen_to_words): a reader
    # that stops inside "SQLITE_MISUSE" answers "MISUSE".
    whole_words: bool = True

    @classmethod
    def load(cls, model_dir: str | Path) -> ReaderConfig:
        path = Path(model_dir) / READER_CONFIG_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, model_dir: str | Path) -> None:
        path = Path(model_dir) / READER_CONFIG_FILE
        # A model folder is never left with half a config.
        write_atomic(path, json.dumps(self.__dict__, indent=2) + "\n")


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (atomic writes make a new inode); None if absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class SpanPredictor:
    """Loads a QA model and its tokenizer once; predicts start/end logits for windows in batches."""

    def __init__(
        self,
        model: str | Path | Any,
        device: str | None = None,
        batch_size: int = 16,
        cpu_precision: str = "fp32",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
        *,
        tokenizer: Any = None,
        config: ReaderConfig | None = None,
    ) -> None:
        """``model``: a reader folder (loaded here, with its tokenizer and ``docqa_reader.json``)
        or an already-loaded ``*ForQuestionAnswering`` model, then with ``tokenizer`` and
        ``config`` (evaluation during training reads with the model being trained)."""
        if backend not in READER_BACKENDS:
            raise ValueError(f"unknown reader backend {backend!r}; choose one of {READER_BACKENDS}")
        if cpu_precision not in CPU_PRECISIONS:
            raise ValueError(
                f"unknown CPU precision {cpu_precision!r}; choose one of {CPU_PRECISIONS}"
            )
        if isinstance(model, str | Path):
            self.model_path = str(model)
            self.device = resolve_device(device)
            chosen = choose_backend(backend, self.device, self.model_path, cache_dir)
            # ONNX Runtime reads its export and needs no transformers at all where the
            # tokenizer allows (light_tokenizer): loading the torch model too would import
            # transformers' model code for nothing (seconds of a new process's start).
            if chosen[0].startswith("onnx"):
                self.tokenizer = load_tokenizer(self.model_path)
                self.model = None
            else:
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
                self.model = self._load_torch_model()
            self._config_file: Path | None = Path(self.model_path) / READER_CONFIG_FILE
            self._config_stamp = _file_stamp(self._config_file)
            self._config = ReaderConfig.load(self.model_path)
            self.verifier = AnswerVerifier.load(self.model_path)
        else:
            if tokenizer is None or config is None:
                raise ValueError("a loaded model needs its tokenizer and its ReaderConfig")
            self.model_path = str(getattr(model, "name_or_path", ""))
            self.model, self.tokenizer, self._config = model, tokenizer, config
            self._config_file, self._config_stamp = None, None
            self.verifier = None
            self.device = next(model.parameters()).device
            chosen = choose_backend(backend, self.device)
        backend, precision = chosen
        self.backend = backend
        self.batch_size = batch_size
        self.cpu_precision = precision or cpu_precision
        if self.cpu_precision == "auto":
            self.cpu_precision = "bf16" if cpu_supports_bf16() else "fp32"
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        if (
            self.cpu_precision == BF16_WEIGHTS
            and backend == "torch"
            and self.device.type == "cpu"
            and isinstance(model, str | Path)  # never convert a caller's model (a training one)
        ):
            # Weights and activations in bf16, no autocast: autocast casts every Linear's fp32
            # weights to bf16 on each forward pass and runs LayerNorm, GELU and softmax in fp32.
            self.model = self.model.to(torch.bfloat16)
        if backend != "torch":
            names = ["input_ids", "attention_mask"]
            names += ["token_type_ids"] if self._uses_token_types else []
            self.model = load_backend(self.model, self.model_path, backend, names, cache_dir)
            self.cpu_precision = "fp32"  # bf16 autocast applies to the torch backend only

    def _load_torch_model(self) -> Any:
        from transformers import AutoModelForQuestionAnswering

        loaded = AutoModelForQuestionAnswering.from_pretrained(self.model_path)
        # Half-precision weights are shipped to save space; compute in fp32 on CPU.
        if self.device.type == "cuda":
            return loaded.to(self.device, dtype=torch.float16).eval()
        return loaded.float().eval()

    @property
    def config(self) -> ReaderConfig:
        """The reader's ``docqa_reader.json``, read again when the file changes: a cached
        predictor must not keep serving a threshold or ranking that was tuned since it loaded
        (``docqa tune-weight`` and the campaign gate write them beside the weights)."""
        if self._config_file is not None:
            stamp = _file_stamp(self._config_file)
            if stamp != self._config_stamp:
                self._config = ReaderConfig.load(self._config_file.parent)
                self._config_stamp = stamp
                logger.info("reader settings reloaded from %s", self._config_file)
        return self._config

    @classmethod
    def from_objects(
        cls,
        model: Any,
        tokenizer: Any,
        config: ReaderConfig,
        batch_size: int = 64,
        cpu_precision: str = "fp32",
    ) -> SpanPredictor:
        """A predictor over an already-loaded model (used for evaluation during training)."""
        return cls(
            model, batch_size=batch_size, cpu_precision=cpu_precision, tokenizer=tokenizer,
            config=config,
        )  # fmt: skip

    @torch.inference_mode()
    def logits(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        inputs = {
            k: v
            for k, v in windows.encodings.items()
            if k in ("input_ids", "attention_mask")
            or (k == "token_type_ids" and self._uses_token_types)
        }
        n, width = inputs["input_ids"].shape
        lengths = inputs["attention_mask"].sum(dim=1)
        # Windows sorted by length, each batch cut to its longest: short windows (a passage's
        # last) no longer pay for padding to the longest of all. Logits go back to the windows'
        # order.
        order = torch.argsort(lengths, descending=True, stable=True)
        starts = np.full((n, width), -1e4, dtype=np.float32)
        ends = np.full((n, width), -1e4, dtype=np.float32)
        use_bf16 = self.device.type == "cpu" and self.cpu_precision == "bf16"  # autocast
        for i in range(0, n, self.batch_size):
            rows = order[i : i + self.batch_size]
            longest = int(lengths[rows].max())
            batch = {k: v[rows, :longest].to(self.device) for k, v in inputs.items()}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                out = self.model(**batch)
            # Padding positions get -1e4 so they can never be picked.
            mask = batch["attention_mask"] == 0
            index = rows.numpy()
            starts[index, :longest] = out.start_logits.float().masked_fill(mask, -1e4).cpu().numpy()
            ends[index, :longest] = out.end_logits.float().masked_fill(mask, -1e4).cpu().numpy()
        return starts, ends

    def predict(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        n_best: int = 20,
        no_answer_threshold: float | None = None,
        max_seq_length: int | None = None,
        whole_words: bool | None = None,
    ) -> list[list[SpanCandidate]]:
        """Candidates for each (question, context) pair, best first; ``max_seq_length``
        overrides the reader's window length (its stride stays), ``whole_words`` its
        ``ReaderConfig.whole_words``."""
        cfg = self.config
        windows = tokenize_pairs(
            self.tokenizer,
            questions,
            contexts,
            max_seq_length or cfg.max_seq_length,
            cfg.doc_stride,
        )
        start, end = self.logits(windows)
        threshold = cfg.no_answer_threshold if no_answer_threshold is None else no_answer_threshold
        widen = cfg.whole_words if whole_words is None else whole_words
        return decode_spans(
            start,
            end,
            windows,
            cfg.max_answer_tokens,
            threshold,
            n_best,
            cfg.max_answer_chars,
            contexts=contexts if widen else None,
        )

    def score(self, margin: float) -> float:
        """Confidence in [0, 1] from a margin (> 0.5 means the reader would answer)."""
        return 1.0 / (1.0 + math.exp(-margin / self.config.temperature))


# Loaded readers, most recently used last. Bounded: a page that switches readers (or a service
# answering with several) keeps at most this many models in memory.
MAX_CACHED_PREDICTORS = 4
_PREDICTORS: OrderedDict[tuple[str, ...], SpanPredictor] = OrderedDict()
_PREDICTORS_LOCK = threading.Lock()


def get_predictor(
    model: str | Path,
    device: str | None = None,
    cpu_precision: str = "fp32",
    batch_size: int = 16,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
) -> SpanPredictor:
    """A process-wide cache so pipelines and pages load each reader once (thread-safe; the
    least recently used reader is dropped beyond :data:`MAX_CACHED_PREDICTORS`)."""
    key = (str(model), str(resolve_device(device)), cpu_precision, str(batch_size), backend)
    if backend != "torch":
        key = (*key, str(cache_dir))
    with _PREDICTORS_LOCK:
        if key in _PREDICTORS:
            _PREDICTORS.move_to_end(key)
            return _PREDICTORS[key]
        logger.info("loading reader %s on %s (%s)", model, key[1], backend)
        predictor = SpanPredictor(
            model, device, batch_size, cpu_precision, backend=backend, cache_dir=cache_dir
        )
        _PREDICTORS[key] = predictor
        while len(_PREDICTORS) > MAX_CACHED_PREDICTORS:
            _PREDICTORS.popitem(last=False)
        return predictor


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

    @property
    def predictor(self) -> SpanPredictor:
        """The loaded model this component reads with (loaded on first use)."""
        self.warm_up()
        assert self._predictor is not None
        return self._predictor

    def warm_up(self) -> None:
        if self._predictor is None:
            self._predictor = get_predictor(
                self.model,
                self.device,
                self.cpu_precision,
                self.batch_size,
                backend=self.backend,
                cache_dir=self.cache_dir,
            )

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
        ranking = AnswerRanking.of(self._predictor, self.retriever_weight)
        docs = [d for d in documents if d.content]
        if not docs:
            return {"answers": [ExtractedAnswer(query=query, score=1.0, data=None)]}
        ranked, no_answer, docs = self._read(query, docs, ranking, top_k)
        answers: list[ExtractedAnswer] = []
        for r in ranked:
            doc, c = docs[r.passage], r.candidate
            answers.append(
                ExtractedAnswer(
                    query=query,
                    score=r.score,
                    data=(doc.content or "")[c.start_char : c.end_char],
                    document=doc,
                    context=doc.content,
                    document_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                    context_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                    meta={
                        "reader_score": r.reader_score,
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
    ) -> tuple[list[RankedSpan], float, list[Document]]:
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

        def rank(spans: list[list[SpanCandidate]]) -> tuple[list[RankedSpan], float]:
            """The spans of the first ``len(spans)`` passages ranked: by the verifier where the
            reader has one (trained at several numbers of passages read, its scores mean the
            same after the cascade's first passages as after all), else the reader's ranking."""
            n = len(spans)
            if verifier is not None:
                return verifier.verify(query, spans, evidence[:n])
            return ranking.rank(spans, scores[:n], predictor.score, top_k, texts[:n])

        candidates = predictor.predict([query] * head, texts[:head], max_seq_length=window)
        ranked, no_answer = rank(candidates)
        top = max([no_answer] + [r.score for r in ranked[:1]])
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
        kept.append(a)
    return kept
