"""Incremental indexing of a real folder with the real MiniLM embedder and passage store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from indexer import IndexSummary, index_folder
from indexer.run import IndexingError, IndexLockedError
from pipelines.settings import Settings
from pipelines.store import PassageStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small document folder: 5 good files, a corrupt PDF, an unsupported and a hidden file."""
    docs = tmp_path / "documents"
    (docs / "policies").mkdir(parents=True)
    for name in ("handbook.pdf", "security.html", "onboarding.md", "corrupt.pdf", "data.xyz"):
        shutil.copy2(FIXTURES / name, docs / name)
    shutil.copy2(FIXTURES / "travel-policy.docx", docs / "policies" / "travel-policy.docx")
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "policies" / "opening-hours.txt")
    (docs / ".draft.txt").write_text("hidden drafts are not indexed", encoding="utf-8")
    (docs / ".git").mkdir()
    (docs / ".git" / "notes.txt").write_text("nor hidden folders", encoding="utf-8")
    return docs


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def run(folder: Path | list[Path], settings: Settings, **kwargs: object) -> IndexSummary:
    paths = folder if isinstance(folder, list) else [folder]
    return index_folder(paths, settings, progress=False, **kwargs)  # type: ignore[arg-type]


def test_first_run_indexes_good_files_and_reports_the_rest(
    folder: Path, settings: Settings
) -> None:
    summary = run(folder, settings)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (5, 0, 0, 0)
    assert [path for path, _ in summary.failed] == ["documents/corrupt.pdf"]
    assert summary.failed[0][1].startswith("not a readable PDF (")
    assert summary.skipped == [("documents/data.xyz", "unsupported file type '.xyz'")]

    store = PassageStore.load(settings.index_dir)
    assert summary.passages == store.count_documents() == summary.total_passages > 0
    assert summary.total_documents == 5
    assert sorted(r.source for r in store.sources()) == [
        "documents/handbook.pdf",
        "documents/onboarding.md",
        "documents/policies/opening-hours.txt",
        "documents/policies/travel-policy.docx",
        "documents/security.html",
    ]
    for record in store.sources():
        text = store.source_text(record.doc_id)
        passages = store.filter_documents(
            {"field": "meta.doc_id", "operator": "==", "value": record.doc_id}
        )
        assert record.passages == len(passages) > 0
        for passage in passages:
            assert text[passage.meta["start"] : passage.meta["end"]] == passage.content
            assert passage.meta["source"] == record.source
            assert passage.embedding is not None and len(passage.embedding) == 384
    data = summary.to_dict()
    assert data["failed"][0]["path"] == "documents/corrupt.pdf"
    assert data["added"] == 5 and isinstance(data["seconds"], float)


def test_rerun_change_add_delete_touch(folder: Path, settings: Settings) -> None:
    run(folder, settings)

    again = run(folder, settings)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5)
    assert again.passages == 0
    assert [path for path, _ in again.failed] == ["documents/corrupt.pdf"]  # retried every run

    (folder / "onboarding.md").write_text(
        "# Onboarding Guide\n\nThe welcome lunch is on Friday at noon.\n", encoding="utf-8"
    )
    (folder / "security.html").unlink()
    (folder / "policies" / "parking.txt").write_text(
        "Parking spaces are assigned by the facilities team.", encoding="utf-8"
    )
    hours = folder / "policies" / "opening-hours.txt"
    os.utime(hours, (hours.stat().st_atime, hours.stat().st_mtime + 3600))  # touched only

    changed = run(folder, settings)
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 3)
    assert changed.total_documents == 5

    store = PassageStore.load(settings.index_dir)
    by_source = {r.source: r for r in store.sources()}
    assert "documents/security.html" not in by_source
    assert "welcome lunch" in store.source_text(by_source["documents/onboarding.md"].doc_id)
    assert "documents/policies/parking.txt" in by_source
    touched = by_source["documents/policies/opening-hours.txt"]
    assert touched.mtime == hours.stat().st_mtime  # refreshed without re-embedding
    assert changed.passages == sum(
        by_source[s].passages for s in ("documents/onboarding.md", "documents/policies/parking.txt")
    )
    assert run(folder, settings).passages == 0  # the touched file is now unchanged by stat


def test_full_reindexes_and_broken_update_is_dropped(folder: Path, settings: Settings) -> None:
    first = run(folder, settings)
    full = run(folder, settings, full=True)
    assert (full.added, full.updated, full.unchanged) == (0, 5, 0)
    assert full.passages == first.passages

    (folder / "handbook.pdf").write_bytes(b"%PDF-1.4 truncated")
    broken = run(folder, settings)
    assert dict(broken.failed)["documents/handbook.pdf"].startswith("not a readable PDF (")
    assert broken.removed == 1  # its old passages would cite text the file no longer has
    sources = [r.source for r in PassageStore.load(settings.index_dir).sources()]
    assert "documents/handbook.pdf" not in sources


def test_other_folders_are_kept(folder: Path, settings: Settings, tmp_path: Path) -> None:
    run(folder, settings)
    other = tmp_path / "wiki"
    other.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", other / "start.md")
    summary = run(other, settings, checkpoint_every=1)  # saves after every file
    assert (summary.added, summary.removed, summary.unchanged) == (1, 0, 0)
    assert summary.total_documents == 6
    assert "wiki/start.md" in {r.source for r in PassageStore.load(settings.index_dir).sources()}


def test_symlinks_outside_the_folder_are_refused(
    folder: Path, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the indexed folder", encoding="utf-8")
    (folder / "link.txt").symlink_to(secret)
    (folder / "inside.md").symlink_to(folder / "onboarding.md")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    summary = run(folder, settings)
    skipped = dict(summary.skipped)
    assert skipped["documents/link.txt"] == "symbolic link to a file outside the indexed folder"
    assert skipped["documents/loop"] == "symbolic link to a folder"
    assert summary.added == 5  # inside.md resolves to onboarding.md: indexed once


def test_lock_contention(folder: Path, settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    lock_path = settings.home / "index.lock"
    with FileLock(str(lock_path)), pytest.raises(IndexLockedError) as info:
        run(folder, settings)
    assert str(info.value) == f"another indexer is running (lock: {lock_path})"
    assert not PassageStore.exists(settings.index_dir)


def test_missing_folder(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(IndexingError, match="no such file or folder"):
        run(tmp_path / "nowhere", settings)


def test_empty_folder_saves_an_empty_index(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    summary = run(empty, settings)
    assert summary.total_passages == 0 and summary.added == 0
    assert PassageStore.load(settings.index_dir).count_documents() == 0
