"""The API's leak matrix and role matrix (issue 27's "Done when").

Leaks: a copy of the session's ``access_home`` (``collection/hr/*`` given to group hr by the
rule ``hr/**``, ``collection/eng/*`` open to all), an eng viewer key and an hr viewer key (and
editors of each, for the routes that need one). On every route that shows text, names or counts
(``/ask`` with several HR questions, its folder filter, ``GET /documents``,
``/documents/status``, ``/feedback``, ``/labels``, ``/metrics``) the eng key's raw responses
hold no HR passage, title, path or count (:func:`tests.conftest.leaks_hr`), and the hr key's do.

Roles: every route is called with a viewer, an editor and an admin key: refused (403, naming
the role it needs, and written to the audit log as denied) below its role, done at it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from identity.audit import AuditLog
from identity.roles import ACTION_ROLE, Action, Role
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.reader_registry import set_serving
from pipelines.settings import Settings
from pipelines.store import PassageStore
from tests.api.support import READER, Keys, install_reader
from tests.conftest import leaks_hr

# HR questions that carry none of the HR markers themselves (the answer echoes the question).
HR_QUESTIONS = (
    "How much does a senior engineer earn a year?",
    "Who approves pay changes above ten percent?",
    "When are bonuses paid?",
    "How long does a first written warning stay on file?",
    "Who chairs dismissal hearings?",
)
ENG_SOURCES = {"collection/eng/deploy.md", "collection/eng/oncall.md"}
HR_SOURCES = {"collection/hr/salaries.md", "collection/hr/disciplinary.md"}


def _home(access_home: Settings, tiny_reader: Path, target: Path) -> Settings:
    """A copy of the access home that the API may write to, answering with the tiny reader
    that always prefers an answer (so answers cite documents)."""
    shutil.copytree(access_home.home, target, symlinks=True)
    settings = access_home.with_(home=target, reader_model=None)
    install_reader(settings, tiny_reader, READER, 50.0)
    set_serving(settings, READER)
    return settings


@pytest.fixture(scope="module")
def home(
    access_home: Settings, tiny_reader: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return _home(access_home, tiny_reader, tmp_path_factory.mktemp("api-access") / "home")


@pytest.fixture(scope="module")
def tokens(home: Settings) -> dict[str, dict[str, str]]:
    """Request headers of each key, by name."""
    store = KeyStore.of(home)
    made = {
        "eng-viewer": ("viewer", "eng"),
        "hr-viewer": ("viewer", "hr"),
        "eng-editor": ("editor", "eng"),
        "hr-editor": ("editor", "hr"),
        "admin": ("admin", None),
    }
    return {name: Keys.header(store.create(name, *spec)[1]) for name, spec in made.items()}


@pytest.fixture(scope="module")
def client(home: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(home)) as test_client:
        yield test_client


def _record(store: PassageStore, source: str) -> Any:
    return next(r for r in store.sources() if r.source == source)


def _answer(store: PassageStore, source: str) -> dict[str, Any]:
    """An answer object as /ask returns it, citing a word of the document's first passage (what
    a client that knows or guesses the document's id could send)."""
    doc_id = _record(store, source).doc_id
    (passage, *_) = store.filter_documents(
        {"field": "meta.doc_id", "operator": "==", "value": doc_id}, return_embedding=False
    )
    text = passage.content or ""
    word = re.search(r"[A-Za-z]{4,}", text)
    assert word is not None
    begin, end = word.span()
    at = int(passage.meta.get("start", 0))
    return {
        "answer": word.group(),
        "score": 0.5,
        "document": source,
        "doc_id": doc_id,
        "context": text,
        "context_offsets": [begin, end],
        "document_offsets": [at + begin, at + end],
    }


# -- leaks --------------------------------------------------------------------------------------


def test_ask_never_shows_the_eng_viewer_an_hr_passage(
    client: TestClient, home: Settings, tokens: dict[str, dict[str, str]]
) -> None:
    hr_cited: set[str] = set()
    for question in HR_QUESTIONS:
        body = {"question": question, "k": 4, "n": 3}
        eng = client.post("/ask", json=body, headers=tokens["eng-viewer"])
        assert eng.status_code == 200, eng.text
        assert leaks_hr(eng.text) == [], eng.text
        cited = {a["document"] for a in eng.json()["answers"] if a["answer"] is not None}
        assert cited and cited <= ENG_SOURCES

        hr = client.post("/ask", json=body, headers=tokens["hr-viewer"])
        assert hr.status_code == 200, hr.text
        hr_cited |= {a["document"] for a in hr.json()["answers"] if a["answer"] is not None}
        if HR_SOURCES & {a["document"] for a in hr.json()["answers"]}:
            assert leaks_hr(hr.text)
    assert hr_cited & HR_SOURCES, hr_cited  # the hr viewer is answered from HR documents

    # Each asked within their own scope, and logged as theirs.
    logged = QuestionLog(home.question_log_file).questions(asker="key:eng-viewer")
    assert {q.question for q in logged} >= set(HR_QUESTIONS)


def test_a_filter_on_an_hr_folder_is_refused_as_an_unknown_folder(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    def refused(folder: str, who: str) -> dict[str, str]:
        body = {"question": "Who chairs the hearings?", "filters": {"folders": [folder]}}
        response = client.post("/ask", json=body, headers=tokens[who])
        assert response.status_code == 422, response.text
        return response.json()

    hidden, missing = (
        refused("collection/hr", "eng-viewer"),
        refused("collection/xyz", "eng-viewer"),
    )
    assert hidden == {
        "error": "unknown_folder",
        "detail": "no indexed documents are in 'collection/hr' (folders: collection, "
        "collection/eng)",
    }
    assert hidden["detail"].replace("'collection/hr'", "'collection/xyz'") == missing["detail"]
    assert "collection/hr" in refused("collection/xyz", "hr-viewer")["detail"]
    # The hr viewer may narrow to its folder.
    body = {"question": "When are bonuses paid?", "filters": {"folders": ["collection/hr"]}}
    allowed = client.post("/ask", json=body, headers=tokens["hr-viewer"])
    assert allowed.status_code == 200
    cited = {a["document"] for a in allowed.json()["answers"] if a["answer"] is not None}
    assert cited and cited <= HR_SOURCES


def test_document_lists_and_counts_are_those_of_the_scope(
    client: TestClient, home: Settings, tokens: dict[str, dict[str, str]]
) -> None:
    store = PassageStore.load(home.index_dir)
    passages = {r.source: r.passages for r in store.sources()}
    for who, sources in (
        ("eng-viewer", ENG_SOURCES),
        ("hr-viewer", ENG_SOURCES | HR_SOURCES),
        ("admin", ENG_SOURCES | HR_SOURCES),
    ):
        listed = client.get("/documents", headers=tokens[who])
        assert listed.status_code == 200
        assert {d["source"] for d in listed.json()} == sources
        status = client.get("/documents/status", headers=tokens[who])
        assert status.status_code == 200
        counts = (status.json()["documents"], status.json()["passages"])
        assert counts == (len(sources), sum(passages[s] for s in sources))
        assert bool(leaks_hr(listed.text)) == (who != "eng-viewer"), listed.text
    eng_status = client.get("/documents/status", headers=tokens["eng-viewer"]).text
    assert leaks_hr(eng_status) == []
    assert sum(passages[s] for s in HR_SOURCES) > 0  # so the counts above could differ


def test_feedback_and_labels_on_an_hr_document_are_answered_as_unknown(
    client: TestClient, home: Settings, tokens: dict[str, dict[str, str]]
) -> None:
    store = PassageStore.load(home.index_dir)
    hr_answer = _answer(store, "collection/hr/salaries.md")
    hr_id = hr_answer["doc_id"]
    made_up = {**hr_answer, "doc_id": "0" * len(hr_id)}
    question = "What is this about?"

    def as_unknown(path: str, body: dict[str, Any], unknown: dict[str, Any]) -> None:
        refused = client.post(path, json=body, headers=tokens["eng-editor"])
        nowhere = client.post(path, json=unknown, headers=tokens["eng-editor"])
        assert refused.status_code == nowhere.status_code == 404, refused.text
        assert refused.json() == {
            "error": "unknown_document",
            "detail": f"no indexed document has the id {hr_id!r}",
        }
        assert refused.text.replace(hr_id, made_up["doc_id"]) == nowhere.text
        assert leaks_hr(refused.text) == []
        allowed = client.post(path, json=body, headers=tokens["hr-editor"])
        assert allowed.status_code == 201, allowed.text

    feedback = {"question": question, "verdict": "correct"}
    as_unknown("/feedback", {**feedback, "answer": hr_answer}, {**feedback, "answer": made_up})
    label = {"question": question, "answer": None}
    as_unknown("/labels", {**label, "doc_id": hr_id}, {**label, "doc_id": made_up["doc_id"]})
    # The eng viewer may do neither (its role), and is not told more for it.
    for path, body in (
        ("/feedback", {**feedback, "answer": hr_answer}),
        ("/labels", {**label, "doc_id": hr_id}),
    ):
        denied = client.post(path, json=body, headers=tokens["eng-viewer"])
        assert denied.status_code == 403 and leaks_hr(denied.text) == []
    # The refusals outside the scope are in the audit log, with the document refused.
    denied = [
        (e.action, e.target)
        for e in AuditLog.of(home).events(actor="key:eng-editor")
        if e.outcome == "denied"
    ]
    assert ("feedback", hr_id) in denied and ("label", hr_id) in denied


def test_metrics_carry_no_documents_or_questions(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    for question in HR_QUESTIONS[:2]:
        client.post("/ask", json={"question": question}, headers=tokens["hr-viewer"])
    refused = client.get("/metrics", headers=tokens["eng-viewer"])
    assert refused.status_code == 403 and leaks_hr(refused.text) == []
    metrics = client.get("/metrics", headers=tokens["admin"])
    assert metrics.status_code == 200 and "docqa_api_requests_total" in metrics.text
    assert leaks_hr(metrics.text) == []
    assert not [q for q in HR_QUESTIONS if q in metrics.text]


# -- roles --------------------------------------------------------------------------------------

ROLES = (Role.VIEWER, Role.EDITOR, Role.ADMIN)


def test_every_route_is_refused_below_its_role_and_done_at_it(
    access_home: Settings, tiny_reader: Path, tmp_path: Path
) -> None:
    home = _home(access_home, tiny_reader, tmp_path / "home")
    store = KeyStore.of(home)
    keys = {role: Keys.header(store.create(role.value, role.value, "eng")[1]) for role in ROLES}
    index = PassageStore.load(home.index_dir)
    eng_answer = _answer(index, "collection/eng/oncall.md")
    uploads: dict[Role, str] = {}

    def upload(role: Role) -> Any:
        text = f"Notes of the {role.value}: the garden shed key hangs by the door.".encode()
        files = [("files", (f"notes-{role.value}.txt", text, "text/plain"))]
        response = client.post("/documents", files=files, headers=keys[role])
        if response.status_code == 201:
            uploads[role] = response.json()["files"][0]["doc_id"]
        return response

    calls = {
        Action.ASK: lambda r: client.post(
            "/ask", json={"question": "How long is an on-call shift?"}, headers=keys[r]
        ),
        Action.READ_DOCUMENT: lambda r: client.get("/documents", headers=keys[r]),
        Action.FEEDBACK: lambda r: client.post(
            "/feedback",
            json={"question": "Who answers a page?", "verdict": "correct", "answer": eng_answer},
            headers=keys[r],
        ),
        Action.LABEL: lambda r: client.post(
            "/labels",
            json={"question": "Who answers?", "doc_id": eng_answer["doc_id"], "answer": None},
            headers=keys[r],
        ),
        Action.UPLOAD: upload,
        Action.DELETE_DOCUMENT: lambda r: client.delete(
            f"/documents/{uploads[Role.EDITOR]}", headers=keys[r]
        ),
        Action.PROMOTE: lambda r: client.post(f"/models/{READER}/promote", headers=keys[r]),
        Action.READ_METRICS: lambda r: client.get("/metrics", headers=keys[r]),
    }
    refusals = 0
    with TestClient(create_app(home)) as client:
        for action, call in calls.items():
            needed = ACTION_ROLE[action]
            for role in ROLES:
                response = call(role)
                if role.rank < needed.rank:
                    assert response.status_code == 403, (action, role, response.text)
                    said = (
                        f"the key {role.value!r} has the role {role.value!r}; "
                        f"{action.value.replace('_', ' ')} needs {needed.value!r}"
                    )
                    assert response.json()["detail"].startswith(said)
                    refusals += 1
                else:
                    assert response.status_code in (200, 201), (action, role, response.text)
        # Read-only views are every role's.
        for role in ROLES:
            assert client.get("/documents/status", headers=keys[role]).status_code == 200
            assert client.get("/models", headers=keys[role]).status_code == 200
    assert Role.EDITOR in uploads and Role.ADMIN in uploads  # editors and admins upload
    assert uploads[Role.EDITOR] not in {
        r.doc_id for r in PassageStore.load(home.index_dir).sources()
    }
    denied = [e for e in AuditLog.of(home).events() if e.outcome == "denied"]
    assert len(denied) == refusals == 9
    assert {(e.actor, e.action) for e in denied} >= {
        ("key:viewer", "feedback"),
        ("key:editor", "delete_document"),
        ("key:editor", "promote"),
        ("key:editor", "read_metrics"),
    }
