"""Documents added through the web page: checked, saved under ``uploads_dir`` and indexed.

An upload is refused when its type is not one DocQA converts, when it is larger than
:data:`MAX_UPLOAD_BYTES`, when it is empty, or when a file with the same bytes is already indexed
(the sha256 the indexer records for every source). Its name is made safe first
(:func:`safe_filename`): no folders, no ``..``, no hidden or control characters, so a crafted
name can never write outside ``uploads_dir``.

Accepted files are indexed one at a time with :func:`indexer.run.index_folder` over the whole
uploads folder (only the new file is new, the others are unchanged by size and mtime), so the
caller can show real progress, and every file is saved in the index as soon as it is done. Until
its turn a file waits in a hidden staging folder that the indexer does not walk. A file the
converter rejects is deleted again and reported with the converter's reason.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.manifest import is_under
from indexer.run import IndexLockedError, index_folder
from indexer.split import doc_id_for
from pipelines.settings import Settings
from pipelines.store.versions import write_atomic, writer_lock, writer_lock_free

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_NAME_CHARS = 120
# Hidden, so the indexer's folder walk skips it.
STAGING_DIR = ".incoming"
_UNSAFE = re.compile(r"[^\w.\-() ]+")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}  # fmt: skip

ProgressCallback = Callable[[int, int, str], None]


class UploadError(ValueError):
    """An upload is refused; the message names the file and says why."""


@dataclass
class UploadOutcome:
    """What happened to one uploaded file.

    ``status``: "indexed", "duplicate" (same bytes already indexed), "rejected" (type, size,
    name) or "failed" (the converter could not read it, or indexing stopped).
    """

    name: str  # the name it was uploaded under
    status: str
    reason: str = ""
    saved_as: str = ""  # file name under uploads_dir ("" when not kept)
    doc_id: str = ""
    passages: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "indexed"


def safe_filename(name: str) -> str:
    """A file name that is safe to create in the uploads folder, keeping what can be kept.

    Only the last path component is used, Unicode is NFC-normalized, characters other than
    letters, digits, ``. - _ ( )`` and spaces become ``_``, leading dots and spaces are dropped
    (no hidden files, no ``..``), and long names are shortened keeping the extension. Raises
    :class:`UploadError` when nothing usable remains.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"_{2,}", "_", base)
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if len(base) > MAX_NAME_CHARS:
        keep = MAX_NAME_CHARS - len(ext) - 1
        base = f"{stem[:keep].rstrip(' .')}.{ext}" if ext else base[:MAX_NAME_CHARS]
        stem = base.rpartition(".")[0] if ext else base
    if not stem.strip("_ ") or stem.split(".")[0].lower() in _WINDOWS_RESERVED:
        raise UploadError(f"{name!r}: not a usable file name")
    return base


def check_upload(name: str, size: int) -> str:
    """The safe name of an upload of ``size`` bytes; UploadError if its type or size is refused."""
    safe = safe_filename(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UploadError(f"{safe}: unsupported file type '{suffix or '(none)'}' (use {allowed})")
    if size == 0:
        raise UploadError(f"{safe}: the file is empty")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{safe}: {size / 2**20:.1f} MB is over the upload limit of "
            f"{MAX_UPLOAD_BYTES // 2**20} MB (index large files with `docqa index`)"
        )
    return safe


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... when ``taken`` (lower case) has it."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    return candidate


def is_upload(settings: Settings, path: str | Path) -> bool:
    """Whether an indexed file lives in the uploads folder (so deleting it may delete the file)."""
    return is_under(Path(path).resolve(), [settings.uploads_dir.resolve()])


def index_uploads(
    files: Sequence[tuple[str, bytes]],
    settings: Settings,
    on_progress: ProgressCallback | None = None,
) -> list[UploadOutcome]:
    """Check, save and index uploaded ``(name, bytes)`` files; one outcome per file, in order.

    ``on_progress(done, total, message)`` is called before each file is indexed and once at the
    end. Raises :class:`indexer.run.IndexLockedError` (nothing saved) when another indexer runs.
    """
    from pipelines.store import PassageStore

    uploads = settings.uploads_dir
    staging = uploads / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    # Fail early, before anything is written, when an indexer holds the lock.
    writer_lock_free(settings.home)

    known: dict[str, str] = {}
    if PassageStore.exists(settings.index_dir):
        known = {r.sha256: r.source for r in PassageStore.load(settings.index_dir).sources()}
    outcomes: list[UploadOutcome] = []
    queued: list[tuple[UploadOutcome, Path]] = []
    # Names compare without case: "Report.md" and "report.md" would be one file on macOS and
    # Windows, and two that look alike to anyone choosing one in the page.
    taken = {path.name.lower() for path in uploads.iterdir()}
    for name, data in files:
        try:
            safe = check_upload(name, len(data))
        except UploadError as exc:
            outcomes.append(UploadOutcome(name, "rejected", str(exc)))
            continue
        digest = _sha256(data)
        if digest in known:
            outcomes.append(UploadOutcome(name, "duplicate", f"same content as {known[digest]}"))
            continue
        known[digest] = f"{name} (this upload)"
        final = _free_name(safe, taken)
        taken.add(final.lower())
        staged = _write_staged(staging, final, data)
        outcome = UploadOutcome(name, "pending", saved_as=final)
        outcomes.append(outcome)
        queued.append((outcome, staged))

    total = len(queued)
    try:
        for done, (outcome, staged) in enumerate(queued):
            if on_progress:
                on_progress(done, total, f"Indexing {outcome.saved_as}")
            _index_one(outcome, staged, settings)
    finally:
        for outcome, staged in queued:
            staged.unlink(missing_ok=True)
            if outcome.status == "pending":
                outcome.status, outcome.reason, outcome.saved_as = "failed", "not indexed", ""
    if on_progress:
        on_progress(total, total, "Done")
    return outcomes


def _write_staged(staging: Path, name: str, data: bytes) -> Path:
    target = staging / name
    write_atomic(target, data)
    return target


def _index_one(outcome: UploadOutcome, staged: Path, settings: Settings) -> None:
    target = settings.uploads_dir / outcome.saved_as
    os.replace(staged, target)
    try:
        summary = index_folder([settings.uploads_dir], settings, progress=False)
    except IndexLockedError:
        target.unlink(missing_ok=True)
        raise
    source = f"{settings.uploads_dir.name}/{outcome.saved_as}"
    failure = next((reason for path, reason in summary.failed if path == source), None)
    if failure is not None:
        target.unlink(missing_ok=True)
        outcome.status, outcome.reason, outcome.saved_as = "failed", failure, ""
        logger.warning("upload %s not indexed: %s", outcome.name, failure)
        return
    outcome.status = "indexed"
    outcome.doc_id = doc_id_for(target)
    from pipelines.store import PassageStore

    record = PassageStore.load(settings.index_dir).source(outcome.doc_id)
    outcome.passages = record.passages if record else 0
    logger.info("uploaded and indexed %s (%d passages)", source, outcome.passages)


def remove_document(settings: Settings, doc_id: str, delete_upload: bool = True) -> str | None:
    """Remove a document from the index (saved atomically); the source it had, None if absent.

    When the file was uploaded through the web page (it lives in ``uploads_dir``) it is deleted
    too, else a later indexing of the uploads folder would bring it back. Files elsewhere are
    never touched. Raises IndexLockedError while an indexer runs.
    """
    from pipelines.store import PassageStore

    with writer_lock(settings.home):
        if not PassageStore.exists(settings.index_dir):
            return None
        store = PassageStore.load(settings.index_dir)  # keeps the index's own settings
        record = store.source(doc_id)
        if record is None:
            return None
        store.remove_source(doc_id)
        store.save(settings.index_dir)
        if delete_upload and is_upload(settings, record.path):
            Path(record.path).unlink(missing_ok=True)
        logger.info("removed %s from the index", record.source)
        return record.source
