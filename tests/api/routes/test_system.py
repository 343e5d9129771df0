"""/health, /ready, /metrics, /docs and /openapi.json."""

from __future__ import annotations

import os
import re
import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from pipelines.settings import Settings
from tests.api.support import READER, WIFI_QUESTION, Keys


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_needs_no_key_and_says_what_is_loaded(
    shared_client: TestClient, shared_settings: Settings
) -> None:
    deadline = time.monotonic() + 60
    response = shared_client.get("/health")
    while response.status_code == 503 and time.monotonic() < deadline:
        assert response.json()["status"] == "loading"  # the warm-up started at startup
        time.sleep(0.2)
        response = shared_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["index_loaded"] and body["reader_loaded"]
    assert body["reader"] == READER and body["index_version"].startswith("v-")
    # Which worker answered is told by an opaque name, never its process id.
    assert "worker" not in body
    worker = response.headers["X-DocQA-Worker"]
    assert re.fullmatch(r"[0-9a-f]{12}", worker) and str(os.getpid()) not in worker
    ready = shared_client.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert ready.headers["X-DocQA-Worker"] == worker


def test_health_of_an_empty_home(tmp_path) -> None:
    with TestClient(create_app(Settings(home=tmp_path / "empty"))) as client:
        response = client.get("/health")
        ready = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "no_index" and not response.json()["index_loaded"]
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert str(tmp_path) not in response.text + ready.text


def test_metrics_count_requests_and_time_questions(
    shared_client: TestClient, shared_keys: Keys
) -> None:
    assert shared_client.get("/metrics").status_code == 401
    refused = shared_client.get("/metrics", headers=shared_keys.ask)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "the key 'asker' has the role 'viewer'; read metrics needs 'admin'"
        " (or start the server with api_open_metrics)"
    )
    before = _samples(shared_client.get("/metrics", headers=shared_keys.admin).text)

    for _ in range(2):
        ok = shared_client.post("/ask", json={"question": WIFI_QUESTION}, headers=shared_keys.ask)
        assert ok.status_code == 200
    shared_client.post("/ask", json={"question": ""}, headers=shared_keys.ask)
    assert shared_client.get("/no/such/path").status_code == 401  # no key: nothing learned
    assert shared_client.get("/no/such/path", headers=shared_keys.ask).status_code == 404
    response = shared_client.get("/metrics", headers=shared_keys.admin)
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ask = {"endpoint": "/ask", "method": "POST"}
    assert grew("docqa_api_requests_total", **ask, status="200") == 2
    assert grew("docqa_api_requests_total", **ask, status="422") == 1
    assert grew("docqa_api_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert grew("docqa_api_requests_total", endpoint="unmatched", method="GET", status="401") == 1
    refusals = {"endpoint": "/metrics", "method": "GET", "status": "403"}
    assert after[("docqa_api_requests_total", tuple(sorted(refusals.items())))] == 1
    assert grew("docqa_ask_duration_seconds_count") == 2
    assert grew("docqa_ask_duration_seconds_bucket", le="+Inf") == 2
    assert grew("docqa_ask_results_total", outcome="answered") == 2  # tiny-answers always answers
    assert after[("docqa_reader_info", (("version", READER),))] == 1.0
    assert re.search(r"^# TYPE docqa_ask_duration_seconds histogram$", response.text, re.M)


def test_metrics_can_be_open(settings: Settings) -> None:
    with TestClient(create_app(settings.with_(api_open_metrics=True))) as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and "docqa_api_requests_total" in response.text


def test_openapi_docs_are_open_and_typed(shared_client: TestClient) -> None:
    assert shared_client.get("/docs").status_code == 200
    spec = shared_client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/ask", "/feedback", "/labels", "/health", "/ready", "/metrics", "/models"} <= paths
    assert {"/documents", "/documents/{doc_id}", "/documents/status"} <= paths
    assert "/models/{name}/promote" in paths
    schemas = spec["components"]["schemas"]
    assert {"AskRequest", "AskResponse", "AnswerOut", "FeedbackRequest", "LabelRequest"} <= set(
        schemas
    )
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ask = spec["paths"]["/ask"]["post"]
    assert ask["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
    assert "security" not in spec["paths"]["/ready"]["get"]
    assert "worker" not in schemas["Health"]["properties"]
    assert "path" not in schemas["AnswerOut"]["properties"]
