"""`docqa serve --workers 2` as a real server: an upload through one worker is seen by both, and
/metrics adds up both workers' counts (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.client import wait_until_healthy
from api.keys import KeyStore
from api.server import SETTINGS_ENV, settings_from_env, settings_to_env
from pipelines.settings import REPO_ROOT, Settings
from tests.api.support import Keys, ask_requests_counted

DOCUMENT = (
    "Facilities notes for the Rotterdam office.\n\n"
    "The Zorblax cooling unit in the basement is serviced by Quentin Marlowe every Thursday "
    "morning. Report any noise from the unit to the facilities desk.\n"
)
QUESTION = "Who services the Zorblax cooling unit?"


def test_settings_travel_to_the_workers_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path / "h", retrieval="bm25", api_open_metrics=True, top_k_passages=7
    )
    env = settings_to_env(settings)
    assert env["DOCQA_HOME"] == str(tmp_path / "h")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings_from_env() == settings
    monkeypatch.delenv(SETTINGS_ENV)
    assert settings_from_env() == Settings(home=tmp_path / "h")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_workers_share_one_index_and_their_metrics(api_base_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(api_base_home, home, symlinks=True)
    store = KeyStore.of(Settings(home=home))
    keys = Keys(
        ask_token=store.create("asker", "ask")[1], admin_token=store.create("root", "admin")[1]
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    server = subprocess.Popen(
        [sys.executable, "-m", "docqa", "serve", "--home", str(home), "--port", str(port),
         "--workers", "2"],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        ready = wait_until_healthy(url, 240, alive=lambda: server.poll() is None)
        assert ready, log.read_text()

        files = [("files", ("zorblax-notes.txt", DOCUMENT.encode(), "text/plain"))]
        uploaded = httpx.post(f"{url}/documents", files=files, headers=keys.admin, timeout=120)
        assert uploaded.status_code == 201, uploaded.text
        uploader = uploaded.headers["X-DocQA-Worker"]

        def ask(_: int) -> tuple[str, bool]:
            # A new connection each time, so the kernel hands it to either worker.
            response = httpx.post(
                f"{url}/ask", json={"question": QUESTION, "k": 3}, headers=keys.ask, timeout=120
            )
            assert response.status_code == 200, response.text
            cited = any(
                a["document"] == "uploads/zorblax-notes.txt"
                for a in response.json()["answers"]
                if a["answer"]
            )
            return response.headers["X-DocQA-Worker"], cited

        answered: list[tuple[str, bool]] = []
        with ThreadPoolExecutor(4) as pool:
            while len(answered) < 60 and len({w for w, _ in answered}) < 2:
                answered += pool.map(ask, range(4))
        workers = {w for w, _ in answered}
        assert len(workers) == 2, f"every ask went to one worker: {answered}"
        assert uploader in workers
        assert all(cited for _, cited in answered), answered  # both see the upload

        # Whichever worker serves /metrics, it counts both workers' questions.
        for _ in range(4):
            metrics = httpx.get(f"{url}/metrics", headers=keys.admin, timeout=30)
            assert metrics.status_code == 200
            assert ask_requests_counted(metrics.text) == len(answered)
        assert "docqa_ask_duration_seconds_bucket" in metrics.text
        assert 'docqa_reader_info{version="tiny-answers"} 1.0' in metrics.text
        answered_total = f'docqa_ask_results_total{{outcome="answered"}} {len(answered):.1f}'
        assert answered_total in metrics.text

        # `docqa ask --server` answers through the running server, with the server's answers.
        def cli(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "docqa", "ask", QUESTION, "-k", "3", "--server", url,
                 *extra],
                cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip

        remote = cli("--api-key", keys.ask_token, "--json")
        assert remote.returncode == 0, remote.stderr
        direct = httpx.post(
            f"{url}/ask", json={"question": QUESTION, "k": 3}, headers=keys.ask, timeout=120
        ).json()["answers"]
        via_cli = json.loads(remote.stdout)
        key = ("answer", "document", "document_offsets", "context_offsets")
        assert [[a[k] for k in key] for a in via_cli] == [[a[k] for k in key] for a in direct]
        assert [a["score"] for a in via_cli] == pytest.approx([a["score"] for a in direct])
        assert any(a["document"] == "uploads/zorblax-notes.txt" for a in direct if a["answer"])
        refused = cli()  # no key
        assert refused.returncode == 2 and "401" in refused.stderr
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
