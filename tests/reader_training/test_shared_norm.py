"""Shared normalization: the loss over a question's windows, and batches that keep groups whole."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from reader_training.shared_norm import pack_groups, shared_norm_loss


def _standard_loss(
    start: torch.Tensor, end: torch.Tensor, sp: torch.Tensor, ep: torch.Tensor
) -> torch.Tensor:
    """BertForQuestionAnswering's loss (no padding masked)."""
    return (F.cross_entropy(start, sp) + F.cross_entropy(end, ep)) / 2


def test_windows_on_their_own_give_the_usual_loss() -> None:
    torch.manual_seed(0)
    start, end = torch.randn(6, 12), torch.randn(6, 12)
    sp, ep = torch.tensor([0, 3, 5, 0, 1, 7]), torch.tensor([0, 4, 6, 0, 2, 9])
    mask = torch.ones(6, 12, dtype=torch.long)
    loss = shared_norm_loss(start, end, sp, ep, mask, torch.full((6,), -1))
    assert torch.allclose(loss, _standard_loss(start, end, sp, ep), atol=1e-5)
    # Groups of one are the same thing.
    same = shared_norm_loss(start, end, sp, ep, mask, torch.arange(6))
    assert torch.allclose(same, loss, atol=1e-5)


def test_padding_is_never_a_candidate() -> None:
    start, end = torch.zeros(1, 8), torch.zeros(1, 8)
    sp, ep = torch.tensor([2]), torch.tensor([3])
    short = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]])
    loss = shared_norm_loss(start, end, sp, ep, short, torch.tensor([0]))
    # Uniform over the 4 real positions (null included): -log(1/4).
    assert torch.allclose(loss, torch.log(torch.tensor(4.0)), atol=1e-5)


def test_a_confident_span_in_a_passage_without_the_answer_is_penalized() -> None:
    """The point of shared normalization: spans of other passages compete with the gold one."""
    length = 10
    gold_start, gold_end = torch.zeros(length), torch.zeros(length)
    gold_start[4], gold_end[5] = 5.0, 5.0
    quiet = torch.zeros(length)
    loud = torch.zeros(length)
    loud[2] = 5.0  # the distractor window's own span scores as high as the gold span
    sp, ep = torch.tensor([4, 0]), torch.tensor([5, 0])
    mask = torch.ones(2, length, dtype=torch.long)
    group = torch.tensor([7, 7])

    def loss(distractor: torch.Tensor) -> float:
        start = torch.stack([gold_start, distractor])
        end = torch.stack([gold_end, distractor])
        return float(shared_norm_loss(start, end, sp, ep, mask, group))

    assert loss(loud) > loss(quiet) + 0.5
    # One window at a time, the gold window's loss ignores the other passage altogether.
    gold_alone = shared_norm_loss(
        gold_start[None], gold_end[None], sp[:1], ep[:1], mask[:1], torch.tensor([-1])
    )
    assert loss(quiet) > float(gold_alone)


def test_an_answer_in_two_overlapping_windows_counts_either() -> None:
    start = torch.zeros(2, 6)
    end = torch.zeros(2, 6)
    both = shared_norm_loss(
        start,
        end,
        torch.tensor([2, 1]),
        torch.tensor([3, 2]),
        torch.ones(2, 6, dtype=torch.long),
        torch.tensor([0, 0]),
    )
    one = shared_norm_loss(
        start,
        end,
        torch.tensor([2, 0]),
        torch.tensor([3, 0]),
        torch.ones(2, 6, dtype=torch.long),
        torch.tensor([0, 0]),
    )
    assert float(both) < float(one)


def test_groups_are_packed_whole_into_full_batches() -> None:
    rng = random.Random(0)
    sizes = [rng.choice([1, 2, 2, 3, 4]) for _ in range(2000)]
    lengths = [rng.randint(20, 256) for _ in sizes]
    batches = pack_groups(sizes, lengths, 32, seed=1)
    seen = sorted(g for b in batches for g in b)
    assert seen == list(range(len(sizes)))  # every group once
    filled = [sum(sizes[g] for g in b) for b in batches]
    assert all(f <= 32 for f in filled)
    assert sum(f == 32 for f in filled) >= len(filled) - 3  # only the last few are short
    # Similar lengths share a batch (less padding to trim): the spread inside a batch is far
    # below the spread overall.
    spread = [max(lengths[g] for g in b) - min(lengths[g] for g in b) for b in batches[:-3]]
    assert sum(spread) / len(spread) < 0.5 * (max(lengths) - min(lengths))
