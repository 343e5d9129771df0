"""The request-size limit: a body over the limit is refused with 413 before it is read.

A request that declares its length (``Content-Length``) over the limit is answered at once,
without reading a byte of the body. One that does not (chunked) is counted as it arrives and
refused as soon as it passes the limit. Multipart uploads may be up to
``Settings.api_max_request_mb`` (each file is also limited like the page's uploads, by
:func:`indexer.uploads.check_upload`); other bodies (JSON) up to :data:`MAX_JSON_BYTES`, which
is far more than any question, feedback or label needs.
"""

from __future__ import annotations

import json

from api.errors import ApiError, error_body
from api.metrics import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_BYTES = 1024 * 1024


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
                await _refuse(send, 400, "bad_request", f"Content-Length {declared!r} is no number")
                return
            if int(declared) > limit:
                await _refuse(send, 413, "request_too_large", _too_large(int(declared), limit))
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


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(error_body(code, detail)).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
