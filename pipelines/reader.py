"""The extractive reader: a Haystack component over any ``AutoModelForQuestionAnswering``.

Reading is split in three steps, as in the transformers QA example (``utils_qa.py``), so that
training-time evaluation and query-time reading decode spans the same way:

1. :func:`tokenize_pairs` cuts each (question, context) pair into windows of ``max_seq_length``
   tokens with ``doc_stride`` overlap and keeps each token's character offsets in the context.
2. :class:`SpanPredictor` runs the model over all windows of all pairs in batches (bf16 autocast on
   CPU when asked, fp16 on GPU) and returns start/end logits.
3. :func:`decode_spans` turns logits into candidate spans with a *margin*: span logit minus the
   window's null ("no answer") logit plus the model's calibrated no-answer threshold. A margin above
   zero means "answer"; ``sigmoid(margin / temperature)`` is the score in [0, 1]. Because every
   window was trained to put its null logit above any span when it lacks the answer, the margin is
   comparable across passages, which raw span logits are not.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ExtractedAnswer

from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

READER_CONFIG_FILE = "docqa_reader.json"


@dataclass(frozen=True)
class ReaderConfig:
    """Decoding settings saved beside a trained reader (``docqa_reader.json``)."""

    no_answer_threshold: float = 0.0  # added to span-minus-null margins; tuned on held-out pairs
    temperature: float = 2.0
    max_seq_length: int = 384
    doc_stride: int = 128
    max_answer_tokens: int = 30
    retriever_weight: float = 0.0  # tuned end to end on held-out pairs (docqa tune-weight)
    # Subtracted from every margin when answers are ranked across retrieved passages: "no
    # answer" competes with the best span of k passages, a max that grows with k (measured on
    # open SQuAD: NoAns F1 45.96 reading 1 passage, 24.84 reading 10). Tuned with the weight.
    open_null_offset: float = 0.0
    # Where "no answer" is decided across passages: "window" judges each span against its own
    # window's null logit (so the best of k passages grows with k); "question" judges every span
    # against one null for the question, the mean null logit of the passages read (the null a
    # shared-normalization reader is trained with). Tuned with the weight on held-out pairs.
    null_scope: str = "window"

    @classmethod
    def load(cls, model_dir: str | Path) -> ReaderConfig:
        path = Path(model_dir) / READER_CONFIG_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, model_dir: str | Path) -> None:
        path = Path(model_dir) / READER_CONFIG_FILE
        # A model folder is never left with half a config.
        write_atomic(path, json.dumps(self.__dict__, indent=2) + "\n")


@dataclass
class Windows:
    """Tokenized windows of many (question, context) pairs."""

    encodings: dict[str, torch.Tensor]
    pair_index: list[int]  # which pair each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # per token: char span in the context, else None


@dataclass
class SpanCandidate:
    pair: int
    start_char: int
    end_char: int
    margin: float  # span logit - null logit + threshold; > 0 means "answer"
    span_logit: float
    null_logit: float = 0.0  # its window's null ("no answer") logit


def tokenize_pairs(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_seq_length: int,
    doc_stride: int,
) -> Windows:
    """Windows over each context with its question, with character offsets of context tokens."""
    pad_right = tokenizer.padding_side == "right"
    first, second = (questions, contexts) if pad_right else (contexts, questions)
    enc = tokenizer(
        list(first),
        list(second),
        truncation="only_second" if pad_right else "only_first",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="longest",
        return_tensors="pt",
    )
    pair_index = [int(i) for i in enc.pop("overflow_to_sample_mapping")]
    offset_mapping = enc.pop("offset_mapping").tolist()
    context_id = 1 if pad_right else 0
    offsets: list[list[tuple[int, int] | None]] = []
    for w in range(len(pair_index)):
        seq_ids = enc.sequence_ids(w)
        offsets.append(
            [
                (int(o[0]), int(o[1])) if seq_ids[t] == context_id else None
                for t, o in enumerate(offset_mapping[w])
            ]
        )
    return Windows(encodings=dict(enc), pair_index=pair_index, offsets=offsets)


def decode_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    windows: Windows,
    max_answer_tokens: int,
    no_answer_threshold: float = 0.0,
    n_best: int = 20,
) -> list[list[SpanCandidate]]:
    """The best spans of every pair, merged across windows and sorted by margin.

    A pair whose candidates all have a margin <= 0 is "no answer". Each window is judged against
    its own null logit because training taught every window without the answer to vote null.
    """
    n_pairs = max(windows.pair_index, default=-1) + 1
    candidates: list[list[SpanCandidate]] = [[] for _ in range(n_pairs)]
    length = start_logits.shape[1]
    # Allowed (start, end) pairs: 0 <= end - start < max_answer_tokens.
    band = np.triu(np.ones((length, length), dtype=bool)) & ~np.triu(
        np.ones((length, length), dtype=bool), k=max_answer_tokens
    )
    for w, pair in enumerate(windows.pair_index):
        s_log, e_log, offs = start_logits[w], end_logits[w], windows.offsets[w]
        null_logit = float(s_log[0] + e_log[0])
        valid = np.zeros(length, dtype=bool)
        valid[: len(offs)] = [o is not None for o in offs[:length]]
        if not valid.any():
            continue
        scores = np.where(valid, s_log, -np.inf)[:, None] + np.where(valid, e_log, -np.inf)[None, :]
        flat = np.where(band, scores, -np.inf).ravel()
        k = min(n_best, int(np.isfinite(flat).sum()))
        if k == 0:
            continue
        for idx in np.argpartition(-flat, k - 1)[:k]:
            s, e = divmod(int(idx), length)
            start_off, end_off = offs[s], offs[e]
            assert start_off is not None and end_off is not None
            span_logit = float(flat[idx])
            candidates[pair].append(
                SpanCandidate(
                    pair=pair,
                    start_char=start_off[0],
                    end_char=end_off[1],
                    margin=span_logit - null_logit + no_answer_threshold,
                    span_logit=span_logit,
                    null_logit=null_logit,
                )
            )
    return [_merge_duplicates(c) for c in candidates]


def _merge_duplicates(cands: list[SpanCandidate]) -> list[SpanCandidate]:
    """Keep the best-scoring candidate of each character span (windows overlap)."""
    best: dict[tuple[int, int], SpanCandidate] = {}
    for c in cands:
        key = (c.start_char, c.end_char)
        if key not in best or c.margin > best[key].margin:
            best[key] = c
    return sorted(best.values(), key=lambda c: c.margin, reverse=True)


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

READER_BACKENDS = ("auto", "torch", "int8", "onnx", "onnx-int8")


def choose_backend(backend: str, device: torch.device) -> tuple[str, str | None]:
    """(backend, CPU precision it imposes or None) that ``backend`` means on ``device``.

    "auto" is torch with bf16 autocast on CPUs with native bf16 (AMX / AVX-512 BF16: 2.8x the
    speed of fp32 per ../shared/README's machine notes) and int8 on other CPUs (1.32x on
    AVX2-only CPUs, benchmarks/bench_serving.py); GPUs always use torch (fp16).
    """
    if device.type != "cpu":
        if backend not in ("auto", "torch"):
            logger.info("reader backend %r is for CPUs; using torch on %s", backend, device)
        return "torch", None
    if backend == "auto":
        return ("torch", "bf16") if cpu_supports_bf16() else ("int8", None)
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


def _fingerprint(model_path: str, uses_token_types: bool) -> str:
    """Names an exported model: the model folder's files, torch's version and export settings."""
    import hashlib

    settings = f"{torch.__version__}|opset{ONNX_OPSET}|tt{uses_token_types}|fused"
    digest = hashlib.sha256(settings.encode())
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
    return cache / "onnx" / f"reader-{_fingerprint(model_path, uses_token_types)}.onnx"


def onnx_int8_path(fp32_path: Path) -> Path:
    """Where the int8 version of an exported reader is cached: beside it, same fingerprint."""
    return fp32_path.with_name(fp32_path.stem + "-int8.onnx")


def quantize_onnx_int8(fp32_path: Path, path: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of an exported reader (weights int8 per channel).

    Every MatMul and attention node is quantized. Keeping the feed-forward outputs and the span
    head in fp32, as :func:`quantize_int8` does, made it slower (1.38x fp32 instead of 1.54x on
    the demo dev pairs) and no more accurate (F1 -1.74 instead of -1.30), so this backend is the
    fastest and :func:`quantize_int8` the most accurate (benchmarks/bench_serving.py).
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
    """Export the QA model at ``model_path`` to ONNX at ``path`` (fp32, dynamic batch/length).

    Written to a temporary file and renamed, under a file lock, so concurrent processes never
    read half a model and export it once.
    """
    from filelock import FileLock
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return path
        logger.info("exporting reader %s to ONNX (%s), once", model_path, path)
        # Eager attention: its mask is always applied, so the trace does not depend on whether
        # the example batch has padding (sdpa may drop an all-ones mask while tracing).
        model = AutoModelForQuestionAnswering.from_pretrained(
            model_path, attn_implementation="eager"
        )
        model = model.float().eval()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        enc = tokenizer(
            ["what is exported?", "why?"],
            ["the reader is exported to ONNX with padding in the batch", "because"],
            padding=True,
            return_tensors="pt",
        )

        class _Logits(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                out = self.inner(**dict(zip(input_names, inputs, strict=True)))
                return out.start_logits, out.end_logits

        axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
        axes.update({"start_logits": {0: "batch", 1: "sequence"}})
        axes.update({"end_logits": {0: "batch", 1: "sequence"}})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            import warnings

            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings about Python conditionals
                torch.onnx.export(
                    _Logits(model),
                    tuple(enc[name] for name in input_names),
                    str(tmp),
                    input_names=list(input_names),
                    output_names=["start_logits", "end_logits"],
                    dynamic_axes=axes,
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                )
            _fuse_onnx(tmp, model.config)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
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


class OnnxQAModel:
    """An ONNX Runtime session called like a transformers QA model (``out.start_logits``...)."""

    def __init__(self, path: Path, input_names: Sequence[str], threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError(
                "reader_backend 'onnx' needs onnxruntime: pip install 'docqa[onnx]'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.path = path
        self.input_names = list(input_names)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

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
        if not path.is_file():
            export_onnx(model_path, input_names, path)
        if backend == "onnx-int8":
            int8 = onnx_int8_path(path)
            path = int8 if int8.is_file() else quantize_onnx_int8(path, int8)
        return OnnxQAModel(path, input_names)
    raise ValueError(f"unknown reader backend {backend!r}; choose one of {READER_BACKENDS}")


class SpanPredictor:
    """Loads a QA model and its tokenizer once; predicts start/end logits for windows in batches."""

    def __init__(
        self,
        model: str | Path,
        device: str | None = None,
        batch_size: int = 16,
        cpu_precision: str = "fp32",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
    ) -> None:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        if backend not in READER_BACKENDS:
            raise ValueError(f"unknown reader backend {backend!r}; choose one of {READER_BACKENDS}")
        self.model_path = str(model)
        self.device = resolve_device(device)
        backend, precision = choose_backend(backend, self.device)
        cpu_precision = precision or cpu_precision
        self.backend = backend
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForQuestionAnswering.from_pretrained(self.model_path)
        # Half-precision weights are shipped to save space; compute in fp32 on CPU unless asked.
        if self.device.type == "cuda":
            self.model = self.model.to(self.device, dtype=torch.float16)
        else:
            self.model = self.model.float()
        self.model.eval()
        self.config = ReaderConfig.load(self.model_path)
        self.batch_size = batch_size
        self.cpu_precision = cpu_precision
        if cpu_precision == "auto":
            self.cpu_precision = "bf16" if cpu_supports_bf16() else "fp32"
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        if backend != "torch":
            names = ["input_ids", "attention_mask"]
            names += ["token_type_ids"] if self._uses_token_types else []
            self.model = load_backend(self.model, self.model_path, backend, names, cache_dir)
            self.cpu_precision = "fp32"  # bf16 autocast applies to the torch backend only

    @classmethod
    def from_objects(
        cls,
        model: Any,
        tokenizer: Any,
        config: ReaderConfig,
        batch_size: int = 64,
        cpu_precision: str = "fp32",
    ) -> SpanPredictor:
        """A predictor over an already-loaded model (used for evaluation during training)."""
        self = cls.__new__(cls)
        self.model_path = str(getattr(model, "name_or_path", ""))
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.device = next(model.parameters()).device
        self.batch_size, self.cpu_precision = batch_size, cpu_precision
        self.backend = "torch"
        self._uses_token_types = "token_type_ids" in tokenizer.model_input_names
        return self

    @torch.inference_mode()
    def logits(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        inputs = {
            k: v
            for k, v in windows.encodings.items()
            if k in ("input_ids", "attention_mask")
            or (k == "token_type_ids" and self._uses_token_types)
        }
        n, width = inputs["input_ids"].shape
        lengths = inputs["attention_mask"].sum(dim=1)
        # Windows sorted by length, each batch cut to its longest: short windows (a passage's
        # last) no longer pay for padding to the longest of all (about 1.2x fewer tokens on
        # the demo collection's passages). Logits go back to the windows' order.
        order = torch.argsort(lengths, descending=True, stable=True)
        starts = np.full((n, width), -1e4, dtype=np.float32)
        ends = np.full((n, width), -1e4, dtype=np.float32)
        use_bf16 = self.device.type == "cpu" and self.cpu_precision == "bf16"
        for i in range(0, n, self.batch_size):
            rows = order[i : i + self.batch_size]
            longest = int(lengths[rows].max())
            batch = {k: v[rows, :longest].to(self.device) for k, v in inputs.items()}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                out = self.model(**batch)
            # Padding positions get -1e4 so they can never be picked.
            mask = batch["attention_mask"] == 0
            index = rows.numpy()
            starts[index, :longest] = out.start_logits.float().masked_fill(mask, -1e4).cpu().numpy()
            ends[index, :longest] = out.end_logits.float().masked_fill(mask, -1e4).cpu().numpy()
        return starts, ends

    def predict(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        n_best: int = 20,
        no_answer_threshold: float | None = None,
    ) -> list[list[SpanCandidate]]:
        """Candidates for each (question, context) pair, best first."""
        cfg = self.config
        windows = tokenize_pairs(
            self.tokenizer, questions, contexts, cfg.max_seq_length, cfg.doc_stride
        )
        start, end = self.logits(windows)
        threshold = cfg.no_answer_threshold if no_answer_threshold is None else no_answer_threshold
        return decode_spans(start, end, windows, cfg.max_answer_tokens, threshold, n_best)

    def score(self, margin: float) -> float:
        """Confidence in [0, 1] from a margin (> 0.5 means the reader would answer)."""
        return 1.0 / (1.0 + math.exp(-margin / self.config.temperature))


_PREDICTORS: dict[tuple[str, ...], SpanPredictor] = {}


def get_predictor(
    model: str | Path,
    device: str | None = None,
    cpu_precision: str = "fp32",
    batch_size: int = 16,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
) -> SpanPredictor:
    """A process-wide cache so pipelines and pages load each reader once."""
    key = (str(model), str(resolve_device(device)), cpu_precision)
    if backend != "torch":
        key = (*key, backend, str(cache_dir))
    if key not in _PREDICTORS:
        logger.info("loading reader %s on %s (%s)", model, key[1], backend)
        _PREDICTORS[key] = SpanPredictor(
            model, device, batch_size, cpu_precision, backend=backend, cache_dir=cache_dir
        )
    return _PREDICTORS[key]


@component
class ExtractiveReader:
    """Reads the retrieved passages of a question and returns the best answer spans.

    Answers from all passages are ranked together by their reader score, optionally mixed with
    the retriever's score (``retriever_weight``). A "no answer" (``data=None``) with score
    ``1 - max(reader scores)`` competes for the ``top_k`` places, so callers can tell "not in the
    documents" from a weak answer.
    """

    def __init__(
        self,
        model: str | Path,
        top_k: int = 3,
        retriever_weight: float | None = None,
        device: str | None = None,
        batch_size: int = 16,
        cpu_precision: str = "fp32",
        no_answer: bool = True,
        backend: str = "torch",
        cache_dir: str | None = None,
    ) -> None:
        self.model = str(model)
        self.top_k = top_k
        self.retriever_weight = retriever_weight
        self.device = device
        self.batch_size = batch_size
        self.cpu_precision = cpu_precision
        self.no_answer = no_answer
        self.backend = backend  # one of READER_BACKENDS (Settings.reader_backend)
        self.cache_dir = cache_dir  # where the ONNX export is cached
        self._predictor: SpanPredictor | None = None

    @property
    def predictor(self) -> SpanPredictor:
        """The loaded model this component reads with (loaded on first use)."""
        self.warm_up()
        assert self._predictor is not None
        return self._predictor

    def warm_up(self) -> None:
        if self._predictor is None:
            self._predictor = get_predictor(
                self.model,
                self.device,
                self.cpu_precision,
                self.batch_size,
                backend=self.backend,
                cache_dir=self.cache_dir,
            )

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            top_k=self.top_k,
            retriever_weight=self.retriever_weight,
            device=self.device,
            batch_size=self.batch_size,
            cpu_precision=self.cpu_precision,
            no_answer=self.no_answer,
            backend=self.backend,
            cache_dir=self.cache_dir,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveReader:
        return default_from_dict(cls, data)

    @component.output_types(answers=list[ExtractedAnswer])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[ExtractedAnswer]]:
        self.warm_up()
        assert self._predictor is not None
        top_k = top_k or self.top_k
        weight = self.retriever_weight
        if weight is None:
            weight = self._predictor.config.retriever_weight
        offset = self._predictor.config.open_null_offset
        docs = [d for d in documents if d.content]
        if not docs:
            return {"answers": [ExtractedAnswer(query=query, score=1.0, data=None)]}
        candidates = self._predictor.predict([query] * len(docs), [d.content or "" for d in docs])
        # One "no answer" decision per question: each span's margin against the question's
        # null (mean of the passages' nulls) rather than its own window's.
        shift = question_null_shifts(candidates, self._predictor.config.null_scope)
        answers: list[ExtractedAnswer] = []
        best_reader_score = 0.0
        for doc, cands in zip(docs, candidates, strict=True):
            seen: list[tuple[int, int]] = []
            for c in cands:
                # Drop spans overlapping a better one from the same passage ("202" vs "2024").
                if any(c.start_char < e and s < c.end_char for s, e in seen):
                    continue
                seen.append((c.start_char, c.end_char))
                reader_score = self._predictor.score(c.margin + shift(c) - offset)
                best_reader_score = max(best_reader_score, reader_score)
                retr = float(doc.score) if doc.score is not None else 0.0
                score = (1 - weight) * reader_score + weight * retr
                answers.append(
                    ExtractedAnswer(
                        query=query,
                        score=score,
                        data=(doc.content or "")[c.start_char : c.end_char],
                        document=doc,
                        context=doc.content,
                        document_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                        context_offset=ExtractedAnswer.Span(c.start_char, c.end_char),
                        meta={"reader_score": reader_score, "retriever_score": retr},
                    )
                )
                if len(seen) >= top_k:
                    break
        answers = _dedupe_text(sorted(answers, key=lambda a: a.score, reverse=True))
        if self.no_answer:
            # "No answer" competes with the spans for the top_k places.
            answers.append(ExtractedAnswer(query=query, score=1.0 - best_reader_score, data=None))
            answers.sort(key=lambda a: a.score, reverse=True)
        return {"answers": answers[:top_k]}


def question_null_shifts(
    candidates: Sequence[Sequence[SpanCandidate]], null_scope: str
) -> Callable[[SpanCandidate], float]:
    """What to add to each candidate's margin so it is judged against the question's null.

    With ``null_scope="question"`` the question's null is the mean of the null logits of the
    passages read (each passage's best window); a candidate's margin then moves by its own
    window's null minus that mean. With ``"window"`` nothing moves.
    """
    if null_scope == "window":
        return lambda c: 0.0
    if null_scope != "question":
        raise ValueError(f"null_scope must be 'window' or 'question', not {null_scope!r}")
    nulls = [cands[0].null_logit for cands in candidates if cands]
    question_null = sum(nulls) / len(nulls) if nulls else 0.0
    return lambda c: c.null_logit - question_null


def _dedupe_text(answers: list[ExtractedAnswer]) -> list[ExtractedAnswer]:
    """Merge answers with the same text from overlapping passages; keep the best-scored one."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for a in answers:
        doc = a.document
        key = ((a.data or "").strip().lower(), str(doc.meta.get("doc_id")) if doc else "")
        # Overlapping passages of one document give the same span twice: merge those.
        if doc is not None and doc.meta.get("start") is not None and a.document_offset:
            abs_start = int(doc.meta["start"]) + a.document_offset.start
            key = (key[0], f"{key[1]}@{abs_start}")
        if key in seen:
            continue
        seen.add(key)
        kept.append(a)
    return kept
