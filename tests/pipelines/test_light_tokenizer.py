"""pipelines.light_tokenizer: the windows and batches of transformers' tokenizer, without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from evaluation.squad import load_squad
from pipelines.embedder import embedder_model_path
from pipelines.light_tokenizer import LightTokenizer, load_tokenizer
from pipelines.settings import SHIPPED_READER
from pipelines.spans import tokenize_pairs
from tests.conftest import DEMO_LABELS


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    """Demo dev questions and their whole documents' passages (long: many windows each)."""
    examples, _ = load_squad(DEMO_LABELS / "dev.json")
    return [ex.question for ex in examples[:40]], [ex.context for ex in examples[:40]]


def model_folders(tiny_reader: Path) -> list[str]:
    return [str(SHIPPED_READER), embedder_model_path(None), str(tiny_reader)]


@pytest.mark.parametrize(("max_length", "stride"), [(256, 128), (64, 16)])
def test_reader_windows_are_transformers_windows(
    tiny_reader: Path, pairs: tuple[list[str], list[str]], max_length: int, stride: int
) -> None:
    """Same ids, token types, masks, windows per pair and context offsets: the reader decodes
    the same spans whichever tokenizer made its windows."""
    for folder in model_folders(tiny_reader):
        light = load_tokenizer(folder)
        assert isinstance(light, LightTokenizer), folder
        want = tokenize_pairs(AutoTokenizer.from_pretrained(folder), *pairs, max_length, stride)
        got = tokenize_pairs(light, *pairs, max_length, stride)
        assert len(set(got.pair_index)) == len(pairs[0])
        assert len(got.pair_index) > 2 * len(pairs[0])  # contexts really overflow into windows
        assert got.pair_index == want.pair_index
        assert got.offsets == want.offsets
        assert set(got.encodings) == {"input_ids", "token_type_ids", "attention_mask"}
        for name, tensor in want.encodings.items():
            np.testing.assert_array_equal(got.encodings[name].numpy(), tensor.numpy(), name)


def test_batches_are_transformers_batches(tiny_reader: Path, pairs: tuple) -> None:
    texts = [*pairs[0][:10], *pairs[1][:10], "", "ÄÖÜ café naïve — “quotes” 東京"]
    for folder in model_folders(tiny_reader):
        want = AutoTokenizer.from_pretrained(folder)(
            texts, padding=True, truncation="longest_first", max_length=128, return_tensors="np"
        )
        got = LightTokenizer(folder).batch(texts, 128)
        assert got["input_ids"].shape == (len(texts), 128)  # long passages truncated alike
        for name in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(got[name], want[name], name)


def test_a_question_too_long_for_the_window_fails_as_with_transformers() -> None:
    question, context = "why " * 300, "A short context."
    with pytest.raises(Exception, match="Truncation error"):
        tokenize_pairs(AutoTokenizer.from_pretrained(str(SHIPPED_READER)), [question],
                       [context], 256, 128)  # fmt: skip
    with pytest.raises(Exception, match="Truncation error"):
        tokenize_pairs(LightTokenizer(SHIPPED_READER), [question], [context], 256, 128)


def test_other_tokenizers_go_through_transformers(tmp_path: Path) -> None:
    """Only tokenizers checked to give transformers' windows are taken; others (another class,
    left padding, no tokenizer.json) are loaded by transformers."""
    import json
    import shutil

    folder = tmp_path / "reader"
    shutil.copytree(SHIPPED_READER, folder)
    assert LightTokenizer.supports(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    assert not LightTokenizer.supports(folder)
    tokenizer = load_tokenizer(folder)
    assert not isinstance(tokenizer, LightTokenizer) and tokenizer.padding_side == "left"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").unlink()
    assert not LightTokenizer.supports(folder)
