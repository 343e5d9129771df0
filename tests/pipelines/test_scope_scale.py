"""A caller's scope at 20,000 passages: the full top 10 of what they may see, nothing else.

The scope is made as the page and the API make it (access rules, ``ScopeCache.for_store``) over
2,000 documents in 100 folders; the search results are compared with brute force over the
visible passages only. A 1% scope is small enough for FAISS's id-list selector, a 50% scope
takes its bitmap selector: both must return exactly the visible top 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from identity import AccessRules, Caller, Role, ScopeCache
from pipelines.store import PassageStore
from pipelines.store.files import SourceRecord

PASSAGES, PER_DOC, FOLDERS, DIM, K = 20_000, 10, 100, 384, 10
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su") for b in ("ber", "dal", "fon", "gir")]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[PassageStore, np.ndarray, Path]:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((PASSAGES, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = rng.choice(WORDS, size=(PASSAGES, 12))
    store = PassageStore(embedding_dim=DIM)
    for number in range(PASSAGES // PER_DOC):
        # Folders interleave documents, so a folder's passages spread over all FAISS ids.
        source = f"collection/f{number % FOLDERS:03d}/doc{number:05d}.md"
        record = SourceRecord(
            doc_id=f"d{number:05d}", source=source, path=source, title="", file_type="md",
            sha256=f"{number:064x}", size=1, mtime=0.0, indexed_at="2026-01-01T00:00:00+00:00",
        )  # fmt: skip
        first = number * PER_DOC
        passages = [
            Document(
                id=f"p{i:06d}",
                content=" ".join(words[i]),
                meta={"doc_id": record.doc_id, "source": source},
                embedding=vectors[i].tolist(),
            )
            for i in range(first, first + PER_DOC)
        ]
        store.replace_source(record, "", passages)
    home = tmp_path_factory.mktemp("scope-scale")
    rules = AccessRules(home / "access_rules.json")
    rules.allow("**", "staff")  # every document restricted ...
    rules.allow("f000/**", "one")  # ... then 1% of them to group one
    rules.allow("f0[0-4]?/**", "half")  # and 50% to group half
    return store, vectors, home


def _visible_rows(scope: frozenset[str]) -> np.ndarray:
    docs = np.asarray(sorted(int(d[1:]) for d in scope))
    return (docs[:, None] * PER_DOC + np.arange(PER_DOC)).ravel()


@pytest.mark.parametrize(("group", "fraction"), [("one", 0.01), ("half", 0.5)])
def test_a_scope_returns_the_exact_top_10_of_the_visible_passages(
    collection: tuple[PassageStore, np.ndarray, Path], group: str, fraction: float
) -> None:
    store, vectors, home = collection
    viewer = Caller("viewer", Role.VIEWER, frozenset({group}))
    scope = ScopeCache(AccessRules(home / "access_rules.json")).for_store(viewer, store)
    assert scope is not None and len(scope) == fraction * PASSAGES / PER_DOC
    rows = _visible_rows(scope)
    rng = np.random.default_rng(5)
    # Mostly outside the scope; the last passages have FAISS ids above every visible one,
    # where a selector's bitmap ends (faiss reads past a bitmap given too large a size).
    picked = [*rng.choice(PASSAGES, size=20, replace=False), *range(PASSAGES - 20, PASSAGES)]
    for row in picked:
        query = vectors[row] + 0.05 * rng.standard_normal(DIM, dtype=np.float32)
        hits = store.embedding_retrieval(query, top_k=K, scope=scope)
        assert len(hits) == K
        assert all(hit.meta["doc_id"] in scope for hit in hits)
        exact = rows[np.argsort(-(vectors[rows] @ query))[:K]]
        assert [int(hit.id[1:]) for hit in hits] == exact.tolist()


def test_bm25_with_a_1_percent_scope_returns_its_full_top_10(
    collection: tuple[PassageStore, np.ndarray, Path],
) -> None:
    store, _, home = collection
    viewer = Caller("viewer", Role.VIEWER, frozenset({"one"}))
    scope = ScopeCache(AccessRules(home / "access_rules.json")).for_store(viewer, store)
    assert scope is not None
    rows = _visible_rows(scope)
    index = store.keyword_index()
    for query in ("kaber lofon", "sugir", "mifon nedal suber"):
        hits = store.bm25_retrieval(query, top_k=K, scope=scope)
        assert len(hits) == K and all(hit.meta["doc_id"] in scope for hit in hits)
        # Brute force: every passage's score, the visible ones kept (ties share a score).
        scores = np.asarray(index.model.get_scores(query.split()), dtype=np.float32)
        tenth = np.sort(scores[rows])[-K]
        for hit in hits:
            assert hit.score == pytest.approx(float(scores[int(hit.id[1:])]), rel=1e-5)
            assert hit.score >= tenth - 1e-5


def test_a_scopes_bm25_mask_follows_the_store_when_it_changes(tmp_path: Path) -> None:
    """The scope's BM25 row mask is made once, and made again after a write: a passage added
    to a visible document is found, one of a hidden document is not."""
    store = PassageStore(embedding_dim=4)

    def add(number: int, folder: str, text: str) -> None:
        source = f"c/{folder}/d{number}.md"
        record = SourceRecord(
            doc_id=f"d{number}", source=source, path=source, title="", file_type="md",
            sha256=f"{number:064x}", size=1, mtime=0.0, indexed_at="2026-01-01T00:00:00+00:00",
        )  # fmt: skip
        passage = Document(id=f"p{number}", content=text, meta={"doc_id": record.doc_id},
                           embedding=[1.0, 0.0, 0.0, 0.0])  # fmt: skip
        store.replace_source(record, text, [passage])

    add(1, "eng", "deploy with make release")
    add(2, "hr", "salary bands for engineers")
    rules = AccessRules(tmp_path / "access_rules.json")
    rules.allow("hr/**", "hr")
    eng = Caller("eve", Role.VIEWER, frozenset({"eng"}))
    cache = ScopeCache(rules)
    scope = cache.for_store(eng, store)
    assert [d.id for d in store.bm25_retrieval("release salary", 10, scope=scope)] == ["p1"]
    add(3, "eng", "release notes and salary of the release manager")
    add(4, "hr", "release of salary data")
    scope = cache.for_store(eng, store)
    hits = {d.id for d in store.bm25_retrieval("release salary", 10, scope=scope)}
    assert hits == {"p1", "p3"}
