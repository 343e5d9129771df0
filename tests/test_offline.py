"""The README's promise that no code path reads the network, checked so that it can fail."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import no_network
import pytest

from pipelines.settings import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def test_the_guard_refuses_other_machines_and_allows_loopback() -> None:
    with pytest.raises(no_network.NetworkAccessError):
        socket.create_connection(("pypi.org", 443), timeout=1)
    with socket.socket() as client, pytest.raises(no_network.NetworkAccessError):
        client.connect(("93.184.216.34", 80))
    assert no_network.attempts[-1] == "connection to ('93.184.216.34', 80)"
    del no_network.attempts[-2:]  # expected here; any other attempt fails its test
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_index_and_ask_run_without_the_network_and_without_offline_flags(
    tmp_path: Path, tiny_reader: Path
) -> None:
    # The docqa commands in a fresh Python, without HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: the
    # product itself must not try the hub (sitecustomize installs the guard and logs attempts).
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "opening-hours.txt").write_bytes((FIXTURES / "opening-hours.txt").read_bytes())
    log = tmp_path / "network.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}
    }
    env["DOCQA_NETWORK_LOG"] = str(log)
    home = tmp_path / "home"
    for args in (
        ["index", str(docs), "--home", str(home), "--no-progress"],
        ["ask", "When does the office open?", "--home", str(home), "--reader", str(tiny_reader)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "docqa", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert not log.exists(), log.read_text()
