"""What the routes share: the app's context (settings, keys, metrics) and the key checks.

The context hangs on ``app.state`` (set by :func:`api.app.create_app`), never in a module
global, so one process can hold several apps over different homes (the tests do) and a Ray Serve
deployment can wrap the same app.

Clients send ``Authorization: Bearer KEY``. No key, or one that is not a key: 401 with a
``WWW-Authenticate: Bearer`` header; a valid key whose role does not allow the endpoint: 403.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.keys import ApiKey, KeyStore, KeyStoreError
from api.metrics import ApiMetrics
from pipelines.models import ReaderNotFoundError
from pipelines.query import IndexMissingError, QueryService, get_service
from pipelines.settings import Settings
from pipelines.store import PassageStore


@dataclass
class ApiContext:
    settings: Settings
    keys: KeyStore
    metrics: ApiMetrics
    warming: threading.Lock = field(default_factory=threading.Lock)  # held while models load

    def service(self) -> QueryService:
        """The query service of this home and the reader that serves now (promotions apply
        on the next call; a new index version is loaded by the service itself)."""
        return get_service(self.settings)

    def store(self) -> PassageStore | None:
        """The current index (the service's, reloaded when it changed); None without one."""
        index_dir = self.settings.index_dir
        if not PassageStore.exists(index_dir):
            return None
        try:
            return self.service().store
        except IndexMissingError:
            return None
        except ReaderNotFoundError:
            # No reader to answer with, but documents can still be listed and managed.
            return PassageStore.load(index_dir)


def context(request: Request) -> ApiContext:
    return request.app.state.docqa


Context = Annotated[ApiContext, Depends(context)]

# auto_error=False: a missing or malformed header is answered by require() in the API's own
# error shape; the scheme still shows in /docs, where "Authorize" takes a key.
bearer = HTTPBearer(auto_error=False, description="An API key from `docqa keys create`.")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticate(ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None) -> ApiKey:
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer KEY' (create one with "
            "`docqa keys create NAME --role ask`)",
            headers=_CHALLENGE,
        )
    try:
        key = ctx.keys.authenticate(credentials.credentials)
    except KeyStoreError as exc:
        raise ApiError(503, "keys_unreadable", str(exc)) from exc
    if key is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=_CHALLENGE)
    return key


def require(role: str) -> Callable[..., ApiKey]:
    """A dependency that lets a request through with a key allowed to act as ``role``."""

    def check(ctx: Context, credentials: Credentials) -> ApiKey:
        key = authenticate(ctx, credentials)
        if not key.allows(role):
            raise ApiError(
                403,
                "forbidden",
                f"the key {key.name!r} has the role {key.role!r}; this needs {role!r}",
            )
        return key

    return check


def require_metrics_access(ctx: Context, credentials: Credentials) -> None:
    """/metrics: open with ``Settings.api_open_metrics``, else for admin keys."""
    if ctx.settings.api_open_metrics:
        return
    key = authenticate(ctx, credentials)
    if not key.allows("admin"):
        raise ApiError(
            403,
            "forbidden",
            f"the key {key.name!r} has the role {key.role!r}; /metrics needs 'admin' "
            "(or start the server with api_open_metrics)",
        )


AskKey = Annotated[ApiKey, Depends(require("ask"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
