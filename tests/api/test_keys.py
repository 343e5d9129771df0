"""API keys: stored hashed and private, with a role and groups, and the `docqa keys` commands."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.keys import KEYS_FILE, ROLES, KeyStore, KeyStoreError
from docqa.cli import app as cli
from identity.roles import Caller, Role
from pipelines.settings import Settings
from tests.api.support import WIFI_QUESTION, Keys


def test_keys_are_stored_as_hashes_in_a_private_file(tmp_path) -> None:
    store = KeyStore(tmp_path / "home" / KEYS_FILE)
    key, token = store.create("reporting", "ask")
    assert token.startswith("docqa_") and len(token) == len("docqa_") + 43
    raw = store.path.read_text()
    assert token not in raw and token[6:] not in raw
    assert json.loads(raw)["keys"][0]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert store.authenticate(token) == key
    assert store.authenticate(token + "x") is None and store.authenticate("") is None
    assert [k.name for k in KeyStore(store.path).list()] == ["reporting"]
    assert store.list()[0].last_used is not None  # noted on first use

    with pytest.raises(KeyStoreError, match="a key named 'reporting' exists"):
        store.create("reporting", "admin")
    with pytest.raises(KeyStoreError, match="role must be one of viewer, editor, admin"):
        store.create("other", "root")
    with pytest.raises(KeyStoreError, match="a key name is 1-64 letters"):
        store.create("../evil", "ask")
    with pytest.raises(KeyStoreError, match="group names are 1-64 letters"):
        store.create("other", "viewer", "hr,bad group")
    assert ROLES == ("viewer", "editor", "admin")
    assert store.revoke("reporting") and not store.revoke("reporting")
    assert store.authenticate(token) is None

    store.path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="not a DocQA keys file"):
        store.create("another", "ask")
    assert store.path.read_text() == "{not json"  # never overwritten


def test_keys_have_a_role_and_groups_and_old_ask_keys_are_viewers(tmp_path) -> None:
    store = KeyStore(tmp_path / KEYS_FILE)
    key, token = store.create("hr-bot", "editor", "hr, payroll")
    assert (key.role, key.groups) == ("editor", ("hr", "payroll"))
    assert store.authenticate(token).caller() == Caller(
        "hr-bot", Role.EDITOR, frozenset({"hr", "payroll"}), kind="key"
    )
    assert json.loads(store.path.read_text())["keys"][0]["groups"] == ["hr", "payroll"]
    asker = store.create("asker", "ask")[0]
    assert (asker.role, asker.groups) == ("viewer", ())  # "ask" is stored as what it means

    # A file written before roles were renamed and keys had groups: its keys keep working.
    old_token = "docqa_" + "a" * 43
    old = {
        "name": "legacy",
        "role": "ask",
        "sha256": hashlib.sha256(old_token.encode()).hexdigest(),
        "created": "2024-01-01T00:00:00+00:00",
        "last_used": None,
    }
    store.path.write_text(json.dumps({"keys": [old]}))
    caller = store.authenticate(old_token).caller()
    assert (caller.role, caller.groups, caller.identity) == (Role.VIEWER, frozenset(), "key:legacy")
    # A role no one knows grants nothing: the file is refused, not read as a viewer's.
    store.path.write_text(json.dumps({"keys": [old | {"role": "root"}]}))
    with pytest.raises(KeyStoreError, match="not a DocQA keys file"):
        store.authenticate(old_token)
    store.path.write_text(json.dumps({"keys": [old | {"groups": "hr"}]}))
    with pytest.raises(KeyStoreError, match="a key's groups are a list"):
        store.list()


def test_docqa_keys_create_prints_a_key_that_works(
    shared_client: TestClient, shared_settings: Settings
) -> None:
    runner = CliRunner()
    home = str(shared_settings.home)
    created = runner.invoke(cli, ["keys", "create", "ci-bot", "--role", "admin", "--home", home])
    assert created.exit_code == 0, created.output
    token = created.stdout.split()[-1]
    response = shared_client.post(
        "/ask", json={"question": WIFI_QUESTION}, headers=Keys.header(token)
    )
    assert response.status_code == 200, response.text
    assert shared_client.get("/metrics", headers=Keys.header(token)).status_code == 200  # admin

    listed = runner.invoke(cli, ["keys", "list", "--home", home])
    assert listed.exit_code == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith("ci-bot"))
    assert " admin " in line and "created " in line and token not in listed.stdout

    bad_role = runner.invoke(cli, ["keys", "create", "x", "--role", "root", "--home", home])
    assert bad_role.exit_code == 2
    assert "role must be one of viewer, editor, admin" in bad_role.stderr
    revoked = runner.invoke(cli, ["keys", "revoke", "ci-bot", "--home", home])
    assert revoked.exit_code == 0 and "revoked 'ci-bot'" in revoked.stdout
    assert shared_client.get("/metrics", headers=Keys.header(token)).status_code == 401
    again = runner.invoke(cli, ["keys", "revoke", "ci-bot", "--home", home])
    assert again.exit_code == 1 and "no key named 'ci-bot'" in again.stderr
