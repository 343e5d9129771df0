"""The web page in a real browser: ``streamlit run ui/app.py`` driven by Playwright + Chromium.

Needs Chromium (see ``browser_support.py``). The page runs with ``--no-auth`` on 127.0.0.1: the
local operator, an admin (the login is tested in ``test_browser_access.py`` and
``test_browser_oidc.py``). Screenshots of every step are written to the test's tmp folder and
copied to ``/tmp/docqa/screenshots`` (``DOCQA_SCREENSHOTS`` overrides) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore
from tests.ui.browser_support import ANSWER_TIMEOUT_MS, free_port, running, wait_idle

APP = REPO_ROOT / "ui" / "app.py"
FIRE_FACT = "The fire assembly point is the north car park, next to the bicycle shelter."


@pytest.fixture
def server(home: Path, tmp_path: Path) -> Iterator[str]:
    """A running ``streamlit run ui/app.py -- --home HOME --no-auth`` on a free local port."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        "50",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--home",
        str(home),
        "--no-auth",
    ]
    with running(
        command, f"http://127.0.0.1:{port}", tmp_path / "streamlit.log", {"DOCQA_HOME": str(home)}
    ) as url:
        yield url


def ask(page: Page, question: str) -> None:
    """Type ``question`` on the Ask page and press Ask."""
    page.get_by_role("textbox", name="Question").fill(question)
    page.get_by_role("button", name="Ask").click()


class Shots:
    """Numbered full-page screenshots in the test's folder, copied for people to look at."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.wait_for_timeout(500)  # let Streamlit finish its fade-in
        page.screenshot(path=path, full_page=True)
        return path

    def publish(self) -> None:
        target = Path(os.environ.get("DOCQA_SCREENSHOTS", "/tmp/docqa/screenshots"))
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.glob("*.png")):
            shutil.copy2(path, target / path.name)


def test_ask_open_the_document_upload_and_ask_about_it(
    server: str, browser: Browser, home: Path, tmp_path: Path
) -> None:
    shots = Shots(tmp_path / "screenshots")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        # Ask by typing: the answer, its confidence and its citation appear.
        page.goto(server)
        ask(page, "How many days of paid annual leave do employees receive?")
        first = page.locator(".docqa-answer").first
        expect(first).to_contain_text("confidence", timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator(".docqa-meta").first).to_contain_text("documents/")
        expect(page.locator(".docqa-passage mark").first).to_be_visible()
        assert "q=" not in page.url and "annual" not in page.url  # no question in URLs
        shots.take(page, "ask")

        # Open the first answer in the document view: the mark is scrolled into the frame.
        page.get_by_role("link", name="Open in document").first.click()
        frame = page.frame_locator("iframe").first
        expect(frame.locator("mark#docqa-answer")).to_be_visible(timeout=30_000)
        assert "/document?" in page.url and "doc=" in page.url and "q=" not in page.url
        expect(page.get_by_role("button", name="Download original")).to_be_visible()
        shots.take(page, "document-from-answer")

        # Upload a long document through the Documents page.
        long_doc = tmp_path / "emergency-procedures.md"
        filler = "\n\n".join(
            f"## Section {n}\n\nStaff read the procedure for room {n} during onboarding and "
            "ask the facilities team about anything that is unclear."
            for n in range(1, 60)
        )
        long_doc.write_text(
            f"# Emergency procedures\n\n{filler}\n\n## Fire\n\n{FIRE_FACT}\n", encoding="utf-8"
        )
        page.goto(f"{server}/documents")
        expect(page.get_by_text("Indexed documents")).to_be_visible(timeout=30_000)
        page.locator('input[type="file"]').set_input_files(str(long_doc))
        add = page.get_by_role("button", name="Add to the index")
        expect(add).to_be_enabled(timeout=30_000)  # the upload reached the server
        add.click()
        expect(page.get_by_text("emergency-procedures.md: indexed")).to_be_visible(
            timeout=ANSWER_TIMEOUT_MS
        )
        expect(page.get_by_text("6 documents, ")).to_be_visible()  # the status line
        shots.take(page, "documents-after-upload")

        # Ask about it, reading only the best passage: the answers cite the upload.
        page.goto(server)
        ask(page, "Where is the fire assembly point?")
        expect(page.locator(".docqa-answer").first).to_contain_text(
            "confidence", timeout=ANSWER_TIMEOUT_MS
        )
        slider = page.get_by_role("slider").first  # "Passages to retrieve"
        slider.focus()
        slider.press("Home")
        wait_idle(page)
        expect(page.locator(".docqa-meta").first).to_contain_text(
            "uploads/emergency-procedures.md", timeout=ANSWER_TIMEOUT_MS
        )
        expect(page.locator(".docqa-passage").first).to_contain_text("fire assembly point")
        shots.take(page, "ask-about-upload")

        # The document view of a long document scrolls the frame to the highlighted span.
        settings = Settings(home=home)
        store = PassageStore.load(settings.index_dir)
        record = next(r for r in store.sources() if r.source.endswith("emergency-procedures.md"))
        text = store.source_text(record.doc_id)
        start = text.index(FIRE_FACT)
        page.goto(
            f"{server}/document?doc={record.doc_id}&start={start}&end={start + len(FIRE_FACT)}"
        )
        mark = page.frame_locator("iframe").first.locator("mark#docqa-answer")
        expect(mark).to_have_text(FIRE_FACT, timeout=30_000)
        frame = next(f for f in page.frames if f != page.main_frame)
        frame.wait_for_function(
            "() => { const r = document.getElementById('docqa-answer').getBoundingClientRect();"
            " return window.scrollY > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }",
            timeout=10_000,
        )
        shots.take(page, "document-scrolled")

        # A document containing <script> is shown as text and runs nothing.
        visitors = next(r for r in store.sources() if r.source.endswith("visitors.txt"))
        page.goto(f"{server}/document?doc={visitors.doc_id}")
        body = page.frame_locator("iframe").first.locator(".docqa-doc")
        expect(body).to_contain_text("<script>alert('pwned')</script>", timeout=30_000)
        shots.take(page, "script-as-text")
        assert dialogs == []
    finally:
        shots.publish()
        page.close()


def test_the_learning_loop_ask_judge_label_monitor_retrain_promote(
    server: str, browser: Browser, home: Path, tmp_path: Path
) -> None:
    """Ask, mark an answer wrong, label the question from the queue, see it on the Monitor page,
    retrain from the Models page (the tiny reader), watch the curve, promote, ask again."""
    from pipelines.learning_loop.question_log import QuestionLog
    from pipelines.reader_registry import serving_name
    from reader_training import jobs
    from reader_training.feedback import FeedbackStore

    settings = Settings(home=home)
    shots = Shots(tmp_path / "loop-screenshots")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    question = "How many days of paid annual leave do employees receive?"
    try:
        page.goto(server)
        ask(page, question)
        expect(page.locator(".docqa-answer").first).to_contain_text(
            "confidence", timeout=ANSWER_TIMEOUT_MS
        )
        page.get_by_role("button", name="Wrong").first.click()
        expect(page.get_by_text("Saved as wrong")).to_be_visible(timeout=30_000)
        shots.take(page, "loop-marked-wrong")

        # The label queue offers it; one click fills the form; mark the answer and save.
        page.goto(f"{server}/annotate")
        expect(page.get_by_text("marked wrong")).to_be_visible(timeout=30_000)
        page.locator(".st-key-annotate-queue-0 button").click()
        wait_idle(page)
        expect(page.get_by_role("textbox", name="Question")).to_have_value(question)
        store = PassageStore.load(settings.index_dir)
        doc_id = QuestionLog(settings.question_log_file).questions()[-1].answers[0]["doc_id"]
        answer = next(
            word for word in store.source_text(doc_id).split() if len(word) > 6 and word.isalpha()
        )
        page.get_by_role("textbox", name="Exact answer text").fill(answer)
        page.keyboard.press("Enter")
        wait_idle(page)
        radio = page.get_by_role("radiogroup")
        if radio.count():
            radio.first.get_by_role("radio").first.check()
            wait_idle(page)
        page.get_by_role("button", name="Save pair").click()
        expect(page.get_by_text("Saved. Write the next question.")).to_be_visible(timeout=30_000)
        shots.take(page, "loop-labeled")

        # The Monitor page counts the question and its feedback.
        page.goto(f"{server}/monitor")
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("1", timeout=30_000)
        # exact: the chart's legend says "marked wrong" too once it has drawn
        expect(page.get_by_text("Marked wrong", exact=True)).to_be_visible()
        shots.take(page, "loop-monitor")

        # Retrain from the Models page: the progress and the curve appear, then the gate.
        page.goto(f"{server}/models")
        # The "wrong" pair and the label (a label in the judged passage replaces the "wrong").
        pairs = len(FeedbackStore(settings.feedback_file).list())
        assert pairs >= 1
        start = page.locator(".st-key-retrain-start button")
        expect(start).to_contain_text(f"Retrain on {pairs} pairs", timeout=30_000)
        start.click()
        expect(page.get_by_text("in the background")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Gate:")).to_be_visible(timeout=600_000)
        expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
        shots.take(page, "loop-gate")
        job = jobs.current_job(settings)
        assert job is not None and job.verdict is not None
        if not job.verdict["recommend_promotion"]:
            # Against the gate's advice, Promote is offered only when the admin forces it.
            expect(page.locator(".st-key-retrain-promote button")).to_have_count(0)
            page.locator(".st-key-retrain-force label").click()
            wait_idle(page)
        page.locator(".st-key-retrain-promote button").click()
        expect(page.get_by_text("now answers questions")).to_be_visible(timeout=30_000)
        new = serving_name(settings)
        assert new is not None and new.startswith("retrain-")

        # The next ask is answered by the new version.
        page.goto(server)
        ask(page, question)
        expect(page.locator(".docqa-answer, .docqa-passage").first).to_be_visible(
            timeout=ANSWER_TIMEOUT_MS
        )
        expect(page.get_by_text(f"reader: {new}")).to_be_visible(timeout=30_000)
        assert QuestionLog(settings.question_log_file).questions()[-1].reader == new
        shots.take(page, "loop-new-reader")
    finally:
        shots.publish()
        page.close()
