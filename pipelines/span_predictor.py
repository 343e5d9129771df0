"""Reading windows with a QA model: :class:`SpanPredictor` loads a reader folder (weights or its
ONNX export, tokenizer, ``docqa_reader.json``, answer verifier) once and turns question and
passage pairs into ranked span candidates, on the backend it is given (step 2 and 3 of
:mod:`pipelines.reader`). "auto" here is the fixed rule per CPU; the measured choice is made by
the caller above it (:func:`pipelines.reader.get_predictor`, :mod:`pipelines.backend_choice`),
which measures with this class.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.allocator import keep_freed_memory
from pipelines.light_tokenizer import load_tokenizer
from pipelines.reader_backends import (
    choose_backend,
    cpu_supports_bf16,
    load_backend,
    resolve_device,
)
from pipelines.reader_config import READER_CONFIG_FILE, ReaderConfig
from pipelines.settings import BF16_WEIGHTS, CPU_PRECISIONS, READER_BACKENDS
from pipelines.spans import (
    SpanCandidate,
    Windows,
    decode_spans,
    tokenize_pairs,
)
from pipelines.verifier import AnswerVerifier

logger = logging.getLogger(__name__)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (atomic writes make a new inode); None if absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class SpanPredictor:
    """Loads a QA model and its tokenizer once; predicts start/end logits for windows in batches."""

    def __init__(
        self,
        model: str | Path | Any,
        device: str | None = None,
        batch_size: int = 16,
        cpu_precision: str = "fp32",
        backend: str = "torch",
        cache_dir: str | Path | None = None,
        *,
        tokenizer: Any = None,
        config: ReaderConfig | None = None,
    ) -> None:
        """``model``: a reader folder (loaded here, with its tokenizer and ``docqa_reader.json``)
        or an already-loaded ``*ForQuestionAnswering`` model, then with ``tokenizer`` and
        ``config`` (evaluation during training reads with the model being trained)."""
        if backend not in READER_BACKENDS:
            raise ValueError(f"unknown reader backend {backend!r}; choose one of {READER_BACKENDS}")
        if cpu_precision not in CPU_PRECISIONS:
            raise ValueError(
                f"unknown CPU precision {cpu_precision!r}; choose one of {CPU_PRECISIONS}"
            )
        if isinstance(model, str | Path):
            self.model_path = str(model)
            self.device = resolve_device(device)
            chosen = choose_backend(backend, self.device)
            # ONNX Runtime reads its export and needs no transformers at all where the
            # tokenizer allows (light_tokenizer): loading the torch model too would import
            # transformers' model code for nothing (seconds of a new process's start).
            if chosen[0].startswith("onnx"):
                self.tokenizer = load_tokenizer(self.model_path)
                self.model = None
            else:
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
                self.model = self._load_torch_model()
            self._config_file: Path | None = Path(self.model_path) / READER_CONFIG_FILE
            self._config_stamp = _file_stamp(self._config_file)
            self._config = ReaderConfig.load(self.model_path)
            self.verifier = AnswerVerifier.load(self.model_path)
        else:
            if tokenizer is None or config is None:
                raise ValueError("a loaded model needs its tokenizer and its ReaderConfig")
            self.model_path = str(getattr(model, "name_or_path", ""))
            self.model, self.tokenizer, self._config = model, tokenizer, config
            self._config_file, self._config_stamp = None, None
            self.verifier = None
            self.device = next(model.parameters()).device
            chosen = choose_backend(backend, self.device)
        backend, precision = chosen
        self.backend = backend
        self.batch_size = batch_size
        self.cpu_precision = precision or cpu_precision
        if self.cpu_precision == "auto":
            self.cpu_precision = "bf16" if cpu_supports_bf16() else "fp32"
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        if (
            self.cpu_precision == BF16_WEIGHTS
            and backend == "torch"
            and self.device.type == "cpu"
            and isinstance(model, str | Path)  # never convert a caller's model (a training one)
        ):
            # Weights and activations in bf16, no autocast: autocast casts every Linear's fp32
            # weights to bf16 on each forward pass and runs LayerNorm, GELU and softmax in fp32.
            self.model = self.model.to(torch.bfloat16)
        if backend != "torch":
            names = ["input_ids", "attention_mask"]
            names += ["token_type_ids"] if self._uses_token_types else []
            self.model = load_backend(self.model, self.model_path, backend, names, cache_dir)
            self.cpu_precision = "fp32"  # bf16 autocast applies to the torch backend only

    def _load_torch_model(self) -> Any:
        from transformers import AutoModelForQuestionAnswering

        keep_freed_memory()
        loaded = AutoModelForQuestionAnswering.from_pretrained(self.model_path)
        # Half-precision weights are shipped to save space; compute in fp32 on CPU.
        if self.device.type == "cuda":
            return loaded.to(self.device, dtype=torch.float16).eval()
        return loaded.float().eval()

    @property
    def config(self) -> ReaderConfig:
        """The reader's ``docqa_reader.json``, read again when the file changes: a cached
        predictor must not keep serving a threshold or ranking that was tuned since it loaded
        (``docqa tune-weight`` and the campaign gate write them beside the weights)."""
        if self._config_file is not None:
            stamp = _file_stamp(self._config_file)
            if stamp != self._config_stamp:
                self._config = ReaderConfig.load(self._config_file.parent)
                self._config_stamp = stamp
                logger.info("reader settings reloaded from %s", self._config_file)
        return self._config

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
        return cls(
            model, batch_size=batch_size, cpu_precision=cpu_precision, tokenizer=tokenizer,
            config=config,
        )  # fmt: skip

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
        # last) no longer pay for padding to the longest of all. Logits go back to the windows'
        # order.
        order = torch.argsort(lengths, descending=True, stable=True)
        starts = np.full((n, width), -1e4, dtype=np.float32)
        ends = np.full((n, width), -1e4, dtype=np.float32)
        use_bf16 = self.device.type == "cpu" and self.cpu_precision == "bf16"  # autocast
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
        max_seq_length: int | None = None,
        whole_words: bool | None = None,
    ) -> list[list[SpanCandidate]]:
        """Candidates for each (question, context) pair, best first; ``max_seq_length``
        overrides the reader's window length (its stride stays), ``whole_words`` its
        ``ReaderConfig.whole_words``."""
        cfg = self.config
        windows = tokenize_pairs(
            self.tokenizer,
            questions,
            contexts,
            max_seq_length or cfg.max_seq_length,
            cfg.doc_stride,
        )
        start, end = self.logits(windows)
        threshold = cfg.no_answer_threshold if no_answer_threshold is None else no_answer_threshold
        widen = cfg.whole_words if whole_words is None else whole_words
        return decode_spans(
            start,
            end,
            windows,
            cfg.max_answer_tokens,
            threshold,
            n_best,
            cfg.max_answer_chars,
            contexts=contexts if widen else None,
        )

    def score(self, margin: float) -> float:
        """Confidence in [0, 1] from a margin (> 0.5 means the reader would answer).

        With the settings read when the spans were decoded (:attr:`config`, read again per
        question): ranking calls this for every span, and a ``stat`` of the settings file per
        span was a third of the time of tuning the answer ranking."""
        return 1.0 / (1.0 + math.exp(-margin / self._config.temperature))
