"""Local accounts (identity.users): Argon2id hashes in a private file, names and passwords
checked, login by password."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from identity import Role, UserError, UserStore
from identity.users import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.json")


def test_a_created_user_logs_in_with_their_password_only(store: UserStore) -> None:
    user = store.create("ann", "editor", "hr, eng", PASSWORD)
    assert (user.role, user.groups) == ("editor", ("eng", "hr"))
    raw = store.path.read_text(encoding="utf-8")
    assert PASSWORD not in raw
    stored = json.loads(raw)["users"][0]
    assert stored["password_hash"].startswith("$argon2id$")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    logged_in = store.authenticate("ann", PASSWORD)
    assert logged_in is not None
    caller = logged_in.caller()
    assert (caller.name, caller.role, caller.groups) == ("ann", Role.EDITOR, {"hr", "eng"})
    assert caller.identity == "user:ann"
    for name, password in (
        ("ann", PASSWORD + " "),
        ("ann", PASSWORD.upper()),
        ("ann", ""),
        ("bob", PASSWORD),
        ("", PASSWORD),
    ):
        assert store.authenticate(name, password) is None, (name, password)


def test_names_passwords_roles_and_groups_are_checked(store: UserStore) -> None:
    for name in ("../ann", "a/b", "..", ".ann", "-ann", "", "a" * 65, "ann\n", "ann bob"):
        with pytest.raises(UserError, match="a user name is"):
            store.create(name, "viewer", None, PASSWORD)
    with pytest.raises(UserError, match=f"at least {MIN_PASSWORD_CHARS} characters"):
        store.create("ann", "viewer", None, "x" * (MIN_PASSWORD_CHARS - 1))
    with pytest.raises(UserError, match=f"at most {MAX_PASSWORD_CHARS} characters"):
        store.create("ann", "viewer", None, "x" * (MAX_PASSWORD_CHARS + 1))
    with pytest.raises(UserError, match="role must be one of"):
        store.create("ann", "root", None, PASSWORD)
    with pytest.raises(UserError, match="group names"):
        store.create("ann", "viewer", "hr,../x", PASSWORD)
    assert not store.path.exists()  # nothing was written for a refused user

    assert store.create("ann", "ask", None, PASSWORD).role == "viewer"  # "ask" reads as viewer
    with pytest.raises(UserError, match="a user named 'ann' exists"):
        store.create("ann", "admin", None, "another password")
    assert store.get("ann").role == "viewer"
    assert store.authenticate("ann", PASSWORD) is not None


def test_set_password_remove_and_list(store: UserStore) -> None:
    store.create("bob", "viewer", "eng", PASSWORD)
    store.create("ann", "admin", None, PASSWORD)
    assert [u.name for u in store.list()] == ["ann", "bob"]

    store.set_password("bob", "a brand new secret")
    assert store.authenticate("bob", PASSWORD) is None
    assert store.authenticate("bob", "a brand new secret") is not None
    with pytest.raises(UserError, match="at least"):
        store.set_password("bob", "short")
    assert store.authenticate("bob", "a brand new secret") is not None  # unchanged
    with pytest.raises(UserError, match="no user named 'zed'"):
        store.set_password("zed", PASSWORD)

    assert store.remove("bob") is True and store.remove("bob") is False
    assert [u.name for u in store.list()] == ["ann"]
    assert store.authenticate("bob", "a brand new secret") is None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_an_unreadable_users_file_is_an_error_and_never_overwritten(store: UserStore) -> None:
    store.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not a DocQA users file"):
        store.list()
    with pytest.raises(UserError, match="not a DocQA users file"):
        store.create("ann", "viewer", None, PASSWORD)
    assert store.path.read_text(encoding="utf-8") == "{not json"
