"""Does labeling the label queue's first 50 questions teach the reader more than 50 random ones?

Simulated users over the demo collection: every question of the demo train pairs
(``data/demo/labels/train.json``) is asked once on the indexed demo collection through the
query service with the base reader, and logged as a page question would be. Users judge some of
the answers: a top answer whose F1 against the gold answers is under 0.5 (or an answer where the
gold says there is none) is marked wrong with probability ``--feedback-rate``. Then

* ``queue``: the label queue's first N questions
(:func:`pipelines.learning_loop.label_queue.label_queue`);
* ``queue-spread``: the queue spread over the documents its answers cite (``spread_decay=0.7``);
* ``random``: N questions drawn at random (the learning curve's subset of the same size);

each get their gold labels (the simulated annotator answers from the train pairs) and the base
reader is fine-tuned on them with the default domain recipe (replay against forgetting), exactly
as ``bench_learning_curve.py`` does. Reported: demo dev F1 (gold documents; the dev pairs are
never asked or labeled) and the forgetting sample's best-span HasAns F1, for the base and both
arms. JSON with README rows (default ``benchmarks/results/label_queue.json``). About 30 minutes
on two CPU cores with native bf16; run it alone.

    python benchmarks/bench_label_queue.py [--base DIR] [--pairs 50] [--feedback-rate 0.3]
        [--seed 0] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench_env import write_result
from bench_learning_curve import SHARED, domain_pool, fine_tune

from evaluation.environment import environment
from evaluation.reader_metrics import compute_f1, evaluate_reader, gold_texts
from evaluation.squad import SquadExample, load_squad
from pipelines.learning_loop.label_queue import QueueItem, label_queue, normalize_question
from pipelines.learning_loop.question_log import question_log
from pipelines.query import QueryService
from pipelines.settings import DEFAULT_HOME, DEMO_COLLECTION, DEMO_LABELS, REPO_ROOT, Settings
from reader_training.recipes import forgetting_sample


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", type=Path, default=DEFAULT_HOME / "campaign/default/latest")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--feedback-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--work", type=Path, default=Path("/tmp/docqa-label-queue"))
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results/label_queue.json"
    )
    return parser.parse_args(argv)


def simulate_users(
    train: list[SquadExample], settings: Settings, feedback_rate: float, seed: int
) -> dict[str, Any]:
    """Ask every train question once (logged), mark some wrong answers wrong; a summary."""
    from evaluation.end_to_end import index_collection

    index_collection([DEMO_COLLECTION], settings, progress=False)
    log = question_log(settings)
    assert log is not None
    if len(log) >= len(train):  # asked already (a rerun)
        return {"asked": len(log)}
    rng = random.Random(seed)
    service = QueryService(settings)
    wrong = flagged = 0
    for ex in train:
        outcome = service.answer(ex.question, channel="page")
        top = outcome.answers[0].answer if outcome.answers else None
        f1 = max(compute_f1(g, top or "") for g in gold_texts(ex))
        if f1 < 0.5:
            wrong += 1
            if rng.random() < feedback_rate and outcome.question_id is not None:
                log.add_feedback(outcome.question_id, "wrong")
                flagged += 1
    return {"asked": len(train), "wrong": wrong, "flagged_wrong": flagged}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.base / "config.json").is_file():
        print(f"{args.base}: not a reader folder (run the reader campaign first)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    pool = domain_pool(args.work, args.shared)
    train, _ = load_squad(DEMO_LABELS / "train.json")
    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    sample = forgetting_sample(args.shared)

    started = time.time()
    settings = Settings(home=args.work / "home", reader_model=str(args.base))
    users = simulate_users(train, settings, args.feedback_rate, args.seed)
    log = question_log(settings)
    assert log is not None
    queue = label_queue(log.questions())
    spread = label_queue(log.questions(), spread_decay=0.7)
    by_question: dict[str, list[SquadExample]] = {}
    for ex in train:
        by_question.setdefault(normalize_question(ex.question), []).append(ex)

    def labeled(items: list[QueueItem]) -> list[SquadExample]:
        return [
            ex for it in items[: args.pairs] for ex in by_question[normalize_question(it.question)]
        ]

    chosen = [item.question for item in queue[: args.pairs]]
    shuffled = train[:]
    random.Random(args.seed).shuffle(shuffled)  # the learning curve's nested subsets
    arms = {
        "queue": labeled(queue),
        "queue-spread": labeled(spread),
        "random": shuffled[: args.pairs],
    }
    documents = {name: len({ex.title for ex in subset}) for name, subset in arms.items()}
    reasons: dict[str, int] = {}
    for item in queue[: args.pairs]:
        for reason in item.reasons:
            kind = reason.split(" ")[0]
            reasons[kind] = reasons.get(kind, 0) + 1

    rows: dict[str, dict[str, Any]] = {}
    for name, reader in [("base", args.base)] + [
        (name, fine_tune(args.base, pool, subset, args.work / f"reader-{name}", args.seed))
        for name, subset in arms.items()
    ]:
        demo = evaluate_reader(reader, dev, progress=False)[0]
        squad = evaluate_reader(reader, sample, progress=False)[0]
        rows[name] = {
            "pairs": 0 if name == "base" else len(arms[name]),
            "documents": documents.get(name, 0),
            "demo_dev_f1": round(demo["f1"], 2),
            "squad_best_span_hasans_f1": round(squad["HasAns_f1_best_span"], 2),
        }
        print(name, json.dumps(rows[name]), flush=True)
    base = rows["base"]
    for row in rows.values():
        row["gain"] = round(row["demo_dev_f1"] - base["demo_dev_f1"], 2)
        row["forgotten"] = round(
            base["squad_best_span_hasans_f1"] - row["squad_best_span_hasans_f1"], 2
        )
    print(
        f"{'arm':18} {'pairs':>6} {'documents':>10} {'demo dev F1':>12} {'gain':>6} "
        f"{'forgotten':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:18} {r['pairs']:>6} {r['documents']:>10} {r['demo_dev_f1']:>12.2f} "
            f"{r['gain']:>+6.2f} {r['forgotten']:>10.2f}"
        )
    result = {
        "benchmark": "label_queue",
        "base_reader": str(args.base),
        "pairs": args.pairs,
        "feedback_rate": args.feedback_rate,
        "seed": args.seed,
        "simulated_users": users,
        "queue_reasons_in_first": reasons,
        "queue_questions": chosen,
        "queue_spread_questions": [item.question for item in spread[: args.pairs]],
        "rows": rows,
        "seconds": round(time.time() - started, 1),
        "environment": environment(),
        "readme_rows": [
            {
                "what": f"label queue vs random: demo dev F1 after labeling {args.pairs} logged "
                f"questions (simulated users; {args.feedback_rate:.0%} of wrong answers flagged)",
                "number": f"base {base['demo_dev_f1']:.2f}; "
                + "; ".join(
                    f"{arm} {rows[arm]['demo_dev_f1']:.2f} ({rows[arm]['gain']:+.2f}, "
                    f"forgot {rows[arm]['forgotten']:.2f})"
                    for arm in arms
                ),
                "command": "python benchmarks/bench_label_queue.py",
            }
        ],
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
