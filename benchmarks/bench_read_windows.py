"""Reader window length: one longer window per passage instead of two overlapping short ones.

A 200-word passage is about 280 tokens: with the reader's own 256-token windows (stride 128) it
is read as two windows that overlap by half, so many tokens are read twice. With 384-token
windows it is one window. This benchmark asks the same questions on the three sets of
``bench_answer_ranking.py`` (the real collection, the demo collection, open SQuAD with
distractors) with each window length (``Settings.reader_max_seq_length``), alternating lengths
run by run so a busy spell of the machine is shared, and reports top-1 F1 at k = 1, 3, 5, 10
and the retrieve-and-read latency (p50/p95 of the medians per length). Run it alone.

    python benchmarks/bench_read_windows.py [--lengths 0,384] [--rounds 2]
        [--open-questions 300] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.end_to_end import evaluate_end_to_end
from evaluation.environment import cpu_description, environment
from pipelines.query import QueryService
from pipelines.settings import SHIPPED_READER


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lengths", default="0,384", help="window lengths; 0: the reader's own")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--reader", default=None)
    parser.add_argument("--open-questions", type=int, default=300)
    parser.add_argument(
        "--realdocs-home", type=Path, default=Path(tempfile.gettempdir()) / "docqa-realdocs"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "docqa-answer-ranking"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results/read_windows.json"
    )
    args = parser.parse_args(argv)
    args.split_words, args.split_sections = 0, False  # bench_answer_ranking.load_sets reads them
    return args


def main(argv: list[str] | None = None) -> int:
    import bench_answer_ranking

    args = parse_args(argv)
    reader = str(Path(args.reader or SHIPPED_READER).resolve())
    lengths = [int(x) for x in args.lengths.split(",")]
    sets = bench_answer_ranking.load_sets(args, reader)
    results: dict[str, dict[str, Any]] = {}
    for name, (examples, settings) in sets.items():
        service = QueryService(settings)
        own = service.reader_predictor.config.max_seq_length
        service.ask(examples[0].question)  # warm-up: first call pays lazy initialisation
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in lengths}
        for _ in range(args.rounds):
            for n in lengths:
                report = evaluate_end_to_end(
                    examples,
                    settings.with_(reader_max_seq_length=n or None),
                    top_k=args.top_k,
                    progress=False,
                    service=service,
                )
                runs[n].append(report)
                print(name, n or own, json.dumps(report["latency_seconds"]), flush=True)
        results[name] = {}
        for n, reports in runs.items():
            first = reports[0]
            results[name][str(n or own)] = {
                "f1": round(first["answers"]["f1"], 2),
                "f1_at_k": {r["k"]: round(r["f1"], 2) for r in first["answers_at_k"]},
                "p50_ms": round(
                    1000 * statistics.median(r["latency_seconds"]["p50"] for r in reports), 1
                ),
                "p95_ms": round(
                    1000 * statistics.median(r["latency_seconds"]["p95"] for r in reports), 1
                ),
                "questions": first["questions"],
            }
    names = list(sets)
    print(f"CPU: {cpu_description()}; reader {reader}; top {args.top_k} passages")
    print(f"{'set':12} {'window':>7} {'F1':>7} {'p50 ms':>8} {'p95 ms':>8}   F1 at k")
    for name in names:
        for window, r in results[name].items():
            print(
                f"{name:12} {window:>7} {r['f1']:7.2f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}   "
                + " ".join(f"{k}:{v:.1f}" for k, v in r["f1_at_k"].items())
            )
    result = {
        "benchmark": "read_windows",
        "cpu": cpu_description(),
        "environment": environment(),
        "reader": reader,
        "top_k": args.top_k,
        "rounds": args.rounds,
        "sets": results,
        "readme_rows": [
            {
                "what": f"reader window length (retrieve + read, top {args.top_k}; top-1 F1, "
                "p50/p95 ms)",
                "number": "; ".join(
                    f"{name}: "
                    + ", ".join(
                        f"{w} tokens F1 {r['f1']:.2f} {r['p50_ms']:.0f}/{r['p95_ms']:.0f} ms"
                        for w, r in results[name].items()
                    )
                    for name in names
                ),
                "command": "python benchmarks/bench_read_windows.py",
            }
        ],
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
