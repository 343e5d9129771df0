"""Open-domain SQuAD: index SQuAD contexts as a collection and answer the questions over it.

The questions of ``dev-v2.0-half.json`` (every question id, as the official script counts them)
are asked over two collections, each context indexed as one text document:

* ``own``: the 646 contexts of ``dev-v2.0-half.json``;
* ``distractors``: the 2,067 contexts of ``dev-v1.1.json`` (the 646 and 1,421 others).

Reported per collection: retrieval recall@1/5/20 and MRR, end-to-end EM/F1 (overall, HasAns,
NoAns) reading the top ``--top-k`` passages (and the first 1, 3, 5 of them), latency per question;
once: the reader alone on the gold contexts. Prints a table and writes JSON (default
``benchmarks/results/open_squad.json``) with hardware and versions. Not a test: numbers depend on
the machine. Reading all 6,078 questions x 10 passages twice takes over an hour on 2 CPU cores;
``--questions N`` asks a fixed seeded sample (recorded in the JSON).

    python benchmarks/bench_open_squad.py [--questions N] [--seed 0] [--top-k 10]
        [--reader PATH] [--home DIR] [--squad DIR] [--plots DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench_env import write_result

from evaluation.end_to_end import contexts_of, evaluate_over_contexts, sample_examples
from evaluation.environment import environment
from evaluation.reader_metrics import evaluate_reader
from evaluation.squad import load_squad
from pipelines.reader_registry import resolve_reader
from pipelines.settings import REPO_ROOT, SHIPPED_READER, Settings

SQUAD = REPO_ROOT.parent / "shared" / "data" / "squad"
RECALL_KS = (1, 5, 20)
PER_RUN_KEYS = (
    "collection",
    "top_k",
    "reader_backend",
    "retrieved",
    "retrieval",
    "recall_curve",
    "gold_passage_rule",
    "answers",
    "answers_at_k",
    "latency_seconds",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--questions", type=int, default=None, help="Fixed sample (default all).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=10, help="Passages read per question.")
    parser.add_argument("--reader", default=None, help="Reader folder (default: shipped).")
    parser.add_argument("--home", type=Path, default=None, help="Keep (and reuse) indexes here.")
    parser.add_argument("--squad", type=Path, default=SQUAD, help="Folder of the SQuAD files.")
    parser.add_argument("--plots", type=Path, default=None, help="Write PNG plots here.")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "open_squad.json"
    )
    return parser.parse_args(argv)


def run_collection(
    name: str,
    contexts: list[str],
    questions: list[Any],
    settings: Settings,
    args: argparse.Namespace,
    closed: dict[str, Any],
) -> dict[str, Any]:
    logging.info("collection %s: %d contexts, %d questions", name, len(contexts), len(questions))
    home = args.home / name if args.home else None
    report = evaluate_over_contexts(
        questions,
        settings,
        contexts,
        home,
        top_k=args.top_k,
        recall_depth=max(max(RECALL_KS), args.top_k),
        progress=True,
    )
    if args.plots:
        from evaluation.plots import write_plots

        report["closed"] = closed  # drawn beside the open scores
        report["plots"] = [str(p) for p in write_plots(report, args.plots / name)]
    return {key: report[key] for key in (*PER_RUN_KEYS, "plots") if key in report}


def summary_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    header = ("collection", "contexts", "R@1", "R@5", "R@20", "MRR", "EM", "F1", "HasAns F1")
    rows = [(*header, "NoAns F1", "p50 ms", "p95 ms")]
    for name, run in result["collections"].items():
        ret, ans, lat = run["retrieval"], run["answers"], run["latency_seconds"]
        rows.append(
            (
                name,
                str(run["collection"]["contexts"]),
                *(f"{ret.get(f'recall@{k}', float('nan')):.3f}" for k in RECALL_KS),
                f"{ret['mrr']:.3f}",
                f"{ans['exact']:.2f}",
                f"{ans['f1']:.2f}",
                f"{ans.get('HasAns_f1', float('nan')):.2f}",
                f"{ans.get('NoAns_f1', float('nan')):.2f}",
                f"{lat['p50'] * 1000:.0f}",
                f"{lat['p95'] * 1000:.0f}",
            )
        )
    closed = result["closed"]
    rows.append(
        (
            "gold context",
            "-",
            "-",
            "-",
            "-",
            "-",
            f"{closed['exact']:.2f}",
            f"{closed['f1']:.2f}",
            f"{closed.get('HasAns_f1', float('nan')):.2f}",
            f"{closed.get('NoAns_f1', float('nan')):.2f}",
            "-",
            "-",
        )
    )
    return rows


def format_rows(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "haystack", "sentence_transformers", "transformers", "indexer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.perf_counter()
    # The shipped reader unless --reader: results must not depend on a promoted version.
    settings = Settings.from_env(reader_model=args.reader or str(SHIPPED_READER))
    settings = settings.with_(reader_model=resolve_reader(settings))
    v2_file, v1_file = args.squad / "dev-v2.0-half.json", args.squad / "dev-v1.1.json"
    examples, _ = load_squad(v2_file, drop_duplicates=False)
    questions = sample_examples(examples, args.questions, args.seed)
    own = contexts_of(examples)
    distractors = contexts_of(load_squad(v1_file)[0])
    logging.info("reading %d questions on their gold contexts", len(questions))
    closed, _ = evaluate_reader(settings.reader_model or "", questions)
    result: dict[str, Any] = {
        "benchmark": "open_squad",
        "command": shlex.join(["python", "benchmarks/bench_open_squad.py", *argv]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "questions_file": v2_file.name,
        "questions_in_file": len(examples),
        "questions": len(questions),
        "sampled": len(questions) < len(examples),
        "seed": args.seed,
        "top_k": args.top_k,
        "reader": settings.reader_model,
        "closed": closed,
        "collections": {
            "own": run_collection("own", own, questions, settings, args, closed),
            "distractors": run_collection(
                "distractors", distractors, questions, settings, args, closed
            ),
        },
        "collection_files": {"own": v2_file.name, "distractors": v1_file.name},
        "seconds": 0.0,
        "environment": environment(),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_result(args.out, result)
    env = result["environment"]
    print(f"{len(questions)} of {len(examples)} questions, top {args.top_k} passages read")
    print(format_rows(summary_rows(result)))
    print(f"{env['cpu']}, {env['cores']} cores, torch {env['packages'].get('torch')}")
    return result


if __name__ == "__main__":
    main()
