"""The Haystack reference pipeline, run inside ``.venv-reference`` by ``bench_reference.py``.

This file imports nothing from DocQA: it runs in its own virtual environment (haystack-ai with
faiss-haystack, sentence-transformers-haystack and transformers-haystack; faiss-haystack pins
numpy<2, which DocQA's environment cannot have). Input and output are JSON files.

``pipeline``: index the given passages (SentenceTransformersDocumentEmbedder ->
FAISSDocumentStore, saved to disk) and answer the given questions with
SentenceTransformersTextEmbedder -> FAISSEmbeddingRetriever -> TransformersExtractiveReader, one
``Pipeline.run`` per question, timed. Optionally reads gold (question, passage) pairs with the
reader alone, and with transformers' ``pipeline("question-answering")`` when an environment
that still has it is given (``--qa-pipeline-path``: transformers 4.x, layered on this one).

``store-scale``: FAISSDocumentStore at N synthetic passages (random unit vectors): write, save,
load times, disk size, and whether a filter matching 1% of the passages returns its top-10.

    .venv-reference/bin/python benchmarks/reference_worker.py pipeline --passages P.json \
        --questions Q.json --embedder DIR --reader DIR --out OUT.json
    .venv-reference/bin/python benchmarks/reference_worker.py store-scale --n 100000 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Meta fields embedded before the passage text, one per line, as DocQA's PassageEmbedder does.
META_FIELDS = ["title", "section"]
QA_PIPELINE_MAX_SECONDS = 1200


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "haystack-ai",
        "faiss-haystack",
        "sentence-transformers-haystack",
        "transformers-haystack",
        "faiss-cpu",
        "numpy",
        "torch",
        "transformers",
        "sentence-transformers",
        "tokenizers",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_documents(path: Path) -> list[Any]:
    from haystack import Document

    rows = json.loads(path.read_text(encoding="utf-8"))
    return [Document(id=r["id"], content=r["content"], meta=r.get("meta") or {}) for r in rows]


# -- pipeline --------------------------------------------------------------------------------------


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from haystack import Pipeline
    from haystack.document_stores.types import DuplicatePolicy
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.readers.transformers import (
        TransformersExtractiveReader,
    )
    from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever
    from haystack_integrations.document_stores.faiss import FAISSDocumentStore

    out: dict[str, Any] = {"versions": versions(), "torch_threads": torch.get_num_threads()}
    out["rss_after_imports_mb"] = peak_rss_mb()
    documents = load_documents(args.passages)
    questions = json.loads(args.questions.read_text(encoding="utf-8"))

    # -- indexing: embed our passages, write them to the store, save the store -----------------
    started = time.perf_counter()
    doc_embedder = SentenceTransformersDocumentEmbedder(
        model=args.embedder,
        batch_size=args.embed_batch_size,
        progress_bar=False,
        normalize_embeddings=True,  # DocQA normalizes too; FAISS "Flat" is L2, same ranking
        meta_fields_to_embed=META_FIELDS,
        embedding_separator="\n",
        local_files_only=True,
    )
    doc_embedder.warm_up()
    t_load = time.perf_counter()
    embedded = doc_embedder.run(documents=documents)["documents"]
    t_embed = time.perf_counter()
    dim = len(embedded[0].embedding) if embedded else 384
    store = FAISSDocumentStore(embedding_dim=dim, index_string="Flat")
    store.write_documents(embedded, policy=DuplicatePolicy.OVERWRITE)
    t_write = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="reference-index-"))
    try:
        store.save(folder / "index")
        t_save = time.perf_counter()
        disk = sum(p.stat().st_size for p in folder.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    work = t_save - t_load
    out["index"] = {
        "passages": len(documents),
        "model_load_seconds": round(t_load - started, 3),
        "embed_seconds": round(t_embed - t_load, 3),
        "write_seconds": round(t_write - t_embed, 3),
        "save_seconds": round(t_save - t_write, 3),
        "seconds": round(work, 3),
        "passages_per_second": round(len(documents) / work, 1) if work else None,
        "seconds_with_model_load": round(t_save - started, 3),
        "disk_mb": round(disk / 2**20, 2),
        "peak_rss_mb": peak_rss_mb(),
    }
    del doc_embedder

    # -- querying ------------------------------------------------------------------------------
    reader = TransformersExtractiveReader(
        model=args.reader,
        top_k=args.top_answers,
        max_seq_length=args.max_seq_length,
        stride=args.stride,
        max_batch_size=args.reader_batch_size,
        no_answer=True,
        # transformers 5 loads in the checkpoint's dtype (fp16 here) by default; compute in fp32
        # on CPU as DocQA's reader does.
        model_kwargs={"dtype": torch.float32},
    )
    pipe = Pipeline()
    pipe.add_component(
        "embedder",
        SentenceTransformersTextEmbedder(
            model=args.embedder,
            progress_bar=False,
            normalize_embeddings=True,
            local_files_only=True,
        ),
    )
    pipe.add_component("retriever", FAISSEmbeddingRetriever(document_store=store, top_k=args.top_k))
    pipe.add_component("reader", reader)
    pipe.connect("embedder.embedding", "retriever.query_embedding")
    pipe.connect("retriever.documents", "reader.documents")
    t = time.perf_counter()
    pipe.warm_up()
    out["pipeline_load_seconds"] = round(time.perf_counter() - t, 3)

    def ask(question: str) -> dict[str, Any]:
        return pipe.run(
            {"embedder": {"text": question}, "reader": {"query": question}},
            include_outputs_from={"retriever"},
        )

    if questions:
        ask(questions[0]["question"])  # warm-up: first call pays lazy initialisation
    predictions = []
    for q in questions:
        t = time.perf_counter()
        result = ask(q["question"])
        seconds = time.perf_counter() - t
        answers = result["reader"]["answers"]
        spans = [a for a in answers if a.data is not None]
        predictions.append(
            {
                "id": q["id"],
                "seconds": seconds,
                "answer": (answers[0].data or "") if answers else "",
                "score": float(answers[0].score) if answers else None,
                "best_span": spans[0].data if spans else "",
                "best_span_score": float(spans[0].score) if spans else None,
                "retrieved": [d.id for d in result["retriever"]["documents"]],
            }
        )
    out["predictions"] = predictions

    # -- reader alone on gold passages -------------------------------------------------------
    if args.gold_pairs:
        from haystack import Document

        pairs = json.loads(args.gold_pairs.read_text(encoding="utf-8"))
        gold = []
        started = time.perf_counter()
        for p in pairs:
            answers = reader.run(query=p["question"], documents=[Document(content=p["context"])])
            answers = answers["answers"]
            spans = [a for a in answers if a.data is not None]
            gold.append(
                {
                    "id": p["id"],
                    "answer": (answers[0].data or "") if answers else "",
                    "best_span": spans[0].data if spans else "",
                }
            )
        out["gold_reader"] = {
            "seconds": round(time.perf_counter() - started, 3),
            "predictions": gold,
        }
        if args.qa_pipeline_path:
            out["qa_pipeline"] = run_qa_pipeline_child(args)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run_qa_pipeline_child(args: argparse.Namespace) -> dict[str, Any]:
    """transformers' pipeline("question-answering") in a child with transformers 4.x first on
    sys.path (transformers 5 removed that pipeline)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(args.qa_pipeline_path)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "qa.json"
        cmd = [sys.executable, __file__, "qa-pipeline", "--gold-pairs", str(args.gold_pairs)]
        cmd += ["--reader", args.reader, "--out", str(result)]
        cmd += ["--max-seq-length", str(args.max_seq_length), "--stride", str(args.stride)]
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=QA_PIPELINE_MAX_SECONDS
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
        return json.loads(result.read_text(encoding="utf-8"))


def run_qa_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers
    from transformers import pipeline

    qa = pipeline(
        "question-answering",
        model=args.reader,
        tokenizer=args.reader,
        device=-1,
        torch_dtype=torch.float32,
    )
    pairs = json.loads(args.gold_pairs.read_text(encoding="utf-8"))
    predictions = []
    started = time.perf_counter()
    for p in pairs:
        # handle_impossible_answer: SQuAD 2.0 style, "" wins when the null score beats the spans;
        # with top_k=2 the best span is among the two when "" wins.
        found = qa(
            question=p["question"],
            context=p["context"],
            max_seq_len=args.max_seq_length,
            doc_stride=args.stride,
            max_answer_len=30,
            handle_impossible_answer=True,
            top_k=2,
        )
        found = found if isinstance(found, list) else [found]
        spans = [a["answer"] for a in found if a["answer"]]
        predictions.append(
            {"id": p["id"], "answer": found[0]["answer"], "best_span": spans[0] if spans else ""}
        )
    return {
        "transformers": transformers.__version__,
        "seconds": round(time.perf_counter() - started, 3),
        "predictions": predictions,
    }


# -- store at scale --------------------------------------------------------------------------------


def run_store_scale(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from haystack import Document
    from haystack.document_stores.types import DuplicatePolicy
    from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever
    from haystack_integrations.document_stores.faiss import FAISSDocumentStore

    n, dim, groups = args.n, args.dim, 100
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    t = time.perf_counter()
    documents = [
        Document(
            id=f"p{i}",
            content=f"synthetic passage {i} of document {i // 10}",
            meta={"doc_id": f"d{i // 10}", "group": i % groups, "title": f"Document {i // 10}"},
            embedding=vectors[i].tolist(),
        )
        for i in range(n)
    ]
    build_seconds = time.perf_counter() - t
    store = FAISSDocumentStore(embedding_dim=dim, index_string="Flat")
    t = time.perf_counter()
    store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
    write_seconds = time.perf_counter() - t
    del documents

    folder = Path(tempfile.mkdtemp(prefix="reference-store-", dir=args.tmp))
    try:
        t = time.perf_counter()
        store.save(folder / "index")
        save_seconds = time.perf_counter() - t
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        del store
        t = time.perf_counter()
        loaded = FAISSDocumentStore(index_path=str(folder / "index"), embedding_dim=dim)
        load_seconds = time.perf_counter() - t
        count = loaded.count_documents()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    # Filtered search: one group is 1% of the passages. The store post-filters the nearest
    # top_k * 10 vectors, so most of a 1% subset's true top-10 is never looked at.
    retriever = FAISSEmbeddingRetriever(document_store=loaded, top_k=10)
    queries = rng.standard_normal((args.queries, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    returned, recalls, filtered_ms, plain_ms = [], [], [], []
    for qi, query in enumerate(queries):
        group = qi % groups
        flt = {"field": "meta.group", "operator": "==", "value": group}
        t = time.perf_counter()
        docs = retriever.run(query_embedding=query.tolist(), filters=flt)["documents"]
        filtered_ms.append(1000 * (time.perf_counter() - t))
        members = np.arange(group, n, groups)
        truth = members[np.argsort(-(vectors[members] @ query))[:10]]
        got = {int(d.id[1:]) for d in docs}
        returned.append(len(docs))
        recalls.append(len(got & {int(i) for i in truth}) / 10)
        t = time.perf_counter()
        retriever.run(query_embedding=query.tolist())
        plain_ms.append(1000 * (time.perf_counter() - t))
    return {
        "versions": versions(),
        "passages": n,
        "dim": dim,
        "synthetic": "random unit vectors (numpy seed 0); short synthetic texts and meta",
        "index_string": "Flat",
        "build_documents_seconds": round(build_seconds, 2),
        "write_seconds": round(write_seconds, 2),
        "save_seconds": round(save_seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "loaded_count": count,
        "disk_mb": round(sum(files.values()) / 2**20, 1),
        "files_mb": {k: round(v / 2**20, 1) for k, v in files.items()},
        "filter": {
            "matches_fraction": 1 / groups,
            "queries": len(queries),
            "top_k": 10,
            "mean_returned": round(float(np.mean(returned)), 2),
            "min_returned": int(min(returned)),
            "full_top10_fraction": round(float(np.mean([r == 10 for r in returned])), 3),
            "recall_at_10": round(float(np.mean(recalls)), 3),
            "p50_ms": round(float(np.median(filtered_ms)), 2),
        },
        "unfiltered_search_p50_ms": round(float(np.median(plain_ms)), 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("pipeline")
    p.add_argument("--passages", type=Path, required=True)
    p.add_argument("--questions", type=Path, required=True)
    p.add_argument("--gold-pairs", type=Path)
    p.add_argument("--qa-pipeline-path", type=Path)
    p.add_argument("--embedder", required=True)
    p.add_argument("--reader", required=True)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--top-answers", type=int, default=3)
    p.add_argument("--max-seq-length", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--embed-batch-size", type=int, default=32)
    p.add_argument("--reader-batch-size", type=int, default=16)
    p.add_argument("--out", type=Path, required=True)
    q = sub.add_parser("qa-pipeline")
    q.add_argument("--gold-pairs", type=Path, required=True)
    q.add_argument("--reader", required=True)
    q.add_argument("--max-seq-length", type=int, default=384)
    q.add_argument("--stride", type=int, default=128)
    q.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("store-scale")
    s.add_argument("--n", type=int, default=100_000)
    s.add_argument("--dim", type=int, default=384)
    s.add_argument("--queries", type=int, default=50)
    s.add_argument("--tmp", default=None, help="folder for the saved store (default: $TMPDIR)")
    s.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    run = {"pipeline": run_pipeline, "qa-pipeline": run_qa_pipeline, "store-scale": run_store_scale}
    result = run[args.mode](args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
