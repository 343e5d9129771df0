"""The page's own example question, asked in a real browser over the demo documents it is about,
with the shipped reader: it gets an answer (issue 28: it used to get "no answer, 93%")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from indexer.run import index_folder
from pipelines.settings import Settings
from tests.conftest import copy_demo_files
from tests.ui.browser_support import ANSWER_TIMEOUT_MS, free_port, running, wait_idle
from tests.ui.test_browser import APP

# The documents the example question is about, and two others to choose among.
FILES = (
    "faq/hr-faq.html",
    "hr/leave-policy.pdf",
    "hr/remote-work-policy.md",
    "it/vpn-and-remote-access.md",
)


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    docs = copy_demo_files(FILES, tmp_path / "documents")
    home = tmp_path / "home"
    summary = index_folder([docs], Settings(home=home), progress=False)  # the shipped reader
    assert summary.added == len(FILES), summary.describe()
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    command += ["--", "--home", str(home), "--no-auth"]
    url = f"http://127.0.0.1:{port}"
    with running(command, url, tmp_path / "streamlit.log", {"DOCQA_HOME": str(home)}):
        yield url


def test_the_pages_example_question_gets_an_answer(demo_server: str, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(demo_server)
    box = page.get_by_role("textbox", name="Question")
    expect(box).to_be_visible(timeout=60_000)
    wait_idle(page)
    example = (box.get_attribute("placeholder") or "").removeprefix("e.g. ")
    assert example.endswith("?"), example
    box.fill(example)
    page.get_by_role("button", name="Ask").click()
    first = page.locator(".docqa-answer").first
    expect(first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    wait_idle(page)
    answer = first.inner_text()
    assert "no answer" not in answer.lower() and "do not seem to contain" not in answer, answer
    assert "Depends on the case" in answer, answer
    # Leave depends on the country: each country's days are shown, marked in the passage.
    body = page.locator("body").inner_text()
    for country, days in (("Netherlands", "25"), ("United States", "20"), ("India", "21")):
        assert country in body and f"{days} days" in body, (country, body[:2000])
    expect(page.locator(".docqa-passage mark").first).to_be_visible()
