"""pipelines.settings: what a one-question process reads with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.settings import Settings, SettingsError


def test_one_question_reads_with_onnx_unless_a_backend_was_chosen(tmp_path: Path) -> None:
    one = Settings(home=tmp_path).for_one_question()
    assert (one.reader_backend, one.question_encoder_backend) == ("onnx", "onnx")
    for chosen in ("torch", "int8", "onnx-int8"):
        kept = Settings(home=tmp_path, reader_backend=chosen).for_one_question()
        assert (kept.reader_backend, kept.question_encoder_backend) == (chosen, "torch")
    off = Settings(home=tmp_path, one_shot_onnx=False).for_one_question()
    assert (off.reader_backend, off.question_encoder_backend) == ("auto", "torch")


def test_one_shot_onnx_is_off_with_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_ONE_SHOT_ONNX", "0")
    assert Settings.from_env(tmp_path).for_one_question().reader_backend == "auto"
    monkeypatch.setenv("DOCQA_ONE_SHOT_ONNX", "1")
    assert Settings.from_env(tmp_path).for_one_question().reader_backend == "onnx"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retrieval": "sparse"}, "retrieval must be one of dense, bm25, hybrid (got 'sparse')"),
        ({"reader_backend": "gpu"}, "reader_backend must be one of auto, torch, int8, onnx"),
        ({"cpu_precision": "fp16"}, "cpu_precision must be one of auto, fp32, bf16"),
        ({"question_encoder_backend": "tf"}, "question_encoder_backend must be one of torch"),
        ({"index_type": "lsh"}, "index_type must be one of auto, flat, ivf, hnsw"),
        ({"index_compression": "zip"}, "index_compression must be one of none, sq8, pq"),
        ({"top_k_passages": 0}, "top_k_passages must be a whole number of at least 1 (got 0)"),
        ({"nprobe": 2.5}, "nprobe must be a whole number of at least 1"),
        ({"convert_timeout_s": 0}, "convert_timeout_s must be above 0"),
        ({"bm25_weight": -0.5}, "bm25_weight must be 0 or more"),
        ({"top_n_answers": "3"}, "top_n_answers must be a number"),
        ({"split_overlap": 200}, "split_overlap must be below split_words (200; got 200)"),
    ],
)
def test_a_setting_no_component_can_use_is_refused_by_name(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as refused:
        Settings(home=tmp_path, **change)  # type: ignore[arg-type]
    assert refused.value.field == next(iter(change))
    with pytest.raises(SettingsError):  # with_ checks the same way
        Settings(home=tmp_path).with_(**change)


def test_settings_travel_as_json_unchanged(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, retrieval="bm25", nprobe=8, convert_timeout_s=None)
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings.from_dict(settings.to_dict()) == settings
    # a pipeline saved by another version may carry settings this one does not know
    assert Settings.from_dict(settings.to_dict() | {"a_later_setting": 1}) == settings
