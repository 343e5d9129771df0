"""Limits: the request size (a body over the limit is refused with 413 before it is read) and
each key's request rate (:class:`RateLimiter`, 429).

A request that declares its length (``Content-Length``) over the limit is answered at once,
without reading a byte of the body. One that does not (chunked) is counted as it arrives and
refused as soon as it passes the limit. Multipart uploads may be up to
``Settings.api_max_request_mb`` (each file is also limited like the page's uploads, by
:func:`indexer.uploads.check_upload`); other bodies (JSON) up to :data:`MAX_JSON_BYTES`, which
is far more than any question, feedback or label needs.

Rates: every key has a token bucket in each server process, refilled at
``Settings.api_rate_per_minute`` and holding at most ``Settings.api_rate_burst`` requests; a
request that finds it empty is answered 429 with ``Retry-After`` (the seconds until the next
token) before its body is read (:mod:`api.auth` checks it right after the key). With several
workers or replicas each has its own buckets, so a key may make up to that many times the rate
in all: the limit protects each process from one client, it is not a quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from api.errors import ApiError, send_error
from api.metrics import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_BYTES = 1024 * 1024


class RateLimiter:
    """Token buckets by key name: ``per_minute`` requests a minute, bursts of up to ``burst``
    (``per_minute`` 0 or less: no limit)."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_minute / 60.0
        self.capacity = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """Spend one of ``name``'s tokens: 0.0 when there was one, else the seconds until
        there is (nothing is spent then)."""
        if self.per_second <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.per_second)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.per_second


def retry_after(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1 (an earlier retry would be refused)."""
    return str(max(1, math.ceil(seconds)))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    def limit_for(self, scope: Scope) -> int:
        content_type = _header(scope, b"content-type") or ""
        if content_type.lower().startswith("multipart/"):
            return self.max_request_bytes
        return min(MAX_JSON_BYTES, self.max_request_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_error(
                    send, 400, "bad_request", f"Content-Length {declared!r} is no number"
                )
                return
            if int(declared) > limit:
                await send_error(send, 413, "request_too_large", _too_large(int(declared), limit))
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app's body reading: FastAPI passes HTTP exceptions on,
                    # and the app's handler answers it in the API's error shape.
                    raise ApiError(413, "request_too_large", _too_large(received, limit, "over"))
            return message

        await self.app(scope, counted, send)


def _too_large(size: int, limit: int, qualifier: str = "") -> str:
    said = f"{qualifier} {size:,}" if qualifier else f"{size:,}"
    return f"the request body is {said} bytes; the limit is {limit:,} bytes"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
