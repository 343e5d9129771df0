"""scripts/results_table.py: docs/results.md's table and the README's summary round-trip from
benchmarks/results."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scripts.results_table import (
    END,
    REPO_ROOT,
    START,
    SUMMARY,
    SUMMARY_END,
    SUMMARY_MAX_ROWS,
    SUMMARY_START,
    Row,
    cpu_kind,
    main,
    render,
    render_summary,
    renderer,
    rows_reference,
    rows_reference_store,
    rows_reindex,
    rows_retrieval,
    rows_scale,
    rows_serving,
)

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


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    results = tmp_path / "results"
    results.mkdir()
    (results / "demo.json").write_text(json.dumps(DEMO), encoding="utf-8")
    (results / "open_squad.json").write_text(json.dumps(_open_squad(35.25)), encoding="utf-8")
    (results / "other.json").write_text("[1, 2]", encoding="utf-8")  # not a result: skipped
    (results / "stated.json").write_text(json.dumps(STATED), encoding="utf-8")
    before, after = "# Results\n\nProse.\n\n", "\nMore prose.\n"
    table = tmp_path / "docs" / "results.md"
    table.parent.mkdir()
    table.write_text(f"{before}{START}\n| old | table |\n{END}\n{after}", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{SUMMARY_START}\n| old |\n{SUMMARY_END}\n", encoding="utf-8")
    return table, readme, results, before


def test_results_table_round_trip_and_check(tmp_path: Path) -> None:
    table_md, readme, results, before = _setup(tmp_path)
    paths = ["--table", str(table_md), "--readme", str(readme), "--results", str(results)]
    assert main([*paths, "--check"]) == 1  # the hand-written table is stale
    assert "| old | table |" in table_md.read_text(encoding="utf-8")  # --check writes nothing

    assert main(paths) == 0
    text = table_md.read_text(encoding="utf-8")
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
    assert "F1 36.00" in table_md.read_text(encoding="utf-8")


@pytest.mark.parametrize("lacking", ["table", "readme"])
def test_results_table_needs_the_markers(tmp_path: Path, lacking: str) -> None:
    table_md, readme, results, _ = _setup(tmp_path)
    broken, other = (table_md, readme) if lacking == "table" else (readme, table_md)
    other_text = other.read_text(encoding="utf-8")
    broken.write_text("# No markers\n", encoding="utf-8")
    args = ["--table", str(table_md), "--readme", str(readme), "--results", str(results)]
    assert main(args) == 2
    assert main([*args, "--check"]) == 2
    # Nothing is written when either file lacks its markers.
    assert broken.read_text(encoding="utf-8") == "# No markers\n"
    assert other.read_text(encoding="utf-8") == other_text


def test_results_table_and_readme_summary_are_up_to_date() -> None:
    assert main(["--check"]) == 0, "run: python scripts/results_table.py"


# -- the README's summary -------------------------------------------------------------------------


def _summary_rows(text: str) -> list[str]:
    section = text[text.index(SUMMARY_START) : text.index(SUMMARY_END)]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]


def test_every_summary_row_renders_from_the_repository_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 0 < len(SUMMARY) <= SUMMARY_MAX_ROWS
    summary = render_summary(REPO_ROOT / "benchmarks" / "results")
    assert "warning" not in capsys.readouterr().err  # no row left out
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(SUMMARY)
    kinds = {"Intel Xeon (AMX)", "AMD EPYC Zen 4"}
    for row in rows[1:]:
        what, number, cpu, source = (cell.strip() for cell in row.strip("|").split(" | "))
        assert what and number and cpu.startswith(("Intel Xeon", "AMD EPYC")), row
        assert source.startswith("[") and "](benchmarks/results/" in source, row
    # Speed per CPU kind: both kinds are named in the summary.
    assert kinds <= {row.split(" | ")[2] for row in rows[1:]}
    # The README carries exactly these rows.
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert _summary_rows(readme) == rows[1:]


def test_summary_numbers_come_from_the_json_files(tmp_path: Path) -> None:
    """A new result changes the README's summary; the numbers are the files' own."""
    results = tmp_path / "results"
    shutil.copytree(REPO_ROOT / "benchmarks" / "results", results)
    table_md = tmp_path / "results.md"
    table_md.write_text(f"{START}\n{END}\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"{SUMMARY_START}\n{SUMMARY_END}\n", encoding="utf-8")
    paths = ["--table", str(table_md), "--readme", str(readme), "--results", str(results)]
    assert main(paths) == 0 and main([*paths, "--check"]) == 0
    serving = json.loads((results / "serving_bf16.json").read_text(encoding="utf-8"))
    best = serving["backends"][serving["recommended_backend"]]
    row = next(r for r in _summary_rows(readme.read_text()) if "serving_bf16.json" in r)
    assert f"{best['windows_per_second']} windows/s ({best['speedup_vs_fp32']:.2f}x fp32)" in row
    assert "| Intel Xeon (AMX) |" in row

    realdocs = json.loads((results / "realdocs.json").read_text(encoding="utf-8"))
    realdocs["side_by_side"]["reference"]["f1"] = 12.34
    (results / "realdocs.json").write_text(json.dumps(realdocs), encoding="utf-8")
    assert main([*paths, "--check"]) == 1  # the summary is stale (the table too)
    assert main(paths) == 0 and main([*paths, "--check"]) == 0
    row = next(r for r in _summary_rows(readme.read_text()) if "realdocs.json" in r)
    assert " vs 12.3, p50 " in row


def test_a_summary_row_whose_file_is_gone_is_left_out_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "serving_bf16.json").write_text(json.dumps(SERVING), encoding="utf-8")
    summary = render_summary(tmp_path)
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2  # the header and the one row whose file is there
    assert "int8 20.9 windows/s (1.22x fp32), F1 62.42 (fp32 62.67)" in rows[1]
    err = capsys.readouterr().err
    assert err.count("left out") == len(SUMMARY) - 1


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (
            {"cpu": "Intel(R) Xeon(R) Processor, 2 cores, amx_bf16/avx512_bf16/avx2"},
            "Intel Xeon (AMX)",
        ),
        ({"machine": {"cpu": "AMD EPYC, 2 cores, avx512_bf16/avx512_vnni/avx2"}}, "AMD EPYC Zen 4"),
        (
            {"environment": {"description": "2-core AMD EPYC (AVX2 only), no GPU"}},
            "AMD EPYC (AVX2)",
        ),
        ({"environment": {"cpu": "AMD EPYC", "cpu_bf16": False}}, "AMD EPYC (AVX2)"),
        (
            {"environment": {"cpu": "Intel(R) Xeon(R) Processor", "cpu_bf16": True}},
            "Intel Xeon (bf16)",
        ),
        ({"hardware": {"cpu": "AMD EPYC"}}, "AMD EPYC"),
    ],
)
def test_cpu_kind(data: dict[str, Any], kind: str) -> None:
    assert cpu_kind(data) == kind


# -- the benchmark scripts' own layouts -----------------------------------------------------------

MACHINE = {"cpu": "AMD EPYC", "cores": 2, "load_average_at_start": [1.68, 1.0, 1.0]}


def _side(em: float, f1: float, p50: float, p95: float) -> dict[str, Any]:
    """One side of bench_reference.py: top answer, best span, latency (decoys differ)."""
    return {
        "em": em,
        "f1": f1,
        "n": 20,
        "best_span": {"em": em - 15, "f1": f1 - 10.5, "n": 20},
        "p50_ms": p50,
        "p95_ms": p95,
        "mean_ms": p50 + 17.7,
    }


def _reference_collection(ratio: float) -> dict[str, Any]:
    def embed(pps: float, seconds: float, disk: float) -> dict[str, Any]:
        return {
            "passages": 329,
            "seconds": seconds,
            "seconds_with_model_load": seconds + 5.4,
            "passages_per_second": pps,
            "disk_mb": disk,
            "peak_rss_mb": 918.4,
        }

    return {
        "questions": 20,
        "passages": 329,
        "top_k_passages": 10,
        "docqa": {
            "dense": {
                **_side(50.0, 63.8, 806.5, 1131.4),
                "latency_ratio_reference_over_docqa": {"p50": ratio, "p95": 0.33},
            },
            "hybrid+onnx-int8": {
                **_side(55.0, 65.81, 412.2, 598.9),
                "latency_ratio_reference_over_docqa": {"p50": 1.79, "p95": 0.44},
            },
        },
        "reference": {**_side(35.0, 46.21, 738.3, 1044.7), "peak_rss_mb": 836.2},
        "indexing": {
            "docqa_index_folder": {"passages": 329, "passages_per_second_with_model_load": 11.1},
            "docqa_embed_store": embed(18.3, 17.988, 1.21),
            "reference_embed_store": embed(14.8, 22.224, 3.65),
            "ratio_passages_per_second_reference_over_docqa": 0.81,
        },
    }


REFERENCE = {
    "machine": MACHINE,
    "environments": {
        "docqa": {"python": "3.11.7", "torch": "2.13.0+cpu", "faiss-haystack": "not installed"},
        "reference": {"python": "3.11.7", "torch": "2.13.0+cpu", "faiss-haystack": "3.0.0"},
    },
    "collections": {"demo": _reference_collection(0.92), "squad": _reference_collection(0.5)},
}

REFERENCE_STORE = {
    "versions": {"python": "3.11.7", "faiss-haystack": "3.0.0", "faiss-cpu": "1.15.1"},
    "passages": 100000,
    "dim": 384,
    "index_string": "Flat",
    "build_documents_seconds": 3.3,
    "write_seconds": 1.9,
    "save_seconds": 155.7,
    "load_seconds": 27.6,
    "disk_mb": 972.4,
    "filter": {
        "matches_fraction": 0.01,
        "queries": 50,
        "top_k": 10,
        "mean_returned": 1.06,
        "min_returned": 0,
        "full_top10_fraction": 0.04,
        "recall_at_10": 0.11,
        "p50_ms": 2.97,
    },
    "unfiltered_search_p50_ms": 2.68,
    "peak_rss_mb": 1290.3,
    "machine": MACHINE,
}


def _backend(f1: float, wps: float, speedup: float, df1: float) -> dict[str, Any]:
    return {
        "em": 47.5,
        "f1": f1,
        "windows_per_second": wps,
        "questions_per_second": 1.5,
        "speedup_vs_fp32": speedup,
        "f1_minus_fp32": df1,
        "same_answer_as_fp32": 0.85,
    }


SERVING = {
    "machine": {"cpu": "x86_64", "cores": 2, "python": "3.11.7", "onnxruntime": "1.32.0"},
    "data": {"file": "dev.json", "questions": 40, "windows": 446},
    "batch_size": 16,
    "repeats": 3,
    "backends": {
        "torch": _backend(62.67, 17.1, 1.0, 0.0),
        "int8": _backend(62.42, 20.9, 1.22, -0.25),
        "onnx-int8": _backend(61.02, 31.4, 1.84, -1.65),
    },
    "max_f1_drop": 0.5,
    "recommended_backend": "int8",
}


def _reindex_run(wall: float, embedded: int, files: int) -> dict[str, Any]:
    return {
        "wall_s": wall,
        "cpu_s": wall / 5,
        "files_indexed": files,
        "files_unchanged_skipped": 46 - files,
        "passages_embedded": embedded,
        "total_passages": 329,
    }


REINDEX = {
    "machine": MACHINE,
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu"},
    "reindex": {
        "files": 46,
        "edited_file": "faq/new-joiner-faq.md",
        "edited_file_passages": 5,
        "full": _reindex_run(237.18, 329, 46),
        "incremental": _reindex_run(9.37, 5, 1),
        "noop": _reindex_run(0.08, 0, 0),
        "speedup_incremental_vs_full": 25.3,
    },
    "embedding": {"passages": 329, "ratio_wall": 0.83},
}


def _retrieval_metrics(r10: float, mrr: float) -> dict[str, float]:
    return {"recall@1": 0.111, "recall@5": 0.555, "recall@10": r10, "recall@20": 0.999, "mrr": mrr}


RETRIEVAL = {
    "machine": {"cpu": "x86_64", "cores": 2, "gpu": None},
    "versions": {"python": "3.11.7", "torch": "2.13.0+cpu", "faiss-cpu": "1.15.1"},
    "sets": {
        "demo": {
            "questions": 149,
            "passages": 329,
            "metrics": {
                "dense": _retrieval_metrics(0.8725, 0.6163),
                "bm25": _retrieval_metrics(0.9732, 0.8263),
                "hybrid": _retrieval_metrics(0.9799, 0.7717),
                "hybrid depth 10": _retrieval_metrics(0.4242, 0.4343),
            },
        },
        "squad": {
            "questions": 2906,
            "passages": 646,
            "metrics": {"dense": _retrieval_metrics(0.9408, 0.761)},
        },
    },
}


def _scale_run(n: int, config: str, factory: str, full: bool) -> dict[str, Any]:
    return {
        "passages": n,
        "config": config,
        "through": "PassageStore",
        "index": {"kind": config, "factory": factory},
        "ingest_s": 59.72,
        "build_s": 34.37,
        "save_s": 1.45,
        "ingest_peak_added_mib": 111.1,
        "build_peak_added_mib": 4.4,
        "peak_added_mib": 223.8,
        "disk_bytes": {"vectors.faiss": 30880090, "total": 65893605},
        "load_s": 3.63,
        "load_peak_added_mib": 69.5,
        "search": {"p50_ms": 0.274, "p95_ms": 60.968, "recall_at_10": 0.9871},
        "retrieval": {"p50_ms": 0.718, "p95_ms": 159.532, "recall_at_10": 0.9871},
        "filtered_1pct": {
            "p50_ms": 139.509,
            "p95_ms": 309.341,
            "recall_at_10": 0.8123,
            "full_top_10": full,
            "min_results": 10 if full else 7,
        },
    }


SCALE = {
    "hardware": {"cpu": "AMD EPYC", "cores": 2, "faiss_threads": 2, "faiss": "1.15.1"},
    "data": "SYNTHETIC 384-d unit vectors from a Gaussian mixture. Not real embeddings.",
    "through": "PassageStore (SQLite + FAISS)",
    "runs": [
        _scale_run(100_000, "flat", "IDMap2,Flat", True),
        _scale_run(100_000, "ivf", "IVF512,Flat", True),
        _scale_run(100_000, "hnsw", "IDMap2,HNSW32,Flat", False),
    ],
}


def _numbers(rows: list[Row]) -> str:
    return "\n".join(" | ".join(row) for row in rows)


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        (REFERENCE, rows_reference),
        (REFERENCE_STORE, rows_reference_store),
        (SERVING, rows_serving),
        (REINDEX, rows_reindex),
        (RETRIEVAL, rows_retrieval),
        (SCALE, rows_scale),
    ],
)
def test_benchmark_files_have_renderers(
    data: dict[str, Any], rows: Callable[[dict[str, Any]], list[Row]]
) -> None:
    kind = renderer(json.loads(json.dumps(data)))
    assert kind is not None and kind[1] is rows
    for row in rows(data):
        assert len(row) == 4 and all(row)  # what, number, measured on, command
        assert "2 cores" in row[2] and row[3].startswith("`python benchmarks/bench_")


def test_rows_reference() -> None:
    rows = rows_reference(REFERENCE)
    assert len(rows) == 4  # answers and indexing, per collection
    answers, indexing = rows[0], rows[1]
    assert "demo: 20 questions, 329 passages, top 10 read" in answers[0]
    assert answers[1] == (
        "Haystack reference EM 35.0, F1 46.2, p50 738 ms, p95 1045 ms; "
        "DocQA dense EM 50.0, F1 63.8, p50 806 ms, p95 1131 ms (reference/DocQA p50 0.92x); "
        "DocQA hybrid+onnx-int8 EM 55.0, F1 65.8, p50 412 ms, p95 599 ms "
        "(reference/DocQA p50 1.79x)"
    )
    assert "squad:" in rows[2][0] and "(reference/DocQA p50 0.50x)" in rows[2][1]
    assert indexing[1] == (
        "DocQA 18.3 passages/s (18.0 s, 1.21 MB on disk); reference 14.8 passages/s "
        "(22.2 s, 3.65 MB); reference/DocQA 0.81x"
    )
    # DocQA's versions, then what only the reference venv has; "not installed" is never shown.
    assert answers[2] == (
        "AMD EPYC, 2 cores, no GPU; Python 3.11.7, torch 2.13.0+cpu; load average 1.7; "
        "reference venv: faiss-haystack 3.0.0"
    )
    assert answers[3] == "`python benchmarks/bench_reference.py --collections demo,squad`"


def test_rows_reference_store() -> None:
    [row] = rows_reference_store(REFERENCE_STORE)
    assert "100,000 synthetic passages (384-d random vectors)" in row[0]
    assert row[1] == (
        "save 155.7 s, load 27.6 s, disk 972.4 MB; filter matching 1%: 1.06 of top 10 returned "
        "on average, full top 10 in 4% of 50 queries (recall@10 0.11)"
    )
    assert "faiss-cpu 1.15.1, faiss-haystack 3.0.0" in row[2]
    assert row[3] == "`python benchmarks/bench_reference.py --collections none --scale 100000`"


def test_rows_serving() -> None:
    [row] = rows_serving(SERVING)
    assert "40 demo dev questions" in row[0] and "446 windows, batch 16, best of 3" in row[0]
    assert row[1] == (
        "torch fp32 17.1 windows/s, F1 62.67; int8 20.9 windows/s (1.22x fp32), F1 62.42 "
        "(-0.25); onnx-int8 31.4 windows/s (1.84x fp32), F1 61.02 (-1.65); "
        "recommended: int8 (fastest within 0.5 F1 of fp32)"
    )
    assert "onnxruntime 1.32.0" in row[2]


def test_rows_reindex() -> None:
    [row] = rows_reindex(REINDEX)
    assert "(46 files)" in row[0]
    assert row[1] == (
        "5 of 329 passages re-embedded, 9.37 s vs 237.18 s for a full index (25.3x faster); "
        "nothing changed: 0.08 s"
    )


def test_rows_retrieval() -> None:
    demo, squad = rows_retrieval(RETRIEVAL)
    assert "149 questions, 329 passages" in demo[0]
    assert demo[1] == (
        "dense recall@10 0.873, MRR 0.616; bm25 recall@10 0.973, MRR 0.826; "
        "hybrid recall@10 0.980, MRR 0.772"
    )  # the fusion variants stay in the JSON
    assert "SQuAD" in squad[0] and "2,906 questions, 646 passages" in squad[0]
    assert squad[1] == "dense recall@10 0.941, MRR 0.761"


def test_rows_scale() -> None:
    rows = rows_scale(SCALE)
    assert len(rows) == 3
    flat, _, hnsw = rows
    assert "100,000 passages, flat (IDMap2,Flat" in flat[0] and "synthetic embeddings" in flat[0]
    assert flat[1] == (
        "ingest 59.72 s + build 34.37 s, peak +224 MiB, disk 62.8 MiB, load 3.63 s; "
        "query p50 0.274 ms, p95 61 ms (0.718 ms p50 with the passages fetched), "
        "recall@10 0.987; 1% filter: full top 10 yes (recall@10 0.812)"
    )
    assert "hnsw (IDMap2,HNSW32,Flat" in hnsw[0] and "full top 10 no" in hnsw[1]
    assert flat[2] == "AMD EPYC, 2 cores, no GPU; faiss 1.15.1"
    assert flat[3] == "`python benchmarks/bench_scale.py --sizes 100000`"


def test_smoke_runs_are_skipped_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scale_smoke_20k.json").write_text(json.dumps(SCALE), encoding="utf-8")
    (tmp_path / "mystery.json").write_text("{}", encoding="utf-8")
    (tmp_path / "serving.json").write_text(json.dumps(SERVING), encoding="utf-8")
    table = render(tmp_path)
    assert "windows/s" in table and "passage index" not in table
    err = capsys.readouterr().err
    assert "mystery.json: not a known result file" in err and "smoke" not in err
