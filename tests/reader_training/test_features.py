"""Training windows: stride, answer labels that map back to the answer text, negatives, cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from evaluation.squad import Answer, SquadExample, load_squad
from pipelines.settings import REPO_ROOT
from reader_training.features import (
    FeatureDataset,
    FeatureParams,
    cached_train_features,
    collate_trimmed,
    features_cache_key,
    prepare_train_features,
)

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"
PARAMS = FeatureParams(max_seq_length=96, doc_stride=24, max_negative_windows=100, seed=3)


@pytest.fixture(scope="module")
def tokenizer(tiny_base: str) -> Any:
    return AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture(scope="module")
def examples() -> list[SquadExample]:
    """Demo pairs over long documents (several windows each), answers at various places."""
    exs, _ = load_squad(DEMO_TRAIN)
    return [ex for ex in exs if ex.answers][::25][:16]


def windows_of(tokenizer: Any, ex: SquadExample, params: FeatureParams) -> Any:
    """The same windows ``prepare_train_features`` cuts, with their offsets."""
    return tokenizer(
        ex.question.lstrip(),
        ex.context,
        truncation="only_second",
        max_length=params.max_seq_length,
        stride=params.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )


def context_tokens(enc: Any, w: int) -> list[int]:
    seq = enc.sequence_ids(w)
    return [t for t, i in zip(enc["input_ids"][w], seq, strict=True) if i == 1]


def test_long_contexts_are_cut_into_overlapping_windows(
    tokenizer: Any, examples: list[SquadExample]
) -> None:
    ex = examples[0]
    enc = windows_of(tokenizer, ex, PARAMS)
    n = len(enc["input_ids"])
    assert n >= 3
    for w in range(n - 1):
        # Consecutive windows share exactly ``doc_stride`` context tokens.
        assert (
            context_tokens(enc, w)[-PARAMS.doc_stride :]
            == context_tokens(enc, w + 1)[: PARAMS.doc_stride]
        )
    feats = prepare_train_features([ex], tokenizer, PARAMS)
    assert feats["input_ids"].shape == (n, PARAMS.max_seq_length)
    assert feats["input_ids"].tolist() == enc["input_ids"]
    assert set(feats) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "start_positions",
        "end_positions",
    }
    assert all(v.dtype == torch.long for v in feats.values())


def test_answer_positions_map_back_to_the_answer_text(
    tokenizer: Any, examples: list[SquadExample]
) -> None:
    checked = 0
    for ex in examples:
        a = ex.answers[0]
        a_start, a_end = a.start, a.start + len(a.text)
        enc = windows_of(tokenizer, ex, PARAMS)
        feats = prepare_train_features([ex], tokenizer, PARAMS)
        assert feats["input_ids"].tolist() == enc["input_ids"]  # every window kept, in order
        for w in range(len(enc["input_ids"])):
            s, e = int(feats["start_positions"][w]), int(feats["end_positions"][w])
            offsets, seq = enc["offset_mapping"][w], enc.sequence_ids(w)
            ctx = [i for i, sid in enumerate(seq) if sid == 1]
            inside = offsets[ctx[0]][0] <= a_start and a_end <= offsets[ctx[-1]][1]
            if not inside:
                assert (s, e) == (0, 0)  # a window without the whole answer: "no answer"
                continue
            assert seq[s] == 1 and seq[e] == 1 and s <= e
            span = ex.context[offsets[s][0] : offsets[e][1]]
            assert span == a.text, (ex.id, span, a.text)
            checked += 1
    assert checked >= len(examples)


def test_unanswerable_examples_are_labeled_no_answer(
    tokenizer: Any, examples: list[SquadExample]
) -> None:
    ex = examples[0]
    impossible = SquadExample("imp", ex.title, ex.context, "What is the CEO's shoe size?", ())
    n_windows = len(windows_of(tokenizer, impossible, PARAMS)["input_ids"])
    for k, expected in ((0, 1), (2, 2), (100, n_windows)):
        params = FeatureParams(PARAMS.max_seq_length, PARAMS.doc_stride, k)
        feats = prepare_train_features([impossible], tokenizer, params)
        assert len(feats["input_ids"]) == expected
        assert not feats["start_positions"].any() and not feats["end_positions"].any()


@pytest.mark.parametrize("k", [0, 1, 2])
def test_max_negative_windows_is_respected(
    tokenizer: Any, examples: list[SquadExample], k: int
) -> None:
    params = FeatureParams(PARAMS.max_seq_length, PARAMS.doc_stride, max_negative_windows=k)
    total_positives = 0
    for ex in examples:
        all_feats = prepare_train_features([ex], tokenizer, PARAMS)
        positives = int((all_feats["start_positions"] != 0).sum())
        negatives = len(all_feats["input_ids"]) - positives
        feats = prepare_train_features([ex], tokenizer, params)
        assert int((feats["start_positions"] != 0).sum()) == positives  # all positives kept
        assert int((feats["start_positions"] == 0).sum()) == min(k, negatives)
        total_positives += positives
    # Batched over all examples: the same rows.
    feats = prepare_train_features(examples, tokenizer, params, chunk=5)
    assert int((feats["start_positions"] != 0).sum()) == total_positives
    assert len(feats["input_ids"]) <= total_positives + k * len(examples)


def test_answer_cut_in_every_window_drops_the_example(tokenizer: Any) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    context = "Intro sentence. " + words + " End."
    ex = SquadExample("long", "t", context, "Which words?", (Answer(words, 16),))
    feats = prepare_train_features([ex], tokenizer, FeatureParams(64, 16, 2))
    assert len(feats["input_ids"]) == 0


def test_feature_cache_hit_returns_identical_tensors(
    tokenizer: Any,
    examples: list[SquadExample],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    params = FeatureParams(96, 24, 1, seed=5)
    first = cached_train_features(examples, tokenizer, params, tmp_path)
    files = list(tmp_path.iterdir())
    key = features_cache_key(examples, tokenizer, params)
    assert [f.name for f in files] == [f"features-{key}.pt"]
    with caplog.at_level(logging.INFO, logger="reader_training.features"):
        second = cached_train_features(examples, tokenizer, params, tmp_path)
    assert "using cached features" in caplog.text
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name])
    assert torch.equal(
        first["input_ids"], prepare_train_features(examples, tokenizer, params)["input_ids"]
    )
    # Other data or other parameters: another key, never a stale hit.
    assert features_cache_key(examples[1:], tokenizer, params) != key
    assert features_cache_key(examples, tokenizer, FeatureParams(96, 32, 1, seed=5)) != key
    moved = [
        SquadExample(
            ex.id,
            ex.title,
            ex.context,
            ex.question,
            (Answer(ex.answers[0].text, ex.answers[0].start + 1),),
        )
        for ex in examples[:1]
    ] + examples[1:]
    assert features_cache_key(moved, tokenizer, params) != key


def test_feature_dataset_items(tokenizer: Any, examples: list[SquadExample]) -> None:
    feats = prepare_train_features(examples[:2], tokenizer, FeatureParams(96, 24, 1))
    dataset = FeatureDataset(feats)
    assert len(dataset) == len(feats["input_ids"])
    item = dataset[len(dataset) - 1]
    assert set(item) == set(feats)
    assert torch.equal(item["input_ids"], feats["input_ids"][-1])


def test_trimmed_batches_keep_every_token_and_label(
    tokenizer: Any, examples: list[SquadExample]
) -> None:
    """Cutting shared padding must not change what the model sees or where the answer is."""
    params = FeatureParams(max_seq_length=256, doc_stride=64, max_negative_windows=1, seed=3)
    dataset = FeatureDataset(prepare_train_features(examples, tokenizer, params))
    lengths = dataset.lengths()
    short = [i for i, n in enumerate(lengths) if n < 256][:4]
    assert short, "the demo pairs should give some windows shorter than 256 tokens"
    batch = collate_trimmed([dataset[i] for i in short])
    width = max(lengths[i] for i in short)
    assert batch["input_ids"].shape == (len(short), width)
    for row, i in enumerate(short):
        item = dataset[i]
        n = lengths[i]
        assert torch.equal(batch["input_ids"][row, :n], item["input_ids"][:n])
        assert int(batch["attention_mask"][row].sum()) == n
        assert int(batch["start_positions"][row]) == int(item["start_positions"])
        assert int(batch["end_positions"][row]) < width
