"""Indexing throughput: the local engine against the Ray engine with 1 and 2 embedder actors.

On a temporary copy of the demo collection (``--copies N``: N copies side by side, for a larger
set), each engine indexes it from scratch into its own home, one after the other in one
process: the local engine (convert, split and embed in this process), then the Ray engine
(Ray Data stages on one local Ray instance) with each number of embedder actors. Throughput is
passages embedded per wall second of the whole run: conversion, the actors' start and model
loading, embedding and writing the index. The Ray instance's own start is reported apart (a
cluster usually runs already). Each Ray index is checked against the local one: the same
passages in the same order, embeddings within 1e-4.

Prints a table and writes JSON (default benchmarks/results/ray_index.json) with the environment
and ``readme_rows``. Not a test: numbers depend on the machine and its load (other jobs slow
every engine down); compare runs on the same machine only.

    python benchmarks/bench_ray_index.py [--copies 1] [--actors 1 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from bench_env import write_result

from evaluation.environment import cpu_description, environment
from indexer.ray_engine import plan_pool, ray_connection
from indexer.run import index_folder
from pipelines.operations.ray_cluster import available_cpus
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings
from pipelines.store import PassageStore


def index_once(docs: Path, home: Path, engine: str, actors: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    summary = index_folder(
        [docs], Settings(home=home), progress=False, engine=engine, actors=actors
    )
    wall = time.perf_counter() - started
    assert not summary.failed, summary.failed
    return {
        "engine": engine,
        "actors": actors,
        "files": summary.added,
        "passages": summary.passages,
        "wall_s": round(wall, 2),
        "passages_per_s": round(summary.passages / wall, 2),
    }


def compare(home: Path, reference: Path) -> dict[str, Any]:
    """How an index differs from the reference (the local engine's)."""
    got = PassageStore.load(home / "index").filter_documents()
    want = PassageStore.load(reference / "index").filter_documents()
    same = [(d.id, d.content, d.meta) for d in got] == [(d.id, d.content, d.meta) for d in want]
    diff = float(
        np.abs(np.asarray([d.embedding for d in got]) - np.asarray([d.embedding for d in want]))
        .max(initial=0.0)
    ) if same else None  # fmt: skip
    return {"same_passages_as_local": same, "max_embedding_diff_vs_local": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1, help="Copies of the demo collection.")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "ray_index.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    env = environment()
    env["packages"]["ray"] = version("ray")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "documents"
        for copy in range(args.copies):
            shutil.copytree(DEMO_COLLECTION, docs / f"copy{copy}")
        for path in docs.rglob("*"):  # into the OS file cache before any engine reads them
            if path.is_file():
                path.read_bytes()
        local_home = Path(tmp) / "local"
        runs.append(index_once(docs, local_home, "local"))
        ray_started = time.perf_counter()
        with ray_connection() as ray:  # a local instance, as `docqa index --engine ray` starts
            ray_start_s = round(time.perf_counter() - ray_started, 2)
            resources = ray.cluster_resources()
            for actors in args.actors:
                home = Path(tmp) / f"ray-{actors}"
                row = index_once(docs, home, "ray", actors)
                pool = plan_pool(resources, actors)
                row.update(device=pool.device, threads_per_actor=pool.threads)
                row.update(compare(home, local_home))
                runs.append(row)
    local = runs[0]
    for row in runs:
        row["speedup_vs_local"] = round(row["passages_per_s"] / local["passages_per_s"], 2)
    ray_rows = runs[1:]
    result: dict[str, Any] = {
        "benchmark": "ray_index",
        "cpu": cpu_description(),
        "environment": env,
        "ray_cpus": available_cpus(),
        "collection": f"demo collection x{args.copies}",
        "ray_start_s": ray_start_s,
        "runs": runs,
        "benchmark_seconds": round(time.perf_counter() - started, 1),
    }
    per_actor = ", ".join(
        f"{row['actors']} actor{'s' if row['actors'] > 1 else ''} "
        f"{row['passages_per_s']:.1f} passages/s ({row['speedup_vs_local']:.2f}x)"
        for row in ray_rows
    )
    result["readme_rows"] = [
        {
            "what": f"indexing throughput, local vs Ray engine ({local['files']} files, "
            f"{local['passages']} passages, {env['cores']} cores"
            f"{', ' + env['gpu'] if env['gpu'] else ''}; whole runs, model loading included)",
            "number": f"local {local['passages_per_s']:.1f} passages/s; Ray {per_actor}; "
            f"starting Ray {ray_start_s:.1f} s more",
            "command": "python benchmarks/bench_ray_index.py",
        }
    ]
    write_result(args.out, result)
    print(f"CPU: {result['cpu']}; load average {env['load_average']}")
    print(f"{result['collection']}: {local['files']} files, {local['passages']} passages")
    print(f"{'engine':8} {'actors':>6} {'wall s':>8} {'passages/s':>11} {'vs local':>9} same")
    for row in runs:
        same = "" if row["engine"] == "local" else row["same_passages_as_local"]
        diff = row.get("max_embedding_diff_vs_local")
        print(
            f"{row['engine']:8} {row['actors'] or '-':>6} {row['wall_s']:>8.2f} "
            f"{row['passages_per_s']:>11.2f} {row['speedup_vs_local']:>8.2f}x {same}"
            + (f" (max embedding diff {diff:.1e})" if diff is not None else "")
        )
    print(f"starting the local Ray instance: {ray_start_s:.2f} s (not counted above)")


if __name__ == "__main__":
    main()
