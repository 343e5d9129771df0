"""Scale benchmark of the passage index: flat vs IVF vs HNSW from 100k to 1M passages.

For each size and index configuration it measures, through :class:`pipelines.store.PassageStore`
(SQLite passages + FAISS vectors, as DocQA runs them): ingest and index build time, peak memory,
size on disk after ``save``, load time, query latency p50/p95, recall@10 against exact search, and
whether a filter matching 1% of the passages returns its full top 10.

The embeddings are SYNTHETIC: 384-d unit vectors drawn from a Gaussian mixture (one cluster per
~1,000 passages, cosine to the cluster centre ≈ 0.6), so that IVF/HNSW recall is what clustered
real embeddings give, not the pessimistic figure of uniform noise. Queries come from the same
mixture. Passage texts are short ("passage 123"), so SQLite holds little more than metadata.

Each configuration is built in one child process and loaded and queried in another, so that
memory figures do not mix: "peak" is the process's high-water resident set (VmHWM from
/proc/self/status on Linux, reset before the phase; ru_maxrss elsewhere) minus its resident set
before the phase, i.e. what building (or loading) the index added, including temporary buffers.

    python benchmarks/bench_scale.py                      # 100k and 1M (long: HNSW at 1M)
    python benchmarks/bench_scale.py --sizes 20000        # a quick run
    python benchmarks/bench_scale.py --faiss-only         # skip SQLite: faiss.write_index

Prints a table and writes benchmarks/results/scale.json (with the hardware and versions).
The functions :func:`make_dataset`, :func:`ground_truth`, :func:`build_and_save` and
:func:`load_and_query` take plain arrays, for comparisons with other stores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from bench_env import REPO_ROOT, write_result

from pipelines.faiss_index import IndexSpec, VectorIndex
from pipelines.store import VECTORS_FILE, PassageStore, current_folder

DIM = 384
K = 10
RARE_FRACTION = 0.01
CONFIGS: dict[str, IndexSpec] = {
    "flat": IndexSpec(index_type="flat"),
    "ivf": IndexSpec(index_type="ivf"),
    "hnsw": IndexSpec(index_type="hnsw"),
    "ivf-sq8": IndexSpec(index_type="ivf", compression="sq8"),
    "ivf-pq": IndexSpec(index_type="ivf", compression="pq"),
    "hnsw-sq8": IndexSpec(index_type="hnsw", compression="sq8"),
}
RARE_FILTER = {"field": "meta.file_type", "operator": "==", "value": "docx"}
INGEST_BATCH = 10_000


# -- data -----------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Synthetic passages: unit vectors, queries, and the rows the 1% filter selects."""

    vectors: np.ndarray  # (n, dim) float32, L2-normalized
    queries: np.ndarray  # (q, dim) float32, L2-normalized
    rare: np.ndarray  # sorted row numbers with file_type "docx" (1%); the others are "pdf"


def _mixture(rng: np.random.Generator, centers: np.ndarray, n: int, noise: float) -> np.ndarray:
    out = np.empty((n, centers.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: bounded temporaries at 1M
        m = min(100_000, n - start)
        block = centers[rng.integers(len(centers), size=m)]
        block += noise * rng.standard_normal(block.shape, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def make_dataset(n: int, queries: int = 200, dim: int = DIM, seed: int = 0) -> Dataset:
    """A Gaussian mixture of ``max(64, n // 1000)`` clusters on the unit sphere (deterministic)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(64, n // 1000), dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    # Noise of norm ≈ 1.33: a passage's cosine to its cluster centre is about 0.6.
    noise = 1.33 / np.sqrt(dim)
    vectors = _mixture(rng, centers, n, noise)
    query_vectors = _mixture(rng, centers, queries, noise)
    rare = np.sort(rng.choice(n, size=max(K, round(n * RARE_FRACTION)), replace=False))
    return Dataset(vectors, query_vectors, rare)


def passage_rows(n: int, rare: np.ndarray) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, content, meta) of each synthetic passage, in row order."""
    is_rare = np.zeros(n, dtype=bool)
    is_rare[rare] = True
    for i in range(n):
        meta = {"doc_id": f"doc{i // 20:06d}", "file_type": "docx" if is_rare[i] else "pdf"}
        yield f"p{i:08d}", f"passage {i}", meta


def ground_truth(
    vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Row numbers of the exact top-K by inner product (within ``rows`` if given)."""
    base = vectors if rows is None else vectors[rows]
    _, found = faiss.knn(queries, base, K, metric=faiss.METRIC_INNER_PRODUCT)
    return found if rows is None else rows[found]


def recall_at_k(found: list[list[int]], truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
    )


# -- measuring ------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else float("nan")


def reset_peak() -> bool:
    """Reset the high-water RSS (Linux >= 4.0); whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mib() -> float:
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    return kib / 1024


class Phase:
    """Wall time and added peak memory of a block of code (phases must not nest)."""

    def __enter__(self) -> Phase:
        self.reset = reset_peak()
        self.rss_before = rss_mib()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.peak = peak_mib()  # since the reset, if it worked; else of the whole process
        self.peak_added_mib = self.peak - self.rss_before
        self.rss_after = rss_mib()


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(values), 3),
        "p95_ms": round(1000 * float(np.percentile(values, 95)), 3),
    }


def _disk(folder: Path) -> dict[str, int]:
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return {**sizes, "total": sum(sizes.values())}


def _timed(search: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple[list, list]:
    for query in queries[:5]:  # warm-up
        search(query)
    found, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(search(query))
        seconds.append(time.perf_counter() - started)
    return found, seconds


def build_and_save(
    vectors: np.ndarray, rare: np.ndarray, spec: IndexSpec, folder: Path, faiss_only: bool = False
) -> dict[str, Any]:
    """Ingest ``vectors`` (passage metadata from :func:`passage_rows`), build the index, save.

    Through PassageStore (``write_documents`` in batches, ``rebuild_index``, ``save``), or with
    ``faiss_only`` through VectorIndex and faiss.write_index alone. Returns the measurements.
    """
    from haystack import Document

    n = len(vectors)
    ids = np.arange(n, dtype=np.int64)
    result: dict[str, Any] = {"through": "faiss.write_index" if faiss_only else "PassageStore"}
    rss_before = rss_mib()
    if faiss_only:
        index = VectorIndex(vectors.shape[1], spec)
        with Phase() as ingest:
            index.update(np.zeros(0, dtype=np.int64), vectors, ids)
        with Phase() as build:
            index.maintain(force=True)
        info = index.describe()
        with Phase() as save:
            folder.mkdir(parents=True)
            section, _ = index.write(folder, VECTORS_FILE)
            (folder / "index.json").write_text(json.dumps(section))
    else:
        store = PassageStore(embedding_dim=vectors.shape[1], index=spec)
        rows = passage_rows(n, rare)
        with Phase() as ingest:
            for start in range(0, n, INGEST_BATCH):
                batch = []
                for i in range(start, min(n, start + INGEST_BATCH)):
                    doc_id, content, meta = next(rows)
                    batch.append(
                        Document(id=doc_id, content=content, meta=meta,
                                 embedding=vectors[i].tolist())
                    )  # fmt: skip
                store.write_documents(batch)
        with Phase() as build:
            store.rebuild_index(force=True)
        info = store.index_info()
        with Phase() as save:
            store.save(folder)
        folder = current_folder(folder)
    result.update(
        index=info,
        ingest_s=round(ingest.seconds, 2),
        build_s=round(build.seconds, 2),
        save_s=round(save.seconds, 2),
        ingest_peak_added_mib=round(ingest.peak_added_mib, 1),
        build_peak_added_mib=round(build.peak_added_mib, 1),
        peak_added_mib=round(max(p.peak for p in (ingest, build, save)) - rss_before, 1),
        rss_after_mib=round(save.rss_after, 1),
        peak_reset=save.reset,
        disk_bytes=_disk(folder),
    )
    return result


def load_and_query(
    folder: Path,
    queries: np.ndarray,
    truth: np.ndarray,
    rare: np.ndarray,
    rare_truth: np.ndarray,
    faiss_only: bool = False,
) -> dict[str, Any]:
    """Load what :func:`build_and_save` wrote; latency and recall of plain and 1%-filtered search.

    ``truth``/``rare_truth``: exact top-K row numbers (row i is passage ``p{i:08d}``, FAISS id i),
    of all passages and of the ``rare`` rows the 1% filter selects.
    """
    with Phase() as load:
        if faiss_only:
            master = faiss.read_index(str(folder / VECTORS_FILE))
            section = json.loads((folder / "index.json").read_text())
            index = VectorIndex.restore(master, folder, section, None)
        else:
            store = PassageStore.load(folder)
            index = store._vectors
    result: dict[str, Any] = {
        "load_s": round(load.seconds, 2),
        "load_peak_added_mib": round(load.peak_added_mib, 1),
        "loaded_rss_mib": round(load.rss_after, 1),
    }
    found, seconds = _timed(lambda q: index.search(q, K)[1].tolist(), queries)
    result["search"] = {**_ms(seconds), "recall_at_10": round(recall_at_k(found, truth), 4)}

    def rows(documents: list[Any]) -> list[int]:
        return [int(d.id[1:]) for d in documents]

    if faiss_only:  # the filter's ids given directly (no SQL)
        found, seconds = _timed(lambda q: index.search(q, K, allowed=rare)[1].tolist(), queries)
    else:
        found, seconds = _timed(lambda q: rows(store.embedding_retrieval(q, top_k=K)), queries)
        # End to end: SQLite fetch of the 10 passages and Haystack Documents included.
        result["retrieval"] = {
            **_ms(seconds), "recall_at_10": round(recall_at_k(found, truth), 4)
        }  # fmt: skip
        found, seconds = _timed(
            lambda q: rows(store.embedding_retrieval(q, top_k=K, filters=RARE_FILTER)), queries
        )
    result["filtered_1pct"] = {
        **_ms(seconds),
        "recall_at_10": round(recall_at_k(found, rare_truth), 4),
        "full_top_10": all(len(f) == K for f in found),
        "min_results": min(len(f) for f in found),
    }
    return result


# -- one configuration, in child processes --------------------------------------------------------


def _build_child(
    n: int, name: str, workdir: str, queries: int, faiss_only: bool, threads: int | None
) -> dict:
    if threads:
        faiss.omp_set_num_threads(threads)
    work = Path(workdir)
    data = make_dataset(n, queries=queries)
    truth_file = work / "truth.npz"
    if not truth_file.exists():
        np.savez(
            truth_file,
            queries=data.queries,
            truth=ground_truth(data.vectors, data.queries),
            rare=data.rare,
            rare_truth=ground_truth(data.vectors, data.queries, data.rare),
        )
    return build_and_save(data.vectors, data.rare, CONFIGS[name], work / name, faiss_only)


def _query_child(name: str, workdir: str, faiss_only: bool, threads: int | None) -> dict:
    if threads:
        faiss.omp_set_num_threads(threads)
    work = Path(workdir)
    saved = np.load(work / "truth.npz")
    return load_and_query(
        work / name, saved["queries"], saved["truth"], saved["rare"], saved["rare_truth"],
        faiss_only,
    )  # fmt: skip


def _in_child(func: Callable[..., dict], *args: Any) -> dict:
    context = multiprocessing.get_context("spawn")  # a fresh process: clean memory figures
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(func, *args).result()


def run_config(
    n: int, name: str, workdir: Path, queries: int, faiss_only: bool, threads: int | None = None
) -> dict:
    """Build and save configuration ``name`` over ``n`` passages, then load and query it."""
    started = time.perf_counter()
    built = _in_child(_build_child, n, name, str(workdir), queries, faiss_only, threads)
    queried = _in_child(_query_child, name, str(workdir), faiss_only, threads)
    shutil.rmtree(workdir / name, ignore_errors=True)
    return {
        "passages": n, "config": name, "spec": CONFIGS[name].to_dict(), **built, **queried,
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip


# -- report ---------------------------------------------------------------------------------------


def hardware() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "faiss_threads": faiss.omp_get_max_threads(),
        "gpus": faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0,
        # Other load on the machine skews latencies: compare runs with a low load average.
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


COLUMNS = [
    ("N", lambda r: f"{r['passages']:,}"),
    ("config", lambda r: r["config"]),
    ("index", lambda r: r["index"]["factory"]),
    ("ingest s", lambda r: r["ingest_s"]),
    ("build s", lambda r: r["build_s"]),
    ("build MiB", lambda r: r["peak_added_mib"]),
    ("save s", lambda r: r["save_s"]),
    ("disk MiB", lambda r: round(r["disk_bytes"]["total"] / 2**20, 1)),
    ("load s", lambda r: r["load_s"]),
    ("loaded MiB", lambda r: r["load_peak_added_mib"]),
    ("p50 ms", lambda r: r["search"]["p50_ms"]),
    ("p95 ms", lambda r: r["search"]["p95_ms"]),
    ("R@10", lambda r: r["search"]["recall_at_10"]),
    ("1% p50 ms", lambda r: r["filtered_1pct"].get("p50_ms", "-")),
    ("1% full", lambda r: r["filtered_1pct"].get("full_top_10", "-")),
    ("1% R@10", lambda r: r["filtered_1pct"].get("recall_at_10", "-")),
]


def table(rows: list[dict]) -> str:
    cells = [[str(get(r)) for _, get in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _) in enumerate(COLUMNS)]
    lines = ["  ".join(h.rjust(w) for (h, _), w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def default_configs(n: int) -> list[str]:
    # HNSW last: at 1M it is by far the longest build, and results are written config by config.
    return ["flat", "ivf"] + (["ivf-sq8"] if n >= 1_000_000 else []) + ["hnsw"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--configs", nargs="+", choices=list(CONFIGS), default=None,
        help="default: flat ivf hnsw, plus ivf-sq8 from 1M passages",
    )  # fmt: skip
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--faiss-only", action="store_true", help="skip SQLite (PassageStore)")
    parser.add_argument(
        "--threads", type=int, default=None, help="faiss OpenMP threads (default: all cores)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "scale.json"
    )
    args = parser.parse_args()

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    result: dict[str, Any] = {
        "hardware": hardware(),
        "data": (
            f"SYNTHETIC {DIM}-d unit vectors from a Gaussian mixture (max(64, N/1000) clusters, "
            "cosine to centre ~0.6); queries from the same mixture; 1% of passages have "
            "file_type 'docx' (the filtered query). Not real embeddings."
        ),
        "memory": (
            "build MiB: peak resident set added by ingest + index build + save (VmHWM, reset "
            "before, minus the RSS before; the input vectors are not counted); loaded MiB: the "
            "same for PassageStore.load in a fresh process, i.e. the serving footprint"
        ),
        "through": "faiss.write_index" if args.faiss_only else "PassageStore (SQLite + FAISS)",
        "runs": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.sizes:
            work = Path(tmp) / str(n)
            work.mkdir()
            for name in args.configs or default_configs(n):
                print(f"N={n:,} {name} ...", flush=True)
                run = run_config(n, name, work, args.queries, args.faiss_only, args.threads)
                result["runs"].append(run)
                write_result(args.out, result)
            shutil.rmtree(work, ignore_errors=True)
    print(result["data"])
    print(f"memory: {result['memory']}")
    print(table(result["runs"]))


if __name__ == "__main__":
    main()
