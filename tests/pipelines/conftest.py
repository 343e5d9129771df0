"""Fixtures shared by the pipelines tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from api.keys import KeyStore
from identity import AccessRules, AuditLog, Caller, Role, UserStore
from pipelines.answers import AnswerResult
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.settings import Settings
from reader_training.feedback import FeedbackStore

QUESTION = "How many days of annual leave do employees get?"
ADMIN = Caller(name="op", role=Role.ADMIN, groups=frozenset())


@pytest.fixture
def full_home(demo_home: Settings, tmp_path: Path) -> Settings:
    """A copy of the demo home with a user, a key, a rule, a label, a logged question, an audit
    event, plus a cache and an older index version that a backup leaves out."""
    settings = demo_home.with_(home=tmp_path / "home")
    shutil.copytree(demo_home.home, settings.home)
    UserStore.of(settings).create("alice", "editor", "hr", "a long password 1")
    KeyStore.of(settings).create("bot", "viewer", "eng")
    AccessRules.of(settings).allow("hr/**", "hr")
    FeedbackStore(settings.feedback_file).add(
        QUESTION, "Employees get 25 days of annual leave.", "25 days", None, meta={"author": "t"}
    )
    answer = AnswerResult(answer="25 days", score=0.9, context="25 days of leave", doc_id="d")
    QuestionLog(settings.question_log_file).record(
        QUESTION, [answer], channel="cli", latency_ms=5, reader="tiny", top_k=10
    )
    AuditLog.of(settings).record(ADMIN, "user_create", target="alice")
    (settings.home / "cache" / "onnx").mkdir(parents=True, exist_ok=True)
    (settings.home / "cache" / "onnx" / "model.onnx").write_bytes(b"x" * 1000)
    (settings.index_dir / "v-000000").mkdir()
    (settings.index_dir / "v-000000" / "vectors.faiss").write_bytes(b"old")
    return settings
