"""How the indexer's embedder batches passages: by length, results in input order, on the GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipelines.embedder
from pipelines.embedder import PassageEmbedder, default_device, embed_texts, load_embedder
from pipelines.settings import Settings

TEXTS = ["a" * 5, "b" * 40, "c" * 2, "d" * 25, "e" * 12]


class RecordingModel:
    """Stands in for a SentenceTransformer: records batches; a text's vector encodes its length."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def get_embedding_dimension(self) -> int:
        return 2

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.batches.append(list(texts))
        return np.asarray([[len(text), 1.0] for text in texts], dtype=np.float32)


def expected_rows(texts: list[str]) -> np.ndarray:
    rows = np.asarray([[len(text), 1.0] for text in texts], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_batches_hold_similar_lengths_and_rows_stay_in_input_order() -> None:
    model = RecordingModel()
    progress: list[tuple[int, int]] = []
    rows = embed_texts(model, TEXTS, batch_size=2, progress=lambda d, n: progress.append((d, n)))  # type: ignore[arg-type]

    # Longest first, so one long passage never pads a batch of short ones.
    assert model.batches == [["b" * 40, "d" * 25], ["e" * 12, "a" * 5], ["c" * 2]]
    np.testing.assert_allclose(rows, expected_rows(TEXTS), rtol=1e-6)
    assert progress == [(2, 5), (4, 5), (5, 5)]


def test_unsorted_batches_follow_the_input() -> None:
    model = RecordingModel()
    rows = embed_texts(model, TEXTS, batch_size=2, sort_by_length=False)  # type: ignore[arg-type]
    assert model.batches == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:]]
    np.testing.assert_allclose(rows, expected_rows(TEXTS), rtol=1e-6)


def test_sorted_and_unsorted_batching_give_the_same_vectors() -> None:
    """With the real MiniLM: the length sort changes the speed, never a passage's vector."""
    model = load_embedder(None, device="cpu")
    texts = [
        "Short.",
        "The VPN client reconnects automatically after the laptop wakes from sleep, " * 3,
        "Backups run nightly at 01:00.",
        "Firmware 4.2 fixes the LED blinking pattern on Beacon G3 devices.",
    ]
    sorted_rows = embed_texts(model, texts, batch_size=2)
    unsorted_rows = embed_texts(model, texts, batch_size=2, sort_by_length=False)
    np.testing.assert_allclose(sorted_rows, unsorted_rows, atol=1e-5)
    alone = embed_texts(model, texts[1:2], batch_size=1)[0]
    np.testing.assert_allclose(sorted_rows[1], alone, atol=1e-5)


def test_embedder_runs_on_the_gpu_when_there_is_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sentence_transformers
    import torch

    loaded: list[str] = []

    class FakeSentenceTransformer:
        def __init__(self, path: str, device: str) -> None:
            loaded.append(device)

        def eval(self) -> None:
            pass

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeSentenceTransformer)
    monkeypatch.setattr(pipelines.embedder, "_MODELS", {})  # no model cached from other tests
    assert default_device() == "cuda"
    PassageEmbedder.from_settings(Settings(home=tmp_path)).warm_up()
    assert loaded == ["cuda"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
