"""BM25Retriever, RankFusion and the dense/bm25/hybrid query pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline

from indexer.run import index_folder
from pipelines import bm25 as bm25_module
from pipelines.bm25 import CACHE_DIR_NAME, INFO_FILE, BM25Index, tokenize
from pipelines.embedder import PassageEmbedder, QuestionEmbedder
from pipelines.fusion import RankFusion, reciprocal_rank_fusion
from pipelines.query import QueryService, build_query_pipeline
from pipelines.retrievers import BM25Retriever, DenseRetriever
from pipelines.settings import Settings
from pipelines.store import CURRENT_FILE, PassageStore


def docs(*ids: str) -> list[Document]:
    return [Document(id=i, content=f"passage {i}") for i in ids]


# -- reciprocal rank fusion ---------------------------------------------------------------------


def test_rrf_orders_a_known_case_exactly() -> None:
    dense, bm25 = docs("a", "b", "c", "d"), docs("d", "e", "a")

    fused = reciprocal_rank_fusion([dense, bm25], k=60)

    # a: 1/61 + 1/63, d: 1/64 + 1/61, b: 1/62, e: 1/62 (tie: b was seen first), c: 1/63
    assert [doc.id for doc, _, _ in fused] == ["a", "d", "b", "e", "c"]
    assert [score for _, score, _ in fused] == pytest.approx(
        [1 / 61 + 1 / 63, 1 / 64 + 1 / 61, 1 / 62, 1 / 62, 1 / 63]
    )
    assert [ranks for _, _, ranks in fused] == [[1, 3], [4, 1], [2, None], [None, 2], [3, None]]

    weighted = reciprocal_rank_fusion([dense, bm25], k=60, weights=[1.0, 2.0])
    # d: 1/64 + 2/61 = 0.04841 overtakes a: 1/61 + 2/63 = 0.04814; e: 2/62 overtakes b: 1/62
    assert [doc.id for doc, _, _ in weighted] == ["d", "a", "e", "b", "c"]


def test_rrf_counts_a_duplicate_once_and_checks_arguments() -> None:
    fused = reciprocal_rank_fusion([docs("a", "a", "b")])
    assert [(doc.id, score) for doc, score, _ in fused] == [("a", 1 / 61), ("b", 1 / 63)]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([docs("a")], weights=[1.0, 1.0])
    with pytest.raises(ValueError):
        RankFusion(k=-1)


def test_rank_fusion_gives_the_reader_dense_cosine_scores() -> None:
    dense = [
        Document(id="a", content="a", score=0.9),
        Document(id="b", content="b", score=0.5),
    ]
    bm25 = [
        # As the store's BM25 search gives them, with the question's embedding.
        Document(id="c", content="c", score=12.0, meta={"dense_score": 0.6}),
        Document(id="a", content="a", score=7.0, meta={"dense_score": 0.9}),
    ]

    out = RankFusion(top_k=2).run(dense_documents=dense, bm25_documents=bm25)

    a, c = out["documents"]  # a: 1/61 + 1/62; c: 1/61 beats b: 1/62; top_k=2 drops b
    assert (a.id, c.id) == ("a", "c")
    assert a.score == pytest.approx(0.9)  # the dense retriever's own score
    assert c.score == pytest.approx(0.6)  # the store's cosine for a passage only BM25 found
    assert a.meta["rrf_score"] == pytest.approx(1 / 61 + 1 / 62)
    assert (a.meta["dense_rank"], a.meta["bm25_rank"], a.meta["bm25_score"]) == (1, 2, 7.0)
    assert (c.meta["dense_rank"], c.meta["bm25_rank"]) == (None, 1)
    assert "rrf_score" not in bm25[1].meta  # copies, inputs untouched

    # One input only (the BM25-only pipeline): BM25 order, cosine scores.
    alone = RankFusion().run(bm25_documents=bm25)["documents"]
    assert [d.id for d in alone] == ["c", "a"]
    assert [d.score for d in alone] == pytest.approx([0.6, 0.9])
    assert RankFusion().run()["documents"] == []


# -- BM25 ---------------------------------------------------------------------------------------

TICKETS = {
    "t1": "Ticket 48123 is about the VPN client, which drops the connection every hour.",
    "t2": "Ticket 41823 is about the printer on the third floor, which jams on thick paper.",
    "t3": "Ticket 84213 is about the guest Wi-Fi, which rejects valid vouchers.",
    "t4": "Ticket 48231 is about laptops that do not wake up from sleep.",
    "t6": "Ticket 42813 is about the meeting room screens, which show no picture.",
    # The only passage with 48213, in a long text about something else: its embedding is about
    # badge readers, so MiniLM ranks the short "Ticket <number> is about" passages above it.
    "target": (
        "The badge reader at the north entrance rejects valid badges since the firmware update of "
        "last Tuesday. Security asked facilities to replace it; until then visitors and staff use "
        "the south entrance, where the guard checks badges by hand. Logged as 48213."
    ),
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def ticket_store(settings: Settings) -> PassageStore:
    documents = [Document(id=k, content=v, meta={"file_type": "txt"}) for k, v in TICKETS.items()]
    store = PassageStore(embedding_dim=384)
    store.write_documents(PassageEmbedder.from_settings(settings).run(documents)["documents"])
    return store


def test_tokenizer_lowercases_and_drops_stopwords() -> None:
    # "is", "the", "of" are stopwords; one-character tokens are dropped.
    assert tokenize("What is the Wi-Fi password of Café Müller, ticket 48213 a?") == [
        "what", "wi", "fi", "password", "café", "müller", "ticket", "48213",
    ]  # fmt: skip


def test_bm25_finds_a_rare_keyword_the_dense_retriever_misses(
    settings: Settings, ticket_store: PassageStore
) -> None:
    question = "What is ticket 48213 about?"
    embedding = QuestionEmbedder.from_settings(settings).run(question)["embedding"]

    dense = DenseRetriever(ticket_store, top_k=3).run(query_embedding=embedding)["documents"]
    keyword = BM25Retriever(ticket_store, top_k=3).run(query=question)["documents"]
    hybrid = RankFusion(top_k=3).run(dense_documents=dense, bm25_documents=keyword)["documents"]

    assert "target" not in [d.id for d in dense]
    assert keyword[0].id == "target" and keyword[0].score > keyword[1].score
    assert "target" in [d.id for d in hybrid]

    # Given the question's embedding, BM25 passages carry their cosine, not their embeddings
    # (a pipeline copies every input), and the fusion scores them with it.
    scored = BM25Retriever(ticket_store, top_k=3).run(query=question, query_embedding=embedding)
    with_vectors = {
        d.id: d.embedding
        for d in ticket_store.filter_documents(
            {"field": "id", "operator": "in", "value": [d.id for d in keyword]}
        )
    }
    for doc in scored["documents"]:
        assert doc.embedding is None
        expected = float(np.dot(embedding, with_vectors[doc.id]))
        assert doc.meta["dense_score"] == pytest.approx(expected, abs=1e-5)
    fused = RankFusion(top_k=3).run(dense_documents=dense, bm25_documents=scored["documents"])
    target = next(d for d in fused["documents"] if d.id == "target")
    assert target.score == pytest.approx(scored["documents"][0].meta["dense_score"])


def test_bm25_retriever_in_a_pipeline_and_serialized(
    ticket_store: PassageStore, tmp_path: Path
) -> None:
    ticket_store.save(tmp_path / "index")
    version = (tmp_path / "index" / CURRENT_FILE).read_text().strip()
    pipe = Pipeline()
    pipe.add_component("bm25", BM25Retriever(ticket_store, top_k=2))
    loaded = Pipeline.loads(pipe.dumps(), allowed_modules=["pipelines.*"])

    retriever = loaded.get_component("bm25")
    assert isinstance(retriever, BM25Retriever) and retriever.store is not ticket_store
    # The BM25 index belongs to the store and is cached in the version folder it holds.
    assert retriever.top_k == 2 and retriever.store.version_folder == tmp_path / "index" / version
    result = loaded.run({"bm25": {"query": "the printer jams"}})
    assert [d.id for d in result["bm25"]["documents"]] == ["t2"]
    assert (tmp_path / "index" / version / CACHE_DIR_NAME / INFO_FILE).is_file()
    with pytest.raises(ValueError):
        BM25Retriever(ticket_store, top_k=0)
    with pytest.raises(ValueError):
        BM25Retriever("not a store")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def report_store() -> PassageStore:
    """Twelve passages; the six DOCX ones mention the keywords more often, so they rank first."""
    documents = [
        Document(
            id=f"pdf-{i}",
            content=f"Section {i} of the quarterly report covers travel costs.",
            meta={"file_type": "pdf", "page": i},
        )
        for i in range(6)
    ] + [
        Document(
            id=f"docx-{i}",
            content=f"Quarterly report, part {i}: the quarterly report lists every report.",
            meta={"file_type": "docx", "page": i},
        )
        for i in range(6)
    ]
    store = PassageStore(embedding_dim=384)  # no embeddings: BM25 does not need them
    store.write_documents(documents)
    return store


def test_filters_are_honored_and_still_fill_top_k(report_store: PassageStore) -> None:
    retriever = BM25Retriever(report_store, top_k=5)
    pdf = {"field": "meta.file_type", "operator": "==", "value": "pdf"}

    unfiltered = retriever.run(query="quarterly report")["documents"]
    filtered = retriever.run(query="quarterly report", filters=pdf)["documents"]

    assert all(d.meta["file_type"] == "docx" for d in unfiltered)
    assert len(filtered) == 5 and all(d.meta["file_type"] == "pdf" for d in filtered)
    early = {
        "operator": "AND",
        "conditions": [pdf, {"field": "meta.page", "operator": "<", "value": 2}],
    }
    found = retriever.run(query="quarterly report", filters=early, top_k=10)["documents"]
    assert sorted(d.id for d in found) == ["pdf-0", "pdf-1"]
    nothing = {"field": "meta.file_type", "operator": "==", "value": "html"}
    assert retriever.run(query="quarterly report", filters=nothing)["documents"] == []
    assert retriever.run(query="the of and")["documents"] == []  # only stopwords
    assert retriever.run(query="zebra")["documents"] == []  # no passage shares a word


def test_empty_store_retrieves_nothing(tmp_path: Path) -> None:
    store = PassageStore(embedding_dim=384)
    store.save(tmp_path / "index")
    version = tmp_path / "index" / (tmp_path / "index" / CURRENT_FILE).read_text().strip()
    assert store.version_folder == version
    assert BM25Retriever(store).run(query="anything")["documents"] == []
    assert BM25Index.load(version / CACHE_DIR_NAME) is not None


def test_cache_is_reused_and_rebuilt_after_reindexing(
    tmp_path: Path, tiny_reader: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "hours.txt").write_text("The office opens at eight and closes at seven.\n")
    settings = Settings(home=tmp_path / "home", reader_model=str(tiny_reader), retrieval="bm25")
    index_folder([folder], settings, progress=False)
    first = (settings.index_dir / CURRENT_FILE).read_text().strip()

    service = QueryService(settings)
    assert service.retrieve("Zorblatt menu") == []
    info = settings.index_dir / first / CACHE_DIR_NAME / INFO_FILE
    assert json.loads(info.read_text())["passages"] == service.store.count_documents()
    assert not list((settings.index_dir / first).glob(f"{CACHE_DIR_NAME}.tmp-*"))

    # Another service (a restarted web app) loads the cached index instead of building one.
    def no_build(*args: object, **kwargs: object) -> BM25Index:
        raise AssertionError("the cached BM25 index should have been loaded")

    with monkeypatch.context() as patch:
        patch.setattr(bm25_module.BM25Index, "build", no_build)
        opened = QueryService(settings).retrieve("When does the office open?")
    assert [p.meta["source"] for p in opened] == ["docs/hours.txt"]

    # Re-indexing writes a new version: the service reloads it with a BM25 index built for it.
    (folder / "lunch.txt").write_text("Café Müller changes the Zorblatt menu every Friday.\n")
    index_folder([folder], settings, progress=False)
    second = (settings.index_dir / CURRENT_FILE).read_text().strip()
    assert second != first
    found = service.retrieve("Zorblatt menu")
    assert [p.meta["source"] for p in found] == ["docs/lunch.txt"]
    assert (settings.index_dir / second / CACHE_DIR_NAME / INFO_FILE).is_file()


# -- the query pipeline in each mode ------------------------------------------------------------

COMPONENTS = {
    "dense": ["embedder", "retriever", "reader"],
    "bm25": ["embedder", "bm25", "fusion", "reader"],
    "hybrid": ["embedder", "retriever", "bm25", "fusion", "reader"],
}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_query_pipeline_answers_in_each_mode(demo_home: Settings, mode: str) -> None:
    settings = demo_home.with_(retrieval=mode)
    service = QueryService(settings)
    question = "How many vacation days does a full-time employee in the Netherlands get each year?"

    answers = service.ask(question, top_k_passages=5, top_n_answers=3)

    pipe = build_query_pipeline(settings, service.store, str(settings.reader_model))
    assert list(pipe.to_dict()["components"]) == COMPONENTS[mode]
    spans = [a for a in answers if a.answer is not None]
    assert spans, answers
    for a in spans:
        assert service.store.source_text(a.doc_id)[slice(*a.document_offsets)] == a.answer
        # The reader mixes in a cosine similarity in every mode (never a raw BM25 score).
        assert a.retriever_score is not None and -1.0 <= a.retriever_score <= 1.0
    passages = service.retrieve(question, top_k=5)
    assert len(passages) == 5
    assert "documents/hr/leave-policy.pdf" in {p.meta["source"] for p in passages}


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_pipeline_filters_fill_top_k(demo_home: Settings, mode: str) -> None:
    service = QueryService(demo_home.with_(retrieval=mode))
    pdf = {"field": "meta.file_type", "operator": "==", "value": "pdf"}
    assert len(service.store.filter_documents(pdf)) >= 3

    passages = service.retrieve("How many days of leave do employees get?", top_k=3, filters=pdf)

    assert len(passages) == 3 and all(p.meta["file_type"] == "pdf" for p in passages)
    scores = [p.meta["rrf_score"] for p in passages]
    assert scores == sorted(scores, reverse=True)


def test_unknown_retrieval_mode_is_refused(demo_home: Settings) -> None:
    store = PassageStore(embedding_dim=384)
    with pytest.raises(ValueError, match="retrieval must be one of"):
        build_query_pipeline(demo_home.with_(retrieval="sparse"), store, "reader")


def test_vectors_are_not_needed_for_fusion_ranks() -> None:
    out = RankFusion().run(dense_documents=docs("a"), bm25_documents=docs("b"))["documents"]
    assert [d.id for d in out] == ["a", "b"] and [d.score for d in out] == [None, None]
    assert np.isclose(out[0].meta["rrf_score"], 1 / 61)
