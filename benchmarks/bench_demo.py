"""Index the demo collection from scratch and time `ask` on its dev questions.

Prints a table and writes JSON (default benchmarks/results/demo.json). Not a test: numbers depend
on the machine; compare runs on the same machine only.

    python benchmarks/bench_demo.py [--reader PATH] [--questions 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_env import write_result

from evaluation.squad import load_squad
from indexer.run import index_folder
from pipelines.query import QueryService
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", default=None)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "demo.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), reader_model=args.reader)
        started = time.perf_counter()
        summary = index_folder([DEMO_COLLECTION], settings, progress=False)
        index_seconds = time.perf_counter() - started
        service = QueryService(settings)
        started = time.perf_counter()
        service.refresh()
        load_seconds = time.perf_counter() - started
        examples, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "dev.json")
        questions = [ex.question for ex in examples][: args.questions]
        service.ask(questions[0])  # warm-up: first call pays lazy initialisation
        latencies = []
        for q in questions:
            t = time.perf_counter()
            service.ask(q)
            latencies.append(time.perf_counter() - t)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "reader": service.reader_model,
        "index": {
            "files": summary.added,
            "passages": summary.total_passages,
            "seconds": round(index_seconds, 2),
            "passages_per_second": round(summary.total_passages / index_seconds, 1),
        },
        "pipeline_load_seconds": round(load_seconds, 2),
        "ask": {
            "questions": len(latencies),
            "passages": settings.top_k_passages,
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p95_ms": round(1000 * statistics.quantiles(latencies, n=20)[18], 1),
            "mean_ms": round(1000 * statistics.fmean(latencies), 1),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    write_result(args.out, result)
    rows = [
        ("files indexed", result["index"]["files"]),
        ("passages", result["index"]["passages"]),
        ("index time (s)", result["index"]["seconds"]),
        ("passages / s", result["index"]["passages_per_second"]),
        ("pipeline load (s)", result["pipeline_load_seconds"]),
        ("ask p50 (ms)", result["ask"]["p50_ms"]),
        ("ask p95 (ms)", result["ask"]["p95_ms"]),
        ("peak RSS (MB)", result["peak_rss_mb"]),
    ]
    for name, value in rows:
        print(f"{name:20} {value:>10}")


if __name__ == "__main__":
    main()
