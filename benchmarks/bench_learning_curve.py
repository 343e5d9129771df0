"""The learning curve users care about: domain F1 after fine-tuning on N labeled pairs.

A base reader (default: the reader campaign's latest base stage, ``~/.docqa/campaign/default/
latest``) is fine-tuned with the default recipe's domain stage on 0, 25, 50, 100, 200 and all of
the demo collection's train pairs (nested random subsets, one seed), replaying as many pool
examples against forgetting. Each result is measured on the demo dev pairs (gold documents,
official SQuAD v2.0 F1, the reader's own threshold) and, for forgetting, on the fixed 1,000-
question ``dev-v2.0-half`` sample (HasAns F1 with the best span given, the number the domain
stage must not lower by more than a point).

Prints a table, writes JSON with README rows (default ``benchmarks/results/learning_curve.json``)
and a PNG of both curves. Needs ``../shared/data`` (the pool and the SQuAD sample). About ten
minutes per size on two CPU cores with native bf16, three times that without.

    python benchmarks/bench_learning_curve.py [--base DIR] [--sizes 0,25,50,100,200,all]
        [--seed 0] [--work DIR] [--out FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_env import write_result

from evaluation.environment import environment
from evaluation.reader_metrics import evaluate_reader
from evaluation.squad import SquadExample, load_squad, write_squad
from pipelines.settings import DEFAULT_HOME, REPO_ROOT
from reader_training.campaign_data import FULL_POOL
from reader_training.recipes import (
    DEMO_LABELS,
    BaseRecipe,
    DomainRecipe,
    build_base_pool,
    domain_train_config,
    forgetting_sample,
)
from reader_training.train import train_reader

SHARED = REPO_ROOT.parent / "shared" / "data"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", type=Path, default=DEFAULT_HOME / "campaign/default/latest")
    parser.add_argument("--sizes", default="0,25,50,100,200,all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--work", type=Path, default=None, help="Keep the readers here.")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results/learning_curve.json"
    )
    parser.add_argument(
        "--plot", type=Path, default=REPO_ROOT / "benchmarks/results/plots/learning_curve.png"
    )
    return parser.parse_args(argv)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = [r["pairs"] for r in rows]
    ax.plot(xs, [r["demo_dev_f1"] for r in rows], marker="o", label="demo dev F1 (domain)")
    ax.plot(
        xs,
        [r["squad_best_span_hasans_f1"] for r in rows],
        marker="s",
        label="SQuAD sample, best-span HasAns F1 (forgetting)",
    )
    ax.set_xscale("symlog", linthresh=25)
    ax.set_xlabel("labeled demo pairs fine-tuned on")
    ax.set_ylabel("F1")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def domain_pool(work: Path, shared: Path) -> Path:
    """The stage-1 pool the domain recipe replays (built once into ``work``)."""
    pool = work / "pool.json"
    if not pool.is_file():
        build_base_pool(shared, BaseRecipe(parts=FULL_POOL), pool)
    return pool


def fine_tune(base: Path, pool: Path, pairs: list[SquadExample], reader: Path, seed: int) -> Path:
    """``base`` fine-tuned on ``pairs`` with the default domain recipe (replaying ``pool``),
    written to ``reader``; an existing complete reader there is reused."""
    if not (reader / "metrics.json").is_file():
        train_file = reader.parent / f"{reader.name}-train.json"
        write_squad(pairs, train_file)
        config = domain_train_config(base, pool, reader, DomainRecipe(), seed=seed)
        config.train_files = [str(train_file)]
        train_reader(config, progress=False)
    return reader


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.base / "config.json").is_file():
        print(f"{args.base}: not a reader folder (run the reader campaign first)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="docqa-curve-"))
    work.mkdir(parents=True, exist_ok=True)
    pool = domain_pool(work, args.shared)
    train, _ = load_squad(DEMO_LABELS / "train.json")
    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    sample = forgetting_sample(args.shared)
    shuffled = train[:]
    random.Random(args.seed).shuffle(shuffled)  # nested subsets: 25 is within 50, ...
    sizes = [len(train) if s == "all" else int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        started = time.time()
        if n == 0:
            reader = args.base
        else:
            reader = fine_tune(args.base, pool, shuffled[:n], work / f"reader-{n}", args.seed)
        demo = evaluate_reader(reader, dev, progress=False)[0]
        squad = evaluate_reader(reader, sample, progress=False)[0]
        rows.append(
            {
                "pairs": n,
                "demo_dev_f1": round(demo["f1"], 2),
                "demo_dev_em": round(demo["exact"], 2),
                "squad_best_span_hasans_f1": round(squad["HasAns_f1_best_span"], 2),
                "seconds": round(time.time() - started, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0] if rows and rows[0]["pairs"] == 0 else None
    print(f"{'pairs':>6} {'demo dev F1':>12} {'SQuAD best-span HasAns F1':>26}")
    for r in rows:
        print(f"{r['pairs']:>6} {r['demo_dev_f1']:>12.2f} {r['squad_best_span_hasans_f1']:>26.2f}")
    curve = "; ".join(
        f"{r['pairs']}: {r['demo_dev_f1']:.2f} (SQuAD {r['squad_best_span_hasans_f1']:.2f})"
        for r in rows
    )
    if base:
        worst = min(r["squad_best_span_hasans_f1"] for r in rows)
        curve += f"; forgetting at most {base['squad_best_span_hasans_f1'] - worst:.2f}"
    result = {
        "benchmark": "learning_curve",
        "base_reader": str(args.base),
        "seed": args.seed,
        "rows": rows,
        "environment": environment(),
        "readme_rows": [
            {
                "what": "learning curve: demo dev F1 after fine-tuning on N demo train pairs "
                "(forgetting: best-span HasAns F1 on 1,000 SQuAD questions)",
                "number": curve,
                "command": "python benchmarks/bench_learning_curve.py",
            }
        ],
    }
    write_result(args.out, result)
    plot(rows, args.plot)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
