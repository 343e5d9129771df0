"""Tokenization of SQuAD examples into training windows, as in the transformers QA example.

Each example becomes one or more windows of ``max_seq_length`` tokens (question + a slice of the
context, ``doc_stride`` tokens of overlap). A window that contains the answer is labeled with the
answer's token positions; a window without it, and every window of an unanswerable question, is
labeled with the [CLS] position (the "no answer" target). Long documents (COVID-QA articles run to
thousands of tokens) would otherwise drown the answer windows in negatives, so at most
``max_negative_windows`` answerless windows are kept per answerable example.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evaluation.squad import SquadExample
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureParams:
    max_seq_length: int = 256
    doc_stride: int = 96
    max_negative_windows: int = 2
    seed: int = 13


def prepare_train_features(
    examples: Sequence[SquadExample],
    tokenizer: Any,
    params: FeatureParams,
    chunk: int = 1000,
    with_example_index: bool = False,
) -> dict[str, torch.Tensor]:
    """Padded tensors: input_ids, attention_mask, [token_type_ids], start/end_positions.

    ``with_example_index`` adds ``example_index``: the position in ``examples`` of each window's
    example (to group the windows of one question for shared normalization).
    """
    rng = random.Random(params.seed)
    pad_right = tokenizer.padding_side == "right"
    rows: dict[str, list[list[int]] | list[int]] = {
        "input_ids": [],
        "attention_mask": [],
        "token_type_ids": [],
        "start_positions": [],
        "end_positions": [],
        "example_index": [],
    }
    for lo in range(0, len(examples), chunk):
        batch = examples[lo : lo + chunk]
        questions = [ex.question.lstrip() for ex in batch]
        contexts = [ex.context for ex in batch]
        enc = tokenizer(
            questions if pad_right else contexts,
            contexts if pad_right else questions,
            truncation="only_second" if pad_right else "only_first",
            max_length=params.max_seq_length,
            stride=params.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length",
        )
        per_example: dict[int, list[tuple[int, int, int]]] = {}
        for w, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
            ex = batch[ex_i]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            ctx = 1 if pad_right else 0
            start_pos = end_pos = 0
            if ex.answers:
                a = ex.answers[0]
                s_char, e_char = a.start, a.start + len(a.text)
                tok_s = next(i for i, s in enumerate(seq_ids) if s == ctx)
                tok_e = (
                    len(seq_ids) - 1 - next(i for i, s in enumerate(reversed(seq_ids)) if s == ctx)
                )
                if offsets[tok_s][0] <= s_char and offsets[tok_e][1] >= e_char:
                    while (
                        tok_s < len(offsets)
                        and offsets[tok_s][0] <= s_char
                        and seq_ids[tok_s] == ctx
                    ):
                        tok_s += 1
                    start_pos = tok_s - 1
                    while offsets[tok_e][1] >= e_char and seq_ids[tok_e] == ctx:
                        tok_e -= 1
                    end_pos = tok_e + 1
            per_example.setdefault(ex_i, []).append((w, start_pos, end_pos))
        for ex_i, wins in per_example.items():
            positives = [x for x in wins if x[1] != 0]
            negatives = [x for x in wins if x[1] == 0]
            if batch[ex_i].answers:
                if not positives:
                    continue  # the answer was cut by truncation in every window
                if len(negatives) > params.max_negative_windows:
                    negatives = rng.sample(negatives, params.max_negative_windows)
            else:
                negatives = negatives[: max(1, params.max_negative_windows)]
            for w, s, e in sorted(positives + negatives):
                rows["input_ids"].append(enc["input_ids"][w])
                rows["attention_mask"].append(enc["attention_mask"][w])
                if "token_type_ids" in enc:
                    rows["token_type_ids"].append(enc["token_type_ids"][w])
                rows["start_positions"].append(s)
                rows["end_positions"].append(e)
                rows["example_index"].append(lo + ex_i)
    if not rows["token_type_ids"]:
        del rows["token_type_ids"]
    if not with_example_index:
        del rows["example_index"]
    return {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}


def features_cache_key(
    examples: Sequence[SquadExample], tokenizer: Any, params: FeatureParams
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(params.__dict__, sort_keys=True).encode())
    h.update(str(getattr(tokenizer, "name_or_path", "")).encode())
    h.update(str(len(tokenizer)).encode())
    for ex in examples:
        h.update(ex.id.encode())
        h.update(ex.question.encode())
        h.update(hashlib.sha1(ex.context.encode()).digest())
        for a in ex.answers:
            h.update(f"{a.start}:{a.text}".encode())
    return h.hexdigest()[:20]


def cached_train_features(
    examples: Sequence[SquadExample], tokenizer: Any, params: FeatureParams, cache_dir: Path | None
) -> dict[str, torch.Tensor]:
    """``prepare_train_features`` with an on-disk cache keyed by data, tokenizer and params."""
    if cache_dir is None:
        return prepare_train_features(examples, tokenizer, params)
    path = Path(cache_dir) / f"features-{features_cache_key(examples, tokenizer, params)}.pt"
    if path.is_file():
        logger.info("using cached features %s", path)
        return torch.load(path)
    feats = prepare_train_features(examples, tokenizer, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors_atomic(feats, path)
    return feats


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``torch.save`` that leaves ``path`` whole or untouched (a cache read back later)."""
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    write_atomic(path, buffer.getvalue())


class FeatureDataset(torch.utils.data.Dataset):
    def __init__(self, features: dict[str, torch.Tensor]) -> None:
        self.features = features

    def __len__(self) -> int:
        return int(self.features["input_ids"].shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.features.items()}

    def lengths(self) -> list[int]:
        """Real (unpadded) token count of every window, for length-grouped batching."""
        return self.features["attention_mask"].sum(dim=1).tolist()


def collate_trimmed(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack windows and cut the padding columns that no window of the batch uses.

    Windows are stored padded to ``max_seq_length`` (one cached tensor), but most are shorter
    (mean 170 of 256 tokens on the default pool); with length-grouped batches, trimming the shared
    padding makes a training step about a third cheaper. Padding is on the right, so the answer
    positions stay valid (a left-padding tokenizer's batches are left whole).
    """
    batch = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
    # The last column any window uses: with left padding nothing is cut, which stays correct.
    used = batch["attention_mask"].any(dim=0).nonzero()
    width = int(used[-1]) + 1 if len(used) else batch["attention_mask"].shape[1]
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in batch:
            batch[key] = batch[key][:, :width]
    return batch
