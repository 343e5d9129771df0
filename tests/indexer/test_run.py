"""Incremental indexing of a real folder with the real MiniLM embedder and passage store."""

from __future__ import annotations

import builtins
import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

import indexer.manifest
import indexer.prepare
import indexer.run
from indexer import IndexSummary, index_folder, plan_index
from indexer.run import IndexingError, IndexLockedError
from pipelines.embedder import PassageEmbedder
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
    assert data["failed"] == 1 and data["skipped"] == len(summary.skipped)
    assert data["failed_files"][0]["path"] == "documents/corrupt.pdf"
    assert data["failed_files"][0]["reason"].startswith("not a readable PDF")
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


def test_new_split_settings_resplit_every_file_once(folder: Path, settings: Settings) -> None:
    first = run(folder, settings)
    shorter = settings.with_(split_words=60, split_overlap=10)
    resplit = run(folder, shorter)
    # Same bytes, other passages: every file is split again, and only once.
    assert (resplit.added, resplit.updated, resplit.unchanged) == (0, 5, 0)
    assert resplit.total_passages > first.total_passages
    assert run(folder, shorter).passages == 0


def test_an_index_from_before_the_text_format_was_recorded_is_converted_again(
    folder: Path, settings: Settings
) -> None:
    """An index saved by an older DocQA (schema 1, no text format) still loads and answers, and
    the next run converts its files again, so they get today's text (e.g. table headers)."""
    import sqlite3

    first = run(folder, settings)
    version = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
    db = sqlite3.connect(version / "passages.sqlite")
    db.executescript("ALTER TABLE sources DROP COLUMN text_format; PRAGMA user_version = 1;")
    db.close()

    old = PassageStore.load(settings.index_dir)
    assert {r.text_format for r in old.sources()} == {""}
    assert old.count_documents() == first.total_passages
    old.close()
    again = run(folder, settings)
    assert (again.added, again.updated, again.unchanged) == (0, 5, 0)
    assert {r.text_format for r in PassageStore.load(settings.index_dir).sources()} == {
        indexer.run.passage_format(settings)
    }
    assert run(folder, settings).passages == 0


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


def test_symlink_loops_and_broken_links_are_skipped(folder: Path, settings: Settings) -> None:
    (folder / "loop.md").symlink_to("loop.md")  # ln -s loop.md loop.md
    (folder / "ping.md").symlink_to("pong.md")
    (folder / "pong.md").symlink_to("ping.md")
    (folder / "gone.txt").symlink_to(folder / "deleted.txt")
    summary = run(folder, settings)
    skipped = dict(summary.skipped)
    assert skipped["documents/loop.md"] == "symbolic link loop"
    assert skipped["documents/ping.md"] == "symbolic link loop"
    assert skipped["documents/gone.txt"] == "broken symbolic link (its target does not exist)"
    assert summary.added == 5  # the rest of the folder is indexed
    assert [source for source, _ in summary.failed] == ["documents/corrupt.pdf"]
    assert len(PassageStore.load(settings.index_dir).sources()) == 5


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


# -- what a re-run reads, and the dry run ------------------------------------------------------


def change_folder(folder: Path) -> None:
    """One edited, one deleted, one new and one touched (same content, new mtime) file."""
    (folder / "onboarding.md").write_text(
        "# Onboarding Guide\n\nThe welcome lunch is on Friday at noon.\n", encoding="utf-8"
    )
    (folder / "security.html").unlink()
    (folder / "policies" / "parking.txt").write_text(
        "Parking spaces are assigned by the facilities team.", encoding="utf-8"
    )
    hours = folder / "policies" / "opening-hours.txt"
    os.utime(hours, (hours.stat().st_atime, hours.stat().st_mtime + 3600))


def spy_on_reads(monkeypatch: pytest.MonkeyPatch, folder: Path) -> tuple[set[str], set[str]]:
    """Names (relative to ``folder``) of the files opened and of the files hashed from now on."""
    opened: set[str] = set()
    hashed: set[str] = set()
    real_open, real_sha256 = builtins.open, indexer.manifest.file_sha256
    root = folder.resolve()

    def note(path: Any, into: set[str]) -> None:
        if isinstance(path, str | os.PathLike):
            resolved = Path(path).resolve()
            if resolved.is_relative_to(root):
                into.add(resolved.relative_to(root).as_posix())

    def open_spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        note(file, opened)
        return real_open(file, *args, **kwargs)

    def sha256_spy(path: Path) -> str:
        note(path, hashed)
        return real_sha256(path)

    # builtins.open and io.open are the same function; pathlib and zipfile call io.open.
    monkeypatch.setattr(builtins, "open", open_spy)
    monkeypatch.setattr(io, "open", open_spy)
    monkeypatch.setattr(indexer.manifest, "file_sha256", sha256_spy)
    return opened, hashed


def test_unchanged_files_are_not_read_again(
    folder: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(folder, settings)
    (folder / "onboarding.md").write_text("# Onboarding\n\nLunch at noon.\n", encoding="utf-8")
    opened, hashed = spy_on_reads(monkeypatch, folder)

    summary = run(folder, settings)

    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 4)
    # Only the edited file and the corrupt one (never indexed, so retried) were read: the
    # four files whose size and mtime match the manifest were neither opened nor hashed.
    assert hashed == {"onboarding.md", "corrupt.pdf"}
    assert opened == {"onboarding.md", "corrupt.pdf"}


def snapshot(home: Path) -> dict[str, tuple[int, int]]:
    return {
        path.relative_to(home).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(home.rglob("*"))
    }


def test_dry_run_lists_the_changes_and_writes_nothing(
    folder: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(folder, settings)
    change_folder(folder)
    before = snapshot(settings.home)
    opened, hashed = spy_on_reads(monkeypatch, folder)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a dry run must not convert, embed or save")

    with monkeypatch.context() as patch:
        patch.setattr(indexer.prepare, "convert_bounded", forbidden)
        patch.setattr(PassageEmbedder, "run", forbidden)
        patch.setattr(PassageStore, "save", forbidden)
        plan = plan_index([folder], settings)

    assert plan.changes() == [
        ("removed", "documents/security.html"),
        # corrupt.pdf is tried again by every run (it is only known to fail once converted)
        ("added", "documents/corrupt.pdf"),
        ("added", "documents/policies/parking.txt"),
        ("updated", "documents/onboarding.md"),
    ]
    assert plan.unchanged == 3 and plan.touched == ["documents/policies/opening-hours.txt"]
    assert plan.skipped == [("documents/data.xyz", "unsupported file type '.xyz'")]
    assert snapshot(settings.home) == before  # not even a lock file
    assert hashed == {"onboarding.md", "policies/opening-hours.txt"}  # stat changed
    assert opened == hashed
    data = plan.to_dict()
    assert (data["added"], data["updated"], data["removed"], data["unchanged"]) == (2, 1, 1, 3)
    assert data["changes"][0] == {"action": "removed", "path": "documents/security.html"}
    assert plan.describe().startswith("dry run: would add 2, update 1, remove 1; 3 unchanged")

    summary = run(folder, settings)  # the real run does what the plan said
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (1, 1, 1, 3)
    assert [path for path, _ in summary.failed] == ["documents/corrupt.pdf"]


def test_dry_run_without_an_index_creates_nothing(folder: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "new-home")
    plan = plan_index([folder], settings, full=True)
    assert len(plan.added) == 6 and not plan.updated and not plan.removed
    assert not settings.home.exists()
    with pytest.raises(IndexingError, match="no such file or folder"):
        plan_index([tmp_path / "nowhere"], settings)


def test_progress_bar_shows_passages_per_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    summary = index_folder([docs], Settings(home=tmp_path / "home"), progress=True)
    bar = capsys.readouterr().err.split("\r")[-1]
    assert bar.startswith(f"Indexing 1/1 files: {summary.passages} passages [")
    assert bar.rstrip().endswith(" passages/s]") and "s/ passage" not in bar


def test_index_settings_reach_the_faiss_index(folder: Path, tmp_path: Path) -> None:
    """The index settings reach the saved index and the service that reads it."""
    from pipelines.query import QueryService

    settings = Settings(home=tmp_path / "home", index_type="hnsw", ef_search=64)
    run(folder, settings)
    info = PassageStore.load(settings.index_dir).index_info()
    # Below 1,000 passages every kind is searched exactly; the spec is kept for when it grows.
    assert info["kind"] == "flat"
    assert (info["spec"]["index_type"], info["spec"]["ef_search"]) == ("hnsw", 64)
    service = QueryService(settings.with_(retrieval="dense", nprobe=7))
    assert service.retrieve("When is the office open?", top_k=1)
    assert service.store.index_info()["spec"]["nprobe"] == 7
    # A later run without index settings keeps the index's own; one with other settings saves
    # them even when no file changed.
    run(folder, Settings(home=settings.home))
    assert PassageStore.load(settings.index_dir).index_info()["spec"]["index_type"] == "hnsw"
    run(folder, settings.with_(index_type="ivf"), full=False)
    spec = PassageStore.load(settings.index_dir).index_info()["spec"]
    assert (spec["index_type"], spec["ef_search"]) == ("ivf", 64)
