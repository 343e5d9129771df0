"""Reader serving backends side by side: PyTorch fp32, bf16 autocast and the model in bf16 (both
on CPUs with native bf16) and dynamic int8, ONNX Runtime fp32 and int8.

Each backend reads the demo dev questions with their gold passages (the pairs of
``data/demo/labels/dev.json``), decoded exactly as ``evaluation.reader_metrics.evaluate_reader``
does (same windows, same no-answer threshold, official SQuAD v2.0 EM/F1). Reported per backend:
windows/s and questions/s of the whole read (tokenize + model + decode, best of ``--repeats``),
EM/F1, how often its answer equals fp32's, load time (ONNX: export on a cache miss), model size,
and ratios to fp32. The recommended serving backend is the fastest whose F1 stays within
``--max-f1-drop`` (0.5) of fp32; set it with ``Settings(reader_backend=...)`` ("bf16" is the
torch backend with bf16 autocast, what "auto" picks on such CPUs). ``--max-seq-length`` reads
with other windows than the reader's own (fewer, longer windows per passage).

Prints a table and writes JSON (default benchmarks/results/serving.json). Numbers depend on the
machine and its load: compare backends of one run only.

    python benchmarks/bench_serving.py [--reader data/reader] [--questions N] [--repeats 3]
        [--backends torch,bf16,int8,onnx,onnx-int8] [--max-seq-length N]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from bench_env import write_result

from evaluation.environment import cpu_description
from evaluation.reader_metrics import predict, squad_metrics
from evaluation.squad import load_squad
from pipelines.reader import (
    BF16_WEIGHTS,
    READER_BACKENDS,
    OnnxQAModel,
    SpanPredictor,
    cpu_supports_bf16,
    default_cache_dir,
    onnx_int8_path,
    onnx_model_path,
    tokenize_pairs,
)
from pipelines.settings import REPO_ROOT, SHIPPED_READER

DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"


def _model_mb(predictor: SpanPredictor) -> float:
    model = predictor.model
    if isinstance(model, OnnxQAModel):
        return model.path.stat().st_size / 2**20
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # int8 packed weights serialize at their real size
    return buffer.getbuffer().nbytes / 2**20


def _versions() -> dict[str, str]:
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        out["onnxruntime"] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", default=str(SHIPPED_READER))
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--questions", type=int, default=0, help="first N questions (0: all)")
    # "auto" is one of the others (int8 or bf16 torch, by CPU): not measured twice.
    default_backends = [b for b in READER_BACKENDS if b != "auto"]
    if cpu_supports_bf16():
        default_backends[1:1] = ["bf16", BF16_WEIGHTS]
    parser.add_argument("--backends", default=",".join(default_backends))
    parser.add_argument(
        "--max-seq-length", type=int, default=0, help="read windows of N tokens (0: the reader's)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed reads; the best counts")
    parser.add_argument("--max-f1-drop", type=float, default=0.5)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "serving.json"
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "torch" not in backends:
        backends.insert(0, "torch")  # the baseline of every ratio
    examples, _ = load_squad(args.dev)
    if args.questions:
        examples = examples[: args.questions]

    predictors: dict[str, SpanPredictor] = {}
    loads: dict[str, tuple[float, bool | None]] = {}
    for backend in backends:
        cached = None
        if backend.startswith("onnx"):
            from transformers import AutoTokenizer

            names = AutoTokenizer.from_pretrained(args.reader).model_input_names
            path = onnx_model_path(args.reader, "token_type_ids" in names, args.cache_dir)
            cached = (onnx_int8_path(path) if backend == "onnx-int8" else path).is_file()
        started = time.perf_counter()
        bf16 = backend in ("bf16", BF16_WEIGHTS)
        predictor = SpanPredictor(
            args.reader,
            batch_size=args.batch_size,
            backend="torch" if bf16 else backend,
            cpu_precision=backend if bf16 else "fp32",
            cache_dir=args.cache_dir,
        )
        if args.max_seq_length:
            # Fixed for this run (the bench never rewrites the reader's settings file).
            predictor._config = dataclasses.replace(
                predictor.config, max_seq_length=args.max_seq_length
            )
            predictor._config_file = None
        predictors[backend] = predictor
        loads[backend] = (time.perf_counter() - started, cached)
        predict(predictors[backend], examples[:8], progress=False)  # warm-up (first calls)
    cfg = predictors["torch"].config
    windows_total = len(
        tokenize_pairs(
            predictors["torch"].tokenizer,
            [ex.question for ex in examples],
            [ex.context for ex in examples],
            cfg.max_seq_length,
            cfg.doc_stride,
        ).pair_index
    )
    # Repeats go round the backends in turn, so a busy spell of the machine is shared out
    # instead of landing on one backend; the best time of each counts.
    times: dict[str, list[float]] = {b: [] for b in backends}
    preds_of: dict[str, Any] = {}
    for _ in range(max(1, args.repeats)):
        for backend in backends:
            t = time.perf_counter()
            preds_of[backend] = predict(predictors[backend], examples, progress=False)
            times[backend].append(time.perf_counter() - t)

    rows: dict[str, dict[str, Any]] = {}
    answers_of: dict[str, dict[str, str]] = {}
    for backend in backends:
        seconds = min(times[backend])
        answers = preds_of[backend].answers(-cfg.no_answer_threshold)
        answers_of[backend] = answers
        metrics = squad_metrics(examples, answers)
        load_seconds, cached = loads[backend]
        rows[backend] = {
            "em": round(metrics["exact"], 2),
            "f1": round(metrics["f1"], 2),
            "HasAns_f1": round(metrics.get("HasAns_f1", float("nan")), 2),
            "NoAns_f1": round(metrics.get("NoAns_f1", float("nan")), 2),
            "seconds": round(seconds, 3),
            "all_seconds": [round(t, 3) for t in times[backend]],
            "windows_per_second": round(windows_total / seconds, 1),
            "questions_per_second": round(len(examples) / seconds, 1),
            "load_seconds": round(load_seconds, 2),
            "onnx_export_included": (cached is False) if cached is not None else None,
            "model_mb": round(_model_mb(predictors[backend]), 1),
        }

    base = rows["torch"]
    for backend, row in rows.items():
        row["speedup_vs_fp32"] = round(row["windows_per_second"] / base["windows_per_second"], 2)
        row["f1_minus_fp32"] = round(row["f1"] - base["f1"], 2)
        same = sum(answers_of[backend][q] == a for q, a in answers_of["torch"].items())
        row["same_answer_as_fp32"] = round(same / max(1, len(examples)), 4)
    eligible = [b for b, r in rows.items() if r["f1"] >= base["f1"] - args.max_f1_drop]
    recommended = max(eligible, key=lambda b: rows[b]["windows_per_second"])

    result = {
        "machine": {
            "cpu": cpu_description(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            **_versions(),
        },
        "reader": args.reader,
        "data": {"file": str(args.dev), "questions": len(examples), "windows": windows_total},
        "batch_size": args.batch_size,
        "max_seq_length": cfg.max_seq_length,
        "doc_stride": cfg.doc_stride,
        "repeats": args.repeats,
        "backends": rows,
        "max_f1_drop": args.max_f1_drop,
        "recommended_backend": recommended,
    }
    write_result(args.out, result)

    print(
        f"{len(examples)} questions, {windows_total} windows, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, best of {args.repeats}"
    )
    header = f"{'backend':9} {'EM':>6} {'F1':>6} {'dF1':>6} {'same':>6} {'win/s':>8} "
    header += f"{'x fp32':>7} {'q/s':>7} {'load s':>7} {'MB':>6}"
    print(header)
    for backend, r in rows.items():
        print(
            f"{backend:9} {r['em']:6.2f} {r['f1']:6.2f} {r['f1_minus_fp32']:+6.2f} "
            f"{r['same_answer_as_fp32']:6.1%} {r['windows_per_second']:8.1f} "
            f"{r['speedup_vs_fp32']:7.2f} {r['questions_per_second']:7.1f} "
            f"{r['load_seconds']:7.1f} {r['model_mb']:6.1f}"
        )
    print(f"recommended (fastest with F1 >= fp32 - {args.max_f1_drop}): {recommended}")


if __name__ == "__main__":
    main()
