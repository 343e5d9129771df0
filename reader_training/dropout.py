"""Dropout for training on a CPU, with masks drawn four at a time.

torch draws a CPU dropout mask one element at a time, each from its own 64-bit Mersenne Twister
draw, on one thread (``bernoulli_``; its parallel MKL path is for Intel CPUs only, so this is what
an AMD EPYC gets); and its fused attention kernel takes no dropout on a CPU, so BERT's attention
falls back to the math path and draws a mask for every attention weight (32 windows x 12 heads x
256 x 256 per layer and step). On a 2-core AMD EPYC Zen 4 drawing those masks was 40% of a
training step of the 6-layer reader, and a 40-pair ``docqa train`` takes 0.64x the time with the
masks here (``benchmarks/bench_training_dropout.py``).

Here a mask element is 16 bits of a 64-bit draw from the same torch generator: four elements
a draw, at memory speed. The dropout is the same: each element is kept with probability
``round((1 - p) * 65536) / 65536`` (``1 - p`` to 1e-5) and scaled by the inverse of exactly that,
so its expectation is the input's; a seeded run repeats itself, and a resumed run continues the
generator's stream that Trainer saved with the checkpoint. The masks themselves differ from
torch's, so a run's numbers differ from a run with torch's dropout as two seeds do. They are the
default on a CPU (``--torch-dropout`` for torch's): over five seeds each of two 40-pair
retrains, demo dev F1 averaged 75.54 with these masks and 75.23 with torch's, all 20 runs
within a point of the shipped reader's 74.46 (docs/experiments.md).

Hand-written because no library offers a faster CPU dropout: transformers lets a model take an
attention function of its own (``AttentionInterface``), which is the hook used. On a GPU torch's
own dropout (Philox, in the fused kernel) is kept.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

ATTENTION_NAME = "docqa_cpu_dropout"
_LANES = 4  # 16-bit mask elements per 64-bit draw
_LANE_VALUES = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], keep: float) -> tuple[torch.Tensor, float]:
    """A boolean mask of ``shape``, each element True with probability ``keep`` (to 1/65536),
    and that exact probability."""
    kept_values = round(keep * _LANE_VALUES)
    if kept_values >= _LANE_VALUES:  # (the threshold below would not fit in 16 bits)
        return torch.ones(shape, dtype=torch.bool), 1.0
    numel = math.prod(shape)
    draws = torch.empty((numel + _LANES - 1) // _LANES, dtype=torch.int64)
    draws.random_(-(1 << 63), None)  # the full 64 bits (random_() alone leaves the top bit 0)
    lanes = draws.view(torch.int16)[:numel].view(shape)  # each uniform on [-32768, 32767]
    return lanes < kept_values - _LANE_VALUES // 2, kept_values / _LANE_VALUES


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``torch.nn.functional.dropout(x, p, training)`` with masks from :func:`keep_mask`."""
    if not training or p == 0.0:
        return x
    mask, keep = keep_mask(x.shape, 1.0 - p)
    if keep == 0.0:
        return torch.zeros_like(x)
    return torch.where(mask, x * (1.0 / keep), 0.0)


class CpuDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from :func:`keep_mask`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def attention_with_cpu_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that in training the weights are dropped out by
    :func:`cpu_dropout` (the math path SDPA itself would take on a CPU, with cheaper masks)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not module.training:
        dropout = 0.0
    if dropout == 0.0 or is_causal or kwargs.get("output_attentions"):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = cpu_dropout(torch.softmax(scores, dim=-1), dropout)
    out = torch.matmul(weights.to(value.dtype), value)
    return out.transpose(1, 2).contiguous(), None


def use_cpu_dropout(model: nn.Module) -> bool:
    """Swap ``model``'s dropout layers and, where it takes an attention function, its attention
    for the ones here; returns whether the attention was swapped. Call it on a model that
    trains on a CPU, before training. None of it is saved: a saved reader loads with SDPA
    attention and torch's dropout layers."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, CpuDropout(child.p, child.inplace))
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return False  # eager attention draws its mask with nn.functional.dropout: left as is
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, attention_with_cpu_dropout)
    model.set_attn_implementation(ATTENTION_NAME)
    return True
