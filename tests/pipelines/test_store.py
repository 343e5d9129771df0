"""Tests of pipelines.store: the DocumentStore protocol, filters pushed into FAISS, atomic saves."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import DocumentStoreBaseTests
from haystack.utils.filters import document_matches_filter

from pipelines.faiss_index import IndexSpec
from pipelines.store import CURRENT_FILE, PassageStore, SourceRecord, StoreError

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def passage(doc_id: str, index: int, vector: np.ndarray, **meta: object) -> Document:
    return Document(
        id=f"{doc_id}-{index:05d}",
        content=f"passage {index} of {doc_id}",
        embedding=vector.tolist(),
        meta={"doc_id": doc_id, "passage_index": index, **meta},
    )


def record(doc_id: str, source: str, file_type: str = "pdf") -> SourceRecord:
    return SourceRecord(
        doc_id=doc_id,
        source=source,
        path=f"/data/{source}",
        title=source.rsplit("/", 1)[-1],
        file_type=file_type,
        sha256="0" * 64,
        size=1234,
        mtime=1_700_000_000.5,
        indexed_at="2024-05-01T10:00:00+00:00",
    )


def ids(documents: list[Document]) -> list[str]:
    return [doc.id for doc in documents]


class TestHaystackProtocol(DocumentStoreBaseTests):
    """Haystack's own DocumentStore test suite, run against PassageStore."""

    @pytest.fixture
    def document_store(self) -> PassageStore:
        return PassageStore(embedding_dim=768)  # the suite's random embeddings have 768 dims

    @staticmethod
    def assert_documents_are_equal(received: list[Document], expected: list[Document]) -> None:
        # Vectors come back from FAISS as float32, the suite writes float64 values.
        assert ids(received) == ids(expected)
        for got, want in zip(received, expected, strict=True):
            assert (got.content, got.meta) == (want.content, want.meta)
            if want.embedding is None:
                assert got.embedding is None
            else:
                np.testing.assert_allclose(got.embedding, want.embedding, rtol=1e-6)

    def test_write_documents(self, document_store: PassageStore) -> None:
        """Default policy (NONE) fails on duplicates, like Haystack's in-memory store."""
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])


def test_write_filter_delete_and_policies() -> None:
    rng = np.random.default_rng(0)
    store = PassageStore(embedding_dim=DIM)
    vectors = unit(rng, 4)
    docs = [passage("a", i, vectors[i], file_type="pdf") for i in range(3)]
    assert store.write_documents(docs) == 3
    assert store.count_documents() == 3

    # FAIL writes nothing of a batch holding one duplicate.
    new = passage("b", 0, vectors[3])
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([new, docs[0]], policy=DuplicatePolicy.FAIL)
    assert store.count_documents() == 3

    assert store.write_documents([new, docs[0]], policy=DuplicatePolicy.SKIP) == 1
    assert store.count_documents() == 4

    # OVERWRITE replaces content, meta and the vector searched.
    replaced = Document(
        id=docs[0].id,
        content="new text",
        meta={"doc_id": "a", "file_type": "md"},
        embedding=vectors[3].tolist(),
    )
    assert store.write_documents([replaced], policy=DuplicatePolicy.OVERWRITE) == 1
    assert store.count_documents() == 4
    (got,) = store.filter_documents({"field": "id", "operator": "==", "value": docs[0].id})
    assert (got.content, got.meta["file_type"]) == ("new text", "md")
    np.testing.assert_array_equal(np.asarray(got.embedding, dtype=np.float32), vectors[3])
    top = store.embedding_retrieval(vectors[3], top_k=2)
    assert set(ids(top)) == {docs[0].id, new.id}

    store.delete_documents([docs[1].id, "missing"])
    assert store.count_documents() == 3
    assert docs[1].id not in ids(store.embedding_retrieval(vectors[1], top_k=10))

    with pytest.raises(ValueError, match="shape"):
        store.write_documents([Document(id="x", content="x", embedding=[1.0, 0.0])])
    with pytest.raises(ValueError, match="dimensions"):
        store.embedding_retrieval([1.0, 0.0])


def test_scores_are_inner_products() -> None:
    rng = np.random.default_rng(1)
    store = PassageStore(embedding_dim=DIM)
    vectors = unit(rng, 50)
    store.write_documents([passage("d", i, v) for i, v in enumerate(vectors)])
    query = unit(rng, 1)[0]
    result = store.embedding_retrieval(query, top_k=5)
    expected = np.argsort(-(vectors @ query))[:5]
    assert ids(result) == [f"d-{i:05d}" for i in expected]
    np.testing.assert_allclose([d.score for d in result], (vectors @ query)[expected], rtol=1e-5)
    assert all(d.embedding is None for d in result)  # not needed by the reader: not returned


def test_selective_filter_returns_full_top_k() -> None:
    """1% of 2,000 passages match: the filtered search still returns 10, the true top 10."""
    rng = np.random.default_rng(2)
    store = PassageStore(embedding_dim=DIM)
    vectors = unit(rng, 2000)
    rare = set(rng.choice(2000, size=20, replace=False).tolist())
    docs = [
        passage("d", i, v, file_type="docx" if i in rare else "pdf") for i, v in enumerate(vectors)
    ]
    store.write_documents(docs)
    query = unit(rng, 1)[0]
    docx = {"field": "meta.file_type", "operator": "==", "value": "docx"}

    result = store.embedding_retrieval(query, top_k=10, filters=docx)

    assert len(result) == 10
    assert all(d.meta["file_type"] == "docx" for d in result)
    rare_sorted = sorted(rare, key=lambda i: -float(vectors[i] @ query))
    assert ids(result) == [f"d-{i:05d}" for i in rare_sorted[:10]]
    # Filtering after an unfiltered top-10 (what faiss-haystack does) would keep almost nothing.
    unfiltered = store.embedding_retrieval(query, top_k=10)
    assert sum(d.meta["file_type"] == "docx" for d in unfiltered) < 10

    # Fewer matches than top_k: all of them; none: nothing.
    three = {"field": "id", "operator": "in", "value": ["d-00001", "d-00002", "d-00003"]}
    assert sorted(ids(store.embedding_retrieval(query, top_k=10, filters=three))) == sorted(
        three["value"]
    )
    none = {"field": "meta.file_type", "operator": "==", "value": "html"}
    assert store.embedding_retrieval(query, top_k=10, filters=none) == []


OPERATOR_FILTERS = [
    {"field": "meta.file_type", "operator": "==", "value": "pdf"},
    {"field": "meta.file_type", "operator": "!=", "value": "pdf"},
    {"field": "meta.page", "operator": ">", "value": 2},
    {"field": "meta.page", "operator": ">=", "value": 2},
    {"field": "meta.page", "operator": "<", "value": 2},
    {"field": "meta.page", "operator": "<=", "value": 2.5},
    {"field": "meta.page", "operator": "==", "value": None},
    {"field": "meta.page", "operator": "!=", "value": None},
    {"field": "meta.page", "operator": "in", "value": [1, 3, None]},
    {"field": "meta.page", "operator": "not in", "value": [1, 3]},
    {"field": "meta.section", "operator": "in", "value": ["Intro", "Costs"]},
    {"field": "meta.modified", "operator": ">=", "value": "2024-03-01"},
    {"field": "meta.modified", "operator": "<", "value": "2024-03-01T00:00:00+00:00"},
    {"field": "meta.modified", "operator": "==", "value": "2024-02-01T10:00:00Z"},
    {"field": "meta.level.name", "operator": "==", "value": "secret"},  # nested meta
    {"field": "meta.tags", "operator": "==", "value": ["a", "b"]},  # list value
    {"field": "meta.reviewed", "operator": "==", "value": True},
    {"field": "title", "operator": "==", "value": "Handbook"},  # legacy: no "meta." prefix
    {"field": "content", "operator": "==", "value": "passage 2 of h"},
    {"field": "id", "operator": "in", "value": ["h-00000", "t-00001"]},
    {
        "operator": "AND",
        "conditions": [
            {"field": "meta.file_type", "operator": "==", "value": "pdf"},
            {"field": "meta.page", "operator": ">=", "value": 2},
        ],
    },
    {
        "operator": "OR",
        "conditions": [
            {"field": "meta.file_type", "operator": "==", "value": "md"},
            {"field": "meta.page", "operator": "==", "value": 1},
        ],
    },
    {
        "operator": "NOT",
        "conditions": [
            {"field": "meta.file_type", "operator": "==", "value": "pdf"},
            {
                "operator": "OR",
                "conditions": [
                    {"field": "meta.page", "operator": "<", "value": 2},
                    {"field": "meta.section", "operator": "==", "value": "Costs"},
                ],
            },
        ],
    },
]


@pytest.fixture
def mixed_store() -> tuple[PassageStore, list[Document]]:
    rng = np.random.default_rng(3)
    vectors = unit(rng, 9)
    docs = [
        passage(
            "h",
            0,
            vectors[0],
            file_type="pdf",
            page=1,
            title="Handbook",
            section="Intro",
            modified="2024-01-15T08:00:00+00:00",
            tags=["a", "b"],
        ),
        passage(
            "h",
            1,
            vectors[1],
            file_type="pdf",
            page=2,
            title="Handbook",
            section="Costs",
            modified="2024-01-15T08:00:00+00:00",
            level={"name": "secret"},
        ),
        passage(
            "h",
            2,
            vectors[2],
            file_type="pdf",
            page=3,
            title="Handbook",
            section=None,
            modified="2024-01-15T08:00:00+00:00",
            reviewed=True,
        ),
        passage(
            "t",
            0,
            vectors[3],
            file_type="docx",
            page=None,
            title="Travel",
            section="Intro",
            modified="2024-02-01T10:00:00+00:00",
            tags=["b"],
        ),
        passage(
            "t",
            1,
            vectors[4],
            file_type="docx",
            page=None,
            title="Travel",
            section="Costs",
            modified="2024-02-01T10:00:00+00:00",
            level={"name": "public"},
        ),
        passage(
            "o",
            0,
            vectors[5],
            file_type="md",
            page=None,
            title="Onboarding",
            section="Intro",
            modified="2024-03-10T12:00:00+00:00",
            reviewed=False,
        ),
        passage(
            "o",
            1,
            vectors[6],
            file_type="md",
            title="Onboarding",
            section="Week one",
            modified="2024-03-10T12:00:00+00:00",
        ),
        passage("x", 0, vectors[7], file_type="txt", page="2", title="Notes"),  # page as text
        passage("x", 1, vectors[8], file_type="txt", page=2.5, title="Notes"),
    ]
    store = PassageStore(embedding_dim=DIM)
    store.write_documents(docs)
    return store, docs


def reference_match(filters: dict, document: Document) -> bool:
    """Haystack's Python filter semantics, except that where it raises because a stored value
    can't be ordered against the filter value (page "2" > 2), the passage does not match."""
    try:
        return document_matches_filter(filters, document)
    except FilterError:
        return False


@pytest.mark.parametrize("filters", OPERATOR_FILTERS, ids=lambda f: str(f)[:60])
def test_filter_operators_match_haystack_semantics(
    mixed_store: tuple[PassageStore, list[Document]], filters: dict
) -> None:
    """SQL filters select what Haystack's reference Python implementation selects."""
    store, docs = mixed_store
    expected = [d.id for d in docs if reference_match(filters, d)]
    assert ids(store.filter_documents(filters)) == expected
    query = np.asarray(docs[0].embedding, dtype=np.float32)
    assert sorted(ids(store.embedding_retrieval(query, top_k=100, filters=filters))) == sorted(
        expected
    )


@pytest.mark.parametrize(
    "filters",
    [
        {"field": "meta.page", "operator": "~", "value": 1},
        {"field": "meta.page", "operator": ">", "value": "two"},
        {"field": "meta.page", "operator": "in", "value": 1},
        {"field": "embedding", "operator": "==", "value": 1},
        {"operator": "XOR", "conditions": []},
        {"operator": "AND"},
        {"field": "meta.page", "operator": "=="},
    ],
)
def test_bad_filters_raise_filter_error(
    mixed_store: tuple[PassageStore, list[Document]], filters: dict
) -> None:
    store, docs = mixed_store
    with pytest.raises(FilterError):
        store.filter_documents(filters)
    with pytest.raises(FilterError):
        store.embedding_retrieval(docs[0].embedding, filters=filters)


def build_store(seed: int = 4) -> PassageStore:
    """Three sources through replace_source, plus loose passages through write_documents."""
    rng = np.random.default_rng(seed)
    store = PassageStore(embedding_dim=DIM)
    for n, (doc_id, source, file_type) in enumerate(
        [
            ("aaa", "docs/hr/leave.pdf", "pdf"),
            ("bbb", "docs/travel.docx", "docx"),
            ("ccc", "docs/it/security.html", "html"),
        ]
    ):
        vectors = unit(rng, 5 + n)
        passages = [
            passage(
                doc_id,
                i,
                v,
                source=source,
                file_type=file_type,
                page=i + 1,
                section=f"Section {i}",
                start=i * 10,
                end=i * 10 + 9,
                modified="2024-01-01T00:00:00+00:00",
            )
            for i, v in enumerate(vectors)
        ]
        store.replace_source(record(doc_id, source, file_type), f"text of {source}", passages)
    store.write_documents([passage("zzz", i, v) for i, v in enumerate(unit(rng, 4))])
    return store


def test_save_load_round_trip(tmp_path: Path) -> None:
    store = build_store()
    index_dir = tmp_path / "index"
    assert not PassageStore.exists(index_dir)
    store.save(index_dir)
    assert PassageStore.exists(index_dir)

    loaded = PassageStore.load(index_dir)

    assert loaded.count_documents() == store.count_documents() == 22
    before, after = store.filter_documents(), loaded.filter_documents()
    assert ids(after) == ids(before)
    for old, new in zip(before, after, strict=True):
        assert (new.content, new.meta) == (old.content, old.meta)
        assert new.embedding == old.embedding  # float32 values, bit for bit
    assert loaded.sources() == store.sources()
    counts = [(s.doc_id, s.passages) for s in loaded.sources()]
    assert counts == [("aaa", 5), ("ccc", 7), ("bbb", 6)]  # sorted by source
    assert loaded.source("bbb") == store.source("bbb")
    assert loaded.source_text("ccc") == "text of docs/it/security.html"
    queries = unit(np.random.default_rng(5), 3)
    hr = {"field": "meta.source", "operator": "==", "value": "docs/hr/leave.pdf"}
    for query in queries:
        for filters in (None, hr):
            a = store.embedding_retrieval(query, top_k=7, filters=filters)
            b = loaded.embedding_retrieval(query, top_k=7, filters=filters)
            assert [(d.id, d.score) for d in a] == [(d.id, d.score) for d in b]

    # Writing to the loaded store continues the FAISS ids without reusing them.
    loaded.write_documents([passage("new", 0, queries[0])])
    assert ids(loaded.embedding_retrieval(queries[0], top_k=1)) == ["new-00000"]

    # Serialization names the folder, and from_dict reloads from it.
    data = loaded.to_dict()
    assert data["init_parameters"] == {
        "embedding_dim": DIM,
        "index": IndexSpec().to_dict(),
        "index_dir": str(index_dir),
    }
    assert PassageStore.from_dict(data).count_documents() == 22
    empty = PassageStore.from_dict(PassageStore(embedding_dim=8).to_dict())
    assert (empty.embedding_dim, empty.count_documents()) == (8, 0)


def test_save_swaps_versions_and_keeps_the_previous(tmp_path: Path) -> None:
    store = build_store()
    for _ in range(3):
        store.save(tmp_path)
        store.delete_documents([store.filter_documents()[0].id])
    versions = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v-"))
    assert versions == ["v-000002", "v-000003"]
    assert (tmp_path / CURRENT_FILE).read_text().strip() == "v-000003"
    assert PassageStore.load(tmp_path).count_documents() == 20  # 22, saved after 2 deletions


def test_crashed_save_leaves_previous_version_loadable(tmp_path: Path) -> None:
    store = build_store()
    store.save(tmp_path)
    # A save that died while writing: a half-written .tmp folder.
    broken = tmp_path / "v-000002.tmp"
    broken.mkdir()
    (broken / "vectors.faiss").write_bytes(b"\x00" * 100)
    (broken / "passages.sqlite").write_bytes(b"SQLite format 3\x00")
    # A save that died after the rename but before CURRENT was swapped.
    shutil.copytree(tmp_path / "v-000001", tmp_path / "v-000003")
    (tmp_path / "v-000003" / "vectors.faiss").write_bytes(b"garbage")
    # A save that died while writing the new pointer.
    (tmp_path / "CURRENT.tmp").write_text("v-0000")

    loaded = PassageStore.load(tmp_path)
    assert ids(loaded.filter_documents()) == ids(store.filter_documents())

    # The next save takes a fresh number and clears the leftovers.
    loaded.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v-")) == [
        "v-000001",
        "v-000004",
    ]
    assert PassageStore.load(tmp_path).count_documents() == 22


def test_out_of_sync_version_is_refused(tmp_path: Path) -> None:
    build_store().save(tmp_path / "a")
    smaller = build_store(seed=9)
    smaller.delete_documents(["aaa-00000"])
    smaller.save(tmp_path / "b")
    folder = tmp_path / "a" / "v-000001"

    # Vectors of another save: FAISS and SQLite disagree.
    shutil.copy(tmp_path / "b" / "v-000001" / "vectors.faiss", folder / "vectors.faiss")
    with pytest.raises(StoreError, match="out of sync") as error:
        PassageStore.load(tmp_path / "a")
    message = str(error.value)
    assert str(folder) in message and "FAISS has 21 vectors, manifest says 22" in message
    assert "only in SQLite: [0]" in message

    # A passage row lost from SQLite.
    build_store().save(tmp_path / "c")
    database = tmp_path / "c" / "v-000001" / "passages.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM passages WHERE id = 'bbb-00002'")
    db.close()
    with pytest.raises(StoreError, match="SQLite has 21 passages, manifest says 22"):
        PassageStore.load(tmp_path / "c")


def test_missing_or_unreadable_index(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no index"):
        PassageStore.load(tmp_path / "nothing")
    with pytest.raises(StoreError, match="CURRENT is missing"):
        PassageStore.load(tmp_path)
    (tmp_path / CURRENT_FILE).write_text("v-000007\n")
    assert not PassageStore.exists(tmp_path)
    with pytest.raises(StoreError, match="v-000007"):
        PassageStore.load(tmp_path)
    build_store().save(tmp_path / "x")
    (tmp_path / "x" / "v-000001" / "vectors.faiss").write_bytes(b"not faiss")
    with pytest.raises(StoreError, match="unreadable FAISS index"):
        PassageStore.load(tmp_path / "x")


def test_replace_source_replaces_only_that_document() -> None:
    store = build_store()
    rng = np.random.default_rng(6)
    bbb = {"field": "meta.doc_id", "operator": "==", "value": "bbb"}
    old_bbb = ids(store.filter_documents(bbb))
    new_vectors = unit(rng, 2)
    new = [
        passage("aaa", i, v, source="docs/hr/leave.pdf", file_type="pdf", revision=2)
        for i, v in enumerate(new_vectors)
    ]
    changed = record("aaa", "docs/hr/leave.pdf")
    changed.sha256 = "1" * 64

    store.replace_source(changed, "new text", new)

    aaa = store.filter_documents({"field": "meta.doc_id", "operator": "==", "value": "aaa"})
    assert ids(aaa) == ["aaa-00000", "aaa-00001"]
    assert all(d.meta["revision"] == 2 for d in aaa)
    assert ids(store.filter_documents(bbb)) == old_bbb
    assert store.count_documents() == 22 - 5 + 2
    assert store.source_text("aaa") == "new text"
    source = store.source("aaa")
    assert source is not None and (source.sha256, source.passages) == ("1" * 64, 2)
    # The old vectors of aaa are gone from FAISS too: search finds the new ones.
    hit = store.embedding_retrieval(new_vectors[1], top_k=1)[0]
    assert (hit.id, hit.meta["revision"]) == ("aaa-00001", 2)
    assert store.count_vectors() == store.count_documents()

    # A passage of another document is refused, and nothing changes.
    wrong = [passage("bbb", 9, new_vectors[0])]
    with pytest.raises(ValueError, match="doc_id"):
        store.replace_source(changed, "x", wrong)
    clash = [passage("bbb", 0, new_vectors[0])]
    clash[0].meta["doc_id"] = "aaa"
    with pytest.raises(DuplicateDocumentError):
        store.replace_source(changed, "x", clash)
    assert store.count_documents() == 19 and store.source_text("aaa") == "new text"
    assert store.count_vectors() == 19

    store.remove_source("aaa")
    assert [s.doc_id for s in store.sources()] == ["ccc", "bbb"]  # sorted by source
    assert store.source("aaa") is None
    assert store.count_documents() == 17 == store.count_vectors()
    with pytest.raises(KeyError):
        store.source_text("aaa")
