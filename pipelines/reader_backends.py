"""How the reader's model runs: the device, bf16 where the CPU has it, and the serving backends
(PyTorch fp32/bf16, PyTorch dynamic int8, ONNX Runtime fp32 and int8), with the ONNX exports
cached per model fingerprint.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.settings import BF16_WEIGHTS, READER_BACKENDS

logger = logging.getLogger(__name__)


@functools.cache  # the CPU does not change under a process; asked on every embedding batch
def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 (AVX-512 BF16 / AMX); elsewhere bf16 autocast is far slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- serving backends (Settings.reader_backend) ----------------------------------------------------

# READER_BACKENDS and the torch backend's CPU_PRECISIONS ("fp32"; "bf16", autocast over fp32
# weights; BF16_WEIGHTS, the model itself in bf16) are stated in pipelines.settings.


def choose_backend(backend: str, device: torch.device) -> tuple[str, str | None]:
    """(backend, CPU precision it imposes or None) that ``backend`` means on ``device``.

    "auto" on CPU is the fixed rule: torch with the model in bf16 (``BF16_WEIGHTS``) on CPUs with
    native bf16 (AMX / AVX-512 BF16) and int8 on other CPUs. (Serving measures instead where it
    can: :func:`pipelines.reader.get_predictor` with a home's cache asks
    :mod:`pipelines.backend_choice` first and passes the measured backend.) An explicit backend
    is kept; GPUs always use torch (fp16).
    """
    if device.type != "cpu":
        if backend not in ("auto", "torch"):
            logger.info("reader backend %r is for CPUs; using torch on %s", backend, device)
        return "torch", None
    if backend == "auto":
        bf16 = cpu_supports_bf16()
        logger.info(
            "reader backend auto: %s (the fixed rule for CPUs %s native bf16; not measured)",
            "torch with bf16 weights" if bf16 else "int8",
            "with" if bf16 else "without",
        )
        return ("torch", BF16_WEIGHTS) if bf16 else ("int8", None)
    return backend, None


ONNX_OPSET = 17
_QA_HEAD = "qa_outputs"  # the span head of transformers' *ForQuestionAnswering models


def _is_ffn_output(name: str) -> bool:
    """The feed-forward output (down-projection) Linear of a BERT-like or DistilBERT block."""
    return (name.endswith("output.dense") and "attention" not in name) or name.endswith("ffn.lin2")


def quantize_int8(model: Any) -> Any:
    """A copy of ``model`` with dynamic int8 quantization of its Linear layers (CPU only).

    Weights are int8 per output channel, activations are quantized per batch at run time. Two
    kinds of layer stay fp32: the feed-forward output layers, whose inputs (GELU outputs) have
    outliers that one activation scale per tensor cannot hold (quantizing them too moved the
    shipped MiniLM reader's margins by 1.2 logits on average, 0.85 without them), and the span
    head (``qa_outputs``), which costs nothing and gives the logits that are decoded.
    """
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and not name.endswith(_QA_HEAD)
        and not _is_ffn_output(name)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice (torchao)
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def _fingerprint(model_path: str, settings: str) -> str:
    """Names an exported model: the model folder's files, torch's version and ``settings``."""
    import hashlib

    digest = hashlib.sha256(f"{torch.__version__}|opset{ONNX_OPSET}|{settings}".encode())
    folder = Path(model_path)
    if folder.is_dir():
        for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
            path = folder / name
            if path.is_file():
                digest.update(name.encode())
                with path.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
    else:
        digest.update(model_path.encode())
    return digest.hexdigest()[:20]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docqa"


def onnx_model_path(
    model_path: str, uses_token_types: bool, cache_dir: str | Path | None = None
) -> Path:
    """Where the ONNX export of a reader is cached (``<cache_dir>/onnx/reader-<hash>.onnx``)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return cache / "onnx" / f"reader-{_fingerprint(model_path, f'tt{uses_token_types}|fused')}.onnx"


def onnx_encoder_path(model_path: str, cache_dir: str | Path | None = None) -> Path:
    """Where the ONNX export of a sentence encoder's transformer is cached
    (``<cache_dir>/onnx/encoder-<hash>.onnx``; its output is the last hidden state)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return cache / "onnx" / f"encoder-{_fingerprint(model_path, 'hidden|fused')}.onnx"


# Exports of each kind kept in the cache: every reader version (and every fine-tuned copy) gets
# its own export, about 90 MB each (int8 22 MB), and nothing else ever deletes them.
ONNX_CACHE_KEEP = 4


def cached_export(path: Path, export: Callable[[], Path]) -> Path:
    """The export at ``path``, marked used now (its mtime, so pruning keeps the ones in use), or
    made by ``export()`` where it is not there yet. The check comes first so a cached export
    costs no import of the exporting code."""
    if path.is_file():
        with contextlib.suppress(OSError):
            os.utime(path)
        return path
    return export()


def prune_onnx_cache(folder: Path, kind: str, keep: int = ONNX_CACHE_KEEP) -> list[Path]:
    """Delete all but the ``keep`` most recently used exports of ``kind`` ("reader" or
    "encoder") in ``folder``, each with its int8 version and lock files; returns the deleted
    exports. A process still reading a deleted export keeps its copy in memory."""
    exports = [
        p for p in folder.glob(f"{kind}-*.onnx") if not p.stem.endswith("-int8") and p.is_file()
    ]
    exports.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    deleted = []
    for export in exports[keep:]:
        int8 = onnx_int8_path(export)
        for path in (export, int8, Path(f"{export}.lock"), Path(f"{int8}.lock")):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        deleted.append(export)
        logger.info("deleted the ONNX export %s (not used lately)", export)
    return deleted


def onnx_int8_path(fp32_path: Path) -> Path:
    """Where the int8 version of an exported reader is cached: beside it, same fingerprint."""
    return fp32_path.with_name(fp32_path.stem + "-int8.onnx")


def quantize_onnx_int8(fp32_path: Path, path: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of an exported reader (weights int8 per channel).

    Every MatMul and attention node is quantized. Keeping the feed-forward outputs and the span
    head in fp32, as :func:`quantize_int8` does, made it slower and no more accurate
    (benchmarks/bench_serving.py), so this backend is the fastest and :func:`quantize_int8` the
    most accurate.
    Atomic and locked like :func:`export_onnx`.
    """
    from filelock import FileLock

    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return path
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logger.info("quantizing the ONNX reader to int8 (%s), once", path)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
        try:
            quantize_dynamic(
                str(fp32_path),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # Fused attention nodes (com.microsoft domain) defeat shape inference; their
                # outputs are float.
                extra_options={"DefaultTensorType": 1},
            )
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def export_onnx(model_path: str, input_names: Sequence[str], path: Path) -> Path:
    """Export the QA model at ``model_path`` to ONNX at ``path`` (fp32, dynamic batch/length):
    outputs ``start_logits`` and ``end_logits``. Exported once (see :func:`_export_once`)."""

    def load() -> Any:
        from transformers import AutoModelForQuestionAnswering

        # Eager attention: its mask is always applied, so the trace does not depend on whether
        # the example batch has padding (sdpa may drop an all-ones mask while tracing).
        return AutoModelForQuestionAnswering.from_pretrained(
            model_path, attn_implementation="eager"
        )

    def outputs(out: Any) -> tuple[torch.Tensor, ...]:
        return out.start_logits, out.end_logits

    return _export_once(
        "reader", model_path, load, outputs, input_names, ["start_logits", "end_logits"], path
    )


def export_onnx_encoder(model_path: str, input_names: Sequence[str], path: Path) -> Path:
    """Export the transformer of the sentence encoder at ``model_path`` to ONNX at ``path``
    (fp32, dynamic batch/length): outputs ``last_hidden_state``; pooling is the caller's."""

    def load() -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained(model_path, attn_implementation="eager")

    def outputs(out: Any) -> tuple[torch.Tensor, ...]:
        return (out.last_hidden_state,)

    return _export_once(
        "encoder", model_path, load, outputs, input_names, ["last_hidden_state"], path
    )


def _export_once(
    what: str,
    model_path: str,
    load: Callable[[], Any],
    outputs: Callable[[Any], tuple[torch.Tensor, ...]],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: Path,
) -> Path:
    """Export ``load()``'s model to ``path`` unless it is there: written to a temporary file and
    renamed, under a file lock, so concurrent processes never read half a model and export it
    once."""
    from filelock import FileLock
    from transformers import AutoTokenizer

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return path
        logger.info("exporting %s %s to ONNX (%s), once", what, model_path, path)
        model = load().float().eval()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        enc = tokenizer(
            ["what is exported?", "why?"],
            ["the model is exported to ONNX with padding in the batch", "because"],
            padding=True,
            return_tensors="pt",
        )

        class _Outputs(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return outputs(self.inner(**dict(zip(input_names, inputs, strict=True))))

        axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, *output_names]}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            import warnings

            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings about Python conditionals
                torch.onnx.export(
                    _Outputs(model),
                    tuple(enc[name] for name in input_names),
                    str(tmp),
                    input_names=list(input_names),
                    output_names=list(output_names),
                    dynamic_axes=axes,
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                )
            _fuse_onnx(tmp, model.config)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    prune_onnx_cache(path.parent, what)
    return path


def _fuse_onnx(path: Path, config: Any) -> None:
    """Fuse attention, LayerNorm and GELU nodes (onnxruntime's transformer optimizer), in place.

    About 5% faster on CPU for MiniLM; the logits are the same to 1e-5. Skipped, with a warning,
    where the optimizer does not know the architecture: the unfused model is just as correct.
    """
    if getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta", "electra"):
        return
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(
            str(path),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,
        )
        fused.save_model_to_file(str(path))
    except Exception as exc:  # any failure leaves the plain export in place
        logger.warning("ONNX graph fusion skipped: %s", exc)


def onnx_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session over the model at ``path`` (``threads``: torch's count)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxQAModel:
    """An ONNX Runtime session called like a transformers QA model (``out.start_logits``...)."""

    def __init__(self, path: Path, input_names: Sequence[str], threads: int | None = None) -> None:
        self.path = path
        self.input_names = list(input_names)
        self.session = onnx_session(path, threads)

    def eval(self) -> OnnxQAModel:
        return self

    def __call__(self, **inputs: torch.Tensor) -> Any:
        from types import SimpleNamespace

        feed = {name: inputs[name].cpu().numpy().astype(np.int64) for name in self.input_names}
        start, end = self.session.run(["start_logits", "end_logits"], feed)
        return SimpleNamespace(
            start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end)
        )


def load_backend(
    model: Any,
    model_path: str,
    backend: str,
    input_names: Sequence[str],
    cache_dir: str | Path | None = None,
) -> Any:
    """``model`` (fp32, on CPU) as run by ``backend``: itself, int8-quantized, or ONNX Runtime."""
    if backend == "torch":
        return model
    if backend == "int8":
        return quantize_int8(model)
    if backend in ("onnx", "onnx-int8"):
        path = onnx_model_path(model_path, "token_type_ids" in input_names, cache_dir)
        cached_export(path, lambda: export_onnx(model_path, input_names, path))
        if backend == "onnx-int8":
            int8 = onnx_int8_path(path)
            path = int8 if int8.is_file() else quantize_onnx_int8(path, int8)
        return OnnxQAModel(path, input_names)
    raise ValueError(f"unknown reader backend {backend!r}; choose one of {READER_BACKENDS}")
