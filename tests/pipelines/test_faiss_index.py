"""Tests of pipelines.faiss_index and of the store on IVF/HNSW indexes (real FAISS, small sizes)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.types import DuplicatePolicy

from pipelines import faiss_index
from pipelines.faiss_index import (
    ANN_FILE,
    IndexSpec,
    VectorIndex,
    choose_kind,
    factory_string,
    nlist_for,
    pq_shape,
    search_on_gpu,
)
from pipelines.settings import Settings
from pipelines.store import PassageStore

DIM = 32
N = 3000
ANN_SPECS = {
    "ivf": IndexSpec(index_type="ivf"),
    "hnsw": IndexSpec(index_type="hnsw"),
    "ivf-sq8": IndexSpec(index_type="ivf", compression="sq8"),
    "hnsw-sq8": IndexSpec(index_type="hnsw", compression="sq8"),
    "ivf-pq": IndexSpec(index_type="ivf", compression="pq"),
}
ALL_SPECS = {"flat": IndexSpec(index_type="flat"), **ANN_SPECS}


def clustered(n: int, seed: int = 0, clusters: int = 30) -> np.ndarray:
    """Unit vectors from a Gaussian mixture: what IVF/HNSW recall is meant to be measured on."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = centers[rng.integers(clusters, size=n)] + 0.12 * rng.standard_normal((n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread() -> Iterator[None]:
    """Small searches gain nothing from threads; OpenMP spinning costs much on a busy machine."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


DATA = clustered(N)
QUERIES = clustered(40, seed=1)


def exact_top(query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[int]:
    rows = np.arange(N) if rows is None else rows
    scores = DATA[rows] @ query
    return rows[np.argsort(-scores, kind="stable")[:k]].tolist()


def built(spec: IndexSpec) -> VectorIndex:
    index = VectorIndex(DIM, spec)
    index.update(np.zeros(0, dtype=np.int64), DATA, np.arange(N))
    index.maintain()
    return index


def recall(got: list[int], want: list[int]) -> float:
    return len(set(got) & set(want)) / len(want)


# -- decisions ------------------------------------------------------------------------------------


def test_choose_kind_by_size_with_override_and_hysteresis() -> None:
    auto = IndexSpec()
    assert [choose_kind(n, auto) for n in (0, 999, 49_999, 50_000, 2_000_000)] == [
        "flat", "flat", "flat", "ivf", "ivf",
    ]  # fmt: skip
    # An IVF collection that shrinks stays IVF down to half of the threshold.
    assert choose_kind(30_000, auto, current="ivf") == "ivf"
    assert choose_kind(24_999, auto, current="ivf") == "flat"
    for forced in ("flat", "ivf", "hnsw"):
        assert choose_kind(5_000, IndexSpec(index_type=forced)) == forced
        # Tiny collections are always searched exactly.
        assert choose_kind(500, IndexSpec(index_type=forced)) == "flat"
    assert choose_kind(2_000, IndexSpec(flat_max=1_500)) == "ivf"


def test_factory_strings_and_sizes() -> None:
    assert nlist_for(1_000_000) == 4000
    assert nlist_for(100_000) == 1265
    assert nlist_for(3_000) == 3_000 // 39  # capped: 39 training points per list
    assert pq_shape(384, 256_000) == (48, 8)
    assert pq_shape(DIM, 3_000) == (4, 6)
    assert factory_string("ivf", "none", 384, 1_000_000) == "IVF4000,Flat"
    assert factory_string("ivf", "sq8", 384, 1_000_000) == "IVF4000,SQ8"
    assert factory_string("ivf", "pq", 384, 1_000_000) == "IVF4000,PQ48x8"
    assert factory_string("hnsw", "none", 384, 10) == "IDMap2,HNSW32,Flat"
    with pytest.raises(ValueError):
        factory_string("flat", "none", 384, 10)


def test_gpu_placement() -> None:
    for kind in ("flat", "ivf", "hnsw"):
        for filtered in (False, True):
            assert not search_on_gpu(kind, num_gpus=0, filtered=filtered)
    assert search_on_gpu("flat", 1, filtered=False) and search_on_gpu("ivf", 2, filtered=False)
    assert not search_on_gpu("ivf", 1, filtered=True)  # GPU indexes ignore IDSelectors
    assert not search_on_gpu("hnsw", 1, filtered=False)  # no GPU HNSW in faiss


def test_failed_gpu_copy_falls_back_to_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = built(ANN_SPECS["ivf"])
    assert faiss_index.num_gpus() == 0  # faiss-cpu here: the real path never copies
    monkeypatch.setattr(faiss_index, "num_gpus", lambda: 1)

    def no_gpu(_index: object) -> None:
        raise AttributeError("no GPU support in this faiss build")

    monkeypatch.setattr(faiss_index.faiss, "index_cpu_to_all_gpus", no_gpu)
    with caplog.at_level(logging.WARNING):
        _, ids = index.search(QUERIES[0], 10)
    assert "searching on CPU" in caplog.text
    assert recall(ids.tolist(), exact_top(QUERIES[0], 10)) >= 0.8
    index.search(QUERIES[1], 10)  # no second attempt
    assert caplog.text.count("searching on CPU") == 1


def test_spec_validation_and_settings() -> None:
    with pytest.raises(ValueError, match="index_type"):
        IndexSpec(index_type="annoy")
    with pytest.raises(ValueError, match="compression"):
        IndexSpec(compression="pq4")
    with pytest.raises(ValueError, match="pq"):
        IndexSpec(index_type="hnsw", compression="pq")
    settings = Settings(index_type="hnsw", index_compression="sq8", nprobe=8, ef_search=64)
    assert IndexSpec.from_settings(settings) == IndexSpec(
        index_type="hnsw", compression="sq8", nprobe=8, ef_search=64
    )
    assert IndexSpec.from_dict(IndexSpec(nprobe=3).to_dict() | {"unknown": 1}).nprobe == 3


# -- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ANN_SPECS))
def test_ann_recall_and_exact_scores(name: str) -> None:
    index = built(ANN_SPECS[name])
    assert index.kind == ANN_SPECS[name].index_type
    assert index.ann is not None
    recalls = []
    for query in QUERIES:
        scores, ids = index.search(query, 10)
        assert len(ids) == 10
        # Scores are true inner products, also for compressed codes (re-scored on the master).
        np.testing.assert_allclose(scores, DATA[ids] @ query, rtol=1e-5, atol=1e-6)
        assert list(scores) == sorted(scores, reverse=True)
        recalls.append(recall(ids.tolist(), exact_top(query, 10)))
    assert np.mean(recalls) >= 0.9, (name, np.mean(recalls))


@pytest.mark.parametrize("name", list(ALL_SPECS))
def test_one_percent_filter_returns_its_exact_top_10(name: str) -> None:
    """30 of 3,000 vectors pass the filter: searched exactly, their true top 10 comes back."""
    index = built(ALL_SPECS[name])
    rows = np.random.default_rng(2).choice(N, size=N // 100, replace=False)
    for query in QUERIES[:10]:
        scores, ids = index.search(query, 10, allowed=rows)
        assert ids.tolist() == exact_top(query, 10, rows)
        np.testing.assert_allclose(scores, DATA[ids] @ query, rtol=1e-5, atol=1e-6)
    # Fewer matches than k: all of them.
    assert sorted(index.search(QUERIES[0], 10, allowed=rows[:3])[1].tolist()) == sorted(rows[:3])


@pytest.mark.parametrize("name", list(ANN_SPECS))
@pytest.mark.parametrize("fraction", [0.01, 0.2])
def test_filter_inside_the_ann_search_returns_full_top_k(
    name: str, fraction: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the exact path switched off, the selector inside IVF/HNSW still fills the top 10."""
    index = built(ANN_SPECS[name])
    index.set_spec(IndexSpec(**{**ANN_SPECS[name].to_dict(), "exact_filter_max": 0.0}))
    fallbacks = []
    original = index._exact_search
    monkeypatch.setattr(index, "_exact_search", lambda *a: fallbacks.append(1) or original(*a))
    rows = np.random.default_rng(3).choice(N, size=int(N * fraction), replace=False)
    recalls = []
    for query in QUERIES[:10]:
        _, ids = index.search(query, 10, allowed=rows)
        assert len(ids) == 10 and set(ids.tolist()) <= set(rows.tolist())
        recalls.append(recall(ids.tolist(), exact_top(query, 10, rows)))
    assert np.mean(recalls) >= 0.9, np.mean(recalls)
    assert len(fallbacks) <= 1  # the ANN search answered (almost) every time


def test_short_ann_result_falls_back_to_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    index = built(IndexSpec(index_type="ivf", exact_filter_max=0.0))
    rows = np.random.default_rng(4).choice(N, size=N // 100, replace=False)
    short = (np.ones(3, dtype=np.float32), rows[:3])
    monkeypatch.setattr(index, "_ann_search", lambda *_: short)
    _, ids = index.search(QUERIES[0], 10, allowed=rows)
    assert ids.tolist() == exact_top(QUERIES[0], 10, rows)


# -- writes, rebuilds ------------------------------------------------------------------------------


def test_hnsw_removals_become_stale_entries_until_rebuilt() -> None:
    index = built(ANN_SPECS["hnsw"])
    removed = np.arange(0, 200)
    index.update(removed, None, np.zeros(0, dtype=np.int64))
    assert index.ntotal == N - 200 and index.ann.ntotal == N and len(index.stale) == 200
    for query in DATA[:20]:  # each removed vector would otherwise be its own best hit
        _, ids = index.search(query, 10)
        assert len(ids) == 10 and not set(ids.tolist()) & set(removed.tolist())
    assert index.rebuild_reason() is None  # 200 of 3000: under 10%
    index.update(np.arange(200, 400), None, np.zeros(0, dtype=np.int64))
    assert "rebuild" in (index.rebuild_reason() or "")
    assert index.maintain()
    assert index.ann.ntotal == index.ntotal == N - 400 and not index.stale


def test_ivf_is_retrained_when_the_collection_doubles() -> None:
    spec = IndexSpec(flat_max=1_500)
    index = VectorIndex(DIM, spec)
    index.update(np.zeros(0, dtype=np.int64), DATA[:1_200], np.arange(1_200))
    assert not index.maintain() and index.kind == "flat"  # under flat_max
    index.update(np.zeros(0, dtype=np.int64), DATA[1_200:1_600], np.arange(1_200, 1_600))
    assert index.maintain() and index.kind == "ivf" and index.built.trained_on == 1_600
    index.update(np.zeros(0, dtype=np.int64), DATA[1_600:], np.arange(1_600, N))
    assert index.ann.ntotal == N  # added to the IVF lists as they come
    assert index.rebuild_reason() is None and not index.maintain()  # 3,000 < 2 x 1,600
    index.update(np.zeros(0, dtype=np.int64), DATA[:200], np.arange(N, N + 200))
    assert "retrain" in (index.rebuild_reason() or "")
    assert index.maintain() and index.built.trained_on == N + 200
    assert index.built.factory == f"IVF{nlist_for(N + 200)},Flat"
    # Shrinking below half of flat_max goes back to exact search.
    index.update(np.arange(0, N), None, np.zeros(0, dtype=np.int64))
    assert index.maintain() and index.kind == "flat" and index.ann is None


class _BrokenANN:
    ntotal = N

    def remove_ids(self, _ids: object) -> None:
        raise RuntimeError("out of memory")

    add_with_ids = remove_ids


def test_failing_ann_update_is_dropped_and_master_stays_right(
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = built(ANN_SPECS["ivf"])
    index.ann = _BrokenANN()
    with caplog.at_level(logging.ERROR):
        index.update(np.arange(10), DATA[:10], np.arange(N, N + 10))
    assert "ANN index update failed" in caplog.text
    assert index.ann is None and index.kind == "flat" and index.ntotal == N
    _, ids = index.search(DATA[0], 1)
    assert ids.tolist() == [N]


# -- through the store -----------------------------------------------------------------------------


def documents(start: int, stop: int, vectors: np.ndarray) -> list[Document]:
    return [
        Document(
            id=f"p{i:05d}",
            content=f"passage {i}",
            embedding=vectors[i - start].tolist(),
            meta={"doc_id": f"d{i // 10}", "file_type": "docx" if i % 100 == 7 else "pdf"},
        )
        for i in range(start, stop)
    ]


def filled_store(spec: IndexSpec) -> PassageStore:
    store = PassageStore(embedding_dim=DIM, index=spec)
    store.write_documents(documents(0, N, DATA))
    store.rebuild_index()
    return store


def retrieval(store: PassageStore, query: np.ndarray, filters: dict | None = None) -> list:
    return [(d.id, d.score) for d in store.embedding_retrieval(query, top_k=10, filters=filters)]


DOCX = {"field": "meta.file_type", "operator": "==", "value": "docx"}


@pytest.mark.parametrize("name", ["flat", "ivf", "hnsw", "ivf-sq8"])
def test_store_delete_replace_save_load_on_each_type(name: str, tmp_path: Path) -> None:
    store = filled_store(ALL_SPECS[name])
    assert store.index_info()["kind"] == ALL_SPECS[name].index_type
    # Delete 100 passages, replace 50 with new vectors (a new FAISS id each).
    store.delete_documents([f"p{i:05d}" for i in range(100)])
    new_vectors = clustered(50, seed=7)
    replaced = documents(100, 150, new_vectors)
    store.write_documents(replaced, policy=DuplicatePolicy.OVERWRITE)
    assert store.count_documents() == store.count_vectors() == N - 100
    # p00149 now has the largest FAISS id; deleted, it may only live on as a stale HNSW entry.
    store.delete_documents(["p00149"])
    for i in (0, 50, 99):  # a deleted passage's own vector does not find it any more
        assert f"p{i:05d}" not in [d for d, _ in retrieval(store, DATA[i])]
    for j in (0, 25, 48):  # a replaced passage is found by its new vector
        assert retrieval(store, new_vectors[j])[0][0] == f"p{100 + j:05d}"
    filtered = store.embedding_retrieval(DATA[7], top_k=10, filters=DOCX)
    assert len(filtered) == 10 and all(d.meta["file_type"] == "docx" for d in filtered)
    info = store.index_info()

    store.save(tmp_path)
    folder = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["index"]["type"] == ALL_SPECS[name].index_type
    assert (folder / ANN_FILE).exists() == (name != "flat")
    loaded = PassageStore.load(tmp_path)
    assert loaded.index_info() == store.index_info() == info
    assert loaded.index_spec == ALL_SPECS[name]
    for query in QUERIES[:5]:
        assert retrieval(loaded, query) == retrieval(store, query)
        assert retrieval(loaded, query, DOCX) == retrieval(store, query, DOCX)

    # Writing after the reload never reuses an id (stale HNSW entries hold removed ones).
    loaded.write_documents(documents(N, N + 1, new_vectors[49:]))
    assert retrieval(loaded, new_vectors[49])[0][0] == f"p{N:05d}"
    assert loaded.count_documents() == loaded.count_vectors() == N - 100
    loaded.save(tmp_path)
    assert PassageStore.load(tmp_path).count_vectors() == N - 100


def test_store_auto_switches_to_ivf_at_save(tmp_path: Path) -> None:
    store = PassageStore(embedding_dim=DIM, index=IndexSpec(flat_max=2_000))
    store.write_documents(documents(0, 1_500, DATA[:1_500]))
    store.save(tmp_path)
    assert store.index_info()["kind"] == "flat"
    assert not any(tmp_path.glob(f"v-*/{ANN_FILE}"))
    store.write_documents(documents(1_500, N, DATA[1_500:]))
    assert store.index_info()["kind"] == "flat"  # until the next save
    store.save(tmp_path)
    assert store.index_info() | {"factory": None, "spec": None} == {
        "kind": "ivf", "factory": None, "vectors": N, "stale": 0, "trained_on": N, "spec": None,
    }  # fmt: skip
    loaded = PassageStore.load(tmp_path)
    assert loaded.index_info()["kind"] == "ivf"
    # A new spec given at load applies at the next save.
    flat = PassageStore.load(tmp_path, IndexSpec(index_type="flat"))
    assert flat.index_info()["kind"] == "ivf"
    flat.save(tmp_path)
    assert PassageStore.load(tmp_path).index_info()["kind"] == "flat"


def test_lost_or_broken_ann_file_falls_back_to_exact_search(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = filled_store(ANN_SPECS["ivf"])
    store.save(tmp_path)
    folder = next(tmp_path.glob("v-*"))
    (folder / ANN_FILE).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        loaded = PassageStore.load(tmp_path)
    assert "searching exactly" in caplog.text
    assert loaded.index_info()["kind"] == "flat"
    assert [d for d, _ in retrieval(loaded, QUERIES[0])] == [
        f"p{i:05d}" for i in exact_top(QUERIES[0], 10)
    ]
    loaded.save(tmp_path)  # the next save rebuilds it
    assert PassageStore.load(tmp_path).index_info()["kind"] == "ivf"

    # An ANN file that misses vectors of the master is not used either.
    other = filled_store(ANN_SPECS["ivf"])
    other.delete_documents(["p00001"])
    other.save(tmp_path / "other")
    folder = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    (folder / ANN_FILE).write_bytes(next((tmp_path / "other").glob(f"v-*/{ANN_FILE}")).read_bytes())
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert PassageStore.load(tmp_path).index_info()["kind"] == "flat"
    assert "does not hold every vector" in caplog.text
