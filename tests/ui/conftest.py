"""Fixtures of the web page tests: a small indexed data directory with two tiny readers.

One collection is indexed once per session (real fixture files plus a text file that contains
``<script>``); every test gets its own copy of the data directory, so uploads, deletions and
feedback never leak between tests. The reader is the tiny fine-tuned BERT from ``tiny_reader``,
installed twice with different no-answer thresholds: ``tiny-answers`` always prefers an answer,
``tiny-silent`` never does, which makes both presentations deterministic. Switching between
them on the Models page is then visible on the Ask page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexer.run import index_folder
from pipelines.models import set_serving
from pipelines.reader import ReaderConfig
from pipelines.settings import REPO_ROOT, Settings

FIXTURES = REPO_ROOT / "tests" / "fixtures"
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
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy, symlinks=True)
    monkeypatch.setenv("DOCQA_HOME", str(copy))
    return copy
