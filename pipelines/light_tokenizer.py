"""A BERT-style tokenizer read straight from its ``tokenizer.json`` with the ``tokenizers``
library, for the two calls a question needs: windows over (question, passage) pairs for the
reader, and plain batches for the question encoder.

Why not transformers' tokenizer: ``from transformers import AutoTokenizer`` builds transformers'
lazy import table, about a second that a new ``docqa ask`` process (one question, ONNX Runtime)
should not pay. transformers' fast tokenizers are this same ``tokenizers`` object underneath
(truncation with stride, overflowing windows), so the ids, offsets and windows are the same:
tests compare them on the demo collection for both shipped models. Only the models this has been
checked for are taken (:meth:`LightTokenizer.supports`); others go through transformers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# tokenizer_class values whose tokenizer.json holds the whole pipeline (normalizer, WordPiece,
# [CLS] A [SEP] B [SEP] template) and that pad on the right with [PAD].
_SUPPORTED_CLASSES = {"BertTokenizer", "BertTokenizerFast"}


class LightTokenizer:
    """``tokenizer.json`` of a BERT-style model, without transformers.

    Thread-safe: the ``tokenizers`` object holds its truncation settings, so calls that change
    them run one at a time.
    """

    padding_side = "right"
    model_input_names: ClassVar[list[str]] = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = _tokenizer_config(folder)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self.pad_token = str(config.get("pad_token") or "[PAD]")
        pad_id = self._tokenizer.token_to_id(self.pad_token)
        if pad_id is None:
            raise ValueError(f"{folder}: pad token {self.pad_token!r} not in the vocabulary")
        self.pad_token_id = int(pad_id)
        self._lock = threading.Lock()

    @staticmethod
    def supports(folder: str | Path) -> bool:
        """Whether the tokenizer in ``folder`` is one this class reproduces exactly."""
        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            return False
        config = _tokenizer_config(folder)
        return (
            config.get("tokenizer_class") in _SUPPORTED_CLASSES
            and config.get("padding_side", "right") == "right"
            and config.get("truncation_side", "right") == "right"
        )

    def pair_windows(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        max_length: int,
        stride: int,
    ) -> tuple[dict[str, np.ndarray], list[int], list[list[tuple[int, int] | None]]]:
        """Windows of each (question, context) pair as transformers makes them with
        ``truncation="only_second", stride=stride, return_overflowing_tokens=True,
        padding="longest"``: (int64 arrays by input name, the pair of each window, per token
        the character span in the context or None)."""
        with self._lock:
            self._tokenizer.enable_truncation(
                max_length, stride=stride, strategy="only_second", direction="right"
            )
            try:
                encodings = self._tokenizer.encode_batch(
                    list(zip(questions, contexts, strict=True))
                )
            finally:
                self._tokenizer.no_truncation()
        windows, pair_index = [], []
        for pair, encoding in enumerate(encodings):
            for window in (encoding, *encoding.overflowing):
                windows.append(window)
                pair_index.append(pair)
        encoded = self._padded(windows)
        width = encoded["input_ids"].shape[1]
        offsets = [
            [
                (int(o[0]), int(o[1])) if seq == 1 else None
                for o, seq in zip(w.offsets, w.sequence_ids, strict=True)
            ]
            + [None] * (width - len(w.ids))  # padding
            for w in windows
        ]
        return encoded, pair_index, offsets

    def batch(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
        """``texts`` as transformers encodes them with ``padding=True,
        truncation="longest_first", max_length=max_length`` (int64 arrays by input name)."""
        with self._lock:
            self._tokenizer.enable_truncation(max_length, strategy="longest_first")
            try:
                encodings = self._tokenizer.encode_batch(list(texts))
            finally:
                self._tokenizer.no_truncation()
        return self._padded(encodings)

    def _padded(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_token_id, dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            types[row, :n] = e.type_ids
            mask[row, :n] = 1
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _tokenizer_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def load_tokenizer(folder: str | Path) -> Any:
    """A :class:`LightTokenizer` where it reproduces the model's tokenizer, else transformers'
    ``AutoTokenizer``."""
    if LightTokenizer.supports(folder):
        return LightTokenizer(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))
