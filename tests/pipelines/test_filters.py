"""Folder, file-type and date choices become filters the store runs inside the search."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from indexer.run import index_folder
from pipelines.embedder import QuestionEmbedder
from pipelines.filters import build_filters, folder_of, folders
from pipelines.settings import Settings
from pipelines.store import PassageStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five real documents indexed in two folders: documents/ and documents/notes/."""
    root = tmp_path_factory.mktemp("filters")
    docs = root / "documents"
    (docs / "notes").mkdir(parents=True)
    for name in ("handbook.pdf", "onboarding.md", "opening-hours.txt", "security.html"):
        shutil.copy2(FIXTURES / name, docs / name)
    (docs / "notes" / "visitors.txt").write_text(
        "Security notice for visitors.\n\nThe badge office is in room 42 on the ground floor.\n",
        encoding="utf-8",
    )
    home = root / "home"
    assert index_folder([docs], Settings(home=home), progress=False).added == 5
    return home


def test_folders_of_sources() -> None:
    sources = ["documents/hr/leave.pdf", "documents/hr/a/b.md", "uploads/x.txt", "top.txt"]
    assert folders(sources) == ["documents", "documents/hr", "documents/hr/a", "uploads"]
    assert folder_of("documents/hr/leave.pdf") == "documents/hr"
    assert folder_of("top.txt") == ""


def test_filters_select_the_right_passages(base_home: Path) -> None:
    settings = Settings(home=base_home)
    store = PassageStore.load(settings.index_dir)
    records = store.sources()
    embedding = QuestionEmbedder.from_settings(settings).run(text="Where is the badge office?")[
        "embedding"
    ]

    def sources(filters: dict | None) -> set[str]:
        found = store.embedding_retrieval(embedding, top_k=50, filters=filters)
        return {doc.meta["source"] for doc in found}

    assert build_filters(records) is None
    assert sources(build_filters(records, ["documents/notes"])) == {"documents/notes/visitors.txt"}
    assert sources(build_filters(records, file_types=["md", "html"])) == {
        "documents/onboarding.md",
        "documents/security.html",
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
