"""Fixtures of the API tests: a copy of the indexed demo home, keys, and a real app.

The home is the session's ``demo_home`` (five demo files indexed, see tests/conftest.py),
copied once with the tiny reader installed as version ``tiny-answers`` (its no-answer threshold
raised so it always prefers an answer: answers are then deterministic) and promoted in
``serving.json``, not fixed in the settings, so promotions through the API take effect. Every
test that changes the home gets its own copy (``home``); tests that only read share one
(``shared_home``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from pipelines.reader_registry import set_serving
from pipelines.settings import Settings
from tests.api.support import READER, Keys, install_reader


@pytest.fixture(scope="session")
def api_base_home(
    demo_home: Settings, tiny_reader: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    home = tmp_path_factory.mktemp("api-base") / "home"
    # The index, not what other tests asked of the session's home (`docqa ask` tests log their
    # questions there): API tests count the questions they ask.
    logs = shutil.ignore_patterns("questions.sqlite*")
    shutil.copytree(demo_home.home, home, symlinks=True, ignore=logs)
    settings = Settings(home=home)
    install_reader(settings, tiny_reader, READER, 50.0)
    set_serving(settings, READER)
    return home


def _copy(base: Path, target: Path) -> Settings:
    shutil.copytree(base, target, symlinks=True)
    return Settings(home=target)


def _keys(settings: Settings) -> Keys:
    store = KeyStore.of(settings)
    asker, admin = store.create("asker", "ask")[1], store.create("root", "admin")[1]
    return Keys(ask_token=asker, admin_token=admin, editor_token=store.create("ed", "editor")[1])


@pytest.fixture
def settings(api_base_home: Path, tmp_path: Path) -> Settings:
    """A home of this test's own (uploads, deletions, feedback, promotions stay in it)."""
    return _copy(api_base_home, tmp_path / "home")


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return _keys(settings)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared_settings(api_base_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home shared by a module's read-only tests (one index and reader load)."""
    return _copy(api_base_home, tmp_path_factory.mktemp("api-shared") / "home")


@pytest.fixture(scope="module")
def shared_keys(shared_settings: Settings) -> Keys:
    return _keys(shared_settings)


@pytest.fixture(scope="module")
def shared_client(shared_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(shared_settings)) as test_client:
        yield test_client
