"""Bodies over the limit are refused with 413 before they are read, with a JSON error."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import MAX_JSON_BYTES
from pipelines.settings import Settings
from tests.api.support import Keys


def test_an_oversize_json_body_is_refused(shared_client: TestClient, shared_keys: Keys) -> None:
    body = json.dumps({"question": "x" * (MAX_JSON_BYTES + 10)})
    response = shared_client.post(
        "/ask", content=body, headers={**shared_keys.ask, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "request_too_large",
        "detail": f"the request body is {len(body):,} bytes; the limit is {MAX_JSON_BYTES:,} bytes",
    }
    # Refused before the key was even looked at: no key needed to be told.
    assert shared_client.post("/ask", content=body).status_code == 413


def test_a_chunked_body_is_cut_off_at_the_limit(
    shared_client: TestClient, shared_keys: Keys
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(40):
            yield b"x" * 64 * 1024  # 2.5 MB in all, with no Content-Length
        yield b'"}'

    response = shared_client.post(
        "/ask", content=chunks(), headers={**shared_keys.ask, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert "is over " in response.json()["detail"]
    assert response.json()["detail"].endswith("the limit is 1,048,576 bytes")


def test_uploads_are_limited_by_the_settings(settings: Settings, keys: Keys) -> None:
    limited = settings.with_(api_max_request_mb=0.05)  # 52,428 bytes
    with TestClient(create_app(limited)) as client:
        files = [("files", ("big.txt", b"word " * 20_000, "text/plain"))]
        response = client.post("/documents", files=files, headers=keys.admin)
        assert response.status_code == 413
        assert response.json()["error"] == "request_too_large"
        assert "the limit is 52,428 bytes" in response.json()["detail"]
        small = [("files", ("small.txt", b"A short note about the garden.", "text/plain"))]
        assert client.post("/documents", files=small, headers=keys.admin).status_code == 201
        metrics = client.get("/metrics", headers=keys.admin).text
    assert (
        'docqa_api_requests_total{endpoint="/documents",method="POST",status="413"} 1.0' in metrics
    )
    assert not (settings.uploads_dir / "big.txt").exists()
