"""A small client of ``docqa serve``: ``docqa ask --server URL`` asks a running server.

A new ``docqa ask`` process that answers by itself spends seconds importing the models' code
and loading the index and both models before its first answer (``benchmarks/bench_cold_ask.py``).
A running server has all of that loaded, so a process that only sends the question answers in a
fraction of a second. This module imports nothing but ``httpx`` (no FastAPI, no torch): what
the CLI needs on that path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx

ASK_PATH = "/ask"
HEALTH_PATH = "/health"


class RemoteError(RuntimeError):
    """The server could not be reached or refused the question; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def ask_remote(
    server: str,
    api_key: str | None,
    question: str,
    top_k_passages: int | None = None,
    top_n_answers: int | None = None,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """``POST /ask`` on ``server``; returns the response body (``answers`` as ``ask --json``).

    Raises :class:`RemoteError` with the server's own error detail (401 without a valid key,
    422 for a bad question, 503 without an index) or the connection problem.
    """
    body: dict[str, Any] = {"question": question}
    if top_k_passages is not None:
        body["k"] = top_k_passages
    if top_n_answers is not None:
        body["n"] = top_n_answers
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = server.rstrip("/") + ASK_PATH
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot reach the DocQA server at {server}: {exc}") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise RemoteError(
            f"the server at {server} answered {response.status_code}: {detail}",
            response.status_code,
        )
    return response.json()


def wait_until_healthy(
    server: str, timeout_s: float, alive: Callable[[], bool] = lambda: True, poll_s: float = 0.5
) -> bool:
    """Poll ``GET /health`` until it answers 200 (True), ``timeout_s`` passes or ``alive()``
    says the process serving it is gone (False): a server loads its models before it is ready."""
    url = server.rstrip("/") + HEALTH_PATH
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        time.sleep(poll_s)
    return False
