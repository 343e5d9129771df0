"""Training with torch's dropout against ``--cpu-dropout`` (reader_training/dropout.py).

Issue 28's run, once per seed and dropout, each in a fresh process: ``docqa train`` with its
defaults on 40 demo train pairs (a seeded sample, or with ``--pairs three-articles`` the first
40 in file order, of three FAQ articles: the suite's two runs) continuing the shipped reader,
then the new reader evaluated on the 190 demo dev pairs (and the 60 of them that the issue's
test checks apart) at the threshold it serves with. Reports the training time, steps per
second and F1 per run, and the ratio of the median training times. The two dropouts alternate
within a seed, so a busy spell of the machine is shared. Run it alone.

    python benchmarks/bench_training_dropout.py [--seeds 42 7] [--pairs seeded-sample]
        [--dropouts torch cpu-masks] [--out benchmarks/results/training_dropout.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment
from evaluation.squad import load_squad, write_squad
from pipelines.settings import DEMO_LABELS, SHIPPED_READER

DROPOUTS = {"torch": "--torch-dropout", "cpu masks": "--cpu-dropout"}
DROPOUT_CHOICES = {name.replace(" ", "-"): name for name in DROPOUTS}  # as --dropouts names them
NEW_PAIRS = {  # as tests/reader_training/test_small_runs.py picks them
    "seeded-sample": lambda train: random.Random(0).sample(train, 40),
    "three-articles": lambda train: train[:40],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--pairs", choices=sorted(NEW_PAIRS), default="seeded-sample")
    parser.add_argument(
        "--dropouts",
        nargs="+",
        choices=list(DROPOUT_CHOICES),
        default=list(DROPOUT_CHOICES),
    )
    parser.add_argument("--child-eval", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results/training_dropout.json"
    )
    return parser.parse_args(argv)


def evaluate(reader: Path) -> dict[str, float]:
    """F1 on the 190 demo dev pairs and on issue 28's 60 of them, at the served threshold."""
    from evaluation.reader_metrics import evaluate_reader, squad_metrics

    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    metrics, answers = evaluate_reader(reader, dev, progress=False)
    others = random.Random(0).sample(dev, 60)
    return {
        "f1": round(metrics["f1"], 2),
        "best_f1": round(metrics["best_f1"], 2),
        "f1_on_the_60": round(squad_metrics(others, answers)["f1"], 2),
    }


def run_python(args: list[str]) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def evaluate_in_child(reader: Path) -> dict[str, float]:
    return json.loads(run_python([__file__, "--child-eval", str(reader)]).splitlines()[-1])


def train_once(new_pairs: Path, home: Path, seed: int, flag: str) -> dict[str, Any]:
    name = f"s{seed}{flag.replace('-', '_')}"
    command = ["-m", "docqa", "train", str(new_pairs), "--name", name, "--home", str(home)]
    run_python([*command, "--seed", str(seed), flag])
    reader = home / "models" / name
    card = json.loads((reader / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    return {
        "train_seconds": card["train_seconds"],
        "windows_per_second": card["train_windows_per_second"],
        "dropout": card["dropout"],
        **evaluate_in_child(reader),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_eval:
        print(json.dumps(evaluate(args.child_eval)))
        return 0
    train, _ = load_squad(DEMO_LABELS / "train.json")
    wanted = {DROPOUT_CHOICES[choice] for choice in args.dropouts}
    chosen = {name: flag for name, flag in DROPOUTS.items() if name in wanted}  # in this order
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="bench-dropout-") as tmp:
        new_pairs = Path(tmp) / "new.json"
        write_squad(NEW_PAIRS[args.pairs](train), new_pairs)
        shipped = evaluate_in_child(SHIPPED_READER)
        for seed in args.seeds:
            order = list(chosen.items())
            for name, flag in order if seed % 2 else order[::-1]:
                row = train_once(new_pairs, Path(tmp) / "home", seed, flag) | {"seed": seed}
                runs[name].append(row)
                print(json.dumps({name: row}), flush=True)
    print(f"CPU: {cpu_description()}")
    print(f"shipped reader: F1 {shipped['f1']:.2f}, on the 60 {shipped['f1_on_the_60']:.2f}")
    print(f"{'dropout':<11}{'seed':>6}{'train s':>10}{'windows/s':>11}{'F1':>8}{'F1 60':>8}")
    for name, rows in runs.items():
        for r in rows:
            print(
                f"{name:<11}{r['seed']:>6}{r['train_seconds']:>10.1f}"
                f"{r['windows_per_second']:>11.2f}{r['f1']:>8.2f}{r['f1_on_the_60']:>8.2f}"
            )
    medians = {n: statistics.median(r["train_seconds"] for r in rows) for n, rows in runs.items()}
    ratio = (
        round(medians["cpu masks"] / medians["torch"], 3) if len(medians) == len(DROPOUTS) else None
    )
    if ratio is not None:
        print(f"median training time, cpu masks / torch: {ratio}")
    command = (
        f"python benchmarks/bench_training_dropout.py --pairs {args.pairs} --dropouts "
        + " ".join(args.dropouts)
        + " --seeds "
        + " ".join(map(str, args.seeds))
    )
    pairs = f"40 demo pairs ({args.pairs.replace('-', ' ')}, defaults)"
    seeds = ", ".join(map(str, args.seeds))
    f1 = "; ".join(
        f"{n} " + ", ".join(f"{r['f1']:.2f}/{r['f1_on_the_60']:.2f}" for r in rows)
        for n, rows in runs.items()
    )
    rows = [
        {
            "what": f"docqa train on {pairs}: dev F1 (190 pairs / issue 28's 60) by seed "
            f"({seeds}); the shipped reader {shipped['f1']:.2f}/{shipped['f1_on_the_60']:.2f}",
            "number": f1,
            "command": command,
        }
    ]
    if ratio is not None:
        rows.insert(
            0,
            {
                "what": f"docqa train on {pairs}, --cpu-dropout against torch's dropout: training "
                f"time (median of seeds {seeds})",
                "number": f"{medians['cpu masks']:.1f} s against {medians['torch']:.1f} s "
                f"({ratio}x)",
                "command": command,
            },
        )
    report = {
        "benchmark": "bench_training_dropout",
        "readme_rows": rows,
        "settings": {
            "seeds": args.seeds,
            "pairs": args.pairs,
            "dropouts": args.dropouts,
            "command": "docqa train (defaults)",
        },
        "cpu": cpu_description(),
        "shipped": shipped,
        "runs": runs,
        "median_train_seconds": medians,
        "train_time_ratio_cpu_masks_to_torch": ratio,
        "environment": environment(),
    }
    write_result(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
