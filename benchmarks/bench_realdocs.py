"""Answers over a real collection nobody here wrote: the SQLite documentation (Debian's
``sqlite3-doc``, 766 HTML pages), with labeled questions committed in
``data/realdocs/sqlite-doc.jsonl`` (the documentation itself is installed with apt, not copied).

Each label names its page (``page``: the path under ``/usr/share/doc/sqlite3``), the question,
the answer copied verbatim from the page's converted text, and the kind of content it sits in
(prose, list, table, code); about a fifth are plausible questions the documentation does not
answer (``page`` and ``answer`` null). ``--check-labels`` converts every labeled page with
DocQA's converter and fails unless each answer occurs in its page's text.

A run indexes the documentation (into ``--home``, reused and updated incrementally), then asks
every question in-process (warm: one question first) and reports, beside the Haystack reference
pipeline with the same passages, embedder and reader weights (``benchmarks/bench_reference.py``,
in its own venv; ``--no-reference`` skips it): top-1 EM/F1 (SQuAD normalization; "no answer" is
right only on unanswerable questions), ask latency p50/p95; and for DocQA also the recall@k of
the gold page among the retrieved passages (k = 1, 3, 5, 10, 20), the top-5 hit rate (one of the
top 5 answers overlaps the gold answer with F1 >= 0.5), no-answer accuracy on the unanswerable
questions, the share of answerable questions wrongly declined, and F1 per kind of content.
Prints tables, writes JSON with README rows.

    python benchmarks/bench_realdocs.py --check-labels
    python benchmarks/bench_realdocs.py [--questions N] [--home DIR] [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment
from evaluation.squad import Answer, SquadExample
from pipelines.backend_choice import MEASURE_ENV

# The reader backend "auto" would measure this CPU in the background of the first reader load,
# in this process and in every child with a fresh home, sharing the CPU with the timed indexing
# and questions: the fixed rule instead (bf16 torch where the CPU has native bf16, else int8).
os.environ.setdefault(MEASURE_ENV, "0")

LABELS = REPO_ROOT / "data" / "realdocs" / "sqlite-doc.jsonl"
DOCS = Path("/usr/share/doc/sqlite3")
PACKAGE = "sqlite3-doc"
KS = (1, 3, 5, 10, 20)
HIT_F1 = 0.5


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def ensure_docs(docs: Path) -> Path:
    """The documentation folder; installs the Debian package when missing and allowed."""
    if docs.is_dir() and any(docs.glob("*.html")):
        return docs
    if docs == DOCS and shutil.which("apt-get") and os.geteuid() == 0:
        print(f"installing {PACKAGE} with apt-get", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", PACKAGE], check=True)
        if any(docs.glob("*.html")):
            return docs
    raise SystemExit(f"no SQLite documentation in {docs}: run `sudo apt-get install {PACKAGE}`")


def page_texts(docs: Path, pages: set[str]) -> dict[str, str]:
    from indexer.convert import convert_file

    return {page: convert_file(docs / page).text for page in sorted(pages)}


def check_labels(labels: list[dict[str, Any]], docs: Path) -> dict[str, Any]:
    """Every answer occurs verbatim in its page's converted text; the labels' spread."""
    texts = page_texts(docs, {r["page"] for r in labels if r["page"]})
    problems = []
    seen: set[str] = set()
    for r in labels:
        if r["question"] in seen:
            problems.append(f"{r['id']}: duplicate question")
        seen.add(r["question"])
        if (r["page"] is None) != (r["answer"] is None):
            problems.append(f"{r['id']}: page and answer must both be null or both be set")
        elif r["page"] is not None and r["answer"] not in texts[r["page"]]:
            problems.append(f"{r['id']}: answer {r['answer']!r} is not in {r['page']}")
    kinds: dict[str, int] = defaultdict(int)
    for r in labels:
        kinds[r["kind"]] += 1
    answerable = [r for r in labels if r["page"]]
    return {
        "questions": len(labels),
        "answerable": len(answerable),
        "unanswerable_share": round(1 - len(answerable) / max(1, len(labels)), 3),
        "pages": len({r["page"] for r in answerable}),
        "kinds": dict(sorted(kinds.items())),
        "problems": problems,
    }


def examples_from(labels: list[dict[str, Any]], texts: dict[str, str]) -> list[SquadExample]:
    """The labels as SquadExamples whose context is the gold page's text ("" if none)."""
    out = []
    for r in labels:
        context = texts.get(r["page"], "") if r["page"] else ""
        answers = (Answer(r["answer"], context.index(r["answer"])),) if r["page"] else ()
        out.append(SquadExample(r["id"], r["page"] or "", context, r["question"], answers))
    return out


def docqa_details(
    settings: Any, labels: list[dict[str, Any]], examples: list[SquadExample], docs: Path
) -> dict[str, Any]:
    """Retrieval recall of the gold page, top-5 hits, no-answer accuracy, F1 per kind."""
    from evaluation.reader_metrics import compute_f1
    from pipelines.query import QueryService

    service = QueryService(settings)
    recall = {k: 0 for k in KS}
    hits = declined = 0
    no_answer_right = 0
    per_kind: dict[str, list[float]] = defaultdict(list)
    per_question: list[dict[str, Any]] = []  # for reading the errors, not for the summary
    for r, ex in zip(labels, examples, strict=True):
        results = service.ask(ex.question)
        top = results[0].answer if results else None
        record = {
            "id": r["id"],
            "kind": r["kind"],
            "gold": r["answer"],
            "answer": top,
            "answer_source": results[0].document if top is not None else None,
        }
        per_question.append(record)
        if r["page"] is None:
            no_answer_right += top is None
            per_kind["unanswerable"].append(1.0 if top is None else 0.0)
            continue
        gold = r["answer"]
        declined += top is None
        record["f1"] = round(compute_f1(gold, top or ""), 3)
        per_kind[r["kind"]].append(record["f1"])
        answers = [a.answer for a in results if a.answer is not None][:5]
        hits += any(compute_f1(gold, a) >= HIT_F1 for a in answers)
        sources = [d.meta.get("source", "") for d in service.retrieve(ex.question, top_k=max(KS))]
        gold_source = f"{docs.name}/{r['page']}"  # how the indexer names a page of that folder
        rank = next((i for i, s in enumerate(sources) if s == gold_source), None)
        record["gold_page_rank"] = None if rank is None else rank + 1
        for k in KS:
            recall[k] += rank is not None and rank < k
    answerable = sum(1 for r in labels if r["page"])
    unanswerable = len(labels) - answerable
    return {
        "recall_at_k": {str(k): round(v / max(1, answerable), 3) for k, v in recall.items()},
        "top5_hit_rate": round(hits / max(1, answerable), 3),
        "no_answer_accuracy": round(no_answer_right / max(1, unanswerable), 3),
        "answerable_declined": round(declined / max(1, answerable), 3),
        "f1_by_kind": {k: round(100 * statistics.fmean(v), 1) for k, v in sorted(per_kind.items())},
        "per_question": per_question,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--check-labels", action="store_true", help="verify the labels and stop")
    parser.add_argument("--questions", type=int, default=0, help="first N questions (0: all)")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "docqa-realdocs")
    parser.add_argument("--reader", default=None, help="default: the shipped reader")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument(
        "--max-seq-length", type=int, default=0, help="reader windows of N tokens (0: its own)"
    )
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "realdocs.json"
    )
    args = parser.parse_args()
    docs = ensure_docs(args.docs)
    labels = load_labels(args.labels)
    report = check_labels(labels, docs)
    print(
        f"labels: {report['questions']} questions ({report['answerable']} answerable, "
        f"{report['unanswerable_share']:.0%} unanswerable) over {report['pages']} pages; "
        f"kinds {report['kinds']}"
    )
    for problem in report["problems"]:
        print(f"  {problem}")
    if report["problems"]:
        raise SystemExit(f"{len(report['problems'])} label problems")
    if args.check_labels:
        return
    if args.questions:
        labels = labels[: args.questions]

    import bench_reference as ref

    from indexer.run import index_folder
    from pipelines.settings import SHIPPED_READER, Settings

    reader = str(Path(args.reader or SHIPPED_READER).resolve())
    texts = page_texts(docs, {r["page"] for r in labels if r["page"]})
    examples = examples_from(labels, texts)
    settings = Settings(
        home=args.home,
        reader_model=reader,
        top_k_passages=args.top_k,
        reader_max_seq_length=args.max_seq_length or None,
    )
    started = time.perf_counter()
    summary = index_folder([docs], settings)
    print(f"indexed: {summary.describe()}")
    index_seconds = time.perf_counter() - started

    result: dict[str, Any] = {
        "benchmark": "realdocs",
        "collection": f"{PACKAGE} ({docs})",
        "labels": {k: v for k, v in report.items() if k != "problems"},
        "environment": environment(),
        "cpu": cpu_description(),
        "reader": reader,
        "top_k_passages": args.top_k,
        "reader_max_seq_length": settings.reader_max_seq_length,
        "index": {
            "documents": summary.total_documents,
            "passages": summary.total_passages,
            "seconds": round(index_seconds, 1),
        },
    }
    details = docqa_details(settings, labels, examples, docs)
    result["docqa_details"] = details
    if args.reference:
        ref_args = argparse.Namespace(
            reader=reader, top_k=args.top_k, docqa_modes="default", qa_pipeline=False,
            venv=ref.REFERENCE_VENV,
        )  # fmt: skip
        python = ref.ensure_reference_venv(ref.REFERENCE_VENV, False)
        with tempfile.TemporaryDirectory(prefix="bench-realdocs-") as tmp:
            side = ref.run_collection(
                "realdocs", docs, examples, python, ref_args, Path(tmp), gold_passages=False
            )
        result["side_by_side"] = side
    else:
        from pipelines.query import QueryService

        service = QueryService(settings)
        service.ask(examples[0].question)
        seconds, top = [], {}
        for ex in examples:
            t = time.perf_counter()
            results = service.ask(ex.question)
            seconds.append(time.perf_counter() - t)
            top[ex.id] = (results[0].answer or "") if results else ""
        result["docqa_only"] = {**ref.metrics(examples, top), **ref.latency(seconds)}
    # Written before the rows are derived, so a mistake there cannot lose a long run.
    write_result(args.out, result)
    rows = readme_rows(result, args)
    result["readme_rows"] = rows
    write_result(args.out, result)
    print(f"CPU: {result['cpu']}")
    for row in rows:
        print(f"{row['what']}: {row['number']}")


def readme_rows(result: dict[str, Any], args: argparse.Namespace) -> list[dict[str, str]]:
    d = result["docqa_details"]
    n = result["labels"]["questions"] if not args.questions else args.questions
    pages = result["index"]["documents"]
    what = f"real collection: SQLite documentation ({pages} pages), {n} questions"
    side = result.get("side_by_side")
    if side:
        ours = next(iter(side["docqa"].values()))  # the one mode run: the product's default
        theirs = side["reference"]
        number = (
            f"DocQA top-1 F1 {ours['f1']:.1f} (EM {ours['em']:.1f}), p50 {ours['p50_ms']:.0f} ms, "
            f"p95 {ours['p95_ms']:.0f} ms; Haystack reference F1 {theirs['f1']:.1f} "
            f"(EM {theirs['em']:.1f}), p50 {theirs['p50_ms']:.0f} ms"
        )
    else:
        ours = result["docqa_only"]
        number = (
            f"DocQA top-1 F1 {ours['f1']:.1f} (EM {ours['em']:.1f}), p50 {ours['p50_ms']:.0f} ms"
        )
    recall = d["recall_at_k"]
    number += (
        f"; gold page recall@1/5/10 {recall['1']:.2f}/{recall['5']:.2f}/{recall['10']:.2f}, "
        f"top-5 hit {d['top5_hit_rate']:.2f}, no-answer accuracy {d['no_answer_accuracy']:.2f}"
    )
    command = "python benchmarks/bench_realdocs.py" + (
        f" --questions {args.questions}" if args.questions else ""
    )
    return [{"what": what, "number": number, "command": command}]


if __name__ == "__main__":
    main()
