"""Shared by the command-line tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """Every ``docqa`` command sets the process umask to 0o077 (a private home); in-process
    runs must not leave it set for the tests that follow, nor inherit it from one before."""
    before = os.umask(0o022)
    yield
    os.umask(before)
