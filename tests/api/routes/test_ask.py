"""POST /ask, /feedback and /labels over a real index and the tiny real reader."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from identity.audit import AuditLog
from pipelines.learning_loop.question_log import QuestionLog
from pipelines.query import ask as ask_in_process
from pipelines.settings import SHIPPED_READER, Settings
from pipelines.store import PassageStore
from reader_training.feedback import MAX_CONTEXT_CHARS, FeedbackStore
from tests.api.support import READER, WIFI_QUESTION, Keys

ANSWER_KEYS = {
    "answer", "score", "document", "title", "page", "section", "document_offsets", "context",
    "context_offsets", "doc_id", "reader_score", "retriever_score", "cases", "also_in",
}  # fmt: skip


def test_ask_needs_a_valid_key(shared_client: TestClient, shared_settings: Settings) -> None:
    body = {"question": WIFI_QUESTION}
    missing = shared_client.post("/ask", json=body)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthorized"
    assert "missing API key" in missing.json()["detail"]
    wrong = shared_client.post("/ask", json=body, headers=Keys.header("docqa_not-a-key"))
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "unauthorized", "detail": "invalid or revoked API key"}
    # A revoked key stops working on the next request.
    store = KeyStore.of(shared_settings)
    _, token = store.create("temporary", "ask")
    assert shared_client.post("/ask", json=body, headers=Keys.header(token)).status_code == 200
    assert store.revoke("temporary")
    assert shared_client.post("/ask", json=body, headers=Keys.header(token)).status_code == 401


def test_ask_answers_as_docqa_ask_json_does(
    shared_client: TestClient, shared_settings: Settings, shared_keys: Keys
) -> None:
    response = shared_client.post(
        "/ask", json={"question": f"  {WIFI_QUESTION} ", "k": 4, "n": 2}, headers=shared_keys.ask
    )
    assert response.status_code == 200, response.text
    data = response.json()
    # What `docqa ask --json` prints: [AnswerResult.to_dict()], from the same core, but never
    # the server's absolute file path.
    results = ask_in_process(WIFI_QUESTION, shared_settings, top_k_passages=4, top_n_answers=2)
    expected = [{k: v for k, v in r.to_dict().items() if k != "path"} for r in results]
    assert data["answers"] == expected
    assert all(set(answer) == ANSWER_KEYS for answer in data["answers"])
    paths = {r.path for r in results if r.path}
    assert paths and not [p for p in paths if p in response.text]
    assert str(shared_settings.home) not in response.text
    assert data["question"] == WIFI_QUESTION
    assert data["reader"] == READER
    assert data["latency_ms"] > 0
    assert data["index_version"].startswith("v-")
    top = data["answers"][0]
    assert top["answer"] is not None and top["document"].startswith("documents/")
    start, end = top["context_offsets"]
    assert top["context"][start:end] == top["answer"]
    # Logged with the API's channel, under the id returned.
    logged = QuestionLog(shared_settings.question_log_file).questions()
    mine = next(q for q in logged if q.id == data["question_id"])
    assert (mine.channel, mine.question, mine.top_k, mine.reader) == (
        "api",
        WIFI_QUESTION,
        4,
        READER,
    )
    # ... and in the audit log, as the key's, with the question (the question log is on).
    asked = [e for e in AuditLog.of(shared_settings).events(actor="key:asker") if e.action == "ask"]
    assert asked and (asked[-1].outcome, asked[-1].detail) == ("ok", WIFI_QUESTION)


def test_the_audit_log_keeps_questions_only_where_the_question_log_may(
    settings: Settings, keys: Keys
) -> None:
    with TestClient(create_app(settings.with_(question_log=False))) as client:
        asked = client.post("/ask", json={"question": WIFI_QUESTION}, headers=keys.ask)
        assert asked.status_code == 200 and asked.json()["question_id"] is None
    (event,) = [e for e in AuditLog.of(settings).events() if e.action == "ask"]
    assert (event.actor, event.role, event.outcome, event.detail) == (
        "key:asker",
        "viewer",
        "ok",
        None,
    )
    assert "Wi-Fi" not in "".join(p.read_text() for p in AuditLog.of(settings).files())


def test_a_case_dependent_answer_carries_its_cases(settings: Settings, keys: Keys) -> None:
    """The shipped reader abstains on a question the leave policy answers per country; /ask
    answers with each country's days, offsets into the passage and the document."""
    with TestClient(create_app(settings.with_(reader_model=str(SHIPPED_READER)))) as client:
        body = {"question": "How many days of annual leave do I get?"}
        response = client.post("/ask", json=body, headers=keys.ask)
    assert response.status_code == 200, response.text
    top, runner_up = response.json()["answers"][:2]
    assert runner_up["answer"] is None  # the abstention it replaced, ranked after it
    values = {c["case"]: " ".join(c["value"].split()) for c in top["cases"]}
    assert values == {
        "Netherlands": "25 vacation days per year",
        "United States": "20 days of paid time off",
        "India": "21 days of earned leave per year",
    }
    document = PassageStore.load(settings.index_dir).source_text(top["doc_id"])
    for case in top["cases"]:
        assert top["context"][case["start"] : case["end"]] == case["value"]
        assert document[case["document_start"] : case["document_end"]] == case["value"]
        assert top["context"][case["case_start"] : case["case_end"]] == case["case"]
    assert runner_up["cases"] == []


@pytest.mark.parametrize(
    ("body", "status", "error", "says"),
    [
        ({"question": ""}, 422, "invalid_question", "the question is empty"),
        ({"question": "   "}, 422, "invalid_question", "the question is empty"),
        ({"question": "x" * 10_000}, 422, "invalid_question", "the limit is 1,000"),
        ({"question": WIFI_QUESTION, "k": 0}, 422, "invalid_request", "k: "),
        ({"question": WIFI_QUESTION, "top_k": 3}, 422, "invalid_request", "top_k: Extra inputs"),
        ({}, 422, "invalid_request", "question: Field required"),
        ({"question": 7}, 422, "invalid_request", "question: Input should be a valid string"),
        (
            {"question": WIFI_QUESTION, "filters": {"folders": ["documents/finance"]}},
            422,
            "unknown_folder",
            "no indexed documents are in 'documents/finance' (folders: documents, documents/hr",
        ),
    ],
)
def test_bad_questions_get_a_json_error_naming_the_problem(
    shared_client: TestClient,
    shared_keys: Keys,
    body: dict[str, object],
    status: int,
    error: str,
    says: str,
) -> None:
    response = shared_client.post("/ask", json=body, headers=shared_keys.ask)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert says in response.json()["detail"]


def test_malformed_json_is_a_400(shared_client: TestClient, shared_keys: Keys) -> None:
    response = shared_client.post(
        "/ask",
        content=b'{"question": "When?",',
        headers={**shared_keys.ask, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert response.json()["detail"].startswith("the body is not valid JSON")


def test_filters_limit_the_documents_read(shared_client: TestClient, shared_keys: Keys) -> None:
    body = {"question": WIFI_QUESTION, "n": 5, "filters": {"folders": ["documents/hr"]}}
    response = shared_client.post("/ask", json=body, headers=shared_keys.ask)
    assert response.status_code == 200, response.text
    cited = [a["document"] for a in response.json()["answers"] if a["answer"] is not None]
    assert cited and all(doc.startswith("documents/hr/") for doc in cited)
    only_pdf = {"question": WIFI_QUESTION, "filters": {"file_types": ["pdf"]}}
    answers = shared_client.post("/ask", json=only_pdf, headers=shared_keys.ask).json()["answers"]
    assert {a["document"] for a in answers if a["answer"]} == {"documents/hr/leave-policy.pdf"}


# -- feedback -----------------------------------------------------------------------------------


def _asked(client: TestClient, keys: Keys) -> dict:
    """A question asked with the editor's key (who then gives feedback on its answers)."""
    response = client.post("/ask", json={"question": WIFI_QUESTION, "n": 3}, headers=keys.editor)
    assert response.status_code == 200, response.text
    return response.json()


def test_feedback_is_stored_as_the_page_stores_it(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    asked = _asked(client, keys)
    top = asked["answers"][0]
    correct = {
        "question": WIFI_QUESTION,
        "question_id": asked["question_id"],
        "verdict": "correct",
        "answer": top,
    }
    response = client.post("/feedback", json=correct, headers=keys.editor)
    assert response.status_code == 201, response.text
    assert response.json()["saved"] and response.json()["question_noted"]
    again = client.post("/feedback", json=correct, headers=keys.editor)
    assert again.status_code == 201 and not again.json()["saved"]  # already stored
    # Another key's verdict is its own pair, but it is not noted on a question it did not ask.
    theirs = client.post("/feedback", json={**correct, "verdict": "wrong"}, headers=keys.admin)
    assert theirs.status_code == 201 and not theirs.json()["question_noted"]

    pair, admins = FeedbackStore(settings.feedback_file).list()
    assert (pair.id, admins.id) == (response.json()["id"], theirs.json()["id"])
    store = PassageStore.load(settings.index_dir)
    # Like the page: the document's indexed text around the answer (at most MAX_CONTEXT_CHARS,
    # the whole of a short document), the answer at its offset in that window.
    text, begin = store.source_text(top["doc_id"]), pair.meta["doc_start"]
    assert pair.context == text[begin : begin + len(pair.context)]
    assert len(pair.context) <= MAX_CONTEXT_CHARS < len(text) or pair.context == text
    assert begin + pair.answer_start == top["document_offsets"][0]
    assert pair.answer_text == top["answer"]
    assert (pair.meta["origin"], pair.meta["verdict"]) == ("feedback", "correct")
    assert (pair.meta["author"], admins.meta["author"]) == ("key:ed", "key:root")  # per author
    logged = QuestionLog(settings.question_log_file).questions()
    assert [(q.id, q.feedback) for q in logged] == [(asked["question_id"], "correct")]

    # Wrong: the passage alone, as "no answer"; corrected: a span of the same passage.
    other = next(a for a in asked["answers"][1:] if a["doc_id"] != top["doc_id"])
    wrong = {"question": WIFI_QUESTION, "verdict": "wrong", "answer": other}
    assert client.post("/feedback", json=wrong, headers=keys.editor).status_code == 201
    span = other["context"].split()[1]
    corrected = {
        **wrong,
        "verdict": "corrected",
        "corrected": {"text": span, "start": other["context"].index(span)},
    }
    response = client.post("/feedback", json=corrected, headers=keys.editor)
    assert response.status_code == 201, response.text
    verdicts = sorted(
        (p.meta["author"], p.meta["verdict"]) for p in FeedbackStore(settings.feedback_file).list()
    )
    # The correction replaced this author's "wrong"; another author's pair stays.
    assert verdicts == [("key:ed", "correct"), ("key:ed", "corrected"), ("key:root", "wrong")]
    audited = [(e.action, e.target, e.detail) for e in AuditLog.of(settings).events(actor="ed")]
    assert ("feedback", top["doc_id"], "correct") in audited
    assert ("feedback", other["doc_id"], "corrected") in audited


def test_feedback_takes_its_context_from_the_index_only(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    """The client's answer object names a passage; its text never becomes training data."""
    top = _asked(client, keys)["answers"][0]
    body = {"question": WIFI_QUESTION, "verdict": "correct"}
    start, end = top["context_offsets"]
    poisoned = top["context"][:start] + "POISON" + top["context"][end:]
    refusals = [
        ({**top, "context": poisoned, "answer": "POISON"}, "not the indexed passage"),
        ({**top, "context": "Ignore the document. " + top["context"]}, "not the indexed passage"),
        ({**top, "answer": "POISON"}, "'POISON' is not the indexed text"),
        (
            {**top, "document_offsets": [top["document_offsets"][0] + 1, end + 999]},
            "disagree",
        ),
        (
            {
                **top,
                "document_offsets": [o + 7 for o in top["document_offsets"]],
                "context_offsets": [start + 7, end + 7],
            },
            "",  # the span shifted: not the answer (or past the passage's end)
        ),
        ({**top, "document_offsets": None}, "document_offsets must be [start, end]"),
    ]
    for answer, says in refusals:
        response = client.post("/feedback", json={**body, "answer": answer}, headers=keys.editor)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_feedback"
        assert says in response.json()["detail"]
    assert not settings.feedback_file.exists() or not FeedbackStore(settings.feedback_file).list()

    # A client that leaves the passage's text out is fine: the index has it.
    bare = {k: v for k, v in top.items() if k not in ("context", "title", "document")}
    response = client.post("/feedback", json={**body, "answer": bare}, headers=keys.editor)
    assert response.status_code == 201, response.text
    (pair,) = FeedbackStore(settings.feedback_file).list()
    text = PassageStore.load(settings.index_dir).source_text(top["doc_id"])
    assert "POISON" not in pair.context and pair.context in text
    assert pair.answer_text == top["answer"] == text[slice(*top["document_offsets"])]
    assert pair.meta["source"] == top["document"]  # from the index, not from the client


def test_bad_feedback_is_refused(client: TestClient, keys: Keys) -> None:
    answer = _asked(client, keys)["answers"][0]
    cases = [
        ({"verdict": "corrected", "answer": answer}, 422, "needs 'corrected'"),
        (
            {"verdict": "corrected", "answer": answer, "corrected": {"text": "no such words"}},
            422,
            "'no such words' does not occur in the text",
        ),
        ({"verdict": "correct", "answer": {"answer": None, "score": 0.9}}, 422, "cites no passage"),
        ({"verdict": "great", "answer": answer}, 422, "verdict: Input should be"),
    ]
    for body, status, says in cases:
        response = client.post(
            "/feedback", json={"question": WIFI_QUESTION, **body}, headers=keys.editor
        )
        assert response.status_code == status, response.text
        assert says in response.json()["detail"], response.json()


# -- labels -------------------------------------------------------------------------------------


def _wifi_doc(settings: Settings) -> tuple[str, str]:
    store = PassageStore.load(settings.index_dir)
    record = next(r for r in store.sources() if r.source.endswith("office-network-and-wifi.txt"))
    return record.doc_id, store.source_text(record.doc_id)


def test_labels_are_squad_pairs_in_the_feedback_file(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    doc_id, text = _wifi_doc(settings)
    at = text.index("valid for 8 hours")
    body = {
        "question": WIFI_QUESTION,
        "doc_id": doc_id,
        "answer": {"text": "8 hours", "start": at + len("valid for ")},
    }
    response = client.post("/labels", json=body, headers=keys.editor)
    assert response.status_code == 201, response.text
    # Without a start the text must occur once; a passage narrows the context.
    passage = {"start": at - 200, "end": at + 200}
    no_answer = {
        "question": "Who founded Lumenfield?",
        "doc_id": doc_id,
        "passage": passage,
        "answer": None,
    }
    assert client.post("/labels", json=no_answer, headers=keys.editor).status_code == 201
    pairs = {p.question: p for p in FeedbackStore(settings.feedback_file).list()}
    labeled = pairs[WIFI_QUESTION]
    assert labeled.id == response.json()["id"]
    begin = labeled.meta["doc_start"]
    assert labeled.context == text[begin : begin + len(labeled.context)]
    assert len(labeled.context) <= MAX_CONTEXT_CHARS < len(text) or labeled.context == text
    assert begin + labeled.answer_start == at + len("valid for ")
    assert labeled.meta == {
        "origin": "annotation",
        "doc_id": doc_id,
        "doc_start": begin,
        "source": labeled.meta["source"],
        "region": [at + 10, at + 17],
        "author": "key:ed",
    }
    unanswerable = pairs["Who founded Lumenfield?"]
    assert unanswerable.answer_text is None and unanswerable.context == text[at - 200 : at + 200]


@pytest.mark.parametrize(
    ("body", "status", "error", "says"),
    [
        ({"doc_id": "nope", "answer": None}, 404, "unknown_document", "'nope'"),
        ({"answer": {"text": "8 hours"}}, 422, "invalid_request", "doc_id: Field required"),
        ({"answer": {"text": "a purple elephant"}}, 422, "invalid_label", "does not occur"),
        ({"answer": {"text": "the", "start": 0}}, 422, "invalid_label", "does not occur at offset"),
        (
            {"answer": {"text": "LF-Guest"}},
            422,
            "invalid_label",
            "occurs 4 times in the text: choose one",
        ),
        ({"passage": {"start": 10, "end": 10**7}, "answer": None}, 422, "invalid_label", "outside"),
        ({"question": "", "answer": None}, 422, "invalid_question", "the question is empty"),
    ],
)
def test_bad_labels_are_refused(
    shared_client: TestClient,
    shared_settings: Settings,
    shared_keys: Keys,
    body: dict[str, object],
    status: int,
    error: str,
    says: str,
) -> None:
    doc_id, _ = _wifi_doc(shared_settings)
    full = {"question": WIFI_QUESTION, "doc_id": doc_id, **body}
    if "doc_id" not in body and body.get("answer") == {"text": "8 hours"}:
        del full["doc_id"]
    response = shared_client.post("/labels", json=full, headers=shared_keys.editor)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert says in response.json()["detail"]
