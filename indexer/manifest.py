"""What is indexed, and what changed since: the plan of an incremental indexing run.

The manifest is the store's :class:`~pipelines.store.SourceRecord` list (path, size, mtime,
sha256 of each indexed file), so it is saved atomically together with the passages and can never
disagree with them; there is no separate manifest file.

A file whose size and mtime equal the recorded ones is unchanged without being read. Otherwise
its content hash decides: the same hash means only its timestamp (or the name it is shown under)
changed, so its record is refreshed ("touched") without converting or embedding it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Two mtimes closer than this are equal: the stored float may have been rounded on the way
# through the store (SQLite REAL, JSON) even though a float of st_mtime round-trips exactly.
_MTIME_TOLERANCE = 1e-6


class RecordLike(Protocol):
    """The fields of ``pipelines.store.SourceRecord`` the plan reads."""

    doc_id: str
    source: str
    path: str
    sha256: str
    size: int
    mtime: float
    text_format: str


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class FileState:
    """One file found on disk: resolved path, the name users see, size and mtime (from stat)."""

    path: Path
    source: str
    size: int
    mtime: float
    mtime_ns: int
    _sha256: str | None = field(default=None, repr=False)

    @classmethod
    def from_path(cls, path: Path, source: str) -> FileState:
        """Stat ``path`` (raises OSError when it cannot be read)."""
        path = Path(path).resolve()
        stat = path.stat()
        return cls(path=path, source=source, size=stat.st_size, mtime=stat.st_mtime,
                   mtime_ns=stat.st_mtime_ns)  # fmt: skip

    @property
    def sha256(self) -> str:
        """Content hash, computed once on first use (raises OSError when unreadable)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    def same_stat(self, record: RecordLike) -> bool:
        return self.size == record.size and abs(self.mtime - record.mtime) <= _MTIME_TOLERANCE


@dataclass
class ChangePlan:
    """Files to index (added, changed), records to drop (removed), and files to leave alone.

    ``touched`` is the part of ``unchanged`` whose record needs a refresh (new mtime or source
    name, same content). ``unreadable`` lists files whose hash could not be computed.
    ``reformatted``: the part of ``changed`` whose content is the same but whose text and
    passages were made by another converter version or split setting.
    """

    added: list[FileState] = field(default_factory=list)
    changed: list[FileState] = field(default_factory=list)
    reformatted: list[FileState] = field(default_factory=list)
    removed: list[RecordLike] = field(default_factory=list)
    unchanged: list[FileState] = field(default_factory=list)
    touched: list[FileState] = field(default_factory=list)
    unreadable: list[tuple[FileState, str]] = field(default_factory=list)

    def to_index(self) -> list[FileState]:
        return [*self.added, *self.changed]


def is_under(path: Path, roots: Iterable[Path]) -> bool:
    """Whether resolved ``path`` is one of ``roots`` or inside one of them."""
    return any(path == root or path.is_relative_to(root) for root in roots)


def plan_changes(
    files: Sequence[FileState],
    store_sources: Iterable[RecordLike],
    *,
    roots: Sequence[Path] | None = None,
    full: bool = False,
    text_format: str | None = None,
) -> ChangePlan:
    """Compare the files on disk with the store's records.

    Records whose path is not among ``files`` are removed, but only when they lie under one of
    ``roots`` (resolved): indexing one folder never drops another folder's documents. With
    ``roots=None`` every record missing from ``files`` is removed. ``full`` re-indexes every file;
    ``text_format`` (when given) re-indexes every file recorded with another one.
    """
    records = {record.path: record for record in store_sources}
    plan = ChangePlan()
    seen: set[str] = set()
    for state in files:
        key = str(state.path)
        seen.add(key)
        record = records.get(key)
        if record is None:
            plan.added.append(state)
        elif full:
            plan.changed.append(state)
        elif text_format is not None and record.text_format != text_format:
            plan.changed.append(state)
            plan.reformatted.append(state)
        elif state.same_stat(record) and state.source == record.source:
            plan.unchanged.append(state)
        else:
            try:
                same_content = state.sha256 == record.sha256
            except OSError as exc:
                plan.unreadable.append((state, exc.strerror or str(exc)))
                continue
            if same_content:
                plan.unchanged.append(state)
                plan.touched.append(state)
            else:
                plan.changed.append(state)
    resolved_roots = [Path(root).resolve() for root in roots] if roots is not None else None
    for key, record in records.items():
        if key in seen:
            continue
        if resolved_roots is None or is_under(Path(key), resolved_roots):
            plan.removed.append(record)
    logger.debug(
        "plan: %d added, %d changed (%d reformatted), %d removed, %d unchanged (%d touched)",
        len(plan.added), len(plan.changed), len(plan.reformatted), len(plan.removed),
        len(plan.unchanged), len(plan.touched),
    )  # fmt: skip
    return plan
