"""Shared normalization: one softmax over all windows of a question, with one shared no-answer.

A reader trained on windows one at a time learns scores that are only comparable *within* a
window: each window's spans are normalized against that window's own null ("no answer") logit.
At query time the best span is picked across ten passages, so the span scores of passages that
lack the answer were never trained to lose against the gold passage's (Clark & Gardner 2018,
"Simple and Effective Multi-Paragraph Reading Comprehension"). In the campaign's last epoch each
answerable question is therefore trained as a *group*: its own window(s) and retrieved windows
of the same question that lack the answer (the BM25-nearest paragraphs of the same article), in
one softmax over every position of every window plus one shared null, the mean of the windows'
[CLS] logits, so that the null does not grow with the number of windows read.

For a group of one window this is exactly the usual per-window loss.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _group_nll(logits: torch.Tensor, mask: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """-log P(gold) for one group: ``logits``/``mask`` are (windows, length); ``gold`` holds
    each window's gold position (0: none in that window)."""
    positions = mask.clone()
    positions[:, 0] = False  # [CLS] is the null, shared by the group
    null = logits[:, 0].mean().unsqueeze(0)
    flat = torch.cat([null, logits[positions]])
    log_probs = F.log_softmax(flat.float(), dim=0)
    golden = gold > 0
    if not bool(golden.any()):
        return -log_probs[0]
    # Index of (window, position) among the kept positions, +1 for the null in front.
    index = torch.cumsum(positions.flatten().long(), 0) - 1
    rows = golden.nonzero().flatten()
    flat_index = index[rows * positions.shape[1] + gold[rows]] + 1
    # An answer in two overlapping windows: either occurrence is right (marginal likelihood).
    return -torch.logsumexp(log_probs[flat_index], dim=0)


def shared_norm_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    attention_mask: torch.Tensor,
    groups: torch.Tensor,
) -> torch.Tensor:
    """Mean over groups of (start NLL + end NLL) / 2; a group id of -1 is a window on its own."""
    mask = attention_mask.bool()
    keys = groups.clone()
    alone = keys < 0
    # Windows outside any group get ids of their own, below every real group id.
    keys[alone] = -1 - torch.arange(int(alone.sum()), device=keys.device)
    losses = []
    for key in torch.unique(keys):
        rows = (keys == key).nonzero().flatten()
        start = _group_nll(start_logits[rows], mask[rows], start_positions[rows])
        end = _group_nll(end_logits[rows], mask[rows], end_positions[rows])
        losses.append((start + end) / 2)
    return torch.stack(losses).mean()


def pack_groups(
    sizes: Sequence[int], lengths: Sequence[int], batch_size: int, seed: int
) -> list[list[int]]:
    """Groups (by index) ordered into batches of exactly ``batch_size`` windows where possible,
    no group split across two batches, and batches of similar window length (less padding).

    ``sizes``: windows per group; ``lengths``: each group's longest window in tokens. Groups
    are shuffled, cut into megabatches of about 50 batches, sorted by length inside each, and
    packed greedily: a batch takes the next group that still fits, else the largest one that
    does. What is left at the end forms the last, possibly smaller, batches.
    """
    rng = random.Random(seed)
    order = list(range(len(sizes)))
    rng.shuffle(order)
    megabatches: list[list[int]] = [[]]
    filled = 0
    for g in order:
        megabatches[-1].append(g)
        filled += sizes[g]
        if filled >= 50 * batch_size:
            megabatches.append([])
            filled = 0

    batches: list[list[int]] = []
    pending: list[int] = []
    for n, chunk in enumerate(megabatches):
        pending = pending + sorted(chunk, key=lambda i: -lengths[i])
        last = n == len(megabatches) - 1
        # Pack full batches; a few groups that did not fit wait for the next megabatch.
        while pending and (last or sum(sizes[g] for g in pending) >= 2 * batch_size):
            batch, rest, room = [], [], batch_size
            for i, g in enumerate(pending):
                if room == 0:
                    rest += pending[i:]
                    break
                if sizes[g] <= room:
                    batch.append(g)
                    room -= sizes[g]
                else:
                    rest.append(g)
            if not batch:  # a group larger than a batch: a batch of its own
                batch, rest = [rest[0]], rest[1:]
            batches.append(batch)
            pending = rest
    return batches
