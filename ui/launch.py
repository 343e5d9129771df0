"""Starting the web page: Streamlit always headless (its first run would otherwise ask for an
email on stdin and exit where there is no terminal), and the browser opened by DocQA itself once
the server answers, when someone is at a terminal."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from pathlib import Path

from pipelines.settings import Settings

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(settings: Settings, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        "50",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--home",
        str(settings.home),
    ]


def serve(settings: Settings, port: int, open_browser: bool) -> int:
    """Run the page until it stops; its exit status."""
    server = subprocess.Popen(streamlit_command(settings, port), stdin=subprocess.DEVNULL)
    # Stopping DocQA (Ctrl+C, or SIGTERM from systemd, a container, a test) stops the server.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    if open_browser:
        _open_when_up(f"http://localhost:{port}", server)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()


def _open_when_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Open ``url`` in a browser once the server answers its health check."""

    def wait_and_open() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    webbrowser.open(url)
                    return
            except OSError:
                time.sleep(0.5)

    threading.Thread(target=wait_and_open, daemon=True).start()
