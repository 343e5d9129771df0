"""Documents added through the web page: checked, saved under ``uploads_dir`` and indexed.

An upload is refused when its type is not one DocQA converts, when it is larger than
:data:`MAX_UPLOAD_BYTES`, when it is empty, or when a file with the same bytes is already indexed
(the sha256 the indexer records for every source). Its name is made safe first
(:func:`safe_filename`): no folders, no ``..``, no hidden or control characters, so a crafted
name can never write outside ``uploads_dir``.

Accepted files are indexed one at a time over the whole uploads folder (only the new file is
new, the others are unchanged by size and mtime), so the caller can show real progress, and
every file is saved in the index as soon as it is done. Until its turn a file waits in a hidden
staging folder that the indexer does not walk, under a staging name of its own (two uploads of
one name at once, from the page and the API, never share a staged file). Its final name is
chosen, the file linked into place (never over an existing file) and indexed in one hold of the
data home's writer lock, so no other upload can take that name in between, and an error only
ever removes the file this upload created. A file the converter rejects is deleted again and
reported with the converter's reason. Staged files are removed whatever happens.

Names are bounded in characters (:data:`MAX_NAME_CHARS`) and in UTF-8 bytes
(:data:`MAX_NAME_BYTES`, well under the 255 bytes of common file systems, leaving room for the
"-2" of a taken name): a long CJK name is shortened, keeping its extension.

Removing a document (:func:`remove_document`) erases it from the learning loop too
(:func:`pipelines.learning_loop.erasure.forget_document`) and purges the previous index version that
still held its text; :class:`Removal` says what remains.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.manifest import is_under
from indexer.run import IndexSummary, _resolve_roots, _Run
from indexer.split import doc_id_for
from pipelines.learning_loop.erasure import Forgotten, forget_document
from pipelines.settings import Settings
from pipelines.store.versions import fsync_dir, writer_lock, writer_lock_free

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_NAME_CHARS = 120
# File systems allow 255 bytes a name; this leaves room for "-2" ... of a taken name.
MAX_NAME_BYTES = 200
# An extension longer than this is not one DocQA reads: shortened with the rest of the name.
_MAX_EXT_BYTES = 16
# Hidden, so the indexer's folder walk skips it.
STAGING_DIR = ".incoming"
_UNSAFE = re.compile(r"[^\w.\-() ]+")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}  # fmt: skip

# (files done, files, message); while a scan is read, its pages make ``done`` fractional.
ProgressCallback = Callable[[float, int, str], None]


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
    (no hidden files, no ``..``), and names over :data:`MAX_NAME_CHARS` characters or
    :data:`MAX_NAME_BYTES` UTF-8 bytes are shortened keeping the extension. Raises
    :class:`UploadError` when nothing usable remains.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"_{2,}", "_", base)
    stem, dot, ext = base.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > _MAX_EXT_BYTES:
        stem, ext = base, ""
    if len(base) > MAX_NAME_CHARS or len(base.encode("utf-8")) > MAX_NAME_BYTES:
        suffix = f".{ext}" if ext else ""
        stem = _shorten(stem, MAX_NAME_CHARS - len(suffix), MAX_NAME_BYTES - len(suffix.encode()))
        base = stem + suffix
    if not stem.strip("_ ") or stem.split(".")[0].lower() in _WINDOWS_RESERVED:
        shown = name if len(name) <= 60 else name[:59] + "…"
        raise UploadError(f"{shown!r}: not a usable file name")
    return base


def _shorten(stem: str, max_chars: int, max_bytes: int) -> str:
    """``stem`` cut to at most ``max_chars`` characters and ``max_bytes`` UTF-8 bytes, at a
    character boundary, without a trailing combining mark, space or dot."""
    cut = stem[:max_chars].encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]  # a mark without the rest of its letter
    return cut.rstrip(" .")


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
    end. Raises :class:`indexer.run.IndexLockedError` when another indexer runs (the files not
    indexed by then are not kept). No staged file is left behind, whatever happens.
    """
    from pipelines.store import PassageStore

    uploads = settings.uploads_dir
    staging = uploads / STAGING_DIR
    # Fail early, before anything is written, when an indexer holds the lock.
    writer_lock_free(settings.home)
    staging.mkdir(parents=True, exist_ok=True)

    known: dict[str, str] = {}
    if PassageStore.exists(settings.index_dir):
        known = {r.sha256: r.source for r in PassageStore.load(settings.index_dir).sources()}
    outcomes: list[UploadOutcome] = []
    queued: list[tuple[UploadOutcome, Path]] = []
    # Names compare without case: "Report.md" and "report.md" would be one file on macOS and
    # Windows, and two that look alike to anyone choosing one in the page.
    # The names chosen here are what progress shows; each is chosen again under the writer
    # lock when its file is moved into place (another upload may have taken it meanwhile).
    taken = {path.name.lower() for path in uploads.iterdir()}
    try:
        for name, data in files:
            try:
                safe = check_upload(name, len(data))
            except UploadError as exc:
                outcomes.append(UploadOutcome(name, "rejected", str(exc)))
                continue
            digest = _sha256(data)
            if digest in known:
                reason = f"same content as {known[digest]}"
                outcomes.append(UploadOutcome(name, "duplicate", reason))
                continue
            try:
                staged = _write_staged(staging, data)
            except OSError as exc:  # a full disk: this file fails, no path in the reason
                reason = f"could not be saved ({exc.strerror or exc.__class__.__name__})"
                outcomes.append(UploadOutcome(name, "failed", reason))
                continue
            known[digest] = f"{name} (this upload)"
            final = _free_name(safe, taken)
            taken.add(final.lower())
            outcome = UploadOutcome(name, "pending", saved_as=final)
            outcomes.append(outcome)
            queued.append((outcome, staged))

        total = len(queued)
        for done, (outcome, staged) in enumerate(queued):
            pages = None
            if on_progress:
                on_progress(done, total, f"Indexing {outcome.saved_as}")
                pages = _page_progress(on_progress, done, total, outcome.saved_as)
            _index_one(outcome, staged, settings, pages)
    finally:
        for outcome, staged in queued:
            staged.unlink(missing_ok=True)
            if outcome.status == "pending":
                outcome.status, outcome.reason, outcome.saved_as = "failed", "not indexed", ""
    if on_progress:
        on_progress(total, total, "Done")
    return outcomes


def _write_staged(staging: Path, data: bytes) -> Path:
    """``data`` in a new file of its own in ``staging`` (a unique name: never shared with
    another upload of the same name), flushed to disk; nothing left on error."""
    fd, name = tempfile.mkstemp(dir=staging, prefix="upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _place(staged: Path, uploads: Path, wanted: str) -> Path:
    """Link ``staged`` into ``uploads`` under ``wanted`` or the next free variant of it
    (``stem-2.ext``...), never replacing a file; the path it got. Called under the writer
    lock, so no other upload chooses at the same time; the link refuses an existing name
    anyway (a file put there by hand)."""
    taken = {path.name.lower() for path in uploads.iterdir()}
    while True:
        target = uploads / _free_name(wanted, taken)
        try:
            os.link(staged, target)
        except FileExistsError:
            taken.add(target.name.lower())
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # A file system without hard links: the lock keeps other uploads out.
            if target.exists():
                taken.add(target.name.lower())
                continue
            os.rename(staged, target)
        fsync_dir(uploads)
        return target


def _page_progress(
    on_progress: ProgressCallback, done: int, total: int, name: str
) -> Callable[[str, int, int], None]:
    """A long scan's pages as progress within its file's share of the bar."""

    def report(source: str, page: int, pages: int) -> None:
        on_progress(done + page / max(pages, 1), total, f"Indexing {name}: OCR page {page}/{pages}")

    return report


def _index_uploads_folder(
    settings: Settings, on_ocr_page: Callable[[str, int, int], None] | None = None
) -> IndexSummary:
    """:func:`indexer.run.index_folder` over the uploads folder, for a caller that already
    holds the writer lock (index_folder would take it again and find it held)."""
    roots = _resolve_roots([settings.uploads_dir])
    run = _Run(roots, settings, full=False, progress=False, every=50)
    run.on_ocr_page = on_ocr_page
    return run.run()


def _index_one(
    outcome: UploadOutcome,
    staged: Path,
    settings: Settings,
    on_ocr_page: Callable[[str, int, int], None] | None = None,
) -> None:
    # Name, move and index in one hold of the lock: no other upload can choose this name or
    # replace this file in between, and the cleanup below only removes what we created.
    with writer_lock(settings.home):
        try:
            target = _place(staged, settings.uploads_dir, outcome.saved_as)
        except OSError as exc:
            reason = f"could not be saved ({exc.strerror or exc.__class__.__name__})"
            outcome.status, outcome.reason, outcome.saved_as = "failed", reason, ""
            logger.warning("upload %s not saved: %s", outcome.name, reason)
            return
        outcome.saved_as = target.name
        try:
            summary = _index_uploads_folder(settings, on_ocr_page)
        except BaseException:
            target.unlink(missing_ok=True)  # this upload's own new file, nobody else's
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


# What deleting a document never erases (Removal.remains): said to the user.
TRAINED_READERS_REMAIN = (
    "readers trained before this deletion keep what they learned from its labeled pairs "
    "(their weights are not retrained)"
)


@dataclass(frozen=True)
class Removal:
    """What :func:`remove_document` did, and what still holds the document's text."""

    doc_id: str
    source: str  # its displayed path, e.g. "uploads/report.pdf"
    file_deleted: bool  # the uploaded file was deleted too (files elsewhere never are)
    forgotten: Forgotten  # labeled pairs and logged questions erased
    previous_version_purged: bool  # no index version on disk holds its text any more
    remains: tuple[str, ...]  # what still holds it (trained weights at least), for the user

    def describe(self) -> str:
        lines = [f"Removed {self.source} from the index; {self.forgotten.describe()}."]
        lines += [f"Still there: {what}." for what in self.remains]
        return " ".join(lines)


def remove_document(settings: Settings, doc_id: str, delete_upload: bool = True) -> Removal | None:
    """Remove a document from the index (saved atomically) and erase it from the learning loop;
    what was done and what remains (:class:`Removal`), None if it was not in the index.

    When the file was uploaded through the web page (it lives in ``uploads_dir``) it is deleted
    too, else a later indexing of the uploads folder would bring it back. Files elsewhere are
    never touched. The labeled pairs cut from it and the logged questions citing it are erased
    (:func:`pipelines.learning_loop.erasure.forget_document`). The index is saved twice, so that the
    previous version (kept on disk for readers that have just read ``CURRENT``) no longer holds its
    text either: each save is the store's ordinary crash-safe one. Not erased: readers trained
    before on its pairs keep what they learned (their weights); that is always in
    ``remains``. Raises IndexLockedError while an indexer runs.
    """
    from pipelines.store import PassageStore, StoreError

    with writer_lock(settings.home):
        if not PassageStore.exists(settings.index_dir):
            return None
        store = PassageStore.load(settings.index_dir)  # keeps the index's own settings
        record = store.source(doc_id)
        if record is None:
            return None
        store.remove_source(doc_id)
        store.save(settings.index_dir)
        remains = [TRAINED_READERS_REMAIN]
        purged = True
        try:
            # A second version: the save removes every version but the last two, so the one
            # from before the removal, with its text, goes.
            store.save(settings.index_dir)
        except StoreError as exc:
            purged = False
            logger.warning("the previous index version still holds %s: %s", record.source, exc)
            remains.append(
                "the previous index version holds its text until the next change to the index"
            )
        file_deleted = False
        if not is_upload(settings, record.path):
            remains.append("the file itself, in its folder (indexing that folder adds it back)")
        elif delete_upload:
            Path(record.path).unlink(missing_ok=True)
            file_deleted = True
        else:
            remains.append("the uploaded file, in the uploads folder")
        # Under the lock still: an upload of the same file cannot re-add it meanwhile.
        forgotten = forget_document(settings, doc_id, record.source)
        remains.extend(forgotten.problems)
        logger.info("removed %s from the index; %s", record.source, forgotten.describe())
        return Removal(doc_id, record.source, file_deleted, forgotten, purged, tuple(remains))
