"""How the page's login is configured (``ui.login_config``) and what ``docqa ui`` starts with."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from identity import Role, UserStore
from pipelines.settings import REPO_ROOT, Settings
from ui.launch import preflight, streamlit_command
from ui.login_config import AuthConfigError, RoleMapping, is_loopback, read_sso

AUTH = """
[auth]
redirect_uri = "https://docqa.example.com/oauth2callback"
cookie_secret = "0123456789abcdef0123456789abcdef"
client_id = "docqa"
client_secret = "s3cret"
server_metadata_url = "https://sso.example.com/.well-known/openid-configuration"
"""


def write_auth(settings: Settings, text: str, mode: int = 0o600) -> Path:
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "auth.toml"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_groups_claim_maps_to_the_highest_role() -> None:
    mapping = RoleMapping.of(
        {"admin_groups": ["it"], "editor_groups": ["/writers"], "groups_claim": "roles"}
    )
    editor = mapping.caller({"preferred_username": "ann", "roles": ["/writers", "hr", " "]})
    assert editor is not None
    assert (editor.name, editor.role, editor.groups) == ("ann", Role.EDITOR, {"writers", "hr"})
    assert editor.identity == "sso:ann"
    admin = mapping.caller({"sub": "u-1", "roles": "writers, it"})  # one string: split
    assert admin is not None and admin.role is Role.ADMIN and admin.name == "u-1"
    viewer = mapping.caller({"email": "bo@example.com"})  # no groups: a viewer
    assert viewer is not None and viewer.role is Role.VIEWER and not viewer.groups
    assert mapping.caller({"roles": ["it"]}) is None  # no name claim at all


def test_viewer_groups_let_in_only_their_members() -> None:
    mapping = RoleMapping.of({"viewer_groups": ["staff"], "editor_groups": ["writers"]})
    assert mapping.caller({"sub": "x", "groups": ["guests"]}) is None
    assert mapping.caller({"sub": "x", "groups": ["staff"]}).role is Role.VIEWER  # type: ignore[union-attr]
    assert mapping.caller({"sub": "x", "groups": ["writers"]}).role is Role.EDITOR  # type: ignore[union-attr]


def test_auth_file_is_read_and_checked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    assert read_sso(settings) is None
    write_auth(settings, AUTH + '\n[docqa]\nadmin_groups = ["it"]\n')
    sso = read_sso(settings)
    assert sso is not None and sso.mapping.admin_groups == {"it"}
    write_auth(settings, AUTH.replace('client_id = "docqa"\n', ""))
    with pytest.raises(AuthConfigError, match="needs client_id"):
        read_sso(settings)
    write_auth(settings, AUTH.replace("0123456789abcdef0123456789abcdef", "short"))
    with pytest.raises(AuthConfigError, match="cookie_secret"):
        read_sso(settings)
    write_auth(settings, AUTH + '\n[docqa]\nadmin_groups = "it"\n')
    with pytest.raises(AuthConfigError, match="admin_groups is a list"):
        read_sso(settings)


def test_preflight_refuses_an_exposed_page_without_a_login(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("docqa.lan")

    loopback = preflight(settings, "127.0.0.1", no_auth=False)
    assert loopback.refusal is None and "sign-in link" in loopback.notes[0]
    exposed = preflight(settings, "0.0.0.0", no_auth=False)
    assert exposed.refusal is not None and "no login configured" in exposed.refusal
    forced = preflight(settings, "0.0.0.0", no_auth=True)
    assert forced.refusal is None and "anonymous viewer" in forced.notes[0]
    assert "admin" in preflight(settings, "127.0.0.1", no_auth=True).notes[0]

    UserStore.of(settings).create("ada", "admin", None, "correct horse battery")
    assert preflight(settings, "0.0.0.0", no_auth=False).refusal is None

    path = write_auth(settings, AUTH, mode=0o644)
    refused = preflight(settings, "0.0.0.0", no_auth=False).refusal
    assert refused is not None and "chmod 600" in refused
    os.chmod(path, 0o600)
    assert preflight(settings, "0.0.0.0", no_auth=False).notes == [
        "single sign-on: https://docqa.example.com/oauth2callback"
    ]


def test_the_server_listens_where_told_and_reads_secrets_from_the_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    command = streamlit_command(settings, 8600)
    options = dict(itertools.pairwise(command))  # each option -> the word after it
    assert options["--server.address"] == "127.0.0.1"
    # Set, so Streamlit never looks this machine's addresses up (8.8.8.8, checkip.amazonaws).
    assert options["--browser.serverAddress"] == "127.0.0.1"
    assert options["--secrets.files"] == str(settings.home / "auth.toml")
    assert command[-2:] == ["--home", str(settings.home)]
    exposed = streamlit_command(settings, 8600, host="0.0.0.0", no_auth=True)
    assert (
        "--no-auth" in exposed
        and "0.0.0.0" not in exposed[exposed.index("--browser.serverAddress") + 1]
    )


def test_docqa_ui_refuses_to_expose_a_page_nobody_logs_in_to(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "docqa", "ui", "--no-demo", "--host", "0.0.0.0", "--port", "9"],
        cwd=REPO_ROOT,
        env=os.environ | {"DOCQA_HOME": str(tmp_path / "home")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to serve the page on 0.0.0.0 with no login configured" in done.stderr
    assert "--no-auth" in done.stderr


def test_a_sign_in_link_only_where_nobody_can_log_in_yet(tmp_path: Path) -> None:
    from ui.launch import sign_in_url
    from ui.login_config import sign_in_token_matches

    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    link = sign_in_url(settings, "127.0.0.1", 8501, no_auth=False)
    assert link is not None and link.startswith("http://localhost:8501/?token=")
    token = link.split("token=", 1)[1]
    assert sign_in_token_matches(settings, token)
    assert not sign_in_token_matches(settings, token[:-1]) and not sign_in_token_matches(
        settings, ""
    )
    assert token not in (settings.home / "ui_sign_in.sha256").read_text()  # only its hash kept
    # A new start makes a new secret: the old link stops working.
    assert sign_in_url(settings, "127.0.0.1", 8501, no_auth=False) != link
    assert not sign_in_token_matches(settings, token)
    # Never on another address, with --no-auth, or once someone can log in.
    assert sign_in_url(settings, "0.0.0.0", 8501, no_auth=False) is None
    assert sign_in_url(settings, "127.0.0.1", 8501, no_auth=True) is None
    UserStore.of(settings).create("ada", "admin", None, "correct horse battery")
    assert sign_in_url(settings, "127.0.0.1", 8501, no_auth=False) is None
