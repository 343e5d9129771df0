"""/models: the versions as `docqa models` lists them; promotion through `docqa promote`'s logic."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from identity.audit import AuditLog
from pipelines.reader_registry import serving_name
from pipelines.settings import Settings
from tests.api.support import READER, WIFI_QUESTION, Keys, install_reader


def test_models_are_listed_with_the_serving_one(
    shared_client: TestClient, shared_keys: Keys
) -> None:
    response = shared_client.get("/models", headers=shared_keys.ask)
    assert response.status_code == 200, response.text
    by_name = {m["name"]: m for m in response.json()}
    assert by_name[READER]["serving"] is True
    assert sum(m["serving"] for m in by_name.values()) == 1
    assert by_name[READER]["heldout_f1"] == by_name[READER]["metrics"]["metrics"]["heldout"]["f1"]


def test_promotion_serves_the_next_question_with_the_new_reader(
    client: TestClient, settings: Settings, keys: Keys, tiny_reader: Path
) -> None:
    install_reader(settings, tiny_reader, "tiny-silent", -50.0)  # never answers
    ask = {"question": WIFI_QUESTION}
    first = client.post("/ask", json=ask, headers=keys.ask).json()
    assert first["reader"] == READER and first["answers"][0]["answer"] is not None

    for below in (keys.ask, keys.editor):
        refused = client.post("/models/tiny-silent/promote", json={"force": True}, headers=below)
        assert refused.status_code == 403
        assert refused.json()["detail"].endswith("promote needs 'admin'")
    response = client.post("/models/tiny-silent/promote", json={"force": True}, headers=keys.admin)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "tiny-silent now serves (forced)",
        "serving": "tiny-silent",
        "fixed_reader": None,
    }
    assert serving_name(settings) == "tiny-silent"
    after = client.post("/ask", json=ask, headers=keys.ask).json()
    assert after["reader"] == "tiny-silent" and after["answers"][0]["answer"] is None
    listed = {m["name"]: m["serving"] for m in client.get("/models", headers=keys.ask).json()}
    assert listed["tiny-silent"] and not listed[READER]
    # Promoting the serving reader again needs no evaluation.
    again = client.post("/models/tiny-silent/promote", headers=keys.admin)
    assert again.json()["message"] == "tiny-silent now serves"
    # The gate: a reader that scores lower on the dev pairs (the one that always answers, on
    # pairs a fifth of which have no answer) is refused without force.
    gated = client.post(f"/models/{READER}/promote", headers=keys.admin)
    assert gated.status_code == 409, gated.text
    assert gated.json()["error"] == "promotion_refused"
    assert "is lower than the serving reader's" in gated.json()["detail"]
    assert str(settings.home) not in gated.json()["detail"]  # the serving path: <home>/...
    assert serving_name(settings) == "tiny-silent"

    promotions = [
        (e.actor, e.outcome, e.target)
        for e in AuditLog.of(settings).events()
        if e.action == "promote"
    ]
    assert promotions == [
        ("key:asker", "denied", None),
        ("key:ed", "denied", None),
        ("key:root", "ok", "tiny-silent"),
        ("key:root", "ok", "tiny-silent"),
        ("key:root", "failed", READER),
    ]

    # The reader gauge moved with it.
    metrics = client.get("/metrics", headers=keys.admin).text
    assert 'docqa_reader_info{version="tiny-silent"} 1.0' in metrics
    assert f'docqa_reader_info{{version="{READER}"}} 0.0' in metrics


def test_promoting_what_is_not_a_model_is_refused(client: TestClient, keys: Keys) -> None:
    missing = client.post("/models/nope/promote", headers=keys.admin)
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_model"
    assert missing.json()["detail"] == "nope: no complete model folder in the home"
    hidden = client.post("/models/.hidden/promote", headers=keys.admin)
    assert hidden.status_code == 422
    assert hidden.json()["error"] == "invalid_model_name"
    typo = client.post("/models/nope/promote", json={"forced": True}, headers=keys.admin)
    assert typo.status_code == 422 and "forced: Extra inputs" in typo.json()["detail"]
