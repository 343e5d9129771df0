"""Sidebar choices become Haystack filters that the passage store runs inside the search."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.embedder import QuestionEmbedder
from pipelines.settings import Settings
from pipelines.store import PassageStore
from ui.support import build_filters, folder_of, folders


def test_folders_of_sources() -> None:
    sources = ["documents/hr/leave.pdf", "documents/hr/a/b.md", "uploads/x.txt", "top.txt"]
    assert folders(sources) == ["documents", "documents/hr", "documents/hr/a", "uploads"]
    assert folder_of("documents/hr/leave.pdf") == "documents/hr"
    assert folder_of("top.txt") == ""


def test_filters_select_the_right_passages(base_home: Path) -> None:
    settings = Settings(home=base_home)
    store = PassageStore.load(settings.index_dir)
    records = store.sources()
    embedding = QuestionEmbedder(settings).run(text="Where is the badge office?")["embedding"]

    def sources(filters: dict | None) -> set[str]:
        found = store.embedding_retrieval(embedding, top_k=50, filters=filters)
        return {doc.meta["source"] for doc in found}

    assert build_filters(records) is None
    assert sources(build_filters(records, ["documents/notes"])) == {"documents/notes/visitors.txt"}
    assert sources(build_filters(records, file_types=["md", "html"])) == {
        "documents/onboarding.md", "documents/security.html"
    }
    both = build_filters(records, ["documents"], ["txt"])
    assert both is not None and both["operator"] == "AND"
    assert sources(both) == {"documents/opening-hours.txt", "documents/notes/visitors.txt"}
    assert sources(build_filters(records, ["nowhere"])) == set()

    # Dates are whole UTC days, both ends included.
    today = dt.datetime.now(dt.UTC).date()
    newest = max(dt.datetime.fromtimestamp(r.mtime, tz=dt.UTC).date() for r in records)
    assert sources(build_filters(records, modified_from=newest, modified_to=newest))
    assert sources(build_filters(records, modified_from=today + dt.timedelta(days=1))) == set()
    assert sources(build_filters(records, modified_to=dt.date(2000, 1, 1))) == set()
