"""The same text is embedded once (issue 29's near-duplicates): a copy of a file at another path
and the unchanged paragraphs of an edited file take the vectors the index already has; each copy
stays a document of its own, cited at its own path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.run import index_folder
from pipelines.settings import Settings
from pipelines.store import PassageStore

POLICY = "# Expenses\n\n" + "\n\n".join(
    f"## Rule {n}\n\nClaims of type {n} are filed within {n + 10} days of the trip, with the "
    f"receipts scanned and the cost centre {1000 + n} named on the form."
    for n in range(1, 9)
)


def passages_by_source(settings: Settings) -> dict[str, list]:
    store = PassageStore.load(settings.index_dir)
    by_source: dict[str, list] = {}
    for passage in store.filter_documents():
        by_source.setdefault(passage.meta["source"], []).append(passage)
    return by_source


def test_a_copy_is_embedded_once_and_cited_at_both_paths(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "finance").mkdir(parents=True)
    (docs / "travel").mkdir()
    (docs / "finance" / "expenses.md").write_text(POLICY, "utf-8")
    (docs / "travel" / "expenses-copy.md").write_text(POLICY, "utf-8")
    (docs / "travel" / "hotels.md").write_text("# Hotels\n\nThe travel desk books hotels.", "utf-8")
    settings = Settings(home=tmp_path / "home")

    summary = index_folder([docs], settings, progress=False)
    by_source = passages_by_source(settings)
    original, copy = (
        by_source["docs/finance/expenses.md"],
        by_source["docs/travel/expenses-copy.md"],
    )
    assert summary.added == 3 and len(original) == len(copy) > 1
    assert summary.passages == 2 * len(original) + 1
    assert summary.reused == len(copy)  # the copy's passages took the original's vectors
    assert f"({len(copy)} of them reused, the same text)" in summary.describe()
    for a, b in zip(original, copy, strict=True):
        assert a.content == b.content and a.meta["doc_id"] != b.meta["doc_id"]
        np.testing.assert_allclose(a.embedding, b.embedding)
    # Both are found, each cited at its own path, with the same score.
    store = PassageStore.load(settings.index_dir)
    hits = store.embedding_retrieval(original[-1].embedding, top_k=2)
    assert {hit.meta["source"] for hit in hits} == {
        "docs/finance/expenses.md",
        "docs/travel/expenses-copy.md",
    }
    assert abs(hits[0].score - hits[1].score) < 1e-6


def test_an_edited_file_embeds_only_its_changed_passages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "expenses.md").write_text(POLICY, "utf-8")
    settings = Settings(home=tmp_path / "home")
    index_folder([docs], settings, progress=False)
    before = {
        (p.content, p.meta.get("section")) for p in passages_by_source(settings)["docs/expenses.md"]
    }

    edited = POLICY.replace("within 15 days", "within 30 days")  # rule 5 only
    (docs / "expenses.md").write_text(edited, "utf-8")
    summary = index_folder([docs], settings, progress=False)
    after = passages_by_source(settings)["docs/expenses.md"]
    unchanged = [p for p in after if (p.content, p.meta.get("section")) in before]
    assert summary.updated == 1 and 0 < len(unchanged) < len(after)
    assert summary.reused == len(unchanged)
    # The changed passage got a vector of its own text, nearest to a question about it.
    store = PassageStore.load(settings.index_dir)
    changed = next(p for p in after if "within 30 days" in (p.content or ""))
    assert store.embedding_retrieval(changed.embedding, top_k=1)[0].id == changed.id

    # --full embeds every passage again (after a change of embedder, say): nothing reused.
    again = index_folder([docs], settings, full=True, progress=False)
    assert again.passages == len(after) and again.reused == 0
