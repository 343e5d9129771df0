"""The change plan: stat decides when it can, the content hash when it must."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from indexer.manifest import FileState, file_sha256, plan_changes
from pipelines.store import SourceRecord


def record_for(state: FileState, sha256: str | None = None) -> SourceRecord:
    return SourceRecord(
        doc_id=hashlib.sha1(str(state.path).encode()).hexdigest()[:16],
        source=state.source,
        path=str(state.path),
        title=state.path.stem,
        file_type="txt",
        sha256=sha256 or file_sha256(state.path),
        size=state.size,
        mtime=state.mtime,
        indexed_at="2024-01-01T00:00:00+00:00",
    )


def write(path: Path, text: str) -> FileState:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return FileState.from_path(path, f"docs/{path.name}")


def test_sha256_of_content(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "hello")
    assert state.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert state.size == 5 and state.mtime_ns == (tmp_path / "a.txt").stat().st_mtime_ns


def test_plan(tmp_path: Path) -> None:
    same = write(tmp_path / "same.txt", "unchanged text")
    edited = write(tmp_path / "edited.txt", "old text")
    touched = write(tmp_path / "touched.txt", "same content, new mtime")
    gone = write(tmp_path / "gone.txt", "deleted later")
    records = [record_for(s) for s in (same, edited, touched, gone)]

    (tmp_path / "edited.txt").write_text("new text", encoding="utf-8")  # same size, new content
    os.utime(tmp_path / "edited.txt", ns=(1, edited.mtime_ns + 10**9))
    os.utime(tmp_path / "touched.txt", ns=(1, touched.mtime_ns + 10**9))
    (tmp_path / "gone.txt").unlink()
    new = write(tmp_path / "new.txt", "brand new")

    files = [FileState.from_path(tmp_path / n, f"docs/{n}") for n in
             ("same.txt", "edited.txt", "touched.txt", "new.txt")]  # fmt: skip
    plan = plan_changes(files, records, roots=[tmp_path])
    assert [s.path for s in plan.added] == [new.path]
    assert [s.path for s in plan.changed] == [edited.path]
    assert [r.path for r in plan.removed] == [str(gone.path)]
    assert sorted(s.path.name for s in plan.unchanged) == ["same.txt", "touched.txt"]
    assert [s.path.name for s in plan.touched] == ["touched.txt"]
    assert [s.path.name for s in plan.to_index()] == ["new.txt", "edited.txt"]
    # The file whose size and mtime match was never read.
    unchanged_same = next(s for s in plan.unchanged if s.path.name == "same.txt")
    assert unchanged_same._sha256 is None


def test_same_stat_is_trusted_without_reading(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "content")
    record = record_for(state, sha256="0" * 64)  # a wrong hash is never looked at
    plan = plan_changes([state], [record])
    assert plan.unchanged == [state] and not plan.changed and not plan.touched


def test_full_reindexes_everything(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "content")
    plan = plan_changes([state], [record_for(state)], full=True)
    assert plan.changed == [state] and not plan.unchanged


def test_records_outside_the_roots_are_kept(tmp_path: Path) -> None:
    mine = write(tmp_path / "docs" / "a.txt", "mine")
    other = write(tmp_path / "other" / "b.txt", "another folder's")
    records = [record_for(mine), record_for(other)]
    plan = plan_changes([], records, roots=[tmp_path / "docs"])
    assert [r.path for r in plan.removed] == [str(mine.path)]
    assert [r.path for r in plan_changes([], records).removed] == [str(mine.path), str(other.path)]


def test_renamed_source_is_touched(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "content")
    record = record_for(state)
    record.source = "old-name/a.txt"
    plan = plan_changes([state], [record])
    assert plan.touched == [state] and plan.unchanged == [state]


def test_vanished_before_hashing_is_unreadable(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "content")
    record = record_for(state)
    record.size += 1
    (tmp_path / "a.txt").unlink()
    plan = plan_changes([state], [record])
    assert [(s.path, reason) for s, reason in plan.unreadable] == [
        (state.path, "No such file or directory")
    ]


def test_a_file_recorded_with_another_text_format_is_indexed_again(tmp_path: Path) -> None:
    state = write(tmp_path / "a.txt", "same bytes as before")
    record = record_for(state)  # recorded by an older DocQA: no text format
    plan = plan_changes([state], [record], text_format="text2")
    assert plan.changed == plan.reformatted == [state] and not plan.unchanged
    current = SourceRecord(**{**record.__dict__, "text_format": "text2"})
    plan = plan_changes([state], [current], text_format="text2")
    assert plan.unchanged == [state] and not plan.changed
