"""`docqa ui` on a machine without a terminal (a server, a container, CI): it serves the page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipelines.settings import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_without_a_terminal_and_without_streamlit_settings(tmp_path: Path) -> None:
    port = _free_port()
    home = tmp_path / "user"  # no ~/.streamlit: Streamlit's first run would ask for an email
    home.mkdir()
    env = os.environ | {"HOME": str(home), "DOCQA_HOME": str(tmp_path / "docqa")}
    server = subprocess.Popen(
        [sys.executable, "-m", "docqa", "ui", "--no-demo", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, server.communicate()[0]
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        assert not (home / ".streamlit" / "credentials.toml").exists()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"http://localhost:{port}" in output
    assert "email" not in output.lower()
