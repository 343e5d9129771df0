"""glibc malloc keeping freed memory (pipelines/allocator.py) against its defaults, side by side.

Each measurement runs in a fresh process (the allocator is set once per process), the two
settings alternating round by round so a busy spell of the machine is shared: reader training
steps (batches of 32 windows of demo train pairs, the precision ``docqa train`` would choose on
this CPU), the reader evaluated on demo dev pairs (fp32, as ``docqa promote`` measures) and the
embedder over demo passages (indexing). Reports the median wall time, user and system CPU time
and peak resident size, and the ratios. Run it alone.

    python benchmarks/bench_allocator.py [--rounds 2] [--steps 4] [--dev-pairs 60]
        [--out benchmarks/results/allocator.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment

SETTINGS = {"glibc defaults": "0", "freed memory kept": "1"}  # DOCQA_KEEP_FREED_MEMORY
TASKS = ("train", "evaluate", "embed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="training steps timed (after one)")
    parser.add_argument("--dev-pairs", type=int, default=60)
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--child", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/allocator.json")
    return parser.parse_args(argv)


def _train_steps(steps: int) -> float:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from evaluation.squad import load_squad
    from pipelines.allocator import keep_freed_memory
    from pipelines.settings import DEMO_LABELS, SHIPPED_READER
    from reader_training.train import resolve_precision

    keep_freed_memory()  # as train_reader does
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_READER)
    model = AutoModelForQuestionAnswering.from_pretrained(SHIPPED_READER, dtype=torch.float32)
    model.train()
    pairs, _ = load_squad(DEMO_LABELS / "train.json")
    batch = tokenizer(
        [p.question for p in pairs[:32]],
        [p.context for p in pairs[:32]],
        truncation="only_second",
        max_length=256,
        padding="max_length",
        return_tensors="pt",
    )
    zeros = torch.zeros(32, dtype=torch.long)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    bf16 = resolve_precision("auto") == "bf16"

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**batch, start_positions=zeros, end_positions=zeros)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def _evaluate(pairs: int) -> float:
    from evaluation.reader_metrics import evaluate_reader
    from evaluation.squad import load_squad
    from pipelines.settings import DEMO_LABELS, SHIPPED_READER

    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    start = time.perf_counter()
    evaluate_reader(SHIPPED_READER, dev[:pairs], progress=False)
    return time.perf_counter() - start


def _embed(passages: int) -> float:
    from evaluation.squad import load_squad
    from pipelines.embedder import load_embedder
    from pipelines.settings import DEMO_LABELS

    train, _ = load_squad(DEMO_LABELS / "train.json")
    texts = list(dict.fromkeys(ex.context for ex in train))
    words = " ".join(texts).split()
    chunks = [" ".join(words[i : i + 200]) for i in range(0, len(words), 200)][:passages]
    model = load_embedder()
    model.encode(chunks[:8])  # warm-up
    start = time.perf_counter()
    model.encode(chunks, batch_size=32)
    return time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    from pipelines.allocator import keep_freed_memory

    task = {
        "train": lambda: _train_steps(args.steps),
        "evaluate": lambda: _evaluate(args.dev_pairs),
        "embed": lambda: _embed(args.passages),
    }
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = task[args.child]()
    after = resource.getrusage(resource.RUSAGE_SELF)
    row = {
        "seconds": round(seconds, 2),
        "user_s": round(after.ru_utime - before.ru_utime, 2),
        "system_s": round(after.ru_stime - before.ru_stime, 2),
        "peak_rss_mib": round(after.ru_maxrss / 1024),
        "kept": keep_freed_memory(),
    }
    print(json.dumps(row))


def run_child(task: str, value: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", task, "--steps", str(args.steps)]
    command += ["--dev-pairs", str(args.dev_pairs), "--passages", str(args.passages)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        command, env=env | {"DOCQA_KEEP_FREED_MEMORY": value}, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"{task} ({value}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {s: [] for s in SETTINGS} for t in TASKS}
    for _ in range(args.rounds):
        for task in TASKS:
            for name, value in SETTINGS.items():
                runs[task][name].append(run_child(task, value, args))
    results: dict[str, Any] = {}
    print(f"CPU: {cpu_description()}")
    header = ("seconds", "user s", "system s", "peak MiB")
    print(f"{'task':<10}{'allocator':<20}" + "".join(f"{h:>10}" for h in header))
    for task in TASKS:
        results[task] = {}
        for name in SETTINGS:
            rows = runs[task][name]
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "kept"}
            med["kept"] = rows[0]["kept"]
            results[task][name] = med | {"runs": rows}
            print(
                f"{task:<10}{name:<20}{med['seconds']:>10.2f}{med['user_s']:>10.2f}"
                f"{med['system_s']:>10.2f}{med['peak_rss_mib']:>10.0f}"
            )
        base, kept = (results[task][name] for name in SETTINGS)
        results[task]["time_ratio_kept_to_defaults"] = round(kept["seconds"] / base["seconds"], 3)
        results[task]["peak_rss_ratio_kept_to_defaults"] = round(
            kept["peak_rss_mib"] / base["peak_rss_mib"], 3
        )
        print(
            f"{task:<10}{'ratio kept/defaults':<20}"
            f"{results[task]['time_ratio_kept_to_defaults']:>10.3f}{'':>20}"
            f"{results[task]['peak_rss_ratio_kept_to_defaults']:>10.3f}"
        )
    report = {
        "benchmark": "bench_allocator",
        "settings": {"rounds": args.rounds, "steps": args.steps, "dev_pairs": args.dev_pairs,
                     "passages": args.passages},
        "cpu": cpu_description(),
        "results": results,
        "environment": environment(),
    }  # fmt: skip
    report["readme_rows"] = readme_rows(report)
    write_result(args.out, report)
    return 0


def readme_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """The result as a row of docs/results.md: time and peak memory, kept / glibc defaults."""
    results, settings = report["results"], report["settings"]
    ratios = "; ".join(
        f"{task} time {results[task]['time_ratio_kept_to_defaults']:.3f}x, peak memory "
        f"{results[task]['peak_rss_ratio_kept_to_defaults']:.3f}x"
        for task in TASKS
    )
    return [
        {
            "what": "freed memory kept by glibc malloc (pipelines/allocator.py) against its "
            f"defaults, medians of {settings['rounds']} fresh processes each: reader training "
            f"({settings['steps']} steps), {settings['dev_pairs']} demo dev pairs read, "
            f"{settings['passages']} passages embedded",
            "number": ratios,
            "command": "python benchmarks/bench_allocator.py",
        }
    ]


if __name__ == "__main__":
    raise SystemExit(main())
