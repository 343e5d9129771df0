"""``create_app(settings)``: the FastAPI application of ``docqa serve``.

A factory, not a module-level app: everything it needs comes from the ``Settings`` passed in
(the home with its index, models, feedback, question log and API keys), and everything it
keeps hangs on ``app.state``. So the tests build one app per temporary home, uvicorn's workers
each build their own (``api.server.app_from_env``), and so does each replica of the Ray Serve
deployment (:mod:`api.ray_serve`, ``docqa serve --engine ray``).

The routes call the same core as the page and the CLI: :class:`~pipelines.query.QueryService`
for questions (it reloads when another process, or another worker, writes a new index
version), :mod:`indexer.uploads` for documents, :mod:`reader_training.judgments` and the
:class:`~reader_training.feedback.FeedbackStore` for feedback and labels,
:mod:`pipelines.reader_registry` and :mod:`reader_training.promote` for models.

Request handling, outside in: metrics (every request counted, ``/ask`` timed), the key check
and the key's rate limit (:mod:`api.auth`: 401 or 429 from the headers, before any body is
read), the body-size limit (413 before the body is read), then FastAPI (the role the route
needs, validation, the route, the caller's scope); every error is answered as
``{"error", "detail"}`` (:mod:`api.errors`).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import KeyCheckMiddleware
from api.deps import ApiContext
from api.errors import install_handlers
from api.limits import BodyLimitMiddleware
from api.metrics import MetricsMiddleware
from api.routes import ask, documents, models, system
from pipelines.settings import Settings

DESCRIPTION = """\
Extractive question answering over your own documents, with cited spans.

Send an API key from `docqa keys create NAME --role viewer|editor|admin --groups G1,G2` as
`Authorization: Bearer KEY`. A `viewer` may ask and read documents, status and models; an
`editor` may also give feedback, add labeled pairs and upload documents; an `admin` may also
delete documents, promote readers and read `/metrics` (unless the server serves it openly).
Keys made with the old role `ask` are viewers. A key sees only the documents its groups may see
(`docqa access allow GLOB --groups G`): in answers, listings, counts, feedback and labels alike;
another document is answered as if it did not exist. Each key may make
`api_rate_per_minute` requests a minute per server process (429 with `Retry-After` beyond).
`/health`, `/ready`, `/docs` and `/openapi.json` need no key. Errors are JSON:
`{"error": CODE, "detail": MESSAGE}`.
"""


def _version() -> str:
    try:
        return importlib.metadata.version("docqa")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def create_app(settings: Settings) -> FastAPI:
    """The API over the data home of ``settings``."""
    ctx = ApiContext.of(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        system.warm_up(ctx)  # in the background: the server answers /health meanwhile
        yield

    app = FastAPI(
        title="DocQA",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "ask", "description": "Questions, feedback on answers, labeled pairs."},
            {
                "name": "documents",
                "description": "The indexed documents (uploads: editor; deletions: admin).",
            },
            {"name": "models", "description": "Reader versions (promotion: admin)."},
            {"name": "system", "description": "Health, readiness and Prometheus metrics."},
        ],
    )
    app.state.docqa = ctx
    install_handlers(app)
    # Added innermost first: the metrics see the key check's 401s and the limit's 413s.
    app.add_middleware(
        BodyLimitMiddleware, max_request_bytes=int(settings.api_max_request_mb * 2**20)
    )
    app.add_middleware(
        KeyCheckMiddleware,
        keys=ctx.keys,
        limiter=ctx.limiter,
        open_metrics=settings.api_open_metrics,
    )
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    for module in (ask, documents, models, system):
        app.include_router(module.router)
    return app
