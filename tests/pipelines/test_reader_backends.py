"""Serving backends of the reader (Settings.reader_backend): fp32 torch, int8, ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from haystack import Document

from evaluation.squad import load_squad
from pipelines.query import build_query_pipeline
from pipelines.reader import (
    BF16_WEIGHTS,
    ExtractiveReader,
    OnnxQAModel,
    SpanPredictor,
    choose_backend,
    get_predictor,
    tokenize_pairs,
)
from pipelines.settings import SHIPPED_READER, Settings
from pipelines.store import PassageStore
from tests.conftest import DEMO_LABELS


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    """Demo dev questions with their gold passages, of different lengths (padded batches)."""
    examples, _ = load_squad(DEMO_LABELS / "dev.json")
    answerable = [ex for ex in examples if ex.answers][:8]
    return [ex.question for ex in answerable], [ex.context for ex in answerable]


@pytest.fixture(scope="module")
def fp32(tiny_reader: Path) -> SpanPredictor:
    return SpanPredictor(tiny_reader, batch_size=4)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def best_spans(predictor: SpanPredictor, pairs: tuple[list[str], list[str]]) -> list[tuple]:
    return [(c[0].start_char, c[0].end_char) for c in predictor.predict(*pairs)]


def test_onnx_gives_the_logits_and_best_spans_of_fp32(
    tiny_reader: Path, fp32: SpanPredictor, pairs: tuple, onnx_cache: Path
) -> None:
    onnx = SpanPredictor(tiny_reader, batch_size=4, backend="onnx", cache_dir=onnx_cache)
    assert isinstance(onnx.model, OnnxQAModel)
    assert onnx.model.path.parent == onnx_cache / "onnx"
    assert best_spans(onnx, pairs) == best_spans(fp32, pairs)
    cfg = fp32.config
    windows = tokenize_pairs(fp32.tokenizer, *pairs, cfg.max_seq_length, cfg.doc_stride)
    for got, want in zip(onnx.logits(windows), fp32.logits(windows), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-3)
    # A batch without padding (one pair) runs through the same exported graph.
    one = ([pairs[0][0]], [pairs[1][0]])
    assert best_spans(onnx, one) == best_spans(fp32, one)


def test_onnx_export_is_cached_and_reused(
    tiny_reader: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SpanPredictor(tiny_reader, backend="onnx", cache_dir=onnx_cache)  # exported once
    exported = list((onnx_cache / "onnx").glob("reader-*.onnx"))
    assert len(exported) == 1
    assert not list((onnx_cache / "onnx").glob(".*.tmp"))  # no half-written file left

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("pipelines.reader_backends.export_onnx", no_export)
    again = SpanPredictor(tiny_reader, backend="onnx", cache_dir=onnx_cache)
    assert isinstance(again.model, OnnxQAModel) and again.model.path == exported[0]


def test_int8_keeps_the_logits_of_fp32_close(
    tiny_reader: Path, fp32: SpanPredictor, pairs: tuple
) -> None:
    int8 = SpanPredictor(tiny_reader, batch_size=4, backend="int8")
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.model.modules())
    assert type(int8.model.qa_outputs) is torch.nn.Linear  # the span head stays fp32
    cfg = fp32.config
    windows = tokenize_pairs(fp32.tokenizer, *pairs, cfg.max_seq_length, cfg.doc_stride)
    real = windows.encodings["attention_mask"].numpy() == 1
    for got, want in zip(int8.logits(windows), fp32.logits(windows), strict=True):
        assert np.abs(got - want)[real].max() < 0.5


@pytest.fixture(scope="module")
def snippets() -> tuple[list[str], list[str]]:
    """Demo dev questions with about 1,000 characters of their gold passage around the answer."""
    examples, _ = load_squad(DEMO_LABELS / "dev.json")
    questions, contexts = [], []
    for ex in [ex for ex in examples if ex.answers][:12]:
        start = ex.answers[0].start
        questions.append(ex.question)
        contexts.append(ex.context[max(0, start - 500) : start + len(ex.answers[0].text) + 500])
    return questions, contexts


@pytest.mark.parametrize("backend", ["int8", "onnx-int8"])
def test_int8_gives_the_best_spans_of_fp32(backend: str, snippets: tuple, onnx_cache: Path) -> None:
    """On the shipped reader: the tiny test reader is barely trained, its candidate spans are
    a few hundredths of a logit apart, and int8 noise of that size decides between them."""
    fp32 = SpanPredictor(SHIPPED_READER, batch_size=4)
    int8 = SpanPredictor(SHIPPED_READER, batch_size=4, backend=backend, cache_dir=onnx_cache)
    if backend == "onnx-int8":
        assert isinstance(int8.model, OnnxQAModel) and int8.model.path.name.endswith("-int8.onnx")
        fp32_export = int8.model.path.with_name(int8.model.path.name.replace("-int8", ""))
        # int8 weights: well under half the size of the fp32 export.
        assert int8.model.path.stat().st_size < 0.5 * fp32_export.stat().st_size
    want, got = fp32.predict(*snippets), int8.predict(*snippets)
    # Where fp32's best span beats its runner-up clearly, int8 must pick the same span.
    clear = [i for i, c in enumerate(want) if len(c) < 2 or c[0].margin - c[1].margin > 1.0]
    assert len(clear) >= 3, "too few clear questions to compare"
    for i in clear:
        assert (got[i][0].start_char, got[i][0].end_char) == (
            want[i][0].start_char,
            want[i][0].end_char,
        ), f"question {i}: {snippets[0][i]!r}"
        # int8 moves the null logit more than the spans: margins shift by up to ~2.3 here.
        assert got[i][0].margin == pytest.approx(want[i][0].margin, abs=3.5)


def test_batches_sorted_by_length_give_the_logits_of_single_windows(
    fp32: SpanPredictor, pairs: tuple
) -> None:
    """Windows are read longest first, each batch cut to its longest window; the logits come
    back in the windows' order, equal to reading each window alone without padding."""
    cfg = fp32.config
    questions, contexts = pairs
    windows = tokenize_pairs(fp32.tokenizer, questions, contexts, cfg.max_seq_length, 32)
    lengths = windows.encodings["attention_mask"].sum(dim=1)
    assert len(set(lengths.tolist())) > 2  # the batches really mix lengths
    start, end = fp32.logits(windows)
    for w in range(len(lengths)):
        n = int(lengths[w])
        one = {k: v[w : w + 1, :n] for k, v in windows.encodings.items()}
        with torch.inference_mode():
            out = fp32.model(**one)
        np.testing.assert_allclose(start[w, :n], out.start_logits[0].numpy(), atol=1e-4)
        np.testing.assert_allclose(end[w, :n], out.end_logits[0].numpy(), atol=1e-4)
        assert (start[w, n:] <= -1e4).all()  # padding can never be picked


def test_auto_backend_follows_the_cpu(tiny_reader: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: the torch model in bf16 where the CPU has native bf16, int8 elsewhere, torch on
    GPUs."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr("pipelines.reader_backends.cpu_supports_bf16", lambda: True)
    assert choose_backend("auto", cpu) == ("torch", BF16_WEIGHTS)
    bf16 = SpanPredictor(tiny_reader, backend="auto")
    assert (bf16.backend, bf16.cpu_precision) == ("torch", BF16_WEIGHTS)
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    monkeypatch.setattr("pipelines.reader_backends.cpu_supports_bf16", lambda: False)
    assert choose_backend("auto", cpu) == ("int8", None)
    int8 = SpanPredictor(tiny_reader, backend="auto")
    assert int8.backend == "int8"
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.model.modules())
    for backend in ("auto", "int8", "onnx-int8"):
        assert choose_backend(backend, gpu) == ("torch", None)
    assert choose_backend("onnx", cpu) == ("onnx", None)  # an explicit choice is kept


def test_unknown_backend_is_refused(tiny_reader: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        SpanPredictor(tiny_reader, backend="tensorrt")
    with pytest.raises(ValueError, match="CPU precision"):
        SpanPredictor(tiny_reader, cpu_precision="fp8")


def test_a_bf16_model_reads_as_the_fp32_one(pairs: tuple) -> None:
    """The shipped reader converted to bf16 (half the memory, no autocast casts) finds the fp32
    model's answers; a model handed in (a training one) is never converted."""
    fp32 = SpanPredictor(SHIPPED_READER)
    bf16 = SpanPredictor(SHIPPED_READER, cpu_precision=BF16_WEIGHTS)
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    questions, contexts = pairs
    ours, theirs = bf16.predict(questions, contexts), fp32.predict(questions, contexts)
    same = sum(
        bool(a and b) and (a[0].start_char, a[0].end_char) == (b[0].start_char, b[0].end_char)
        for a, b in zip(ours, theirs, strict=True)
    )
    assert same >= len(questions) - 1
    handed = SpanPredictor(
        fp32.model, tokenizer=fp32.tokenizer, config=fp32.config, cpu_precision=BF16_WEIGHTS
    )
    assert {p.dtype for p in handed.model.parameters()} == {torch.float32}


def test_reader_component_uses_and_serializes_its_backend(
    tiny_reader: Path, onnx_cache: Path, pairs: tuple
) -> None:
    reader = ExtractiveReader(tiny_reader, backend="onnx", cache_dir=str(onnx_cache))
    data = reader.to_dict()
    assert data["init_parameters"]["backend"] == "onnx"
    assert ExtractiveReader.from_dict(data).to_dict() == data
    docs = [Document(content=c) for c in pairs[1][:3]]
    answers = reader.run(query=pairs[0][0], documents=docs)["answers"]
    assert isinstance(reader._predictor.model, OnnxQAModel)  # type: ignore[union-attr]
    torch_answers = ExtractiveReader(tiny_reader).run(query=pairs[0][0], documents=docs)["answers"]
    assert [a.data for a in answers] == [a.data for a in torch_answers]
    # get_predictor keeps one predictor per backend.
    assert get_predictor(tiny_reader, backend="onnx", cache_dir=str(onnx_cache)) is (
        reader._predictor
    )
    assert get_predictor(tiny_reader) is not reader._predictor


def test_settings_backend_reaches_the_query_pipeline(tmp_path: Path, tiny_reader: Path) -> None:
    settings = Settings(home=tmp_path, reader_model=str(tiny_reader), reader_backend="int8")
    pipe = build_query_pipeline(settings, PassageStore(), str(tiny_reader))
    reader = pipe.get_component("reader")
    assert reader.backend == "int8"
    assert reader.cache_dir == str(tmp_path / "cache")


def test_a_new_export_prunes_the_exports_not_used_lately(tiny_reader: Path, tmp_path: Path) -> None:
    import os

    from pipelines.reader_backends import ONNX_CACHE_KEEP

    folder = tmp_path / "onnx"
    folder.mkdir()
    old = []
    for age in range(ONNX_CACHE_KEEP + 1):  # reader-0 used most recently, reader-4 longest ago
        export = folder / f"reader-{age:020d}.onnx"
        siblings = [export.with_name(f"{export.stem}-int8.onnx"), Path(f"{export}.lock")]
        for path in (export, *siblings):
            path.write_bytes(b"an earlier reader version's export")
            os.utime(path, (1_000_000 - age * 1000,) * 2)
        old.append((export, siblings))
    encoder = folder / "encoder-00000000000000000000.onnx"
    encoder.write_bytes(b"the question encoder")
    os.utime(encoder, (1, 1))

    new = SpanPredictor(tiny_reader, backend="onnx", cache_dir=tmp_path)
    assert new.model.path.is_file()
    kept = sorted(p.name for p in folder.glob("reader-*.onnx") if "-int8" not in p.name)
    # The new export and the most recently used of the others, with nothing of the rest left.
    assert new.model.path.name in kept and len(kept) == ONNX_CACHE_KEEP
    for export, siblings in old[ONNX_CACHE_KEEP - 1 :]:
        assert not export.exists() and not any(s.exists() for s in siblings)
    for export, siblings in old[: ONNX_CACHE_KEEP - 1]:
        assert export.exists() and all(s.exists() for s in siblings)
    assert encoder.exists()  # readers are pruned among readers

    # Loading an export marks it used: it outlives exports made before it was loaded again.
    os.utime(new.model.path, (1, 1))
    SpanPredictor(tiny_reader, backend="onnx", cache_dir=tmp_path)
    assert new.model.path.stat().st_mtime > 1_000_000
