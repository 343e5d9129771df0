"""/models: the versions as `docqa models` lists them; promotion through `docqa promote`'s logic."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from pipelines.models import serving_name
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

    assert client.post("/models/tiny-silent/promote", headers=keys.ask).status_code == 403
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

    # The reader gauge moved with it.
    metrics = client.get("/metrics", headers=keys.admin).text
    assert 'docqa_reader_info{version="tiny-silent"} 1.0' in metrics
    assert f'docqa_reader_info{{version="{READER}"}} 0.0' in metrics


def test_promoting_what_is_not_a_model_is_refused(client: TestClient, keys: Keys) -> None:
    missing = client.post("/models/nope/promote", headers=keys.admin)
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_model"
    assert missing.json()["detail"].startswith("nope: no complete model folder at ")
    hidden = client.post("/models/.hidden/promote", headers=keys.admin)
    assert hidden.status_code == 422
    assert hidden.json()["error"] == "invalid_model_name"
    typo = client.post("/models/nope/promote", json={"forced": True}, headers=keys.admin)
    assert typo.status_code == 422 and "forced: Extra inputs" in typo.json()["detail"]
