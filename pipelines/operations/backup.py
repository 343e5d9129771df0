"""Back up a data home into one archive, and restore it, verified, into another.

An operator must be able to copy everything a home holds (the serving index version, uploads,
labeled pairs, keys, users and access rules, the question log and audit log, reader versions and
which one serves, ``auth.toml``) to another machine while the page, the API and an indexer keep
running, and to trust that what comes back is what was saved. So:

* the backup is a consistent snapshot, never a byte-wise copy of files being written: the index
  version ``CURRENT`` names is read once and copied (a version never changes once saved, and the
  save lock keeps the previous one while a reader may still hold it); every SQLite file goes
  through SQLite's own backup API; a file with a ``<name>.lock`` beside it (the audit log, whose
  rotation renames files under that lock; the key, user, rule and label files) is copied under
  that lock, its rotated siblings with it. The snapshot is staged beside the archive, hashed,
  then written as a tar (``manifest.json`` first: format, versions, and each file's size and
  SHA-256), to a temporary name renamed into place, 0600;
* the archive is untrusted input to a restore: every name, type, size and checksum is checked,
  and nothing is missing or extra, before anything is written; the home is then written into a
  temporary folder beside the target and switched in with one rename (an existing home is moved
  aside first only when asked), so a crash leaves the old home as it was.

Not backed up, and said so in the manifest: ``cache/`` (ONNX exports, the measured backend,
model downloads: rebuilt on demand), older index versions, BM25 caches (rebuilt from the
index), lock files, temporary and half-uploaded files. A reader outside the home (an explicit
``Settings.reader_model`` folder, the shipped reader) is not in the home and not in the archive.
"""

from __future__ import annotations

import gzip as gzip_format
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, Any

from filelock import FileLock, Timeout
from tqdm import tqdm

from pipelines.bm25 import CACHE_DIR_NAME as BM25_CACHE
from pipelines.reader_registry import serving_name
from pipelines.settings import Settings
from pipelines.store.versions import CURRENT_FILE, current_version, fsync_dir

logger = logging.getLogger(__name__)

FORMAT = "docqa-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 256 * 2**20
SKIPPED = (
    "cache/ (rebuilt on demand)",
    "backups/ (taken before migrations)",
    "older index versions (only the serving one is kept)",
    "BM25 caches in the index version (rebuilt from the index)",
    "lock files, temporary files and unfinished uploads",
)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 1 << 20
_LOCK_TIMEOUT_S = 60.0
_TEMP_SUFFIXES = (".lock", ".tmp", ".part", "-journal", "-wal", "-shm")
_TEMP_DIR = re.compile(r"\.tmp($|-)")
_INCOMING = ".incoming"  # indexer.uploads.STAGING_DIR: uploads being received
# Top-level folders left out: caches, and the backups a migration takes (home_format.py).
_NOT_BACKED_UP = ("cache", "backups")


class BackupError(RuntimeError):
    """A backup cannot be made, or an archive cannot be restored; one line naming what and why."""


@dataclass(frozen=True)
class BackupFile:
    path: str  # relative, POSIX
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    format_version: int
    docqa_version: str
    created: str
    index_version: str | None
    serving_reader: str | None  # a version under models/; None: a reader outside the home
    files: tuple[BackupFile, ...]
    skipped: tuple[str, ...] = SKIPPED

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "format_version": self.format_version,
            "docqa_version": self.docqa_version,
            "created": self.created,
            "index_version": self.index_version,
            "serving_reader": self.serving_reader,
            "skipped": list(self.skipped),
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return (json.dumps(data, indent=1) + "\n").encode("utf-8")


@dataclass(frozen=True)
class BackupSummary:
    archive: Path
    manifest: Manifest
    archive_bytes: int
    seconds: float


@dataclass(frozen=True)
class RestoreSummary:
    home: Path
    manifest: Manifest
    written: bool  # False for a dry run
    moved_aside: Path | None = None  # the previous home, with --replace
    seconds: float = 0.0


def docqa_version() -> str:
    try:
        return metadata.version("docqa")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- backup -----------------------------------------------------------------------------------


def _skipped(rel: PurePosixPath, version: str | None) -> bool:
    parts = rel.parts
    name = parts[-1]
    if parts[0] in _NOT_BACKED_UP or _INCOMING in parts[:-1] or name.endswith(_TEMP_SUFFIXES):
        return True
    if any(_TEMP_DIR.search(p) for p in parts[:-1]):  # being written (v-7.tmp, bm25.tmp-1-2)
        return True
    if parts[0] == "index":
        # index/CURRENT is written from the version read once; older versions stay behind.
        if len(parts) < 3 or parts[1] != version:
            return True
        return parts[2].startswith(BM25_CACHE)
    return False


def _home_files(home: Path, version: str | None) -> list[PurePosixPath]:
    found = []
    for folder, dirs, files in os.walk(home):  # links are neither followed nor copied
        base = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not (base / d).is_symlink() and not (base == home and d in _NOT_BACKED_UP)
        )
        for name in sorted(files):
            path = base / name
            rel = PurePosixPath(path.relative_to(home).as_posix())
            if path.is_symlink():
                logger.warning("%s is a link: not backed up", path)
            elif path.is_file() and not _skipped(rel, version):
                found.append(rel)
    return found


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live database: SQLite's backup API, under its read lock."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30.0)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _lock_for(path: Path) -> Path | None:
    """The ``<name>.lock`` its writers hold for ``path`` (``audit.jsonl.3``: the audit lock)."""
    lock = path.with_name(re.sub(r"\.\d+$", "", path.name) + ".lock")
    return lock if lock.is_file() else None


def _stage(home: Path, version: str | None, files: list[PurePosixPath], staging: Path) -> None:
    """Copy ``files`` of ``home`` into ``staging``: SQLite by its backup API, locked files under
    their lock (a lock and every file it guards at once), the rest as they are."""
    by_lock: dict[Path | None, list[PurePosixPath]] = {}
    for rel in files:
        by_lock.setdefault(_lock_for(home / rel), []).append(rel)
    for lock, group in by_lock.items():
        with ExitStack() as stack:
            if lock is not None:
                try:
                    stack.enter_context(FileLock(str(lock), timeout=_LOCK_TIMEOUT_S))
                except Timeout:
                    raise BackupError(f"{lock} stayed locked for {_LOCK_TIMEOUT_S:.0f} s") from None
            for rel in group:
                source, target = home / rel, staging / rel
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    if _is_sqlite(source):
                        _copy_sqlite(source, target)
                    else:
                        shutil.copyfile(source, target)
                except FileNotFoundError:
                    if rel.parts[0] == "index":  # two saves since CURRENT was read
                        raise BackupError(
                            f"{home}: index version {version} was replaced during the backup; "
                            "run it again"
                        ) from None
                    logger.info("%s went away during the backup: not included", source)
                    target.unlink(missing_ok=True)
    if version is not None:
        (staging / "index").mkdir(mode=0o700, exist_ok=True)
        (staging / "index" / CURRENT_FILE).write_text(version + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _bar(total: int, desc: str, progress: bool) -> tqdm[Any]:
    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, disable=not progress
    )


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, 0o600, int(mtime), tarfile.REGTYPE
    return info


def _open_tar(raw: IO[bytes], gzip: bool) -> tarfile.TarFile:
    if not gzip:
        return tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT)
    # Level 6 (gzip's own default), not tarfile's 9: as small on a home's SQLite and FAISS
    # files (ratio 0.163 both on 60 MB of a 100,000-passage database) and 1.5x as fast.
    return tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6)


def backup_home(
    home: Path, dest: Path, *, gzip: bool | None = None, progress: bool = False
) -> BackupSummary:
    """Write ``home`` into the archive ``dest`` (gzip when ``gzip``, or when None and ``dest``
    ends in ``.gz``/``.tgz``); what it holds is the returned summary's manifest."""
    started = time.perf_counter()
    home, dest = Path(home).resolve(), Path(dest).resolve()
    if not home.is_dir():
        raise BackupError(f"{home}: no data home here")
    if dest.is_relative_to(home) and not dest.is_relative_to(home / "backups"):
        raise BackupError(f"{dest}: the archive may not be inside the home it backs up")
    if dest.is_dir():
        raise BackupError(f"{dest}: is a folder; name the archive file")
    if gzip is None:
        gzip = dest.name.endswith((".gz", ".tgz"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    version = current_version(home / "index")  # read once: the version copied
    serving = serving_name(Settings(home=home))
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.staging-"))
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        _stage(home, version, _home_files(home, version), staging)
        entries = []
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging).as_posix()
            entries.append(BackupFile(rel, path.stat().st_size, _sha256(path)))
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            docqa_version=docqa_version(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            index_version=version,
            serving_reader=serving,
            files=tuple(entries),
        )
        now = time.time()
        with (
            os.fdopen(fd, "wb") as raw,
            _open_tar(raw, gzip) as tar,
            _bar(manifest.total_bytes, "backup", progress) as bar,
        ):
            data = manifest.to_json()
            tar.addfile(_tarinfo(MANIFEST, len(data), now), io.BytesIO(data))
            for entry in manifest.files:
                with (staging / entry.path).open("rb") as handle:
                    tar.addfile(_tarinfo(entry.path, entry.size, now), handle)
                bar.update(entry.size)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    logger.info("backed up %s to %s (%d files) in %.1f s", home, dest, len(entries), seconds)
    return BackupSummary(dest, manifest, dest.stat().st_size, seconds)


# -- reading an archive -------------------------------------------------------------------------


def _safe_name(name: object) -> str:
    """``name`` when it is a plain relative path inside the home; ValueError otherwise."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise ValueError(f"unsafe member name {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or path.as_posix() != name or any(p in ("..", ".") for p in path.parts):
        raise ValueError(f"unsafe member name {name!r}")
    return name


def _parse_manifest(data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"not a DocQA backup ({MANIFEST} has no format {FORMAT!r})")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"unknown backup format version {raw.get('format_version')!r} "
            f"(this DocQA reads version {FORMAT_VERSION})"
        )
    try:
        files = tuple(
            BackupFile(_safe_name(f["path"]), int(f["size"]), str(f["sha256"]))
            for f in raw["files"]
        )
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            docqa_version=str(raw["docqa_version"]),
            created=str(raw["created"]),
            index_version=raw.get("index_version"),
            serving_reader=raw.get("serving_reader"),
            files=files,
            skipped=tuple(raw.get("skipped", ())),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{MANIFEST} is incomplete ({exc!r})") from None
    names = [f.path for f in files]
    if len(set(names)) != len(names) or MANIFEST in names:
        raise ValueError(f"{MANIFEST} lists a file twice")
    if any(f.size < 0 or not re.fullmatch(r"[0-9a-f]{64}", f.sha256) for f in files):
        raise ValueError(f"{MANIFEST} has a bad size or checksum")
    return manifest


def _members(archive: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Every member with its content, each checked to be a regular file with a safe name."""
    with tarfile.open(archive, mode="r:*") as tar:
        while (member := tar.next()) is not None:
            _safe_name(member.name)
            if not member.isreg():
                raise ValueError(f"{member.name!r} is not a regular file (a link or a device)")
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file always has content
            yield member, handle
        # The rest is the tar's zero padding: read it all, so that gzip checks its CRC and no
        # byte of the archive goes unchecked.
        assert tar.fileobj is not None
        while chunk := tar.fileobj.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                raise ValueError("data after the end of the archive")


def _read_manifest(first: tarfile.TarInfo, handle: IO[bytes]) -> Manifest:
    if first.name != MANIFEST:
        raise ValueError(f"the first member is {first.name!r}, not {MANIFEST}")
    if first.size > MAX_MANIFEST_BYTES:
        raise ValueError(f"{MANIFEST} is {first.size:,} bytes: not a DocQA manifest")
    return _parse_manifest(handle.read())


def _walk(archive: Path, desc: str, progress: bool, write_to: Path | None = None) -> Manifest:
    """Read the whole archive, checking each file against the manifest (and writing it under
    ``write_to`` when given); ValueError naming the first problem."""
    members = _members(archive)
    first = next(members, None)
    if first is None:
        raise ValueError("the archive is empty")
    manifest = _read_manifest(*first)
    expected = {f.path: f for f in manifest.files}
    seen: set[str] = set()
    with _bar(manifest.total_bytes, desc, progress) as bar:
        for member, handle in members:
            entry = expected.get(member.name)
            if entry is None:
                raise ValueError(f"{member.name!r} is not listed in the manifest")
            if member.name in seen:
                raise ValueError(f"{member.name!r} is in the archive twice")
            seen.add(member.name)
            if member.size != entry.size:
                raise ValueError(f"{member.name!r} has {member.size} bytes, not {entry.size}")
            digest = hashlib.sha256()
            with _output(write_to, member.name) as out:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != entry.sha256:
                raise ValueError(f"{member.name!r} does not match its checksum (damaged)")
    missing = sorted(set(expected) - seen)
    if missing:
        raise ValueError(f"{len(missing)} listed file(s) missing, e.g. {missing[0]!r} (partial?)")
    return manifest


@contextmanager
def _output(root: Path | None, name: str) -> Iterator[IO[bytes] | None]:
    if root is None:
        yield None
        return
    path = root / name
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def verify_archive(archive: Path, *, progress: bool = False) -> Manifest:
    """The archive's manifest once every file in it is checked; :class:`BackupError` naming the
    archive and the first problem otherwise (unknown format, tampered, partial, unsafe)."""
    archive = Path(archive)
    try:
        return _walk(archive, "verify", progress)
    except FileNotFoundError:
        raise BackupError(f"{archive}: no such archive") from None
    except (ValueError, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{archive}: {_problem(exc)}; nothing was restored") from None


def _problem(exc: BaseException) -> str:
    if isinstance(exc, tarfile.TarError | EOFError | zlib.error | gzip_format.BadGzipFile):
        return f"not a complete archive ({exc or type(exc).__name__}): truncated or damaged"
    return str(exc)


# -- restore ----------------------------------------------------------------------------------


def _make_private(root: Path) -> None:
    os.chmod(root, 0o700)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(folder) / name, 0o700)
        for name in files:
            os.chmod(Path(folder) / name, 0o600)


def restore_home(
    archive: Path,
    home: Path,
    *,
    replace: bool = False,
    dry_run: bool = False,
    progress: bool = False,
) -> RestoreSummary:
    """Restore ``archive`` as the data home ``home``, all or nothing.

    Every file is checked before anything is written; then the home is written into a folder
    beside ``home`` and renamed into place. An existing non-empty ``home`` is refused unless
    ``replace``, which first moves it to ``<home>.before-restore-<UTC time>``. ``dry_run``
    checks the archive and writes nothing."""
    started = time.perf_counter()
    archive, home = Path(archive).resolve(), Path(home).expanduser().resolve()
    occupied = home.exists() and (not home.is_dir() or any(home.iterdir()))
    if occupied and not (replace and home.is_dir()):
        raise BackupError(
            f"{archive}: {home} exists and is not empty; restore elsewhere or pass --replace "
            "(the current home is then moved aside); nothing was restored"
        )
    manifest = verify_archive(archive, progress=progress)
    if dry_run:
        return RestoreSummary(home, manifest, written=False)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=home.parent, prefix=f".{home.name}.restore-"))
    try:
        try:
            _walk(archive, "restore", progress, write_to=staging)
        except (ValueError, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            # Changed since it was verified: still nothing of it reaches the home.
            raise BackupError(f"{archive}: {_problem(exc)}; nothing was restored") from None
        _make_private(staging)
        aside = None
        if occupied:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = home.with_name(f"{home.name}.before-restore-{stamp}")
            os.rename(home, aside)
        os.rename(staging, home)  # onto a missing or empty folder: one atomic rename
        fsync_dir(home.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    logger.info("restored %s into %s in %.1f s", archive, home, seconds)
    return RestoreSummary(home, manifest, written=True, moved_aside=aside, seconds=seconds)
