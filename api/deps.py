"""What the routes share: the app's context (settings, keys, metrics, scopes, audit log, rate
limits) and the role checks.

The context hangs on ``app.state`` (set by :func:`api.app.create_app`), never in a module
global, so one process can hold several apps over different homes (the tests do) and a Ray Serve
deployment can wrap the same app.

Clients send ``Authorization: Bearer KEY``; :mod:`api.auth` checks it before the body is read
and hands the routes a :class:`~identity.roles.Caller`. Each route depends on
:func:`require` with the :class:`~identity.roles.Action` it performs: a key whose role does not
allow it gets 403 naming the role needed, and the attempt is written to the audit log. Every
route that shows documents, passages, names or counts narrows them to the caller's scope
(:meth:`ApiContext.scope`): what a caller may not see is answered as if it did not exist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import CALLER_KEY, authenticate
from api.errors import ApiError, unavailable_error
from api.keys import KeyStore
from api.limits import RateLimiter
from api.metrics import ApiMetrics
from identity.access import AccessRuleError, AccessRules, ScopeCache
from identity.audit import AuditLog
from identity.roles import ACTION_ROLE, Action, Caller
from pipelines.query import IndexMissingError, QueryService, get_service
from pipelines.reader_registry import ReaderNotFoundError
from pipelines.settings import Settings
from pipelines.store import PassageStore, SourceRecord

logger = logging.getLogger(__name__)


@dataclass
class ApiContext:
    settings: Settings
    keys: KeyStore
    metrics: ApiMetrics
    scopes: ScopeCache
    audit: AuditLog
    limiter: RateLimiter
    warming: threading.Lock = field(default_factory=threading.Lock)  # held while models load

    @classmethod
    def of(cls, settings: Settings) -> ApiContext:
        return cls(
            settings=settings,
            keys=KeyStore.of(settings),
            metrics=ApiMetrics(),
            scopes=ScopeCache(AccessRules.of(settings)),
            audit=AuditLog.of(settings),
            limiter=RateLimiter(settings.api_rate_per_minute, settings.api_rate_burst),
        )

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

    def scope(self, caller: Caller, store: PassageStore) -> frozenset[str] | None:
        """The ids of the documents of ``store`` the caller may see (None: all of them).
        Unreadable access rules refuse the request (503): they never mean "all visible"."""
        try:
            return self.scopes.for_store(caller, store)
        except AccessRuleError as exc:
            raise unavailable_error(
                "access_rules_unreadable", "the server cannot read its access rules", exc
            ) from exc

    def visible_source(
        self, caller: Caller, store: PassageStore | None, doc_id: str, action: Action
    ) -> tuple[PassageStore, SourceRecord]:
        """The indexed document ``doc_id`` if the caller may see it; else 404, the same answer
        as for an id that does not exist (a refusal outside the scope is audited)."""
        record = store.source(doc_id) if store is not None else None
        if store is None or record is None:
            raise unknown_document(doc_id)
        scope = self.scope(caller, store)
        if scope is not None and doc_id not in scope:
            self.audit.record(caller, action.value, "denied", target=doc_id, detail="not visible")
            raise unknown_document(doc_id)
        return store, record


def unknown_document(doc_id: str) -> ApiError:
    return ApiError(404, "unknown_document", f"no indexed document has the id {doc_id!r}")


def context(request: Request) -> ApiContext:
    return request.app.state.docqa


Context = Annotated[ApiContext, Depends(context)]

# auto_error=False: the key was checked by api.auth's middleware already; the scheme is here so
# that it shows in /docs, where "Authorize" takes a key.
bearer = HTTPBearer(auto_error=False, description="An API key from `docqa keys create`.")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def current_caller(request: Request, ctx: ApiContext, credentials: object) -> Caller:
    """The caller :mod:`api.auth` found for this request (checked again here only for an app
    mounted without its middleware)."""
    found = request.scope.get(CALLER_KEY)
    if isinstance(found, Caller):
        return found
    token = (
        credentials.credentials if isinstance(credentials, HTTPAuthorizationCredentials) else None
    )
    return authenticate(ctx.keys, token)


def forbidden(ctx: ApiContext, caller: Caller, action: Action, hint: str = "") -> ApiError:
    """403 naming the role ``action`` needs; the attempt goes to the audit log."""
    ctx.audit.record(caller, action.value, "denied", detail=f"role {caller.role.value}")
    needed = ACTION_ROLE[action].value
    return ApiError(
        403,
        "forbidden",
        f"the key {caller.name!r} has the role {caller.role.value!r}; "
        f"{action.value.replace('_', ' ')} needs {needed!r}{hint}",
    )


def require(action: Action) -> Callable[..., Caller]:
    """A dependency that lets a request through when its caller's role allows ``action``."""

    def check(request: Request, ctx: Context, credentials: Credentials) -> Caller:
        caller = current_caller(request, ctx, credentials)
        if not caller.may(action):
            raise forbidden(ctx, caller, action)
        return caller

    return check


def require_metrics_access(request: Request, ctx: Context, credentials: Credentials) -> None:
    """/metrics: open with ``Settings.api_open_metrics``, else for admin keys."""
    if ctx.settings.api_open_metrics:
        return
    caller = current_caller(request, ctx, credentials)
    if not caller.may(Action.READ_METRICS):
        hint = " (or start the server with api_open_metrics)"
        raise forbidden(ctx, caller, Action.READ_METRICS, hint)


AskCaller = Annotated[Caller, Depends(require(Action.ASK))]
ReadCaller = Annotated[Caller, Depends(require(Action.READ_DOCUMENT))]
FeedbackCaller = Annotated[Caller, Depends(require(Action.FEEDBACK))]
LabelCaller = Annotated[Caller, Depends(require(Action.LABEL))]
UploadCaller = Annotated[Caller, Depends(require(Action.UPLOAD))]
DeleteCaller = Annotated[Caller, Depends(require(Action.DELETE_DOCUMENT))]
PromoteCaller = Annotated[Caller, Depends(require(Action.PROMOTE))]
