"""The BM25 index of a :class:`~pipelines.store.PassageStore`'s passages: tokenization, build,
search, and its cache in the store's version folder. The store owns it
(``PassageStore.bm25_retrieval``), :class:`~pipelines.retrievers.BM25Retriever` is the thin
component over it, and :mod:`pipelines.fusion` joins its ranking with the dense one.

Why BM25 next to the dense retriever: MiniLM embeds meaning, so a question that hinges on a rare
literal token (an error code, a product SKU, a person's name, a version number) can miss the one
passage that contains it, while BM25 ranks exactly those passages first. Fusing both rankings
keeps the dense retriever's paraphrase matching and adds BM25's exact matching.

The BM25 index is derived data: it is built from the store's passages (title, section heading
and content, like the embedder sees them) and cached on disk in the folder of the immutable index
version it was built from (``index/v-<n>/bm25``). A new index version is a new folder, so a
re-index always gets a freshly built BM25 index, and the cache disappears with its version.

BM25 scores are unbounded and depend on the collection; :class:`~pipelines.fusion.RankFusion`
gives the reader cosine similarities instead. Neither building the index nor filtering reads the
passages' embeddings.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from haystack.dataclasses import Document

logger = logging.getLogger(__name__)

CACHE_DIR_NAME = "bm25"
CACHE_FORMAT = 1
IDS_FILE = "passage_ids.json"
INFO_FILE = "docqa_bm25.json"
# Meta fields indexed with the content: a passage rarely repeats its document's title or its
# section heading, while questions often name them (the embedder does the same).
META_FIELDS = ("title", "section")
# Words of two or more letters/digits, as scikit-learn's CountVectorizer and bm25s split.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOPWORDS: frozenset[str] | None = None


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens of ``text`` without English stopwords (no stemming)."""
    global _STOPWORDS
    if _STOPWORDS is None:
        _STOPWORDS = _stopwords()
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def passage_text(document: Document) -> str:
    """The text BM25 indexes for a passage: its title and section (when present), then content."""
    parts: list[str] = []
    for name in META_FIELDS:
        value = document.meta.get(name)
        if value is not None and str(value).strip() and str(value) not in parts:
            parts.append(str(value))
    parts.append(document.content or "")
    return "\n".join(parts)


def _import_bm25s() -> Any:
    """bm25s, its logger quieted: it sets itself to DEBUG on import, so "Building index from
    tokens" reached the output of every command that loads an index."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25Index:
    """A bm25s model over passages, with the passage id of each of its rows."""

    def __init__(self, model: Any, ids: list[str], k1: float, b: float) -> None:
        self.model = model  # None when there are no passages (bm25s cannot index nothing)
        self.ids = ids
        self.k1 = k1
        self.b = b
        self._row = {passage_id: row for row, passage_id in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, documents: Iterable[Document], k1: float = 1.5, b: float = 0.75) -> BM25Index:
        bm25s = _import_bm25s()

        ids: list[str] = []
        corpus: list[list[str]] = []
        for doc in documents:
            ids.append(doc.id)
            corpus.append(tokenize(passage_text(doc)))
        model = None
        if ids:
            model = bm25s.BM25(k1=k1, b=b)
            model.index(corpus, show_progress=False)
        return cls(model, ids, k1, b)

    # -- disk cache -------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "passages": len(self.ids),
            "k1": self.k1,
            "b": self.b,
            "token_pattern": _TOKEN.pattern,
            "meta_fields": list(META_FIELDS),
        }

    def save(self, folder: Path) -> bool:
        """Write the index to ``folder`` atomically (a temporary folder, then one rename).

        Returns False, and leaves nothing behind, when ``folder`` already exists (another
        process saved first: both built the same index from the same version) or cannot be
        written (a read-only data directory): the index then just lives in memory.
        """
        folder = Path(folder)
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=False)
            if self.model is not None:
                self.model.save(str(tmp), show_progress=False)
            (tmp / IDS_FILE).write_text(json.dumps(self.ids), encoding="utf-8")
            # The info file goes last: a cache folder with it is complete.
            (tmp / INFO_FILE).write_text(json.dumps(self._info(), indent=2), encoding="utf-8")
            os.rename(tmp, folder)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if folder.is_dir():
                logger.debug("BM25 cache %s was written by another process", folder)
            else:
                logger.warning("could not cache the BM25 index in %s (%s)", folder, exc)
            return False
        logger.info("cached the BM25 index of %d passages in %s", len(self.ids), folder)
        return True

    @classmethod
    def load(cls, folder: Path, k1: float = 1.5, b: float = 0.75) -> BM25Index | None:
        """The cached index in ``folder``; None when missing, incomplete or built differently."""
        bm25s = _import_bm25s()

        folder = Path(folder)
        try:
            info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
            ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        expected = cls(None, [], k1, b)._info() | {"passages": len(ids)}
        if info != expected:
            logger.info("BM25 cache %s was built with other settings; rebuilding", folder)
            return None
        model = None
        if ids:
            try:
                model = bm25s.BM25.load(str(folder), show_progress=False)
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("unreadable BM25 cache %s (%s); rebuilding", folder, exc)
                return None
        return cls(model, ids, k1, b)

    # -- search -----------------------------------------------------------------------------

    def mask(self, allowed: Iterable[str]) -> np.ndarray:
        """The rows of these passage ids, as a boolean mask over the index (what ``search``
        takes as ``allowed``: a scope's mask is made once, not on every search)."""
        mask = np.zeros(len(self.ids), dtype=bool)
        mask[[r for r in (self._row.get(i) for i in allowed) if r is not None]] = True
        return mask

    def search(
        self, query: str, top_k: int, allowed: Iterable[str] | np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """``(passage id, BM25 score)`` of the best ``top_k`` passages, best first.

        Only passages sharing a term with the query are returned (a score of 0 says nothing
        about relevance). ``allowed`` restricts the ranking to these passage ids, before top-k
        is taken, so a filter still yields ``top_k`` passages when that many match; a boolean array
        from :meth:`mask` does the same.
        """
        if self.model is None or top_k <= 0:
            return []
        token_ids = self.model.get_tokens_ids(tokenize(query))
        if not token_ids:
            return []
        scores = np.asarray(self.model.get_scores_from_ids(token_ids), dtype=np.float32)
        if allowed is not None:
            mask = allowed if isinstance(allowed, np.ndarray) else self.mask(allowed)
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > top_k:
            candidates = candidates[np.argpartition(-scores[candidates], top_k - 1)[:top_k]]
        # Ties are broken by row (insertion order), so results are reproducible.
        order = sorted(candidates.tolist(), key=lambda r: (-float(scores[r]), r))
        return [(self.ids[r], float(scores[r])) for r in order]


class PassageSource(Protocol):
    """What the BM25 index needs of a store (the store passes itself; this module never
    imports the store that calls it)."""

    def count_documents(self) -> int: ...

    def filter_documents(
        self, filters: dict[str, Any] | None = None, *, return_embedding: bool = True
    ) -> list[Document]: ...


def load_or_build_index(
    store: PassageSource, cache_dir: Path | None, k1: float = 1.5, b: float = 0.75
) -> BM25Index:
    """The BM25 index of ``store``: from ``cache_dir/bm25`` when cached there, else built.

    ``cache_dir`` must be the immutable index version folder the store was loaded from (the
    cache is only valid for that version); None builds in memory and caches nothing.
    """
    count = store.count_documents()
    folder = Path(cache_dir) / CACHE_DIR_NAME if cache_dir is not None else None
    if folder is not None:
        cached = BM25Index.load(folder, k1, b)
        if cached is not None and len(cached) == count:
            logger.info("loaded the BM25 index of %d passages from %s", count, folder)
            return cached
        if cached is not None:
            # Defensive: the folder is not the version the store holds. Do not trust it.
            logger.warning(
                "BM25 cache %s has %d passages, the store %d; building in memory",
                folder,
                len(cached),
                count,
            )
            folder = None
    index = BM25Index.build(store.filter_documents(return_embedding=False), k1, b)
    logger.info("built the BM25 index of %d passages", len(index))
    if folder is not None and folder.parent.is_dir():
        index.save(folder)
    return index
