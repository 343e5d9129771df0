"""Two revisions of DocQA side by side on the demo collection: end-to-end F1 and ask latency.

A redesign that should change nothing (issue 30's "behaviour unchanged") is measured here: each
revision is checked out into its own git worktree, indexes the demo collection into its own
home with its own code, and answers the same demo dev questions with ``docqa evaluate``; the
rounds interleave old and new so that a noisy machine disturbs both alike. Both run in this
virtual environment (the older revision's imports must resolve in it). Prints a table and
writes JSON; F1 must match, latency is compared by the medians of the rounds.

    python benchmarks/bench_side_by_side.py --old d286dc2 [--new HEAD] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment

DEMO_LABELS = "data/demo/labels/dev.json"


def _worktree(rev: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-f", str(where), rev],
        check=True,
        capture_output=True,
    )
    return where


def _docqa(checkout: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "HF_HUB_OFFLINE": "1",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }
    run = subprocess.run(
        [sys.executable, "-m", "docqa", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"{checkout}: docqa {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return run.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="the revision to compare against")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--questions", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "side_by_side.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="docqa-sbs-") as tmp:
        work = Path(tmp)
        revisions = {"old": args.old, "new": args.new}
        checkouts = {name: _worktree(rev, work / name) for name, rev in revisions.items()}
        commits = {
            name: subprocess.run(
                ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for name, path in checkouts.items()
        }
        homes = {name: work / f"home-{name}" for name in checkouts}
        try:
            for name, checkout in checkouts.items():
                print(f"indexing the demo collection with {name} ({commits[name]})", flush=True)
                _docqa(checkout, "index", "data/demo", "--home", str(homes[name]))
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
            for number in range(1, args.rounds + 1):
                order = ["old", "new"] if number % 2 else ["new", "old"]
                for name in order:
                    out = _docqa(
                        checkouts[name],
                        "evaluate",
                        DEMO_LABELS,
                        "--home",
                        str(homes[name]),
                        "--questions",
                        str(args.questions),
                        "--json",
                    )
                    report = json.loads(out)
                    latency = report["latency_seconds"]
                    row = {
                        "round": number,
                        "f1": round(report["answers"]["f1"], 2),
                        "p50_ms": round(latency["p50"] * 1000, 1),
                        "p95_ms": round(latency["p95"] * 1000, 1),
                        "mean_ms": round(latency["mean"] * 1000, 1),
                    }
                    rounds[name].append(row)
                    print(f"round {number} {name}: {row}", flush=True)
        finally:
            for checkout in checkouts.values():
                subprocess.run(
                    ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(checkout)],
                    check=False,
                    capture_output=True,
                )

    median = {
        name: {
            key: round(statistics.median(r[key] for r in rows), 2 if key == "f1" else 1)
            for key in ("f1", "p50_ms", "p95_ms", "mean_ms")
        }
        for name, rows in rounds.items()
    }
    print(f"\n{'':5} {'F1':>6} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}   ({cpu_description()})")
    for name in ("old", "new"):
        m = median[name]
        print(
            f"{name:5} {m['f1']:6.2f} {m['p50_ms']:8.1f} {m['p95_ms']:8.1f} {m['mean_ms']:8.1f}"
            f"   {commits[name]}"
        )
    ratio = median["new"]["p50_ms"] / median["old"]["p50_ms"]
    print(f"p50 new/old: {ratio:.3f}")
    result = {
        "benchmark": "side_by_side",
        "what": (
            f"docqa evaluate over the demo collection, {args.questions} dev questions, old "
            f"{commits['old']} and new {commits['new']} interleaved for {args.rounds} rounds, "
            "each indexed by its own code"
        ),
        "cpu": cpu_description(),
        "environment": environment(),
        "revisions": commits,
        "rounds": rounds,
        "median": median,
        "p50_ratio_new_over_old": round(ratio, 3),
        "readme_rows": [
            {
                "what": (
                    f"{commits['new']} vs {commits['old']} side by side, demo dev "
                    f"{args.questions} questions end to end, {args.rounds} interleaved rounds"
                ),
                "number": (
                    f"F1 {median['new']['f1']:.2f} vs {median['old']['f1']:.2f}; ask p50 "
                    f"{median['new']['p50_ms']:.1f} vs {median['old']['p50_ms']:.1f} ms "
                    f"(ratio {ratio:.3f}), p95 {median['new']['p95_ms']:.1f} vs "
                    f"{median['old']['p95_ms']:.1f} ms (new vs old, medians of the rounds)"
                ),
                "command": (
                    f"python benchmarks/bench_side_by_side.py --old {commits['old']} "
                    f"--rounds {args.rounds}"
                ),
            }
        ],
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
