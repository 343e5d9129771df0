"""Every error of the API as one JSON shape: ``{"error": CODE, "detail": MESSAGE}``.

``error`` is a stable machine-readable code ("invalid_question", "unknown_document", ...),
``detail`` the human sentence naming the problem (usually the core's own message, e.g.
:func:`pipelines.query.validate_question`'s). Request-validation failures add ``errors``, the
list of fields and what is wrong with each. FastAPI's own errors (404 for an unknown path, 405,
malformed JSON, pydantic validation) are rewritten into the same shape, so a client handles
one format.

No error names a path of the server: a 503 says what is wrong in general words (the server's log
has the whole message), and any detail that still mentions the data home shows it as
``<home>`` (:func:`scrub`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

# Codes of the plain HTTP errors that FastAPI and Starlette raise themselves.
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An error answered as ``{"error": code, "detail": detail}`` with ``status``.

    A subclass of Starlette's HTTPException, so FastAPI lets it through unchanged when it is
    raised while a request body is read (the body-size limit raises it there).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.code = code
        self.extra = extra or {}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def scrub(text: str, home: Path | None) -> str:
    """``text`` with the data home's path shown as ``<home>``."""
    if home is None:
        return text
    for form in {str(home), str(home.resolve())}:
        text = text.replace(form, "<home>")
    return text


def _home(request: Request) -> Path | None:
    ctx = getattr(request.app.state, "docqa", None)
    return ctx.settings.home if ctx is not None else None


def unavailable_error(code: str, public: str, exc: BaseException) -> ApiError:
    """A 503 whose detail is ``public``, general words; the whole ``exc`` goes to the log."""
    logger.error("%s: %s", code, exc)
    return ApiError(503, code, f"{public} (the server's log says more)")


async def send_error(
    send: Any, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer an ASGI request with an error (from a middleware, before the app; the connection
    is closed after it, so an unread body is never waited for)."""
    body = json.dumps(error_body(code, detail)).encode("utf-8")
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    raw_headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, detail, **extra), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    detail = scrub(str(exc.detail), _home(request))
    return error_response(exc.status_code, exc.code, detail, exc.headers, **exc.extra)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, code, scrub(detail, _home(request)), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(e.get("loc", ())), "problem": str(e.get("msg", ""))} for e in exc.errors()
    ]
    malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "not valid JSON")
        return error_response(400, "malformed_json", f"the body is not valid JSON: {reason}")
    detail = "; ".join(f"{e['field']}: {e['problem']}" for e in errors) or "invalid request"
    return error_response(422, "invalid_request", detail, errors=errors)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "the server failed; its log says why")


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
