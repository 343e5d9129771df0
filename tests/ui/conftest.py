"""Fixtures of the web page tests: a small indexed data directory with two tiny readers.

One collection is indexed once per session (real fixture files plus a text file that contains
``<script>``); every test gets its own copy of the data directory, so uploads, deletions and
feedback never leak between tests. The reader is the tiny fine-tuned BERT from ``tiny_reader``,
installed twice with different no-answer thresholds: ``tiny-answers`` always prefers an answer,
``tiny-silent`` never does, which makes both presentations deterministic. Switching between
them on the Models page is then visible on the Ask page.

The page needs a login: the home has three local accounts, one per role (:data:`ACCOUNTS`), all
with the password :data:`PASSWORD`; ``tests/ui/test_app.py`` logs in as the admin unless a test
is about another role.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from identity import UserStore
from indexer.run import index_folder
from pipelines.reader import ReaderConfig
from pipelines.reader_registry import set_serving
from pipelines.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser

FIXTURES = REPO_ROOT / "tests" / "fixtures"
PASSWORD = "correct horse battery"
ACCOUNTS = {"ada": ("admin", "ops"), "ed": ("editor", "ops"), "vic": ("viewer", "ops")}
SCRIPT_TEXT = (
    "Security notice for visitors.\n\n"
    "<script>alert('pwned')</script> The badge office is in room 42 on the ground floor.\n"
)


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory, tiny_reader: Path) -> Path:
    """An indexed data directory with two installed readers; copied by every test."""
    root = tmp_path_factory.mktemp("ui-base")
    docs = root / "documents"
    (docs / "notes").mkdir(parents=True)
    for name in ("handbook.pdf", "onboarding.md", "opening-hours.txt", "security.html"):
        shutil.copy2(FIXTURES / name, docs / name)
    (docs / "notes" / "visitors.txt").write_text(SCRIPT_TEXT, encoding="utf-8")
    home = root / "home"
    settings = Settings(home=home)
    summary = index_folder([docs], settings, progress=False)
    assert summary.added == 5, summary.describe()
    for name, threshold in (("tiny-answers", 50.0), ("tiny-silent", -50.0)):
        target = settings.models_dir / name
        shutil.copytree(tiny_reader, target)
        config = ReaderConfig.load(target)
        ReaderConfig(**{**config.__dict__, "no_answer_threshold": threshold}).save(target)
    set_serving(settings, "tiny-answers")
    users = UserStore.of(settings)
    for name, (role, groups) in ACCOUNTS.items():
        users.create(name, role, groups, PASSWORD)
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy, symlinks=True)
    monkeypatch.setenv("DOCQA_HOME", str(copy))
    return copy


# Accounts of the access-rule home (tests/conftest.py's ``access_home``: ``hr/**`` -> group hr).
ACCESS_ACCOUNTS = {
    "eve": ("viewer", "eng"),  # must never see an hr document, title, path, count or question
    "hana": ("viewer", "hr"),  # sees the hr documents
    "eddie": ("editor", "eng"),
    "root": ("admin", ""),
}


def page_access_home(access_home: Settings, tiny_reader: Path, target: Path) -> Path:
    """A writable copy of ``access_home`` for the page: the tiny reader installed as the serving
    one (the page reads only the home, not the fixture's fixed reader) and :data:`ACCESS_ACCOUNTS`
    with :data:`PASSWORD`."""
    shutil.copytree(access_home.home, target, symlinks=True)
    settings = Settings(home=target)
    shutil.copytree(tiny_reader, settings.models_dir / "tiny")
    config = ReaderConfig.load(settings.models_dir / "tiny")
    ReaderConfig(**{**config.__dict__, "no_answer_threshold": 50.0}).save(
        settings.models_dir / "tiny"
    )
    set_serving(settings, "tiny")
    users = UserStore.of(settings)
    for name, (role, groups) in ACCESS_ACCOUNTS.items():
        users.create(name, role, groups or None, PASSWORD)
    return target


@pytest.fixture
def access_page_home(
    access_home: Settings, tiny_reader: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = page_access_home(access_home, tiny_reader, tmp_path / "access-home")
    monkeypatch.setenv("DOCQA_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.ui.browser_support import CHROMIUM_ARGS, chromium

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
