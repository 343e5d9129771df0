"""``/documents``: list, upload (admin), delete (admin) and the index's status.

Uploads go through :func:`indexer.uploads.index_uploads`, as on the page: each file is
checked (type, size, emptiness, duplicate content), saved under ``<home>/uploads`` and indexed
on its own, so a file that fails never costs the ones before it. The API refuses one more
thing than the page: a name that carries folders (``../x.txt``, ``a/b.md``), which a browser
never sends and a client sending it most likely did not mean.

Status codes of an upload: 201 when every file was indexed (or was already), 207 when some were
and some were not, 422 when none was (the body then also has ``error`` and ``detail``). Every
file has its own ``status`` and ``reason`` in ``files``. 409 while another indexer (``docqa
index``, another upload) holds the index; nothing of that request is kept then.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, cast

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import JSONResponse

from api.deps import AdminKey, AskKey, Context
from api.errors import ApiError, error_body
from api.routes.ask import unavailable
from api.schemas import (
    DocumentOut,
    IndexStatus,
    RemovedOut,
    UploadResponse,
    UploadResult,
    UploadStatus,
)
from indexer.run import IndexingError
from indexer.uploads import (
    MAX_UPLOAD_BYTES,
    UploadError,
    UploadOutcome,
    check_upload,
    index_uploads,
    is_upload,
    remove_document,
)
from pipelines.models import ReaderNotFoundError, reader_version_name, resolve_reader
from pipelines.query import IndexMissingError
from pipelines.store import IndexLockedError, StoreError, current_version
from pipelines.store.versions import writer_lock_free

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/documents", tags=["documents"])

_FOLDERS = re.compile(r"[\\/]|^\.\.?$")


def _busy(exc: Exception) -> ApiError:
    return ApiError(409, "index_busy", f"{exc}; try again when it has finished")


@router.get("", summary="The indexed documents")
def list_documents(ctx: Context, _: AskKey) -> list[DocumentOut]:
    try:
        store = ctx.store()
    except StoreError as exc:
        raise ApiError(503, "index_unreadable", str(exc)) from exc
    records = store.sources() if store is not None else []
    return [
        DocumentOut(
            doc_id=r.doc_id,
            source=r.source,
            title=r.title,
            file_type=r.file_type,
            passages=r.passages,
            size=r.size,
            modified=dt.datetime.fromtimestamp(r.mtime, tz=dt.UTC).isoformat(timespec="seconds"),
            indexed_at=r.indexed_at,
            uploaded=is_upload(ctx.settings, r.path),
        )
        for r in records
    ]


def _index_running(ctx: Context) -> bool:
    """Whether an indexer holds the writer lock now. (The check takes the lock for an instant:
    an indexer starting in that instant is told another one runs, as with any upload.)"""
    try:
        writer_lock_free(ctx.settings.home)
    except IndexLockedError:
        return True
    return False


@router.get("/status", summary="Index version, counts, and whether indexing is under way")
def status(ctx: Context, _: AskKey) -> IndexStatus:
    settings = ctx.settings
    try:
        store = ctx.store()
        reader: str | None = reader_version_name(resolve_reader(settings))
    except ReaderNotFoundError:
        reader = None
    except StoreError as exc:
        raise ApiError(503, "index_unreadable", str(exc)) from exc
    try:
        loaded = ctx.service().loaded_version
    except ReaderNotFoundError:
        loaded = None
    return IndexStatus(
        index_version=current_version(settings.index_dir),
        loaded_version=loaded,
        documents=len(store.sources()) if store is not None else 0,
        passages=store.count_documents() if store is not None else 0,
        indexing=_index_running(ctx),
        reader=reader,
    )


def _checked(name: str, size: int) -> UploadOutcome | None:
    """A refusal of a file before indexing is tried (None: hand it to index_uploads)."""
    if _FOLDERS.search(name) or "/.." in name:
        return UploadOutcome(
            name, "rejected", f"{name!r}: a file name must not contain folders ('/', '\\', '..')"
        )
    try:
        check_upload(name, size)
    except UploadError as exc:
        return UploadOutcome(name, "rejected", str(exc))
    return None


def _named(o: UploadOutcome) -> str:
    """What went wrong with a file, naming it (a refusal's reason names it already)."""
    return o.reason if o.status == "rejected" else f"{o.name}: {o.reason or o.status}"


def _outcome(o: UploadOutcome) -> UploadResult:
    return UploadResult(
        name=o.name,
        status=cast(UploadStatus, o.status),
        reason=o.reason,
        saved_as=o.saved_as,
        doc_id=o.doc_id,
        passages=o.passages,
    )


@router.post(
    "",
    status_code=201,
    response_model=UploadResponse,
    summary="Upload files and index them",
    responses={
        207: {"model": UploadResponse, "description": "Some files indexed, some not."},
        409: {"description": "Another indexer is running; nothing was kept."},
        422: {"description": "No file was indexed; each file says why."},
    },
)
def upload(
    ctx: Context,
    _: AdminKey,
    files: Annotated[list[UploadFile], File(description="One or more documents.")],
) -> UploadResponse | JSONResponse:
    slots: list[UploadOutcome | None] = []
    accepted: list[tuple[str, bytes]] = []
    for file in files:
        name = file.filename or ""
        # At most one byte over the limit is read: enough to refuse an oversize file.
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        refusal = _checked(name, file.size if file.size is not None else len(data))
        slots.append(refusal)
        if refusal is None:
            accepted.append((name, data))
    try:
        indexed = iter(index_uploads(accepted, ctx.settings) if accepted else [])
    except IndexLockedError as exc:
        raise _busy(exc) from exc
    except (IndexingError, StoreError, OSError) as exc:
        logger.exception("upload failed")
        raise ApiError(503, "index_error", f"nothing was indexed: {exc}") from exc
    outcomes = [slot if slot is not None else next(indexed) for slot in slots]
    for o in outcomes:
        ctx.metrics.uploads.labels(o.status).inc()
    body = UploadResponse(
        files=[_outcome(o) for o in outcomes],
        indexed=sum(o.ok for o in outcomes),
        index_version=current_version(ctx.settings.index_dir),
    )
    kept = [o for o in outcomes if o.status in ("indexed", "duplicate")]
    if len(kept) == len(outcomes):
        return body
    problems = "; ".join(_named(o) for o in outcomes if o not in kept)
    if not kept:
        payload = error_body("nothing_indexed", problems, **body.model_dump())
        return JSONResponse(payload, status_code=422)
    return JSONResponse(body.model_dump(), status_code=207)


@router.delete("/{doc_id}", summary="Remove a document from the index")
def delete(doc_id: str, ctx: Context, _: AdminKey) -> RemovedOut:
    try:
        removed = remove_document(ctx.settings, doc_id)
    except IndexLockedError as exc:
        raise _busy(exc) from exc
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise unavailable(exc) from exc
    if removed is None:
        raise ApiError(404, "unknown_document", f"no indexed document has the id {doc_id!r}")
    return RemovedOut(
        doc_id=doc_id, removed=removed, index_version=current_version(ctx.settings.index_dir)
    )
