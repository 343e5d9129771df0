"""scripts/results_table.py: the README's results table round-trips from benchmarks/results."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.results_table import END, START, main

ENVIRONMENT = {
    "cpu": "AMD EPYC 7B13",
    "cores": 2,
    "gpu": None,
    "python": "3.11.9",
    "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0", "haystack-ai": "3.4.0"},
    "load_average": [2.5, 2.0, 1.0],
}
DEMO = {
    "machine": {"cpu": "x86_64", "cores": 2, "torch": "2.13.0+cpu", "threads": 2},
    "index": {"files": 46, "passages": 329, "seconds": 20.6, "passages_per_second": 16.0},
    "ask": {"questions": 40, "passages": 10, "p50_ms": 523.3, "p95_ms": 650.8},
}


STATED = {  # another benchmark that states its own rows
    "machine": {"cpu": "x86_64", "cores": 2, "gpu": None, "load_average_at_start": [9.0, 1, 1]},
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu", "faiss-cpu": "1.15.1"},
    "readme_rows": [
        {"what": "reindex speed", "number": "99 passages/s", "command": "python benchmarks/x.py"}
    ],
}


def _run(open_f1: float) -> dict[str, object]:
    answers = {"exact": 30.0, "f1": open_f1, "HasAns_f1": 50.0, "NoAns_f1": 20.0}
    return {
        "collection": {"contexts": 646, "passages": 700},
        "top_k": 10,
        "retrieval": {"recall@1": 0.5, "recall@5": 0.8, "recall@20": 0.9, "mrr": 0.62},
        "answers": answers,
        "latency_seconds": {"p50": 0.4321, "p95": 0.6},
    }


def _open_squad(open_f1: float) -> dict[str, object]:
    return {
        "benchmark": "open_squad",
        "command": "python benchmarks/bench_open_squad.py --questions 50",
        "questions_file": "dev-v2.0-half.json",
        "questions_in_file": 6078,
        "questions": 50,
        "sampled": True,
        "seed": 0,
        "top_k": 10,
        "reader": "/repo/data/reader",
        "closed": {"exact": 40.0, "f1": 45.5, "HasAns_f1": 60.0, "NoAns_f1": 30.0},
        "collections": {"own": _run(open_f1), "distractors": _run(open_f1 - 5)},
        "environment": ENVIRONMENT,
    }


def _setup(tmp_path: Path) -> tuple[Path, Path, str]:
    results = tmp_path / "results"
    results.mkdir()
    (results / "demo.json").write_text(json.dumps(DEMO), encoding="utf-8")
    (results / "open_squad.json").write_text(json.dumps(_open_squad(35.25)), encoding="utf-8")
    (results / "other.json").write_text("[1, 2]", encoding="utf-8")  # not a result: skipped
    (results / "stated.json").write_text(json.dumps(STATED), encoding="utf-8")
    before, after = "# Title\n\n## Results\n\nProse.\n\n", "\nMore prose.\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"{before}{START}\n| old | table |\n{END}\n{after}", encoding="utf-8")
    return readme, results, before


def test_results_table_round_trip_and_check(tmp_path: Path) -> None:
    readme, results, before = _setup(tmp_path)
    paths = ["--readme", str(readme), "--results", str(results)]
    assert main([*paths, "--check"]) == 1  # the hand-written table is stale

    assert main(paths) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(before + START) and text.endswith(f"{END}\n\nMore prose.\n")
    table = text[text.index(START) : text.index(END)]
    assert "| old | table |" not in table
    assert "46 files, 329 passages, 20.6 s" in table and "p50 523 ms, p95 651 ms" in table
    assert "EM 40.00, F1 45.50 (HasAns F1 60.00, NoAns F1 30.00)" in table
    assert "recall@1 0.500, recall@5 0.800, recall@20 0.900, MRR 0.620" in table
    assert "F1 35.25" in table and "F1 30.25" in table and "p50 432 ms" in table
    assert "50 of 6,078 questions, seed 0" in table
    # Every row names its hardware and versions, and the command that measured it.
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 2 + 1 + 3  # header, demo, stated, open SQuAD
    assert (
        "| reindex speed | 99 passages/s | x86_64, 2 cores, no GPU; Python 3.11.7, "
        "torch 2.13.0+cpu, faiss-cpu 1.15.1; load average 9.0 | `python benchmarks/x.py` |"
    ) in rows
    for row in rows[1:]:
        assert "2 cores" in row and "torch 2.13.0+cpu" in row and "`python benchmarks/" in row
    assert "AMD EPYC 7B13, 2 cores, no GPU; Python 3.11.9" in table
    assert "haystack-ai 3.4.0; load average 2.5" in table
    assert main([*paths, "--check"]) == 0

    # A new result makes the README stale again; regenerating is idempotent.
    (results / "open_squad.json").write_text(json.dumps(_open_squad(36.0)), encoding="utf-8")
    assert main([*paths, "--check"]) == 1
    assert main(paths) == 0 and main([*paths, "--check"]) == 0
    assert "F1 36.00" in readme.read_text(encoding="utf-8")


def test_results_table_needs_the_markers(tmp_path: Path) -> None:
    readme, results, _ = _setup(tmp_path)
    readme.write_text("# No markers\n", encoding="utf-8")
    assert main(["--readme", str(readme), "--results", str(results)]) == 2
    assert readme.read_text(encoding="utf-8") == "# No markers\n"


def test_readme_results_table_is_up_to_date() -> None:
    assert main(["--check"]) == 0, "run: python scripts/results_table.py"
