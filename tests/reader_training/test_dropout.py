"""The training dropout on a CPU: torch's dropout in distribution, with cheaper masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForQuestionAnswering
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from reader_training.dropout import (
    ATTENTION_NAME,
    CpuDropout,
    attention_with_cpu_dropout,
    cpu_dropout,
    keep_mask,
    use_cpu_dropout,
)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.95])
def test_each_element_is_kept_with_the_probability_asked(keep: float) -> None:
    torch.manual_seed(0)
    mask, exact = keep_mask((1001, 999), keep)  # not a multiple of four elements
    assert mask.shape == (1001, 999) and mask.dtype == torch.bool
    assert exact == pytest.approx(keep, abs=1 / 65536)
    # Every one of the four 16-bit lanes of a draw (a lane with a fixed bit would show here).
    lanes = mask.flatten()[: 1001 * 999 // 4 * 4].view(-1, 4).float().mean(dim=0)
    assert torch.allclose(lanes, torch.full((4,), keep), atol=0.003), lanes
    # Neighbours are independent: a kept element is followed by a kept one keep of the time.
    flat = mask.flatten()
    assert flat[1:][flat[:-1]].float().mean().item() == pytest.approx(keep, abs=0.003)


def test_dropout_zeroes_or_scales_and_keeps_the_expectation() -> None:
    torch.manual_seed(1)
    x = torch.rand(2000, 500) + 0.5
    y = cpu_dropout(x, 0.1)
    dropped = y == 0
    assert dropped.float().mean().item() == pytest.approx(0.1, abs=0.002)
    _, keep = keep_mask((1,), 0.9)
    assert torch.allclose(y[~dropped], x[~dropped] / keep)
    assert y.mean().item() == pytest.approx(x.mean().item(), rel=0.003)
    assert cpu_dropout(x, 0.1, training=False) is x
    assert cpu_dropout(x, 0.0) is x
    assert not cpu_dropout(x, 1.0).any()
    # A seeded run repeats itself.
    torch.manual_seed(7)
    first = cpu_dropout(x, 0.3)
    torch.manual_seed(7)
    assert torch.equal(cpu_dropout(x, 0.3), first)


def test_gradients_flow_through_the_kept_elements_only() -> None:
    torch.manual_seed(2)
    x = torch.rand(300, 40, requires_grad=True)
    layer = CpuDropout(0.25)
    y = layer(x)
    y.sum().backward()
    _, keep = keep_mask((1,), 0.75)
    kept = y != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / keep))
    assert not x.grad[~kept].any()
    layer.eval()
    assert layer(x) is x


def attention_inputs(masked_from: int) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(3)
    query, key, value = (torch.randn(2, 4, 16, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., masked_from:] = torch.finfo(torch.float32).min  # padding in the batch
    return query, key, value, mask


def test_attention_keeping_everything_is_sdpa_attention() -> None:
    """A dropout too small to drop anything (keep rounds to 65536/65536) takes this module's own
    path: it must compute what transformers' SDPA attention computes, padding mask included."""
    module = nn.Module().train()
    query, key, value, mask = attention_inputs(masked_from=11)
    ours, _ = attention_with_cpu_dropout(module, query, key, value, mask, dropout=1e-9)
    sdpa, _ = sdpa_attention_forward(module, query, key, value, mask, dropout=0.0)
    assert ours.shape == sdpa.shape == (2, 16, 4, 8)
    assert torch.allclose(ours, sdpa, atol=1e-5)
    bool_mask = mask == 0
    ours_bool, _ = attention_with_cpu_dropout(module, query, key, value, bool_mask, dropout=1e-9)
    assert torch.allclose(ours_bool, sdpa, atol=1e-5)


def test_attention_drops_weights_in_training_only() -> None:
    module = nn.Module().train()
    query, key, value, mask = attention_inputs(masked_from=16)
    sdpa, _ = sdpa_attention_forward(module, query, key, value, mask, dropout=0.0)
    torch.manual_seed(4)
    dropped, _ = attention_with_cpu_dropout(module, query, key, value, mask, dropout=0.5)
    assert not torch.allclose(dropped, sdpa, atol=1e-3)
    module.eval()
    evaluated, _ = attention_with_cpu_dropout(module, query, key, value, mask, dropout=0.5)
    assert torch.allclose(evaluated, sdpa, atol=1e-6)


def test_a_reader_trains_with_it_and_saves_without_it(tiny_reader: Path, tmp_path: Path) -> None:
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader, dtype=torch.float32)
    assert use_cpu_dropout(model)
    assert model.config._attn_implementation == ATTENTION_NAME
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert layers and all(type(m) is CpuDropout for m in layers)
    ids = torch.randint(1000, 5000, (4, 48))
    positions = torch.tensor([3, 5, 7, 9])
    model.train()
    torch.manual_seed(5)
    loss = model(input_ids=ids, start_positions=positions, end_positions=positions).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        first, second = (model(input_ids=ids).start_logits for _ in range(2))
    assert torch.equal(first, second)  # no dropout outside training
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text(encoding="utf-8"))
    assert ATTENTION_NAME not in json.dumps(saved)
    again = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "saved")
    assert again.config._attn_implementation == "sdpa"
    assert not any(isinstance(m, CpuDropout) for m in again.modules())
    with torch.no_grad():
        assert torch.allclose(again.eval()(input_ids=ids).start_logits, first, atol=1e-5)


def test_a_run_with_cpu_dropout_repeats_itself_and_says_so(tiny_base: str, tmp_path: Path) -> None:
    """``docqa train --cpu-dropout``: two runs with one seed give the same weights, and the card
    names the dropout (runs without the option keep torch's, as the card says too)."""
    from safetensors.torch import load_file

    from pipelines.settings import DEMO_LABELS
    from reader_training.train import TrainConfig, train_reader

    def run(name: str, cpu_dropout: bool) -> Path:
        config = TrainConfig(
            train_files=[str(DEMO_LABELS / "train.json")],
            base_model=tiny_base,
            output_dir=str(tmp_path / name),
            learning_rate=3e-4,
            epochs=1,
            batch_size=8,
            max_seq_length=128,
            doc_stride=64,
            max_negative_windows=1,
            max_train_examples=24,
            max_holdout_questions=8,
            seed=3,
            cpu_dropout=cpu_dropout,
        )
        return train_reader(config, progress=False).model_dir

    first, second, torch_run = run("a", True), run("b", True), run("c", False)
    weights = [load_file(folder / "model.safetensors") for folder in (first, second, torch_run)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    for folder, dropout in ((first, "reader_training.dropout"), (torch_run, "torch")):
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["metrics"]["dropout"] == dropout
        assert f"dropout masks {dropout}" in (folder / "README.md").read_text(encoding="utf-8")
