"""What the browser tests share: a free port, a page server run until the test ends, Chromium.

Chromium: Debian's package (``apt-get install -y chromium``, used from /usr/bin/chromium) or
Playwright's own build (``playwright install chromium``); ``DOCQA_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect

from pipelines.settings import REPO_ROOT

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> str | None:
    """The Chromium binary to use; None lets Playwright use its own download."""
    configured = os.environ.get("DOCQA_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def running(command: list[str], url: str, log_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``command`` (a page server) running until the block ends, once ``url`` answers its
    health check; yields ``url``. Its output goes to ``log_path``, shown if it never starts."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.read() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError("the page did not start:\n" + log_path.read_text())
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_idle(page: Page) -> None:
    """Until Streamlit has finished the script run the last action started."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)


def log_in(page: Page, name: str, password: str) -> None:
    """Fill the page's login form and wait for the first page after it."""
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=60_000)
    wait_idle(page)
