"""The answer verifier against the reader's own ranking, on three open-retrieval sets.

Training reads (never a benchmark's questions): the training pool's held-out articles as an open
collection (a third asked with their own passage hidden) and the demo train pairs
(``reader_training.verifier_training.collect_training_reads``). Evaluation reads: the demo dev
pairs over the demo collection, a seeded sample of ``dev-v2.0-half`` over its own 646 contexts,
and the SQLite documentation questions (``benchmarks/bench_realdocs.py``'s labels and index).
Every question is read once at 10 passages and kept in ``--work`` (JSON lines); answers at k =
1, 3, 5, 10 passages are then decided from the same reads by the reader's ranking
(``docqa_reader.json``), by verifiers fitted on each training set, and by two oracles (the best
of abstaining and the reader's top span; the best of abstaining and any of the verifier's
candidates). Prints a table, writes JSON.

    python benchmarks/bench_verifier.py [--work DIR] [--shared ../shared/data] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment
from pipelines.reader import ReaderConfig
from pipelines.settings import DEMO_COLLECTION, SHIPPED_READER, Settings
from pipelines.verifier import ReaderScoring, candidates_of
from reader_training.verifier_training import (
    QuestionReads,
    answer_f1,
    collect_training_reads,
    f1_at_ks,
    fit_verifier,
    load_reads,
    read_questions,
    reader_answer,
    save_reads,
    verifier_answer,
)

KS = (1, 3, 5, 10)
SQUAD_SAMPLE = 500


def eval_reads(name: str, settings: Settings, work: Path, shared: Path) -> list[QuestionReads]:
    """The evaluation set ``name``'s reads (cached in ``work``)."""
    from evaluation.end_to_end import index_collection, index_contexts
    from evaluation.squad import load_squad
    from pipelines.query import QueryService

    cached = work / f"reads_{name}.jsonl"
    if cached.is_file():
        return load_reads(cached)
    if name == "demo_dev":
        where = settings.with_(home=work / "demo_home")
        index_collection([DEMO_COLLECTION], where)
        examples, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "dev.json")
    elif name == "squad":
        examples, _ = load_squad(shared / "squad" / "dev-v2.0-half.json")
        where = settings.with_(home=work / "squad_home")
        index_contexts(list(dict.fromkeys(ex.context for ex in examples)), where)
        examples = random.Random(0).sample(examples, SQUAD_SAMPLE)
    else:
        import bench_realdocs as realdocs

        from indexer.run import index_folder

        labels = realdocs.load_labels()
        docs = realdocs.ensure_docs(realdocs.DOCS)
        texts = realdocs.page_texts(docs, {r["page"] for r in labels if r["page"]})
        examples = realdocs.examples_from(labels, texts)
        where = settings.with_(home=work / "sqlite_home")
        index_folder([docs], where)
    save_reads(read_questions(QueryService(where), examples, source=name), cached)
    return load_reads(cached)


def oracles(reads: list[QuestionReads], scoring: ReaderScoring) -> dict[str, float]:
    top, any_candidate = [], []
    for r in reads:
        cands = candidates_of(r.question, r.spans, r.passages, scoring, spans_per_passage=3)
        none = answer_f1(r.answers, "")
        first = [c.text for c in cands if c.features[3] == 1]  # "ranking_top"
        top.append(max([none] + [answer_f1(r.answers, t) for t in first]))
        any_candidate.append(max([none] + [answer_f1(r.answers, c.text) for c in cands]))
    return {
        "abstain_or_reader_top": round(100 * sum(top) / len(top), 2),
        "abstain_or_any_candidate": round(100 * sum(any_candidate) / len(any_candidate), 2),
    }


def readme_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """The results table's row: F1 at 10 passages, the reader's ranking against the verifier."""
    cells = []
    for name, data in result["sets"].items():
        reader, verifier = (
            data["f1"][label].get(10, data["f1"][label].get("10"))
            for label in ("reader's own ranking", "verifier (pool + demo train)")
        )
        cells.append(f"{name} {reader:.2f} vs {verifier:.2f}")
    return [
        {
            "what": "answer verifier (not shipped): top-1 F1 at 10 passages, reader vs verifier",
            "number": "; ".join(cells),
            "command": "python benchmarks/bench_verifier.py",
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/docqa-bench-verifier"))
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/verifier.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    args.work.mkdir(parents=True, exist_ok=True)
    reader = str(Path(SHIPPED_READER).resolve())
    settings = Settings(home=args.work / "home", reader_model=reader)
    config = ReaderConfig.load(reader)
    ranking = config.ranking
    scoring = ReaderScoring(ranking.retriever_weight, ranking.open_null_offset, config.temperature)
    training = collect_training_reads(settings, args.shared, args.work)
    by_source = {
        "pool + demo train": training,
        "pool only": [r for r in training if r.source == "pool-heldout"],
        "demo train only": [r for r in training if r.source == "demo-train"],
    }
    verifiers = {name: fit_verifier(reads, scoring=scoring) for name, reads in by_source.items()}
    result: dict[str, Any] = {
        "benchmark": "verifier",
        "cpu": cpu_description(),
        "environment": environment(),
        "reader": reader,
        "ks": list(KS),
        "training": {name: report for name, (_, report) in verifiers.items()},
        "sets": {},
    }
    print(f"{'set':10} {'ranking':28} " + " ".join(f"{'F1@' + str(k):>7}" for k in KS))
    for name in ("sqlite", "demo_dev", "squad"):
        reads = eval_reads(name, settings, args.work, args.shared)
        rows = {"reader's own ranking": f1_at_ks(
            lambda r: reader_answer(ranking, config.temperature, r), reads, KS
        )}  # fmt: skip
        for label, (verifier, _) in verifiers.items():
            rows[f"verifier ({label})"] = f1_at_ks(
                lambda r, v=verifier: verifier_answer(v, r), reads, KS
            )
        for label, row in rows.items():
            print(f"{name:10} {label:28} " + " ".join(f"{row[k]['f1']:7.2f}" for k in KS))
        result["sets"][name] = {
            "questions": len(reads),
            "f1": {label: {k: row[k]["f1"] for k in KS} for label, row in rows.items()},
            "oracle_f1_at_10": oracles(reads, scoring),
        }
    result["readme_rows"] = readme_rows(result)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
