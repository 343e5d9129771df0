"""``GET /health`` and ``GET /ready`` (open) and ``GET /metrics`` (admin key, or open with
``Settings.api_open_metrics``).

Health answers 200 when this worker has the index and the reader loaded and 503 otherwise, with
the reason in ``status`` ("loading", "no_index", "no_reader"), so a load balancer sends
questions only to workers that can answer them. A worker that has nothing loaded (just started,
or a new reader was promoted) starts loading in the background when asked. ``/ready`` is the
same verdict with nothing else (``{"ready": true}``), for an orchestrator's readiness probe.
Neither names a path or a process: anyone may call them.
"""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from api.deps import ApiContext, Context, require_metrics_access
from api.metrics import CONTENT_TYPE
from api.schemas import Health, Ready
from pipelines.reader_registry import ReaderNotFoundError, reader_version_name, resolve_reader
from pipelines.store import StoreError, current_version

logger = logging.getLogger(__name__)
router = APIRouter(tags=["system"])


def load_models(ctx: ApiContext) -> bool:
    """Load the index and the reader now, in this thread; whether they are loaded. Errors are
    logged; the next question reports them. (A Ray Serve replica calls this before it takes
    requests, see :mod:`api.ray_serve`.)"""
    try:
        service = ctx.service()
        service.refresh()
        ctx.metrics.set_reader(reader_version_name(service.reader_model))
    except (FileNotFoundError, RuntimeError, StoreError) as exc:
        logger.warning("not loaded: %s", exc)
        return False
    except Exception:
        logger.exception("loading the index and the reader failed")
        return False
    return True


def warm_up(ctx: ApiContext) -> None:
    """Load the index and the reader now (in a background thread), so the first question does
    not wait for them. Errors are logged; the next question reports them."""
    lock: threading.Lock = ctx.warming
    if not lock.acquire(blocking=False):
        return  # already loading

    def load() -> None:
        try:
            load_models(ctx)
        finally:
            lock.release()

    threading.Thread(target=load, name="docqa-warm-up", daemon=True).start()


@router.get(
    "/health",
    summary="Whether this worker has the index and the reader loaded (no key needed)",
    responses={503: {"model": Health, "description": "Not ready: loading, or nothing to load."}},
)
def health(ctx: Context) -> JSONResponse:
    body = _health(ctx)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@router.get(
    "/ready",
    summary="200 when this worker can answer (index and reader loaded), else 503; no key needed",
    responses={503: {"model": Ready, "description": "Not ready yet."}},
)
def ready(ctx: Context) -> JSONResponse:
    ok = _health(ctx).status == "ok"
    return JSONResponse(Ready(ready=ok).model_dump(), status_code=200 if ok else 503)


def _health(ctx: ApiContext) -> Health:
    settings = ctx.settings
    on_disk = current_version(settings.index_dir)
    try:
        reader: str | None = reader_version_name(resolve_reader(settings))
        loaded = ctx.service().loaded_version is not None
    except ReaderNotFoundError:
        reader, loaded = None, False
    if loaded:
        status = "ok"
    elif on_disk is None:
        status = "no_index"
    elif reader is None:
        status = "no_reader"
    else:
        status = "loading"
        warm_up(ctx)
    return Health(
        status=status,
        index_version=on_disk,
        index_loaded=loaded,
        reader=reader,
        reader_loaded=loaded,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format), summed over all workers",
    dependencies=[Depends(require_metrics_access)],
    response_class=Response,
)
def metrics(ctx: Context) -> Response:
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE)
