"""Ranking answers across passages: each idea measured on three sets before it is kept.

The sets: the real collection (the SQLite documentation and its 160 labels,
``bench_realdocs.py``), the demo collection's dev pairs, and open SQuAD with distractors (a fixed
sample of ``dev-v2.0-half`` questions over the 2,067 contexts of ``dev-v1.1``). Each question is
retrieved and read once (the top ``--top-k`` passages, every candidate span kept); each variant
then ranks the same candidates with :func:`pipelines.spans.rank_answers`, as the query pipeline
would, so the differences are the variants' and not the machine's.

Variants, each changing one thing from the reader's own ranking (``docqa_reader.json``):

* ``retriever weight w``: the share of the retriever's score in an answer's score;
* ``null scope``: "no answer" judged per passage window or once per question;
* ``pooling``: the same answer text found in several passages combines its evidence (noisy-or);
* ``rank prior c``: margins of the passage retrieved r-th lowered by ``c * ln(r)``;
* ``dedup``: near-duplicate passages (word 4-gram Jaccard >= 0.8) dropped before ranking;
* ``k``: fewer passages read;
* ``cascade``: read the best 3 passages, stop when the top answer (or "no answer") scores at
  least a bar, else read all; reported with the share of passages read;
* ``spans as the model cut them``: answers not widened to whole words and code tokens
  (``ReaderConfig.whole_words`` off; the same reads, widened afterwards for the others).

Prints a table (top-1 F1 per set, and their mean) and writes JSON with README rows. Passage size
and structure splitting need their own indexes: ``--split-words N`` indexes every set anew with
passages of N words (``--split-sections``: a heading starts a new passage). ``--splits
200,150,100,sections`` compares splittings side by side instead (the reader's own ranking, each
set indexed anew per splitting; ``200`` is today's default) and writes
``benchmarks/results/passage_splits.json``. ``--k-curve 1,3,5,10,20`` reads the most passages
once and plots top-1 F1 (overall, HasAns, NoAns) against the passages read on every set, with
the reader's own ranking, the other null scope and each rank prior
(``benchmarks/results/answer_ranking_k.json``, ``plots/answer_ranking/f1_vs_k.png``).

    python benchmarks/bench_answer_ranking.py [--reader PATH] [--open-questions 300]
        [--top-k 10] [--split-words N] [--split-sections] [--splits LIST] [--k-curve LIST]
        [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.end_to_end import (
    AnswerRanking,
    PassageRead,
    answer_at_k,
    contexts_of,
    index_collection,
    index_contexts,
    rank_reads,
    read_passages,
    sample_examples,
)
from evaluation.environment import cpu_description, environment
from evaluation.reader_metrics import squad_metrics
from evaluation.squad import SquadExample, load_squad
from pipelines.settings import DEMO_COLLECTION, SHIPPED_READER, Settings
from pipelines.spans import widen_candidates

SQUAD = REPO_ROOT.parent / "shared" / "data" / "squad"
DEMO_DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
WEIGHTS = (0.0, 0.3, 0.5, 0.7, 0.9)
DUPLICATE_JACCARD = 0.8
CASCADE_SCORES = (0.6, 0.7, 0.8, 0.9)
RANK_PRIORS = (0.5, 1.0, 2.0)


def _shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def drop_near_duplicates(reads: list[PassageRead]) -> list[PassageRead]:
    """The passages, best first, without any that nearly repeats a better one."""
    kept: list[tuple[PassageRead, set[tuple[str, ...]]]] = []
    for read in reads:
        grams = _shingles(read.content)
        if any(len(grams & g) / max(1, len(grams | g)) >= DUPLICATE_JACCARD for _, g in kept):
            continue
        kept.append((read, grams))
    return [read for read, _ in kept]


def load_sets(
    args: argparse.Namespace, reader: str
) -> dict[str, tuple[list[SquadExample], Settings]]:
    """Each set's questions and the settings of its indexed collection (indexed if needed)."""
    import bench_realdocs as realdocs

    split: dict[str, Any] = {"split_words": args.split_words} if args.split_words else {}
    if args.split_sections:
        split["split_sections"] = True
    name = f"split-{args.split_words or 'default'}" + ("-sections" if args.split_sections else "")
    work = args.work / (name if split else "default")
    base = Settings(reader_model=reader, top_k_passages=args.top_k, **split)
    sets: dict[str, tuple[list[SquadExample], Settings]] = {}

    docs = realdocs.ensure_docs(realdocs.DOCS)
    labels = realdocs.load_labels()
    texts = realdocs.page_texts(docs, {r["page"] for r in labels if r["page"]})
    home = args.realdocs_home if not split else work / "realdocs"
    settings = base.with_(home=home)
    index_collection([docs], settings, progress=True)
    sets["realdocs"] = (realdocs.examples_from(labels, texts), settings)

    settings = base.with_(home=work / "demo")
    index_collection([DEMO_COLLECTION], settings, progress=True)
    sets["demo"] = (load_squad(DEMO_DEV)[0], settings)

    questions, _ = load_squad(SQUAD / "dev-v2.0-half.json", drop_duplicates=False)
    distractors, _ = load_squad(SQUAD / "dev-v1.1.json")
    settings = base.with_(home=work / "open-squad")
    index_contexts(contexts_of(distractors), settings, progress=True)
    sets["open SQuAD"] = (sample_examples(questions, args.open_questions, seed=0), settings)
    return sets


def read_all(
    examples: list[SquadExample], settings: Settings, top_k: int
) -> tuple[dict[str, list[PassageRead]], Any, float]:
    """Every question retrieved and read once; returns the reads, the predictor, seconds."""
    from tqdm import tqdm

    from pipelines.query import QueryService

    service = QueryService(settings)
    predictor = service.reader_predictor
    started = time.perf_counter()
    reads = {
        ex.id: read_passages(
            predictor, ex.question, service.retrieve(ex.question, top_k=top_k), whole_words=False
        )
        for ex in tqdm(examples, desc=f"reading {settings.home.name}", unit="q")
    }
    return reads, predictor, time.perf_counter() - started


RAW_SPANS = "spans as the model cut them"


def widened(reads: dict[str, list[PassageRead]], predictor: Any) -> dict[str, list[PassageRead]]:
    """The reads as the reader answers them: widened to whole words when its config says so."""
    config = predictor.config
    if not config.whole_words:
        return reads
    return {
        qid: [
            replace(
                r,
                candidates=tuple(
                    widen_candidates(r.candidates, r.content, config.max_answer_chars)
                ),
            )
            for r in passage_reads
        ]
        for qid, passage_reads in reads.items()
    }


def cascade_answer(
    reads: list[PassageRead],
    first: int,
    k: int,
    min_score: float,
    score: Any,
    ranking: AnswerRanking,
) -> tuple[str, int]:
    """A cascade: read the best ``first`` passages; when their top answer (or "no answer")
    scores at least ``min_score``, stop there, else read all ``k``. Returns the answer and the
    passages read."""
    ranked, no_answer = rank_reads(reads, first, score, ranking)
    top = max([r.score for r in ranked[:1]] + [no_answer])
    if top >= min_score:
        return answer_at_k(reads, first, score, ranking) or "", len(reads[:first])
    return answer_at_k(reads, k, score, ranking) or "", len(reads[:k])


Shown = list[tuple[float, int | None, int | None, int | None]]


def shown_answers(
    reads: list[PassageRead], n: int, shown: int, score: Any, ranking: AnswerRanking
) -> Shown:
    """The ``shown`` best answers reading the first ``n`` passages, as (score, passage, start,
    end); passage None: "no answer" (which competes for the places, as in ExtractiveReader)."""
    ranked, no_answer = rank_reads(reads, n, score, ranking)
    top = [(c.score or 0.0, c.pair, c.start_char, c.end_char) for c in ranked]
    return sorted([*top, (no_answer, None, None, None)], key=lambda a: -a[0])[:shown]


def exact_stop(
    reads: list[PassageRead], k: int, shown: int, score: Any, ranking: AnswerRanking
) -> tuple[Shown, int]:
    """Reading passages in retrieval order and stopping as soon as no unread passage can change
    the ``shown`` best answers: a span scores at most ``(1 - w) + w * retriever`` (the reader's
    confidence is below 1) and "no answer" only falls as more is read, so once the ``shown``-th
    best is a span scoring above that bound for every unread passage, the list is settled (with
    the reader's own ranking: window null, max pooling). Returns those answers and the passages
    read."""
    w = ranking.retriever_weight
    last = min(k, len(reads))
    for n in range(1, last):
        top = shown_answers(reads, n, shown, score, ranking)
        bound = max((1 - w) + w * r.retriever_score for r in reads[n:last])
        if len(top) == shown and all(a[1] is not None for a in top) and top[-1][0] > bound:
            return top, n
    return shown_answers(reads, last, shown, score, ranking), last


def variants(shipped: AnswerRanking, top_k: int) -> list[tuple[str, AnswerRanking, int, bool]]:
    """(name, ranking, k, drop near-duplicates) for each variant."""
    out = [("the reader's own ranking", shipped, top_k, False)]
    out += [
        (f"retriever weight {w:g}", replace(shipped, retriever_weight=w), top_k, False)
        for w in WEIGHTS
        if w != shipped.retriever_weight
    ]
    other_scope = "question" if shipped.null_scope == "window" else "window"
    out.append(
        (f"null scope {other_scope}", replace(shipped, null_scope=other_scope), top_k, False)
    )
    out.append(("pooling noisy-or", replace(shipped, answer_pooling="noisy_or"), top_k, False))
    out += [
        (f"rank prior {c:g}", replace(shipped, rank_prior=c), top_k, False)
        for c in RANK_PRIORS
        if c != shipped.rank_prior
    ]
    out.append(("near-duplicates dropped", shipped, top_k, True))
    out.append((RAW_SPANS, shipped, top_k, False))
    out += [(f"k {k}", shipped, k, False) for k in (1, 3, 5) if k < top_k]
    return out


def _short(reader: str) -> str:
    """A reader folder as its last two path parts (``data/reader``)."""
    return "/".join(Path(reader).parts[-2:])


def _result_file(
    args: argparse.Namespace, benchmark: str, reader: str
) -> tuple[Path, dict[str, Any]]:
    """Where a side comparison writes (beside the default result file, named for it) and the
    head of its JSON."""
    out = args.out
    if out.name == "answer_ranking.json":
        out = out.with_name(f"{benchmark}.json")
    head = {"benchmark": benchmark, "cpu": cpu_description(), "environment": environment()}
    return out, head | {"reader": reader}


def compare_splits(args: argparse.Namespace, reader: str) -> None:
    """Top-1 F1 (the reader's own ranking) and passage counts per splitting, on every set."""
    default_words = Settings().split_words
    table: dict[str, dict[str, Any]] = {}
    for spec in [s.strip() for s in args.splits.split(",") if s.strip()]:
        words = default_words if spec == "sections" else int(spec)
        args.split_words = 0 if words == default_words else words
        args.split_sections = spec == "sections"
        row: dict[str, Any] = {}
        for name, (examples, settings) in load_sets(args, reader).items():
            raw, predictor, seconds = read_all(examples, settings, args.top_k)
            reads = widened(raw, predictor)
            ranking = predictor.config.ranking
            predictions = {
                qid: answer_at_k(r, args.top_k, predictor.score, ranking) or ""
                for qid, r in reads.items()
            }
            from pipelines.store import PassageStore

            store = PassageStore.load(settings.index_dir)
            row[name] = {
                "f1": round(squad_metrics(examples, predictions)["f1"], 2),
                "passages": store.count_documents(),
                "ms_per_question": round(1000 * seconds / max(1, len(examples)), 1),
            }
            store.close()
        row["mean_f1"] = round(sum(v["f1"] for v in row.values()) / len(row), 2)
        label = f"{words} words" + (", sections" if spec == "sections" else "")
        table[label] = row
        print(label, json.dumps(row), flush=True)
    base = table.get(f"{default_words} words")
    sets = [k for k in next(iter(table.values())) if k != "mean_f1"]
    helps = [
        label
        for label, row in table.items()
        if base is not None and row is not base and all(row[n]["f1"] > base[n]["f1"] for n in sets)
    ]
    print(f"CPU: {cpu_description()}; reader {reader}; top {args.top_k} passages")
    print(f"{'splitting':24}" + "".join(f"{n:>14}" for n in sets) + f"{'mean':>8}")
    for label, row in table.items():
        cells = "".join(f"{row[n]['f1']:>7.2f} ({row[n]['passages']:>5})" for n in sets)
        print(f"{label:24}{cells}{row['mean_f1']:>8.2f}")
    print("helps on all three sets:", ", ".join(helps) or "nothing")
    out, result = _result_file(args, "passage_splits", reader)
    result |= {
        "top_k": args.top_k,
        "splits": table,
        "helps_on_all_sets": helps,
        "readme_rows": [
            {
                "what": f"passage splitting ({', '.join(sets)}; top-1 F1, top {args.top_k}, "
                "(passages))",
                "number": "; ".join(
                    f"{label}: "
                    + " / ".join(f"{row[n]['f1']:.1f} ({row[n]['passages']})" for n in sets)
                    for label, row in table.items()
                )
                + f"; helps on all three: {', '.join(helps) or 'nothing'}",
                "command": f"python benchmarks/bench_answer_ranking.py --splits {args.splits}",
            }
        ],
    }
    write_result(out, result)


def k_curve(args: argparse.Namespace, reader: str) -> None:
    """Top-1 F1 against passages read, every set, from one read of the most passages."""
    from evaluation.plots import plot_f1_vs_k

    ks = sorted({int(k) for k in args.k_curve.split(",") if k.strip()})
    sets = load_sets(args, reader)
    curves: dict[str, dict[str, list[dict[str, float]]]] = {}
    shipped: AnswerRanking | None = None
    for name, (examples, settings) in sets.items():
        raw, predictor, _ = read_all(examples, settings, ks[-1])
        reads = widened(raw, predictor)
        shipped = predictor.config.ranking
        other = "question" if shipped.null_scope == "window" else "window"
        rankings = [
            (f"null scope {shipped.null_scope} (the reader's)", shipped),
            (f"null scope {other}", replace(shipped, null_scope=other)),
        ]
        rankings += [(f"rank prior {c:g}", replace(shipped, rank_prior=c)) for c in RANK_PRIORS]
        for label, ranking in rankings:
            for k in ks:
                predictions = {
                    qid: answer_at_k(r, k, predictor.score, ranking) or ""
                    for qid, r in reads.items()
                }
                m = squad_metrics(examples, predictions)
                point = {"k": k, "f1": round(m["f1"], 2)}
                point |= {s: round(m[f"{s}_f1"], 2) for s in ("HasAns", "NoAns") if f"{s}_f1" in m}
                curves.setdefault(name, {}).setdefault(label, []).append(point)
    assert shipped is not None
    print(f"CPU: {cpu_description()}; reader {reader}")
    print(f"{'set':12}{'ranking':34}" + "".join(f"{'k=' + str(k):>9}" for k in ks))
    for name, by_label in curves.items():
        for label, points in by_label.items():
            print(f"{name:12}{label:34}" + "".join(f"{p['f1']:>9.2f}" for p in points))
    own = {name: next(iter(by_label.values())) for name, by_label in curves.items()}
    # "Falls": some k scores lower than a smaller k did.
    falls = [
        name
        for name, points in own.items()
        if any(p["f1"] < max(q["f1"] for q in points[:i]) for i, p in enumerate(points) if i)
    ]
    print("F1 falls with more passages on:", ", ".join(falls) or "no set")
    plot = REPO_ROOT / "benchmarks" / "results" / "plots" / "answer_ranking" / "f1_vs_k.png"
    plot_f1_vs_k(curves, plot, title=f"Top-1 F1 vs passages read, reader {_short(reader)}")
    out, result = _result_file(args, "answer_ranking_k", reader)
    result |= {
        "shipped_ranking": shipped.__dict__,
        "ks": ks,
        "curves": curves,
        "falls_on": falls,
        "plot": str(plot.relative_to(REPO_ROOT)),
        "readme_rows": [
            {
                "what": "top-1 F1 by passages read, k = "
                + " / ".join(map(str, ks))
                + " (reader's own ranking)",
                "number": "; ".join(
                    f"{name}: " + " / ".join(f"{p['f1']:.1f}" for p in points)
                    for name, points in own.items()
                )
                + f"; falls with k on: {', '.join(falls) or 'no set'}",
                "command": f"python benchmarks/bench_answer_ranking.py --k-curve {args.k_curve}",
            }
        ],
    }
    write_result(out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", default=None, help="default: the shipped reader")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--open-questions", type=int, default=300)
    parser.add_argument("--split-words", type=int, default=0, help="index anew with N words")
    parser.add_argument("--split-sections", action="store_true", help="a heading starts a passage")
    parser.add_argument("--splits", default="", help="compare splittings, e.g. 200,100,sections")
    parser.add_argument(
        "--k-curve", default="", help="plot F1 against passages read, e.g. 1,3,5,10,20"
    )
    parser.add_argument(
        "--realdocs-home", type=Path, default=Path(tempfile.gettempdir()) / "docqa-realdocs"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "docqa-answer-ranking"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "answer_ranking.json"
    )
    args = parser.parse_args()
    reader = str(Path(args.reader or SHIPPED_READER).resolve())
    if args.splits:
        compare_splits(args, reader)
        return
    if args.k_curve:
        k_curve(args, reader)
        return
    sets = load_sets(args, reader)

    table: dict[str, dict[str, float]] = {}
    sizes: dict[str, dict[str, Any]] = {}
    passages_read: dict[str, dict[str, float]] = {}
    stops: dict[str, dict[str, dict[str, float]]] = {"top 1 shown": {}, "top 3 shown": {}}
    shipped: AnswerRanking | None = None
    for name, (examples, settings) in sets.items():
        raw, predictor, seconds = read_all(examples, settings, args.top_k)
        reads = widened(raw, predictor)
        shipped = predictor.config.ranking
        sizes[name] = {
            "questions": len(examples),
            "unanswerable": sum(1 for ex in examples if not ex.answers),
            "read_seconds": round(seconds, 1),
        }
        for label, ranking, k, dedup in variants(shipped, args.top_k):
            source = raw if label == RAW_SPANS else reads
            predictions = {
                qid: answer_at_k(
                    drop_near_duplicates(r) if dedup else r, k, predictor.score, ranking
                )
                or ""
                for qid, r in source.items()
            }
            table.setdefault(label, {})[name] = round(squad_metrics(examples, predictions)["f1"], 2)
        # Cascades: the share of passages read is what the reader's time scales with.
        passages = max(1, sum(len(r[: args.top_k]) for r in reads.values()))
        for first in (3,):
            for min_score in CASCADE_SCORES:
                label = f"cascade {first} then {args.top_k}, stop at {min_score:g}"
                answers, read = {}, 0
                for qid, r in reads.items():
                    answers[qid], n = cascade_answer(
                        r, first, args.top_k, min_score, predictor.score, shipped
                    )
                    read += n
                table.setdefault(label, {})[name] = round(squad_metrics(examples, answers)["f1"], 2)
                passages_read.setdefault(label, {})[name] = round(read / passages, 3)
        # Exact early stop: the same answers as reading all k (checked), fewer passages read.
        for shown in (1, 3):
            read = every = 0
            for r in reads.values():
                top, n = exact_stop(r, args.top_k, shown, predictor.score, shipped)
                assert top == shown_answers(r, args.top_k, shown, predictor.score, shipped)
                read += n
                every += n == len(r[: args.top_k])
            stops[f"top {shown} shown"][name] = {
                "share_of_passages_read": round(read / passages, 3),
                "share_of_questions_reading_all": round(every / max(1, len(reads)), 3),
            }
    for row in table.values():
        row["mean"] = round(sum(row.values()) / len(row), 2)

    names = [*sets, "mean"]
    print(f"CPU: {cpu_description()}; reader {reader}; top {args.top_k} passages")
    print(f"{'variant':36}" + "".join(f"{n:>12}" for n in names))
    base = table["the reader's own ranking"]
    for label, row in table.items():
        read = passages_read.get(label)
        share = f"  (passages read {read})" if read else ""
        print(f"{label:36}" + "".join(f"{row[n]:>12.2f}" for n in names) + share)
    helps = [
        label
        for label, row in table.items()
        if label != "the reader's own ranking" and all(row[n] > base[n] for n in sets)
    ]
    print("helps on all three sets:", ", ".join(helps) or "nothing")
    for label, row in stops.items():
        print(
            f"exact early stop, {label}: passages read "
            + ", ".join(
                f"{n} {v['share_of_passages_read']:.3f} (all {args.top_k}: "
                f"{v['share_of_questions_reading_all']:.0%} of questions)"
                for n, v in row.items()
            )
        )
    assert shipped is not None
    result = {
        "benchmark": "answer_ranking",
        "cpu": cpu_description(),
        "environment": environment(),
        "reader": reader,
        "top_k": args.top_k,
        "split_words": args.split_words or None,
        "shipped_ranking": shipped.__dict__,
        "sets": sizes,
        "top1_f1": table,
        "helps_on_all_sets": helps,
        "cascade_share_of_passages_read": passages_read,
        "exact_early_stop": stops,
        "readme_rows": [
            {
                "what": f"answer ranking across passages ({', '.join(sets)}; top {args.top_k}"
                + (f", {args.split_words}-word passages" if args.split_words else "")
                + ")",
                "number": f"reader's own ranking F1 {base['realdocs']:.1f} / {base['demo']:.1f} / "
                f"{base['open SQuAD']:.1f}; helps on all three: {', '.join(helps) or 'nothing'}",
                "command": "python benchmarks/bench_answer_ranking.py"
                + (f" --split-words {args.split_words}" if args.split_words else ""),
            }
        ],
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
