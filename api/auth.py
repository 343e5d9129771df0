"""Who is calling: the API key is checked on the request's headers, before its body is read.

:class:`KeyCheckMiddleware` is a plain ASGI middleware in front of the app: a request without a
valid key (``Authorization: Bearer KEY``) is answered 401 with ``WWW-Authenticate: Bearer``
from its headers alone, and the connection is closed, so a client without a key cannot make
the server read (or parse) a 30 MB upload, and a malformed body with no key gets 401, not
400. A valid key becomes the request's :class:`~identity.roles.Caller` (kept in the ASGI scope
under :data:`CALLER_KEY`, where :mod:`api.deps` finds it) and spends a token of its rate
limit (:class:`~api.limits.RateLimiter`, 429 when none is left), also before the body.

Open without a key: :data:`OPEN_PATHS` (health, readiness, the OpenAPI docs) and ``/metrics``
when the server was started with ``api_open_metrics``. Every other path needs a key, unknown
paths included (a caller without a key learns nothing about the server).
"""

from __future__ import annotations

import logging

from api.errors import ApiError, send_error
from api.keys import KeyStore, KeyStoreError
from api.limits import RateLimiter, retry_after
from api.metrics import ASGIApp, Receive, Scope, Send
from identity.roles import Caller

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset(
    {"/health", "/ready", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
METRICS_PATH = "/metrics"
CALLER_KEY = "docqa.caller"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
MISSING_KEY = (
    "missing API key: send 'Authorization: Bearer KEY' (create one with "
    "`docqa keys create NAME --role viewer`)"
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme in any case)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticate(keys: KeyStore, token: str | None) -> Caller:
    """The caller a token is; :class:`~api.errors.ApiError` 401 when it is no key, 503 when the
    keys file cannot be read (its path and problem go to the log only)."""
    if not token:
        raise ApiError(401, "unauthorized", MISSING_KEY, headers=CHALLENGE)
    try:
        key = keys.authenticate(token)
    except KeyStoreError as exc:
        logger.error("API keys unreadable: %s", exc)
        raise ApiError(
            503, "keys_unreadable", "the server cannot read its API keys (its log says why)"
        ) from exc
    if key is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=CHALLENGE)
    return key.caller()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _path(scope: Scope) -> str:
    """The path within the app (without a mount's ``root_path``)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class KeyCheckMiddleware:
    def __init__(
        self, app: ASGIApp, keys: KeyStore, limiter: RateLimiter, open_metrics: bool = False
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.open_paths = OPEN_PATHS | ({METRICS_PATH} if open_metrics else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _path(scope) in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            caller = authenticate(self.keys, bearer_token(_header(scope, b"authorization")))
        except ApiError as exc:
            await send_error(send, exc.status_code, exc.code, str(exc.detail), exc.headers)
            return
        wait = self.limiter.take(caller.name)
        if wait > 0:
            logger.info("key %s is over its rate limit", caller.name)
            await send_error(
                send,
                429,
                "too_many_requests",
                f"the key {caller.name!r} is over its rate limit; retry in {retry_after(wait)} s",
                {"Retry-After": retry_after(wait)},
            )
            return
        scope[CALLER_KEY] = caller
        await self.app(scope, receive, send)
