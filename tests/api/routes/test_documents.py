"""/documents: upload real files, ask about them, delete them; refusals name file and problem."""

from __future__ import annotations

from fastapi.testclient import TestClient
from filelock import FileLock

from identity.audit import AuditLog
from indexer.uploads import MAX_UPLOAD_BYTES
from pipelines.settings import Settings
from pipelines.store import PassageStore
from pipelines.store.versions import WRITER_LOCK_FILE
from tests.api.support import FIXTURES, Keys

NEW_DOCUMENT = (
    "Facilities notes for the Rotterdam office.\n\n"
    "The Zorblax cooling unit in the basement is serviced by Quentin Marlowe every Thursday "
    "morning. Report any noise from the unit to the facilities desk.\n"
)
NEW_QUESTION = "Who services the Zorblax cooling unit?"


def _cites(client: TestClient, keys: Keys, source: str) -> bool:
    response = client.post("/ask", json={"question": NEW_QUESTION, "k": 3}, headers=keys.ask)
    assert response.status_code == 200, response.text
    return any(a["document"] == source for a in response.json()["answers"] if a["answer"])


def test_upload_ask_and_delete(client: TestClient, settings: Settings, keys: Keys) -> None:
    before = client.get("/documents/status", headers=keys.ask).json()
    assert before["documents"] == 5 and not before["indexing"]
    assert not _cites(client, keys, "uploads/zorblax-notes.txt")

    files = [("files", ("zorblax-notes.txt", NEW_DOCUMENT.encode(), "text/plain"))]
    response = client.post("/documents", files=files, headers=keys.admin)
    assert response.status_code == 201, response.text
    (uploaded,) = response.json()["files"]
    assert uploaded["status"] == "indexed" and uploaded["saved_as"] == "zorblax-notes.txt"
    assert uploaded["passages"] == 1 and response.json()["indexed"] == 1
    assert response.json()["index_version"] != before["index_version"]
    assert (settings.uploads_dir / "zorblax-notes.txt").read_text() == NEW_DOCUMENT

    # The next question is answered from the new version, citing the new document.
    assert _cites(client, keys, "uploads/zorblax-notes.txt")
    listed = client.get("/documents", headers=keys.ask).json()
    mine = next(d for d in listed if d["doc_id"] == uploaded["doc_id"])
    assert mine["uploaded"] and mine["source"] == "uploads/zorblax-notes.txt"
    assert sum(d["uploaded"] for d in listed) == 1 and len(listed) == 6
    status = client.get("/documents/status", headers=keys.ask).json()
    assert status["documents"] == 6 and status["index_version"] == status["loaded_version"]

    # The same bytes again: already indexed, nothing new.
    again = client.post("/documents", files=files, headers=keys.admin)
    assert again.status_code == 201
    assert again.json()["files"][0]["status"] == "duplicate"

    deleted = client.delete(f"/documents/{uploaded['doc_id']}", headers=keys.admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["removed"] == "uploads/zorblax-notes.txt"
    # It says what else was erased, and what still holds something of it.
    assert deleted.json()["erased"].startswith("0 labeled pair(s) and ")
    assert any("readers trained before" in what for what in deleted.json()["remains"])
    assert not (settings.uploads_dir / "zorblax-notes.txt").exists()
    assert not _cites(client, keys, "uploads/zorblax-notes.txt")
    gone = client.delete(f"/documents/{uploaded['doc_id']}", headers=keys.admin)
    assert gone.status_code == 404
    assert gone.json() == {
        "error": "unknown_document",
        "detail": f"no indexed document has the id {uploaded['doc_id']!r}",
    }


def test_bad_files_are_refused_one_by_one_and_the_good_ones_kept(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    files = [
        ("files", ("hours.txt", (FIXTURES / "opening-hours.txt").read_bytes(), "text/plain")),
        ("files", ("../../etc/passwd.txt", b"root:x:0:0", "text/plain")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("corrupt.pdf", (FIXTURES / "corrupt.pdf").read_bytes(), "application/pdf")),
        ("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
    ]
    response = client.post("/documents", files=files, headers=keys.admin)
    assert response.status_code == 207, response.text
    by_name = {f["name"]: f for f in response.json()["files"]}
    assert list(by_name) == ["hours.txt", "../../etc/passwd.txt", "empty.txt", "corrupt.pdf",
                             "tool.exe"]  # fmt: skip
    assert by_name["hours.txt"]["status"] == "indexed"
    assert by_name["../../etc/passwd.txt"] == {
        "name": "../../etc/passwd.txt",
        "status": "rejected",
        "reason": "'../../etc/passwd.txt': a file name must not contain folders ('/', '\\', '..')",
        "saved_as": "",
        "doc_id": "",
        "passages": 0,
    }
    assert by_name["empty.txt"]["reason"] == "empty.txt: the file is empty"
    assert by_name["corrupt.pdf"]["status"] == "failed"
    assert by_name["corrupt.pdf"]["reason"].startswith("not a readable PDF")
    assert by_name["tool.exe"]["reason"].startswith("tool.exe: unsupported file type '.exe'")
    assert sorted(p.name for p in settings.uploads_dir.iterdir()) == [".incoming", "hours.txt"]
    assert not (settings.home.parent / "etc").exists()

    # Nothing good at all: 422, and the detail names every file and its problem.
    bad = client.post("/documents", files=files[1:], headers=keys.admin)
    assert bad.status_code == 422
    body = bad.json()
    assert body["error"] == "nothing_indexed"
    for name in ("passwd.txt", "empty.txt", "corrupt.pdf: not a readable PDF", "tool.exe"):
        assert name in body["detail"]
    assert [f["status"] for f in body["files"]] == ["rejected", "rejected", "failed", "rejected"]
    # What was indexed before is all still there.
    sources = {r.source for r in PassageStore.load(settings.index_dir).sources()}
    assert "uploads/hours.txt" in sources and len(sources) == 6


def test_a_file_over_the_upload_limit_is_refused(client: TestClient, keys: Keys) -> None:
    files = [("files", ("big.txt", b"w" * (MAX_UPLOAD_BYTES + 2**20), "text/plain"))]
    response = client.post("/documents", files=files, headers=keys.admin)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "big.txt: 51.0 MB is over the upload limit of 50 MB (index large files with `docqa index`)"
    )


def test_editors_upload_and_only_admins_delete(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    files = [("files", ("a.txt", b"Some text about the garden shed.", "text/plain"))]
    refused = client.post("/documents", files=files, headers=keys.ask)
    assert refused.status_code == 403
    # The key was made with the old role name "ask": it is a viewer.
    assert (
        refused.json()["detail"] == "the key 'asker' has the role 'viewer'; upload needs 'editor'"
    )
    uploaded = client.post("/documents", files=files, headers=keys.editor)
    assert uploaded.status_code == 201, uploaded.text
    doc_id = uploaded.json()["files"][0]["doc_id"]
    for who in (keys.ask, keys.editor):
        denied = client.delete(f"/documents/{doc_id}", headers=who)
        assert denied.status_code == 403
        assert denied.json()["detail"].endswith("delete document needs 'admin'")
    assert client.delete(f"/documents/{doc_id}").status_code == 401
    assert client.post("/documents", files=files).status_code == 401
    assert client.delete(f"/documents/{doc_id}", headers=keys.admin).status_code == 200
    events = [(e.actor, e.action, e.outcome) for e in AuditLog.of(settings).events()]
    assert events == [
        ("key:asker", "upload", "denied"),
        ("key:ed", "upload", "ok"),
        ("key:asker", "delete_document", "denied"),
        ("key:ed", "delete_document", "denied"),
        ("key:root", "delete_document", "ok"),
    ]


def test_a_running_indexer_shows_in_the_status_and_blocks_uploads(
    client: TestClient, settings: Settings, keys: Keys
) -> None:
    with FileLock(str(settings.home / WRITER_LOCK_FILE)):
        assert client.get("/documents/status", headers=keys.ask).json()["indexing"] is True
        files = [("files", ("a.txt", b"Some text.", "text/plain"))]
        busy = client.post("/documents", files=files, headers=keys.admin)
        assert busy.status_code == 409
        assert busy.json()["error"] == "index_busy"
        assert "another indexer is running" in busy.json()["detail"]
    assert client.get("/documents/status", headers=keys.ask).json()["indexing"] is False
    assert not (settings.uploads_dir / "a.txt").exists()
