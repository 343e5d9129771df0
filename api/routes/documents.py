"""``/documents``: list and status (viewer), upload (editor), delete (admin).

Listings and counts cover only the documents the caller may see (their scope, see
:mod:`identity.access`): a viewer in eng is not told how many HR documents or passages exist.

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

from api.deps import Context, DeleteCaller, ReadCaller, UploadCaller, unknown_document
from api.errors import ApiError, error_body, scrub, unavailable_error
from api.routes.ask import unavailable
from api.schemas import (
    DocumentOut,
    IndexStatus,
    RemovedOut,
    UploadResponse,
    UploadResult,
    UploadStatus,
)
from identity.roles import Action, Caller
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
from pipelines.query import IndexMissingError
from pipelines.reader_registry import ReaderNotFoundError, reader_version_name, resolve_reader
from pipelines.store import IndexLockedError, PassageStore, StoreError, current_version
from pipelines.store.versions import writer_lock_free

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/documents", tags=["documents"])

_FOLDERS = re.compile(r"[\\/]|^\.\.?$")


def _busy(exc: Exception) -> ApiError:
    return ApiError(409, "index_busy", f"{exc}; try again when it has finished")


def _unreadable(exc: Exception) -> ApiError:
    return unavailable_error("index_unreadable", "the index cannot be read", exc)


@router.get("", summary="The indexed documents the key may see")
def list_documents(ctx: Context, caller: ReadCaller) -> list[DocumentOut]:
    try:
        store = ctx.store()
    except StoreError as exc:
        raise _unreadable(exc) from exc
    records = store.sources(ctx.scope(caller, store)) if store is not None else []
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


def _counts(ctx: Context, caller: Caller, store: PassageStore | None) -> tuple[int, int]:
    """Documents and passages the caller may see."""
    if store is None:
        return 0, 0
    scope = ctx.scope(caller, store)
    if scope is None:
        return len(store.sources()), store.count_documents()
    records = store.sources(scope)
    return len(records), sum(r.passages for r in records)


@router.get("/status", summary="Index version, counts (of what the key may see), indexing now")
def status(ctx: Context, caller: ReadCaller) -> IndexStatus:
    settings = ctx.settings
    store = None
    try:
        store = ctx.store()
        reader: str | None = reader_version_name(resolve_reader(settings))
    except ReaderNotFoundError:
        reader = None
    except StoreError as exc:
        raise _unreadable(exc) from exc
    try:
        loaded = ctx.service().loaded_version
    except ReaderNotFoundError:
        loaded = None
    documents, passages = _counts(ctx, caller, store)
    return IndexStatus(
        index_version=current_version(settings.index_dir),
        loaded_version=loaded,
        documents=documents,
        passages=passages,
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


def _shown(ctx: Context, caller: Caller, outcomes: list[UploadOutcome]) -> None:
    """What the caller may be told: no server path, and a duplicate of a document they may not
    see is not named (the reason says "same content as SOURCE")."""
    store = None
    if any(o.status == "duplicate" for o in outcomes):
        try:
            store = ctx.store()
        except (StoreError, IndexMissingError, ReaderNotFoundError):
            store = None
    visible = None
    if store is not None and (scope := ctx.scope(caller, store)) is not None:
        visible = {r.source for r in store.sources(scope)}
    for o in outcomes:
        if (
            o.status == "duplicate"
            and visible is not None
            and not o.reason.endswith((" (this upload)", *(f" {source}" for source in visible)))
        ):
            o.reason = "same content as a document already indexed"
        o.reason = scrub(o.reason, ctx.settings.home)


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
    caller: UploadCaller,
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
        ctx.audit.record(caller, Action.UPLOAD.value, "failed", detail=type(exc).__name__)
        raise ApiError(
            503, "index_error", "nothing was indexed (the server's log says why)"
        ) from exc
    outcomes = [slot if slot is not None else next(indexed) for slot in slots]
    for o in outcomes:
        ctx.metrics.uploads.labels(o.status).inc()
        outcome = "ok" if o.status in ("indexed", "duplicate") else "failed"
        target = f"uploads/{o.saved_as}" if o.saved_as else o.name
        ctx.audit.record(caller, Action.UPLOAD.value, outcome, target=target, detail=o.status)
    _shown(ctx, caller, outcomes)
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
def delete(doc_id: str, ctx: Context, caller: DeleteCaller) -> RemovedOut:
    if not caller.sees_everything:  # only admins delete today; were that to change, the scope holds
        try:
            ctx.visible_source(caller, ctx.store(), doc_id, Action.DELETE_DOCUMENT)
        except (IndexMissingError, ReaderNotFoundError) as exc:
            raise unavailable(exc) from exc
    try:
        removed = remove_document(ctx.settings, doc_id)
    except IndexLockedError as exc:
        raise _busy(exc) from exc
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise unavailable(exc) from exc
    if removed is None:
        raise unknown_document(doc_id)
    erased = scrub(removed.forgotten.describe(), ctx.settings.home)
    ctx.audit.record(caller, Action.DELETE_DOCUMENT.value, target=doc_id, detail=removed.source)
    return RemovedOut(
        doc_id=doc_id,
        removed=removed.source,
        index_version=current_version(ctx.settings.index_dir),
        erased=erased,
        remains=[scrub(what, ctx.settings.home) for what in removed.remains],
    )
