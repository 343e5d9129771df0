"""`docqa serve --engine ray`: the API on Ray Serve, on a real local Ray cluster (2 CPUs).

The module's cluster serves one deployment of two replicas over a copy of the demo home (the
tiny reader promoted), run by :func:`api.ray_serve.serve_on_ray` in a thread as the CLI runs it.
Through Ray Serve's HTTP proxy: every replica reports healthy, answers are those of the
in-process core (texts, citations, scores to float precision), a request without a valid key
gets 401, ``/metrics`` adds up both replicas, a key's access rules hold there too (an eng
viewer is never shown an HR document); stopping removes the application and Ray Serve.
The CLI's engine options are checked without a cluster.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import api.ray_serve
from api.client import wait_until_healthy
from api.keys import KeyStore
from api.ray_serve import replica_cpus, serve_on_ray
from docqa.cli import app as cli
from identity.access import AccessRules
from pipelines.query import ask
from pipelines.settings import Settings
from tests.api.support import WIFI_QUESTION, Keys, ask_requests_counted
from tests.conftest import leaks_hr
from tests.ray_support import local_ray_cluster

REPLICAS = 2
QUESTIONS = (
    WIFI_QUESTION,
    "How many days of annual leave do full-time employees get?",
    "How long are daily backups kept?",
)
SCORES = ("score", "reader_score", "retriever_score")


def until_every_replica(
    request: Callable[[int], httpx.Response], seconds: float = 120
) -> tuple[set[str], httpx.Response]:
    """``request(0)``, ``request(1)``, ... until every replica has answered one, or ``seconds``
    passed: the replicas that answered, and the last response. Ray's router picks the replica;
    on a busy machine its queue probes of one replica can time out for a while and every request
    goes to the other, so the limit is a time, not a count."""
    workers: set[str] = set()
    deadline = time.monotonic() + seconds
    for i in itertools.count():
        response = request(i)
        workers.add(response.headers["X-DocQA-Worker"])
        if len(workers) == REPLICAS or time.monotonic() > deadline:
            return workers, response
        time.sleep(0.2)
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- without a cluster: first, before the module's cluster starts (one test hides `ray`) -------


def test_replicas_share_the_cluster_cpus() -> None:
    assert replica_cpus([2.0], 1) == 2.0
    assert replica_cpus([2.0], 2) == 1.0
    assert replica_cpus([16.0], 3) == 5.0
    assert replica_cpus([8.0, 4.0], 2) == 4.0  # one on each node
    assert replica_cpus([8.0, 8.0], 3) == 4.0
    assert replica_cpus([2.0], 4) == 0.5  # more replicas than CPUs: fractions
    assert replica_cpus([1.0, 1.0], 3) == 0.5


def test_cli_checks_the_engine_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["serve", "--home", str(tmp_path / "home")]
    for options, says in (
        (["--engine", "gunicorn"], "--engine must be one of uvicorn, ray"),
        (["--replicas", "2"], "--replicas needs --engine ray"),
        (["--address", "auto"], "--address needs --engine ray"),
        (["--engine", "ray", "--workers", "2"], "--workers is for --engine uvicorn"),
    ):
        result = runner.invoke(cli, [*base, *options])
        assert result.exit_code == 2 and says in result.output, (options, result.output)

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(api.ray_serve, "serve_on_ray", lambda settings, **kw: calls.append(kw))
    ran = runner.invoke(cli, [*base, "--engine", "ray", "--replicas", "3", "--address", "h:1"])
    assert ran.exit_code == 0, ran.output
    assert calls == [{"host": "127.0.0.1", "port": 8000, "replicas": 3, "address": "h:1"}]

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does without the extra
    untouched = tmp_path / "untouched"
    missing = runner.invoke(cli, ["serve", "--home", str(untouched), "--engine", "ray"])
    assert missing.exit_code == 1
    assert "install the ray extra: pip install 'docqa[ray]'" in missing.output
    assert not untouched.exists()  # nothing started, nothing written


def test_ray_is_imported_only_by_the_ray_engine() -> None:
    code = (
        "import sys, docqa.cli, api.server, api.ray_serve, pipelines.operations.ray_cluster; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@dataclass
class Served:
    """The running deployment: its URL, how to stop it, and what the tests asked through it."""

    url: str
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException]
    metrics_dirs: list[str]
    asked: int = 0  # POST /ask answered 200 through the proxy
    askers: set[str] = field(default_factory=set)  # replicas (pids) that answered them

    def ask(self, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        # A new connection each time, as separate clients would.
        response = httpx.post(f"{self.url}/ask", json=body, headers=headers, timeout=120)
        if response.status_code == 200:
            self.asked += 1
            self.askers.add(response.headers["X-DocQA-Worker"])
        return response


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import ray

    with local_ray_cluster(tmp_path_factory, num_cpus=2) as address:
        yield address
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def served(ray_cluster: str, shared_settings: Settings, shared_keys: Keys) -> Iterator[Served]:
    """``serve_on_ray`` in a thread (as ``docqa serve --engine ray`` runs it), once healthy."""
    patch = pytest.MonkeyPatch()
    made: list[str] = []
    metrics_folder = api.ray_serve._metrics_folder

    @contextlib.contextmanager
    def recorded() -> Iterator[str]:
        with metrics_folder() as folder:
            made.append(folder)
            yield folder

    patch.setattr(api.ray_serve, "_metrics_folder", recorded)
    patch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    port = _free_port()
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            serve_on_ray(shared_settings, "127.0.0.1", port, replicas=REPLICAS, stop=stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="serve-on-ray", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    ready = wait_until_healthy(url, 300, alive=thread.is_alive, poll_s=0.3)
    try:
        assert ready, f"not served: {errors}"
        yield Served(url, stop, thread, errors, made)
    finally:
        stop.set()
        thread.join(timeout=120)
        patch.undo()


@pytest.mark.slow
def test_every_replica_is_healthy(served: Served) -> None:
    # serve.run returned only once each replica had loaded: no replica answers "loading".
    def health(_: int) -> httpx.Response:
        response = httpx.get(f"{served.url}/health", timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["index_loaded"], body["reader"]) == (
            "ok",
            True,
            "tiny-answers",
        )
        return response

    workers, _ = until_every_replica(health)
    assert len(workers) == REPLICAS, f"/health reached only {workers}"


@pytest.mark.slow
def test_answers_on_ray_are_those_of_the_in_process_core(
    served: Served, shared_settings: Settings, shared_keys: Keys
) -> None:
    for question in QUESTIONS:
        response = served.ask({"question": question, "k": 4, "n": 3}, shared_keys.ask)
        assert response.status_code == 200, response.text
        data = response.json()
        expected = [
            r.to_dict() for r in ask(question, shared_settings, top_k_passages=4, top_n_answers=3)
        ]
        assert data["reader"] == "tiny-answers"
        assert len(data["answers"]) == len(expected)
        for got, want in zip(data["answers"], expected, strict=True):
            # Texts and citations exactly; scores to float precision (other torch threads).
            assert {k: v for k, v in got.items() if k not in SCORES} == {
                k: v for k, v in want.items() if k not in (*SCORES, "path")
            }
            for name in SCORES:
                assert got[name] == pytest.approx(want[name], rel=1e-4, abs=1e-5), name
        assert "path" not in got  # the server's absolute file path never leaves it
        top = data["answers"][0]
        assert top["answer"] is not None and top["document"].startswith("documents/")


@pytest.mark.slow
def test_a_request_without_a_valid_key_gets_401(served: Served) -> None:
    body = {"question": WIFI_QUESTION}
    missing = served.ask(body, {})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthorized"
    assert served.ask(body, Keys.header("docqa_not-a-key")).status_code == 401
    assert httpx.get(f"{served.url}/metrics", timeout=10).status_code == 401


@pytest.mark.slow
def test_metrics_add_up_the_replicas(served: Served, shared_keys: Keys) -> None:
    if len(served.askers) < REPLICAS:
        until_every_replica(
            lambda i: served.ask(
                {"question": QUESTIONS[i % len(QUESTIONS)], "k": 2}, shared_keys.ask
            )
        )
    assert len(served.askers) == REPLICAS, f"every ask went to {served.askers}"

    # Whichever replica answers /metrics, it counts the questions both answered.
    def metrics_page(_: int) -> httpx.Response:
        page = httpx.get(f"{served.url}/metrics", headers=shared_keys.admin, timeout=30)
        assert page.status_code == 200, page.text
        assert ask_requests_counted(page.text) == served.asked
        return page

    seen, metrics = until_every_replica(metrics_page)
    assert seen == served.askers
    assert 'docqa_reader_info{version="tiny-answers"} 1.0' in metrics.text
    assert "docqa_ask_duration_seconds_bucket" in metrics.text


@pytest.mark.slow
def test_access_rules_hold_on_ray(served: Served, shared_settings: Settings) -> None:
    keys = KeyStore.of(shared_settings)
    eng = Keys.header(keys.create("ray-eng", "viewer", "eng")[1])
    hr = Keys.header(keys.create("ray-hr", "viewer", "hr")[1])
    rules = AccessRules.of(shared_settings)
    rules.allow("hr/**", "hr")  # applies to the running replicas' next request
    try:
        body = {"question": QUESTIONS[1], "k": 4, "n": 3}  # annual leave: an HR document's
        for _ in range(REPLICAS):  # new connections: both replicas, most likely
            shown = httpx.post(f"{served.url}/ask", json=body, headers=eng, timeout=120)
            assert shown.status_code == 200, shown.text
            assert leaks_hr(shown.text) == [], shown.text
            listed = httpx.get(f"{served.url}/documents", headers=eng, timeout=30)
            assert listed.status_code == 200 and leaks_hr(listed.text) == []
        answered = httpx.post(f"{served.url}/ask", json=body, headers=hr, timeout=120)
        cited = [a["document"] for a in answered.json()["answers"] if a["answer"]]
        assert any(doc.startswith("documents/hr/") for doc in cited), cited
    finally:
        rules.remove("hr/**")


@pytest.mark.slow
def test_stopping_removes_the_application_and_ray_serve(served: Served) -> None:
    from ray import serve

    served.stop.set()
    served.thread.join(timeout=120)
    assert not served.thread.is_alive() and not served.errors, served.errors
    assert serve.status().applications == {}  # deleted, and Serve shut down (no other app)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.url}/health", timeout=5)  # the proxy is gone
    assert served.metrics_dirs and not Path(served.metrics_dirs[0]).exists()
