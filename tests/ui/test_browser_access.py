"""The access rules on the page in a real browser (Playwright + Chromium), over ``docqa ui``.

One server for the module: ``docqa ui`` (127.0.0.1, local accounts) over a copy of
``access_home`` (``collection/hr/*`` given to group hr by the rule ``hr/**``). An eng viewer logs
in, asks about salaries and the disciplinary procedure and opens the documents list: no hr text,
title, path or count reaches the browser (its whole DOM and every frame are searched). The hr
viewer asks the same and gets the salary answer and the document.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from identity import AuditLog
from pipelines.settings import Settings
from tests.conftest import leaks_hr
from tests.ui.browser_support import ANSWER_TIMEOUT_MS, free_port, log_in, running, wait_idle
from tests.ui.conftest import PASSWORD, page_access_home

HR_QUESTIONS = (
    "What is the salary band for a senior engineer?",
    "How long does a first written warning stay on file?",
)


@pytest.fixture(scope="module")
def access_server(
    access_home: Settings, tiny_reader: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """``docqa ui`` over a copy of the access home: its URL and the home."""
    root = tmp_path_factory.mktemp("browser-access")
    home = page_access_home(access_home, tiny_reader, root / "home")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "docqa",
        "ui",
        "--home",
        str(home),
        "--port",
        str(port),
        "--no-demo",
        "--headless",
    ]
    with running(command, f"http://127.0.0.1:{port}", root / "ui.log", {}) as url:
        yield url, home


def everything(page: Page) -> str:
    """All the text and markup the browser holds (the page's DOM and every frame's), less the
    questions the user typed (they are theirs: the question box and the recent questions)."""
    text = "\n".join(frame.content() for frame in page.frames)
    for question in HR_QUESTIONS:
        text = text.replace(question, "")
    return text


def ask(page: Page, question: str) -> None:
    page.get_by_role("textbox", name="Question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".docqa-answer, .docqa-passage").first).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS
    )
    wait_idle(page)


def test_an_eng_viewer_never_sees_hr_and_the_hr_viewer_does(
    access_server: tuple[str, Path], browser: Browser
) -> None:
    url, home = access_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url)
        expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=60_000)
        assert leaks_hr(everything(page)) == []  # nothing of the page before a login
        log_in(page, "eve", PASSWORD)
        expect(page.get_by_text("2 documents, ")).to_be_visible()  # the status line
        for question in HR_QUESTIONS:
            ask(page, question)
            assert leaks_hr(everything(page)) == [], question
        # The documents list, opened from the navigation (a reload would start a new session).
        page.get_by_role("link", name="Documents").click()
        expect(page.get_by_text("Indexed documents")).to_be_visible(timeout=30_000)
        wait_idle(page)
        # The table is drawn on a canvas; its cells are in the DOM for screen readers.
        expect(page.get_by_text("collection/eng/deploy.md").first).to_be_attached()
        assert leaks_hr(everything(page)) == []
        page.get_by_role("link", name="Monitor").click()
        wait_idle(page)
        assert leaks_hr(everything(page)) == []
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)

        log_in(page, "hana", PASSWORD)
        expect(page.get_by_text("4 documents, ")).to_be_visible()
        page.get_by_role("link", name="Ask").click()  # logged out on the Monitor page
        wait_idle(page)
        ask(page, HR_QUESTIONS[0])
        expect(page.locator(".docqa-meta").first).to_contain_text("collection/hr/salaries.md")
        page.get_by_role("link", name="Open in document").first.click()
        body = page.frame_locator("iframe").first.locator(".docqa-doc")
        expect(body).to_contain_text("98,000 to 121,000 euros", timeout=30_000)
    finally:
        page.close()
    logins = [
        (e.actor, e.outcome)
        for e in AuditLog.of(Settings(home=home)).events()
        if e.action == "login"
    ]
    assert logins == [("user:eve", "ok"), ("user:hana", "ok")]
