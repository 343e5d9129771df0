"""pipelines.settings: what a one-question process reads with."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import Settings


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
