"""Prometheus metrics of the API, served at ``GET /metrics`` in the text format.

* ``docqa_api_requests_total{endpoint, method, status}``: every request, by route template
  (``/documents/{doc_id}``, not the id: a bounded number of series), refusals included (401,
  413, ...); ``endpoint="unmatched"`` for paths that are no route;
* ``docqa_ask_duration_seconds``: a histogram of the time to answer ``POST /ask`` (successful
  requests, from the first byte in to the last byte out);
* ``docqa_ask_results_total{outcome}``: questions answered through the API whose top result is
  an answer (``answered``) or "no answer" (``no_answer``): their ratio is the no-answer share;
* ``docqa_upload_files_total{status}``: uploaded files by outcome (indexed, duplicate,
  rejected, failed);
* ``docqa_reader_info{version}``: 1 for the reader version that answers, 0 for one it
  replaced (set on every question, so a promotion shows on the next one).

With several worker processes (``docqa serve --workers N``) each worker counts its own
requests. prometheus_client's multiprocess mode adds them up: when ``PROMETHEUS_MULTIPROC_DIR``
is set before prometheus_client is first imported (``docqa serve`` sets it to a fresh temporary
folder, see :mod:`api.server`), every value lives in a memory-mapped file in that folder and
``/metrics``, whichever worker serves it, reads the files of all workers: counters and
histograms are summed, the reader gauge is the most recently set value. In one process the
app's own registry is served. Ray Serve replicas (``docqa serve --engine ray``) share a folder
the same way, one per machine: on a multi-machine cluster each answer adds up the replicas of
the machine that served it (see :mod:`api.ray_serve`).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.datastructures import MutableHeaders
from starlette.routing import compile_path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
WORKER_HEADER = "X-DocQA-Worker"
_worker: tuple[int, str] | None = None


def worker_id() -> str:
    """An opaque name of this process (random, made once per process): tells workers and
    replicas apart in ``X-DocQA-Worker`` without giving their process ids away."""
    global _worker
    pid = os.getpid()
    if _worker is None or _worker[0] != pid:  # a forked child names itself anew
        _worker = (pid, secrets.token_hex(6))
    return _worker[1]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def multiprocess_mode() -> bool:
    """Whether metric values are shared through files (chosen when prometheus_client was
    imported: ``PROMETHEUS_MULTIPROC_DIR`` was set then)."""
    return values.ValueClass is not values.MutexValue and bool(os.environ.get(MULTIPROC_ENV))


class ApiMetrics:
    """The metrics of one app, in a registry of its own (several apps in one process, as in the
    tests, do not collide in prometheus_client's global registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "docqa_api_requests",
            "HTTP requests by route, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.ask_seconds = Histogram(
            "docqa_ask_duration_seconds",
            "Time to answer POST /ask (successful requests).",
            buckets=ASK_BUCKETS,
            registry=self.registry,
        )
        self.ask_results = Counter(
            "docqa_ask_results",
            "Questions answered through the API, by whether the top result is an answer"
            " (answered) or 'no answer' (no_answer).",
            ["outcome"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "docqa_upload_files",
            "Files uploaded through the API, by outcome (indexed, duplicate, rejected, failed).",
            ["status"],
            registry=self.registry,
        )
        self.reader = Gauge(
            "docqa_reader_info",
            "The reader version answering questions (1), and versions it replaced (0).",
            ["version"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._reader_version: str | None = None
        self._reader_lock = threading.Lock()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        if endpoint == "/ask" and method == "POST" and status == 200:
            self.ask_seconds.observe(seconds)

    def observe_answer(self, answered: bool) -> None:
        self.ask_results.labels("answered" if answered else "no_answer").inc()

    def set_reader(self, version: str) -> None:
        with self._reader_lock:
            if version == self._reader_version:
                return
            if self._reader_version is not None:
                self.reader.labels(self._reader_version).set(0)
            self.reader.labels(version).set(1)
            self._reader_version = version

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: all workers' in multiprocess mode."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])
            return generate_latest(registry)
        return generate_latest(self.registry)


def _endpoint(scope: Scope, templates: list[tuple[re.Pattern[str], str]]) -> str:
    """The route template a request went to: the route FastAPI chose, or, for a request a
    middleware answered first (a 413), the documented path template that matches it."""
    route = scope.get("route")
    if getattr(route, "path", None):
        return route.path  # type: ignore[union-attr]
    path = scope.get("path", "")
    return next((template for regex, template in templates if regex.match(path)), "unmatched")


class MetricsMiddleware:
    """Counts every HTTP request by route and status, times ``POST /ask``, and names the
    worker process that answered in an ``X-DocQA-Worker`` header (:func:`worker_id`)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def templates(self, scope: Scope) -> list[tuple[re.Pattern[str], str]]:
        """The app's path templates (from its OpenAPI schema, made once) as regexes."""
        if self._templates is None:
            paths = scope["app"].openapi()["paths"] if scope.get("app") is not None else {}
            self._templates = [(compile_path(p)[0], p) for p in paths]
        return self._templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            endpoint = _endpoint(scope, self.templates(scope))
            self.metrics.observe_request(
                endpoint, scope["method"], status, time.perf_counter() - started
            )

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Counted before the response leaves: a client that has its answer and then
                # scrapes /metrics must find its request counted.
                observe(int(message["status"]))
                # Which worker answered: shows how requests spread over the workers.
                MutableHeaders(scope=message).append(WORKER_HEADER, worker_id())
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            if not observed:  # the app failed before it started a response
                observe(500)
