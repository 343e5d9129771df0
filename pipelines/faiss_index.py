"""The vector side of the passage store: exact search for small collections, IVF or HNSW for large.

Why this module: FAISS's exact ``IndexFlatIP`` answers a query in O(N) (about 40 ms at a million
384-d passages on one core) and its approximate indexes each miss something the store needs:
HNSW cannot remove vectors, IVF must be trained and goes stale as the collection grows,
compressed codes (SQ8, PQ) give approximate vectors back and approximate scores, GPU indexes ignore
ID selectors. :class:`VectorIndex` hides those differences behind what
:class:`pipelines.store.PassageStore` needs: add/remove by id, exact vectors back, a search that
returns the full top-k of a filtered subset, and a file format.

Design:

* The **master** is an ``IndexIDMap2(IndexFlatIP)`` holding every vector exactly (1.5 KiB per
  384-d passage). It is the source of truth: ``filter_documents`` returns its vectors, rebuilds and
  retraining read it, selective filters are searched on it exactly, and results of compressed
  indexes are re-scored with it, so every score the store returns is the true inner product
  (the reader mixes retriever scores into its answer ranking). Compression therefore shrinks the
  *search structure* (IVF-SQ8: 384 B/passage, PQ: 48 B), not the master.
* The **ANN index** (None while the collection is small) is built from the master:
  ``IVF{nlist},{Flat|SQ8|PQ}`` with ``nlist ≈ 4·√N`` (IVF keeps ids natively and can remove them)
  or ``IDMap2,HNSW32,{Flat|SQ8|PQ}``. HNSW cannot remove ids, so removed ids stay in the graph as
  *stale* entries, excluded from searches by an ``IDSelectorNot``; they are derived on load as
  "ids in the HNSW index but not in the master" and dropped by a rebuild.
* **When it is (re)built** — by :meth:`VectorIndex.maintain`, which the store runs on every save
  (and ``PassageStore.rebuild_index`` on demand); between saves new vectors are added to the
  existing ANN index, and a collection without one is searched exactly:

  - the kind chosen by size changes (auto: flat below ``flat_max`` passages, IVF from there; back
    to flat only below half of it, so a collection at the threshold does not flip-flop);
  - the compression setting changes;
  - IVF: the collection has doubled, or shrunk to a quarter, since the quantizer was trained;
  - HNSW: more than 10% of its entries are stale.

* **Filters** come in as the set of allowed ids. A filter matching at most ``exact_filter_max``
  (5%) of the collection is searched exactly on the master with an ID selector: cheap (only the
  allowed vectors are scored) and its top-k is exact. A broader filter goes to the ANN index with
  the selector inside the search (``SearchParametersIVF``/``SearchParametersHNSW``), with nprobe
  or efSearch scaled up by 1/selectivity so enough allowed vectors are visited; if the ANN
  search still returns fewer than ``top_k`` hits, the exact search answers instead. A filtered
  search therefore always returns ``min(top_k, matches)`` results.
* **GPU**: with a GPU build of faiss and GPUs present, unfiltered Flat/IVF searches run on a GPU
  copy (``index_cpu_to_all_gpus``), rebuilt lazily after a change; filtered searches stay on the
  CPU because classic GPU indexes ignore ``IDSelector`` (faiss issues #3924, #3114), and HNSW has
  no GPU implementation in faiss. See :func:`search_on_gpu`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from pipelines.settings import COMPRESSIONS, INDEX_TYPES

logger = logging.getLogger(__name__)

ANN_FILE = "ann.faiss"
# auto: exact flat search below this many passages (a flat search over 50k 384-d vectors takes
# about 2 ms), IVF from there.
FLAT_MAX_PASSAGES = 50_000
# Even when IVF or HNSW is asked for, fewer vectors than this are searched exactly.
MIN_ANN_PASSAGES = 1_000
HNSW_M = 32
# IVF: faiss warns below 39 training points per list; train on at most this many per list.
MIN_POINTS_PER_LIST = 39
TRAIN_POINTS_PER_LIST = 64
TRAIN_MAX_HNSW = 65_536  # training sample of HNSW's SQ/PQ codec
RETRAIN_GROWTH = 2.0
RETRAIN_SHRINK = 4.0
HNSW_STALE_MAX = 0.10
HNSW_EF_MAX = 16_384
# Compressed codes: candidates fetched per result and re-scored with the exact master vectors.
RERANK_FACTOR = {"none": 1, "sq8": 4, "pq": 10}
ADD_BATCH = 65_536
# IDSelectorBatch (a hash set) for small id sets, a bitmap over the id range for large ones.
BATCH_SELECTOR_MAX = 4_096


@dataclass(frozen=True)
class IndexSpec:
    """How the vectors are indexed; see the module docstring.

    ``index_type``: auto | flat | ivf | hnsw. ``compression`` of the ANN index: none | sq8 | pq
    (pq with IVF only: an HNSW graph over PQ distances finds half of the true top 10); flat
    search is exact whatever the compression.
    ``nprobe``: IVF lists visited per query. ``ef_search``: HNSW candidate list length.
    ``flat_max``: auto uses exact search below this many vectors. ``exact_filter_max``: filters
    matching at most this fraction of the vectors are searched exactly.
    """

    index_type: str = "auto"
    compression: str = "none"
    nprobe: int = 32
    ef_search: int = 128
    flat_max: int = FLAT_MAX_PASSAGES
    exact_filter_max: float = 0.05

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {self.index_type!r}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.index_type == "hnsw" and self.compression == "pq":
            raise ValueError('compression "pq" needs index_type ivf (or auto); hnsw takes sq8')
        if self.nprobe < 1 or self.ef_search < 1 or self.flat_max < 0:
            raise ValueError("nprobe and ef_search must be positive, flat_max not negative")
        if not 0.0 <= self.exact_filter_max <= 1.0:
            raise ValueError(f"exact_filter_max must be in [0, 1], got {self.exact_filter_max}")

    @classmethod
    def from_settings(
        cls, settings: Any, saved: IndexSpec | dict[str, Any] | None = None
    ) -> IndexSpec:
        """The spec a :class:`pipelines.settings.Settings` asks for: each of its index fields
        that is set, else the ``saved`` spec's (the index's own), else the default."""
        base = saved if isinstance(saved, IndexSpec) else cls.from_dict(saved)
        chosen = {
            "index_type": getattr(settings, "index_type", None),
            "compression": getattr(settings, "index_compression", None),
            "nprobe": getattr(settings, "nprobe", None),
            "ef_search": getattr(settings, "ef_search", None),
        }
        return replace(base, **{k: v for k, v in chosen.items() if v is not None})

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexSpec:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- decisions (pure functions, tested without building anything) ---------------------------------


def choose_kind(n: int, spec: IndexSpec, current: str = "flat") -> str:
    """The index kind for ``n`` vectors: "flat", "ivf" or "hnsw".

    ``current`` is the kind built now; auto keeps an ANN index until the collection falls below
    half of ``flat_max`` (hysteresis).
    """
    if n < MIN_ANN_PASSAGES or spec.index_type == "flat":
        return "flat"
    if spec.index_type != "auto":
        return spec.index_type
    threshold = spec.flat_max // 2 if current != "flat" else spec.flat_max
    return "flat" if n < threshold else "ivf"


def nlist_for(n: int) -> int:
    """IVF lists for ``n`` vectors: about 4·√n, with at least 39 training points per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def pq_shape(dim: int, n_train: int) -> tuple[int, int]:
    """PQ sub-quantizers (about 8 dims each, dividing ``dim``) and bits per code."""
    m = max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    bits = int(np.clip(math.floor(math.log2(max(n_train, 2) / MIN_POINTS_PER_LIST)), 1, 8))
    return m, bits


def factory_string(kind: str, compression: str, dim: int, n: int) -> str:
    """The ``faiss.index_factory`` description of an ANN index over ``n`` vectors."""
    if kind == "ivf":
        nlist = nlist_for(n)
        n_train = min(n, TRAIN_POINTS_PER_LIST * nlist)
        prefix = f"IVF{nlist},"
    elif kind == "hnsw":
        if compression == "pq":
            raise ValueError("HNSW takes no PQ compression (see IndexSpec)")
        n_train = min(n, TRAIN_MAX_HNSW)
        prefix = f"IDMap2,HNSW{HNSW_M},"
    else:
        raise ValueError(f"no ANN index for kind {kind!r}")
    if compression == "none":
        return prefix + "Flat"
    if compression == "sq8":
        return prefix + "SQ8"
    m, bits = pq_shape(dim, n_train)
    return prefix + f"PQ{m}x{bits}"


def search_on_gpu(kind: str, num_gpus: int, filtered: bool) -> bool:
    """Whether a search runs on a GPU copy of the index.

    Only unfiltered searches of Flat or IVF indexes, and only with GPUs: classic GPU indexes
    ignore ``SearchParameters.sel`` (faiss issues #3924 and #3114), faiss has no GPU HNSW.
    """
    return num_gpus > 0 and not filtered and kind in ("flat", "ivf")


def num_gpus() -> int:
    """GPUs usable by faiss (0 with faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class Selector:
    """An ``IDSelector`` over ``ids`` and the buffers it points into (keep it alive while used)."""

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self.size = len(ids)
        self._buffer: np.ndarray | None = None
        limit = int(ids.max()) + 1 if len(ids) else 0
        # A bitmap costs limit/8 bytes, a hash set ~32 bytes per id: pick the smaller.
        if len(ids) > BATCH_SELECTOR_MAX and limit <= 256 * len(ids):
            mask = np.zeros(limit, dtype=bool)
            mask[ids] = True
            self._buffer = np.packbits(mask, bitorder="little")
            # faiss takes the bitmap's size in BYTES: given the id count, it reads past the
            # buffer for ids above the largest allowed one and lets some of them through.
            self.sel: Any = faiss.IDSelectorBitmap(len(self._buffer), faiss.swig_ptr(self._buffer))
        else:
            self.sel = faiss.IDSelectorBatch(ids)


@dataclass
class BuildInfo:
    """What the ANN index is and how many vectors its training saw."""

    kind: str
    compression: str
    factory: str
    trained_on: int
    extra: dict[str, Any] = field(default_factory=dict)


def _ivf_ids(index: Any) -> np.ndarray:
    invlists = index.invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
        for i in range(index.nlist)
        if invlists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def ann_ids(index: Any) -> np.ndarray:
    """All ids in an ANN index (IVF: its inverted lists; HNSW: its IDMap2)."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    return _ivf_ids(index)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)


class VectorIndex:
    """Exact master vectors plus an optional ANN index; not thread-safe (the store locks)."""

    def __init__(self, dim: int, spec: IndexSpec | None = None, master: Any = None) -> None:
        self.dim = dim
        self.spec = spec or IndexSpec()
        self.master: Any = (
            master if master is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        )
        self.ann: Any = None
        self.built: BuildInfo | None = None
        # HNSW only: ids still in the graph whose vectors were removed from the master.
        self.stale: set[int] = set()
        self._stale_selector: Any = None
        self._gpu: dict[str, Any] = {}
        self._gpu_failed = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return int(self.master.ntotal)

    @property
    def kind(self) -> str:
        """The kind searched now: "flat" until an ANN index is built."""
        return self.built.kind if self.ann is not None and self.built else "flat"

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.master.id_map).astype(np.int64)

    def max_id(self) -> int:
        """The largest id ever held, stale HNSW entries included (-1 if none)."""
        ids = self.ids()
        return max(int(ids.max()) if len(ids) else -1, max(self.stale, default=-1))

    def similarities(self, ids: Sequence[int], query: Sequence[float]) -> dict[int, float]:
        """Inner product (cosine, for normalized vectors) of each stored vector ``id`` with
        ``query``, computed on the stored vectors without materializing them as lists."""
        if not len(ids):
            return {}
        matrix = self.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        scores = matrix @ np.asarray(query, dtype=np.float32)
        return dict(zip([int(i) for i in ids], scores.tolist(), strict=True))

    def reconstruct_batch(self, ids: np.ndarray) -> np.ndarray:
        return self.master.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def _master_vectors(self) -> np.ndarray:
        """A zero-copy view of the master's vectors, in the order of :meth:`ids`."""
        flat = faiss.downcast_index(self.master.index)
        return faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.dim).reshape(-1, self.dim)

    def describe(self) -> dict[str, Any]:
        """A summary for logs and benchmarks."""
        return {
            "kind": self.kind,
            "factory": self.built.factory if self.ann is not None and self.built else "IDMap2,Flat",
            "vectors": self.ntotal,
            "stale": len(self.stale),
            "trained_on": self.built.trained_on if self.built else None,
            "spec": self.spec.to_dict(),
        }

    def _changed(self) -> None:
        self._gpu.clear()

    def close(self) -> None:
        self._gpu.clear()

    # -- writes ----------------------------------------------------------------------------------

    def update(self, remove: np.ndarray, vectors: np.ndarray | None, ids: np.ndarray) -> None:
        """Remove ``remove`` and add ``vectors`` under ``ids``: all of it or, on error, none.

        The master changes first; if that raises, it is restored. If the ANN index then fails,
        it is dropped (searches are exact until the next rebuild), so the master and the
        caller's passages stay in sync whatever happens.
        """
        remove = np.asarray(remove, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        if not len(remove) and not len(ids):
            return
        saved = self.master.reconstruct_batch(remove) if len(remove) else None
        self._changed()
        try:
            if len(remove):
                self.master.remove_ids(remove)
            if vectors is not None and len(ids):
                self.master.add_with_ids(vectors, ids)
        except BaseException:
            self._restore_master(remove, saved, ids)
            logger.error("FAISS update failed; the index was restored")
            raise
        try:
            self._update_ann(remove, vectors, ids)
        except Exception:
            logger.exception("ANN index update failed; searching exactly until it is rebuilt")
            self._drop_ann()
        except BaseException:
            self._drop_ann()
            self._restore_master(remove, saved, ids)
            raise

    def _restore_master(
        self, remove: np.ndarray, saved: np.ndarray | None, ids: np.ndarray
    ) -> None:
        self.master.remove_ids(ids)
        if saved is not None:
            self.master.remove_ids(remove)  # whether or not the removal had gone through
            self.master.add_with_ids(saved, remove)

    def _update_ann(self, remove: np.ndarray, vectors: np.ndarray | None, ids: np.ndarray) -> None:
        if self.ann is None or self.built is None:
            return
        if len(remove):
            if self.built.kind == "hnsw":
                self.stale.update(remove.tolist())
                self._stale_selector = None
            else:
                self.ann.remove_ids(remove)
        if vectors is not None and len(ids):
            self.ann.add_with_ids(vectors, ids)

    def _drop_ann(self) -> None:
        self.ann, self.built, self.stale, self._stale_selector = None, None, set(), None
        self._changed()

    # -- (re)building --------------------------------------------------------------------------

    def rebuild_reason(self) -> str | None:
        """Why the ANN index should be (re)built or dropped now, or None if it is fine."""
        n = self.ntotal
        want = choose_kind(n, self.spec, self.kind)
        if want == "flat":
            return f"{n} vectors: exact search" if self.ann is not None else None
        if self.ann is None or self.built is None:
            return f"{n} vectors: build {want}"
        if self.built.kind != want:
            return f"{n} vectors: {self.built.kind} -> {want}"
        if self.built.compression != self.spec.compression:
            return f"compression {self.built.compression} -> {self.spec.compression}"
        trained = max(self.built.trained_on, 1)
        if want == "ivf" and (n >= RETRAIN_GROWTH * trained or n * RETRAIN_SHRINK <= trained):
            return f"IVF trained on {trained} vectors, now {n}: retrain"
        if want == "hnsw" and len(self.stale) > HNSW_STALE_MAX * self.ann.ntotal:
            return f"HNSW holds {len(self.stale)} removed vectors: rebuild"
        return None

    def maintain(self, force: bool = False) -> bool:
        """(Re)build or drop the ANN index if :meth:`rebuild_reason` says so; whether it did.

        A failed build is logged and leaves no ANN index (exact search), never a broken one.
        """
        reason = self.rebuild_reason()
        if reason is None and not force:
            return False
        want = choose_kind(self.ntotal, self.spec, self.kind)
        if want == "flat":
            logger.info("Vector index: %s", reason or "exact search")
            self._drop_ann()
            return True
        logger.info("Vector index: %s", reason or f"rebuild {want}")
        try:
            self._build(want)
        except Exception:
            logger.exception("Building the %s index failed; searching exactly", want)
            self._drop_ann()
        return True

    def _build(self, kind: str) -> None:
        n = self.ntotal
        vectors = self._master_vectors()
        ids = self.ids()
        factory = factory_string(kind, self.spec.compression, self.dim, n)
        index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(self._training_sample(kind, vectors))
        for start in range(0, n, ADD_BATCH):
            index.add_with_ids(vectors[start : start + ADD_BATCH], ids[start : start + ADD_BATCH])
        self._drop_ann()
        self.ann = index
        self.built = BuildInfo(kind, self.spec.compression, factory, trained_on=n)
        self._configure()
        logger.info("Built %s over %d vectors", factory, n)

    def _training_sample(self, kind: str, vectors: np.ndarray) -> np.ndarray:
        n = len(vectors)
        size = TRAIN_POINTS_PER_LIST * nlist_for(n) if kind == "ivf" else TRAIN_MAX_HNSW
        if n <= size:
            return np.ascontiguousarray(vectors)
        rows = np.sort(np.random.default_rng(0).choice(n, size=size, replace=False))
        return np.ascontiguousarray(vectors[rows])

    def _configure(self) -> None:
        """Default search parameters on the ANN index (what a GPU copy inherits)."""
        if self.ann is None or self.built is None:
            return
        if self.built.kind == "ivf":
            self.ann.nprobe = min(self.spec.nprobe, self.ann.nlist)
        else:
            faiss.downcast_index(self.ann.index).hnsw.efSearch = self.spec.ef_search

    def set_spec(self, spec: IndexSpec) -> None:
        """Use ``spec`` from now on (search parameters now, the index kind at the next rebuild)."""
        self.spec = spec
        self._configure()
        self._changed()

    # -- search ----------------------------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the ``k`` best vectors for one query, best first.

        With ``allowed``, only those ids are ranked and ``min(k, len(allowed))`` are returned
        (``allowed`` must only hold ids in the index). Scores are exact inner products.
        """
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, self.dim))
        n = self.ntotal
        if k <= 0 or n == 0 or (allowed is not None and len(allowed) == 0):
            return _empty()
        want = min(k, n if allowed is None else len(allowed))
        if self.ann is not None and not self._exact_is_better(allowed):
            scores, ids = self._ann_search(query, want, allowed)
            if len(ids) >= want:
                return scores[:want], ids[:want]
            logger.debug("ANN search returned %d of %d hits; exact search", len(ids), want)
        return self._exact_search(query, want, allowed)

    def _exact_is_better(self, allowed: np.ndarray | None) -> bool:
        return allowed is not None and len(allowed) <= self.spec.exact_filter_max * self.ntotal

    def _exact_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            scores, ids = self._target("flat", self.master).search(query, k)
        else:
            selector = Selector(allowed)
            params = faiss.SearchParameters(sel=selector.sel)
            scores, ids = self.master.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def _ann_search(
        self, query: np.ndarray, want: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.built is not None
        compressed = self.built.compression != "none"
        fetch = want * RERANK_FACTOR.get(self.built.compression, 1)
        selector = Selector(allowed) if allowed is not None else None
        # Fraction of the index's entries a search may return: filters and stale entries
        # thin out what the index visits, so visit proportionally more.
        visible = (len(allowed) if allowed is not None else self.ntotal) / max(self.ann.ntotal, 1)
        visible = min(max(visible, 1e-9), 1.0)
        sel = selector.sel if selector is not None else self._stale_sel()
        if self.built.kind == "ivf":
            if sel is None and self._on_gpu("ivf"):
                scores, ids = self._target("ivf", self.ann).search(query, fetch)
            else:
                nprobe = min(self.ann.nlist, math.ceil(self.spec.nprobe / visible))
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                if sel is not None:
                    params.sel = sel
                scores, ids = self.ann.search(query, fetch, params=params)
        else:
            ef = min(HNSW_EF_MAX, max(self.spec.ef_search, math.ceil(fetch / visible)))
            params = faiss.SearchParametersHNSW(efSearch=ef)
            if sel is not None:
                params.sel = sel
            scores, ids = self.ann.search(query, fetch, params=params)
        keep = ids[0] >= 0
        scores, ids = scores[0][keep], ids[0][keep]
        if compressed and len(ids):
            scores = self.master.reconstruct_batch(ids) @ query[0]
            order = np.argsort(-scores, kind="stable")[:want]
            scores, ids = scores[order], ids[order]
        return scores, ids

    def _stale_sel(self) -> Any:
        if not self.stale:
            return None
        if self._stale_selector is None:
            inner = Selector(np.fromiter(self.stale, dtype=np.int64, count=len(self.stale)))
            self._stale_selector = (inner, faiss.IDSelectorNot(inner.sel))
        return self._stale_selector[1]

    def _on_gpu(self, kind: str) -> bool:
        return not self._gpu_failed and search_on_gpu(kind, num_gpus(), filtered=False)

    def _target(self, kind: str, cpu_index: Any) -> Any:
        """The index an unfiltered search of ``kind`` runs on: a GPU copy when possible."""
        if not self._on_gpu(kind):
            return cpu_index
        if kind not in self._gpu:
            try:
                self._gpu[kind] = faiss.index_cpu_to_all_gpus(cpu_index)
            except (RuntimeError, AttributeError) as exc:
                logger.warning(
                    "Cannot copy the %s index to the GPU (%s); searching on CPU", kind, exc
                )
                self._gpu_failed = True
                return cpu_index
        return self._gpu[kind]

    # -- persistence ---------------------------------------------------------------------------

    def write(self, folder: Path, vectors_file: str) -> tuple[dict[str, Any], list[str]]:
        """Write the master (and ANN index) into ``folder``; the manifest section and files."""
        faiss.write_index(self.master, str(folder / vectors_file))
        files = [vectors_file]
        section: dict[str, Any] = {"type": "flat", "spec": self.spec.to_dict(), "file": None}
        if self.ann is not None and self.built is not None:
            faiss.write_index(self.ann, str(folder / ANN_FILE))
            files.append(ANN_FILE)
            section.update(
                type=self.built.kind,
                compression=self.built.compression,
                factory=self.built.factory,
                trained_on=self.built.trained_on,
                file=ANN_FILE,
                entries=int(self.ann.ntotal),
            )
        return section, files

    @classmethod
    def restore(
        cls, master: Any, folder: Path, section: dict[str, Any] | None, spec: IndexSpec | None
    ) -> VectorIndex:
        """A VectorIndex over a loaded master, with the ANN index saved next to it.

        ``spec`` None: the spec saved with it. The ANN index is derived data: if it is missing,
        unreadable or disagrees with the master, a warning is logged and searches are exact
        until the next rebuild (the master is already checked against the passages).
        """
        section = section or {}
        if spec is None:
            try:
                spec = IndexSpec.from_dict(section.get("spec"))
            except (TypeError, ValueError) as exc:
                logger.warning("%s: invalid saved index settings (%s); using defaults", folder, exc)
                spec = IndexSpec()
        index = cls(int(master.d), spec, master)
        name = section.get("file")
        if name:
            try:
                index._load_ann(folder / str(name), section)
            except (RuntimeError, ValueError, OSError, KeyError) as exc:
                logger.warning("%s: %s; searching exactly until the next rebuild", folder, exc)
                index._drop_ann()
        index._configure()
        return index

    def _load_ann(self, path: Path, section: dict[str, Any]) -> None:
        kind = section["type"]
        ann = faiss.read_index(str(path))
        if ann.d != self.dim or ann.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"{path.name} is not an inner-product index of dim {self.dim}")
        if kind == "ivf" and not isinstance(ann, faiss.IndexIVF):
            raise ValueError(f"{path.name} is not an IVF index")
        if kind == "hnsw" and not isinstance(ann, faiss.IndexIDMap2):
            raise ValueError(f"{path.name} is not an IDMap2 over HNSW")
        entries = np.unique(ann_ids(ann))
        master = np.unique(self.ids())
        if len(entries) != ann.ntotal or len(np.setdiff1d(master, entries)):
            raise ValueError(f"{path.name} does not hold every vector of the master")
        stale = np.setdiff1d(entries, master)
        if len(stale) and kind != "hnsw":
            raise ValueError(f"{path.name} holds {len(stale)} vectors the master does not")
        self.ann = ann
        self.built = BuildInfo(
            kind, str(section.get("compression", "none")), str(section.get("factory", "")),
            int(section.get("trained_on", ann.ntotal)),
        )  # fmt: skip
        self.stale = set(stale.tolist())
