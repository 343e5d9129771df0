"""What the pages share: the settings, the cached query service, the feedback store, status.

The loaded index and models live in ``st.cache_resource`` (one copy per process, shared by all
browser sessions). The cache key holds the data directory and the reader that should serve
*now* (``resolve_reader`` reads ``serving.json`` on every run, which is cheap), so promoting
another reader on the Models page takes effect on the next question without a restart. A new
index written by ``docqa index`` or an upload is picked up by ``QueryService.refresh``, which
compares the index's ``CURRENT`` pointer with the version it has loaded.

What a caller may see is their scope (:func:`scope`): the ids of the documents the access rules
let them see, from one :class:`identity.ScopeCache` per process. Every listing, count, search and
document view of a page goes through it; an unreadable rules file stops the page (it never means
"everything visible").
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import streamlit as st

from identity import AccessRuleError, AccessRules, Action, Caller, ScopeCache
from pipelines.learning_loop.question_log import LoggedQuestion, question_log
from pipelines.query import IndexMissingError, QueryService
from pipelines.reader_registry import ReaderNotFoundError, reader_version_name, resolve_reader
from pipelines.settings import Settings, make_private
from pipelines.store import PassageStore, SourceRecord, current_version
from reader_training.feedback import FeedbackError, FeedbackStore, LabeledPair
from ui import render

logger = logging.getLogger(__name__)


def _arguments(argv: list[str]) -> argparse.Namespace:
    """The script arguments (``streamlit run ui/app.py -- --home DIR [--no-auth]``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--home")
    parser.add_argument("--no-auth", action="store_true")
    known, _ = parser.parse_known_args(argv)
    return known


def _home_argument(argv: list[str]) -> str | None:
    return _arguments(argv).home


def no_auth() -> bool:
    """Whether the page was started without a login (``docqa ui --no-auth``)."""
    return bool(_arguments(sys.argv[1:]).no_auth)


@st.cache_resource(show_spinner=False)
def _settings(home: str | None, env_home: str | None) -> Settings:
    settings = Settings.from_env(home or env_home)
    make_private(settings.home)  # every file the page writes: 0600, the home 0700
    return settings


def settings() -> Settings:
    """The settings of this app: ``--home``, else ``$DOCQA_HOME``, else ``~/.docqa``."""
    return _settings(_home_argument(sys.argv[1:]), os.environ.get("DOCQA_HOME"))


@st.cache_resource(max_entries=2, show_spinner="Loading the index and the reader…")
def _service(home: str, reader: str, _settings: Settings) -> QueryService:
    # ``reader`` is part of the key: a newly promoted reader gets a new service, and the old
    # one drops out of the cache (max_entries) instead of being kept in memory forever.
    return QueryService(_settings.with_(reader_model=reader))


def service() -> QueryService:
    """The query service for the current index and the reader that should serve now."""
    current = settings()
    return _service(str(current.home), resolve_reader(current), current)


@st.cache_resource(max_entries=1, show_spinner="Loading the index…")
def _plain_store(index_dir: str, version: str) -> PassageStore:
    return PassageStore.load(Path(index_dir))


def store_or_none() -> PassageStore | None:
    """The loaded store (refreshed if the index on disk changed), None when there is no index."""
    index_dir = settings().index_dir
    if not PassageStore.exists(index_dir):
        return None
    try:
        return service().store
    except IndexMissingError:
        return None
    except ReaderNotFoundError:
        # No reader to answer with, but the documents can still be listed and managed.
        return _plain_store(str(index_dir), current_version(index_dir) or "")


@st.cache_resource(show_spinner=False)
def _scope_cache(home: str, _settings: Settings) -> ScopeCache:
    return ScopeCache(AccessRules.of(_settings))


def scope(caller: Caller, store: PassageStore | None = None) -> frozenset[str] | None:
    """The ids of the documents ``caller`` may see (None: all of them)."""
    store = store if store is not None else store_or_none()
    if store is None or caller.sees_everything:
        return None
    current = settings()
    try:
        return _scope_cache(str(current.home), current).for_store(caller, store)
    except AccessRuleError as exc:
        st.error(f"The access rules cannot be read, so nothing is shown: {render.md(exc)}")
        st.stop()


def sources(caller: Caller, store: PassageStore | None = None) -> list[SourceRecord]:
    """The documents ``caller`` may see, sorted by displayed path."""
    store = store if store is not None else store_or_none()
    return store.sources(scope=scope(caller, store)) if store is not None else []


def visible(caller: Caller, doc_id: str, store: PassageStore | None = None) -> bool:
    visible_ids = scope(caller, store)
    return visible_ids is None or doc_id in visible_ids


def questions(
    caller: Caller, since: datetime | None = None, limit: int | None = None
) -> list[LoggedQuestion]:
    """The logged questions ``caller`` may read: everyone's for admins; else their own, and of
    those only the ones whose answers cite documents they may still see (rules change)."""
    log = question_log(settings())
    if log is None:
        return []
    if caller.may(Action.READ_ALL_QUESTIONS):
        return log.questions(since=since, limit=limit)
    return log.questions(since=since, limit=limit, asker=caller.identity, scope=scope(caller))


def feedback_store() -> FeedbackStore:
    return FeedbackStore(settings().feedback_file)


def note_feedback(question: str, verdict: str | None) -> None:
    """Note a verdict on the question just asked in the question log (the Monitor page's
    feedback rate and share marked wrong); the feedback file itself is already written."""
    asked = st.session_state.get("ask_result") or {}
    log = question_log(settings())
    if log is None or verdict is None or asked.get("question") != question:
        return
    if asked.get("question_id") is None:
        return
    try:
        log.add_feedback(asked["question_id"], verdict)
    except (sqlite3.Error, ValueError) as exc:
        logger.warning("could not note feedback in the question log: %s", exc)


def labeled_pairs(
    store: FeedbackStore, origin: str, what: str, caller: Caller
) -> list[LabeledPair]:
    """The stored pairs of one origin ("feedback", "annotation") about documents ``caller`` may
    see (a pair that names no document: admins only); an unreadable file stops the page with an
    error naming ``what`` could not be read, and is never overwritten."""
    try:
        records = [r for r in store.list() if r.meta.get("origin") == origin]
    except FeedbackError as exc:
        st.error(f"The {what} cannot be read: {render.md(exc)}")
        st.stop()
    visible_ids = scope(caller)
    if caller.sees_everything or (visible_ids is None and store_or_none() is not None):
        return records
    return [r for r in records if r.meta.get("doc_id") in (visible_ids or ())]


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(0)})"
    return "CPU"


@dataclass
class Status:
    documents: int
    passages: int
    reader: str
    device: str

    def line(self) -> str:
        if self.documents == 0:
            index = "No documents indexed yet"
        else:
            index = f"{self.documents:,} documents, {self.passages:,} passages"
        return f"{index} · reader: {self.reader} · {self.device}"


def status(caller: Caller) -> Status:
    """What is indexed, as far as ``caller`` may see it."""
    store = store_or_none()
    records = sources(caller, store)
    documents = len(records)
    passages = sum(r.passages for r in records)
    try:
        reader = reader_version_name(resolve_reader(settings()))
    except FileNotFoundError:
        reader = "none (train one with `docqa train`)"
    return Status(documents, passages, reader, device_name())
