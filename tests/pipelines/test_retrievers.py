"""Tests of pipelines.retrievers: QuestionEmbedder → DenseRetriever in a Haystack Pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document, Pipeline

from pipelines.embedder import PassageEmbedder, QuestionEmbedder
from pipelines.retrievers import DenseRetriever
from pipelines.settings import Settings
from pipelines.store import PassageStore

PASSAGES = {
    "leave": (
        "hr/leave-policy.pdf",
        "pdf",
        "Employees are entitled to 25 days of paid annual leave per calendar year.",
    ),
    "hours": (
        "facilities/opening-hours.txt",
        "txt",
        "The office opens at 8:00 and closes at 18:00 on weekdays.",
    ),
    "travel": (
        "finance/travel.docx",
        "docx",
        "Travel expenses must be submitted within 30 days using the expense form.",
    ),
    "security": (
        "it/security.html",
        "html",
        "Passwords must be at least 12 characters long and changed every 90 days.",
    ),
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def store(settings: Settings) -> PassageStore:
    docs = [
        Document(id=key, content=text, meta={"source": source, "file_type": file_type})
        for key, (source, file_type, text) in PASSAGES.items()
    ]
    store = PassageStore(embedding_dim=384)
    store.write_documents(PassageEmbedder.from_settings(settings).run(docs)["documents"])
    return store


def build_pipeline(settings: Settings, store: PassageStore) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("embedder", QuestionEmbedder.from_settings(settings))
    pipeline.add_component("retriever", DenseRetriever(store, top_k=3))
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    return pipeline


def test_pipeline_returns_the_right_passage_first(settings: Settings, store: PassageStore) -> None:
    pipeline = build_pipeline(settings, store)

    result = pipeline.run({"embedder": {"text": "How long must a password be?"}})

    documents = result["retriever"]["documents"]
    assert documents[0].id == "security"
    assert len(documents) == 3
    assert documents[0].score > documents[1].score >= documents[2].score


def test_filters_and_top_k_at_run_time(settings: Settings, store: PassageStore) -> None:
    pipeline = build_pipeline(settings, store)
    not_html = {"field": "meta.file_type", "operator": "!=", "value": "html"}

    result = pipeline.run(
        {
            "embedder": {"text": "How long must a password be?"},
            "retriever": {"filters": not_html, "top_k": 10},
        }
    )

    assert sorted(d.id for d in result["retriever"]["documents"]) == ["hours", "leave", "travel"]


def test_serialized_pipeline_reloads_the_saved_index(
    settings: Settings, store: PassageStore, tmp_path: Path
) -> None:
    store.save(tmp_path / "index")
    yaml = build_pipeline(settings, store).dumps()

    # Haystack 3.4 deserializes classes only from allowlisted modules.
    loaded = Pipeline.loads(yaml, allowed_modules=["pipelines.*"])

    retriever = loaded.get_component("retriever")
    assert isinstance(retriever, DenseRetriever) and retriever.store is not store
    assert retriever.store.count_documents() == 4 and retriever.top_k == 3
    result = loaded.run({"embedder": {"text": "When does the office open?"}})
    assert result["retriever"]["documents"][0].id == "hours"


def test_rejects_bad_arguments(store: PassageStore) -> None:
    with pytest.raises(ValueError):
        DenseRetriever(store, top_k=0)
    with pytest.raises(ValueError):
        DenseRetriever("not a store", top_k=3)  # type: ignore[arg-type]
