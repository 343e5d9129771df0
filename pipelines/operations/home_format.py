"""The format of a data home on disk, and the migrations that bring an older home up to it.

A company runs DocQA for years and upgrades it in place, so every release must open the homes
older releases wrote, and say plainly when a home is newer than it. ``<home>/docqa_home.json``
records the home's format (``{"format": "docqa-home", "format_version": N, ...}``); a home
without that file but with anything in it was written before formats were recorded: format 1.

Each part keeps its own version as well (the index's ``manifest.json`` and ``PRAGMA
user_version``, the backup manifest); the home's number is what a release compares at start.
Opening a home (every ``docqa`` command that reads one, and so ``docqa ui`` and ``docqa serve``
before they start their workers) goes through :func:`open_home`:

* a current home opens as it is; a new one is stamped with the current format;
* an older home is migrated once, under the home's writer lock (no indexer writes meanwhile)
  and a lock of its own (two commands started at once migrate it once): first a backup
  (:func:`pipelines.operations.backup.backup_home`) into ``<home>/backups/``, then each migration
  step in order, then the new format is written, atomically and last, so an interrupted migration
  runs again from the start (every step can run twice);
* a home written by a newer release is refused, untouched, with both numbers in the message.

Steps are written against files, not against the classes that read them today, where the class
would hide the old shape (the API keys file is rewritten as JSON; the index is saved through the
store, whose loader reads every older schema).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from pipelines.settings import Settings
from pipelines.store.versions import StoreError, write_atomic, writer_lock

logger = logging.getLogger(__name__)

HOME_FILE = "docqa_home.json"
HOME_FORMAT = "docqa-home"
# 1: homes written before this file existed (up to 2026-12-06): passages database schema 1 or
#    2 (sources.text_format), API keys with the role "ask" and no groups, a question log without
#    the asker columns.
# 2: all of those in today's shape, and this file.
HOME_FORMAT_VERSION = 2
BACKUPS_DIR = "backups"  # pre-migration backups; never inside a backup themselves
_LOCK_FILE = "docqa_home.lock"
_LOCK_TIMEOUT_S = 600.0  # a migration of a large home (its backup) takes minutes
# What a home written before formats were recorded holds (any of it).
_CONTENT = (
    "index",
    "models",
    "feedback",
    "uploads",
    "questions.sqlite",
    "api_keys.json",
    "users.json",
    "access.json",
    "audit.jsonl",
)


class HomeFormatError(RuntimeError):
    """A home cannot be opened by this release, or its migration failed; says which and why."""


@dataclass(frozen=True)
class Migration:
    """One step from format ``to_version - 1`` to ``to_version``: ``pending`` says whether the
    home has anything the step changes, ``apply`` changes it and says what it did."""

    to_version: int
    summary: str
    pending: Callable[[Settings], bool]
    apply: Callable[[Settings], str]


@dataclass(frozen=True)
class MigrationReport:
    home: Path
    from_version: int
    to_version: int
    backup: Path | None
    changes: tuple[str, ...] = ()


# -- the steps from format 1 to 2 ---------------------------------------------------------------


def _sqlite_read(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _passages_schema(settings: Settings) -> int | None:
    from pipelines.store.files import PASSAGES_FILE
    from pipelines.store.versions import current_folder

    folder = current_folder(settings.index_dir)
    if folder is None or not (folder / PASSAGES_FILE).is_file():
        return None
    return int(_sqlite_read(folder / PASSAGES_FILE, "PRAGMA user_version")[0][0])  # type: ignore[arg-type]


def _index_pending(settings: Settings) -> bool:
    from pipelines.store.files import SCHEMA_VERSION

    schema = _passages_schema(settings)
    return schema is not None and schema != SCHEMA_VERSION


def _index_apply(settings: Settings) -> str:
    """Save the serving index again: the loader reads the older schema, the save writes today's
    as a new version (the old one stays beside it, as after any save)."""
    from pipelines.store import PassageStore
    from pipelines.store.files import SCHEMA_VERSION

    schema = _passages_schema(settings)
    store = PassageStore.load(settings.index_dir)
    try:
        store.save(settings.index_dir)
    finally:
        store.close()
    return f"index: passages schema {schema} -> {SCHEMA_VERSION} (saved as a new version)"


def _old_key(entry: dict[str, object]) -> bool:
    return entry.get("role") == "ask" or "groups" not in entry


def _keys_pending(settings: Settings) -> bool:
    path = settings.api_keys_file
    if not path.is_file():
        return False
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("keys", [])
    except (ValueError, AttributeError):
        return False  # the key store reports a damaged file itself, naming it
    return any(isinstance(e, dict) and _old_key(e) for e in entries)


def _keys_apply(settings: Settings) -> str:
    """The first API's keys: role "ask" is "viewer" now, and every key has its groups."""
    path = settings.api_keys_file
    with FileLock(str(path.with_name(path.name + ".lock")), timeout=60):
        data = json.loads(path.read_text(encoding="utf-8"))
        old = [e for e in data["keys"] if _old_key(e)]
        for entry in old:
            entry["role"] = "viewer" if entry.get("role") == "ask" else entry["role"]
            entry.setdefault("groups", [])
        write_atomic(path, json.dumps(data, indent=2) + "\n")
    return f"API keys: {len(old)} of {len(data['keys'])} given today's role names and groups"


def _log_columns(path: Path) -> set[str]:
    return {str(row[1]) for row in _sqlite_read(path, "PRAGMA table_info(questions)")}


def _question_log_pending(settings: Settings) -> bool:
    from pipelines.learning_loop.question_log import ADDED_COLUMNS

    path = settings.question_log_file
    if not path.is_file():
        return False
    return not {name for name, _ in ADDED_COLUMNS} <= _log_columns(path)


def _question_log_apply(settings: Settings) -> str:
    """The asker and cited-document columns and their index (the question log adds them when it
    first opens a file; here once, under the migration's lock)."""
    from pipelines.learning_loop.question_log import QuestionLog

    path = settings.question_log_file
    before = _log_columns(path)
    QuestionLog(path).count()
    return f"question log: added {', '.join(sorted(_log_columns(path) - before))}"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "the serving index in today's passages schema", _index_pending, _index_apply),
    Migration(2, "API keys with today's roles and groups", _keys_pending, _keys_apply),
    Migration(
        2, "the question log's asker and documents", _question_log_pending, _question_log_apply
    ),
)


# -- reading and writing the format ---------------------------------------------------------------


def home_format(home: Path) -> int | None:
    """The format of the home at ``home``; None for a missing or empty folder (a new home)."""
    home = Path(home)
    path = home / HOME_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != HOME_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {HOME_FORMAT!r}")
            return int(data["format_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HomeFormatError(f"{path}: not a DocQA home format file ({exc})") from None
    if not home.is_dir():
        return None
    return 1 if any((home / name).exists() for name in _CONTENT) else None


def _write_format(home: Path) -> None:
    from pipelines.operations.backup import docqa_version

    data = {
        "format": HOME_FORMAT,
        "format_version": HOME_FORMAT_VERSION,
        "written_by": docqa_version(),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomic(home / HOME_FILE, json.dumps(data, indent=1) + "\n")


def _pending(settings: Settings, version: int) -> list[Migration]:
    return [m for m in MIGRATIONS if m.to_version > version and m.pending(settings)]


def open_home(settings: Settings, *, progress: bool = False) -> MigrationReport | None:
    """Make ``settings.home`` usable by this release: stamp a new home, migrate an older one
    (backup first), refuse a newer one (:class:`HomeFormatError`). The report when it migrated,
    None otherwise.

    A home without the format file whose files need no step (one this release's library code
    wrote, a test's) is only stamped: a backup and a migration message would be noise."""
    home = settings.home
    version = home_format(home)
    if version == HOME_FORMAT_VERSION:
        return None
    if version is not None and version > HOME_FORMAT_VERSION:
        raise HomeFormatError(
            f"{home} was written by a newer DocQA (home format {version}; this release reads up "
            f"to {HOME_FORMAT_VERSION}): upgrade DocQA, or restore a backup made by this release"
        )
    if not home.is_dir():
        return None  # stamped by the first command that finds it made (nothing to migrate)
    if version is None or not _pending(settings, version):
        _write_format(home)
        return None
    return migrate_home(settings, progress=progress)


def migrate_home(settings: Settings, *, progress: bool = False) -> MigrationReport | None:
    """Migrate an older home to :data:`HOME_FORMAT_VERSION` (see the module docstring); None when
    another process did it first."""
    from pipelines.operations.backup import BackupError, backup_home

    home = settings.home
    with FileLock(str(home / _LOCK_FILE), timeout=_LOCK_TIMEOUT_S):
        version = home_format(home)
        if version is None or version >= HOME_FORMAT_VERSION:
            return None  # migrated meanwhile by another process
        try:
            with writer_lock(home):
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                backup = home / BACKUPS_DIR / f"before-format-{HOME_FORMAT_VERSION}-{stamp}.tar"
                logger.info("%s: format %d, migrating; backup first: %s", home, version, backup)
                backup_home(home, backup, progress=progress)
                changes = [step.apply(settings) for step in _pending(settings, version)]
                _write_format(home)
        except (BackupError, StoreError, OSError, ValueError, sqlite3.Error) as exc:
            raise HomeFormatError(
                f"{home}: migrating from home format {version} to {HOME_FORMAT_VERSION} failed "
                f"({exc}); it stays at format {version} and the next start tries again"
                " (steps that ran are safe to run twice; a backup taken first is in "
                f"{home / BACKUPS_DIR})"
            ) from exc
    for line in changes:
        logger.info("%s: %s", home, line)
    return MigrationReport(home, version, HOME_FORMAT_VERSION, backup, tuple(changes))
