"""The README's quick start in a real browser: ``docqa ui`` on a home where nobody can log in yet
(no account, no single sign-on) prints a sign-in link; the link opens the page as the home's
owner, and the same page without the link shows nothing of the documents."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.ui.browser_support import ANSWER_TIMEOUT_MS, free_port, running, wait_idle


def _no_accounts_home(base_home: Path, target: Path) -> Path:
    shutil.copytree(base_home, target, symlinks=True)
    (target / "users.json").unlink()
    return target


def _link(log: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"sign in as this home's owner: (\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError("docqa ui printed no sign-in link:\n" + log.read_text())


def test_docqa_ui_opens_through_its_sign_in_link_only(
    base_home: Path, tmp_path: Path, browser: Browser
) -> None:
    home = _no_accounts_home(base_home, tmp_path / "home")
    port = free_port()
    log = tmp_path / "ui.log"
    command = [sys.executable, "-m", "docqa", "ui", "--home", str(home), "--port", str(port)]
    command += ["--headless", "--no-demo"]
    env = {"HOME": str(tmp_path / "empty-home"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    with running(command, f"http://localhost:{port}", log, env):
        link = _link(log)
        assert link.startswith(f"http://localhost:{port}/?token=")
        assert (home / "ui_sign_in.sha256").stat().st_mode & 0o777 == 0o600

        stranger = browser.new_page()
        stranger.goto(f"http://localhost:{port}/?token=wrong")
        expect(stranger.get_by_text("Open the sign-in link")).to_be_visible(timeout=60_000)
        wait_idle(stranger)
        body = stranger.locator("body").inner_text()
        assert "onboarding" not in body.lower() and "Ask" not in body.split("Open the")[0]
        stranger.close()

        owner = browser.new_page()
        owner.goto(link)
        expect(owner.get_by_role("textbox", name="Question")).to_be_visible(timeout=60_000)
        wait_idle(owner)
        assert "token" not in owner.url  # the secret left the address bar
        owner.get_by_role("textbox", name="Question").fill("When does the office open?")
        owner.get_by_role("button", name="Ask").click()
        wait_idle(owner)
        # A cited answer (the tiny test reader's span matters not; its citation does).
        expect(owner.get_by_role("link", name="Open in document").first).to_be_visible(
            timeout=ANSWER_TIMEOUT_MS
        )
        owner.close()
    audit = (home / "audit" / "audit.jsonl").read_text()
    assert '"method=sign-in link"' in audit and '"outcome": "failed"' in audit
