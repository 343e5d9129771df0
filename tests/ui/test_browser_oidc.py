"""Single sign-on end to end in a real browser: ``docqa ui`` against an OpenID Connect provider.

The provider is ``oidc-provider-mock`` (a real OpenID Connect provider for tests: discovery,
authorization code flow, signed ID tokens, end session), served on 127.0.0.1 from a thread. The
test tells it the claims of a user (including a ``groups`` claim), writes ``<home>/auth.toml`` as
an administrator would (``[auth]`` for Streamlit, ``[docqa]`` mapping groups to roles) and starts
``docqa ui``, which hands the file to Streamlit. Chromium then logs in through the provider's
authorization form, lands on the page as that user with the role and groups of the claim, and
logs out through the provider.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import oidc_provider_mock
import pytest
import werkzeug.serving
from playwright.sync_api import Browser, expect

from identity import AuditLog
from pipelines.settings import Settings
from tests.ui.browser_support import free_port, running, wait_idle

CLAIMS = {
    "preferred_username": "olivia",
    "email": "olivia@example.com",
    "name": "Olivia Okafor",
    "groups": ["docqa-editors", "/ops"],  # a Keycloak-style full path: "/ops" is group "ops"
}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """An OpenID Connect provider on a free loopback port; its issuer URL."""
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture(scope="module")
def sso_server(
    provider: str, base_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """``docqa ui`` with single sign-on configured in its home: its URL and the home."""
    root = tmp_path_factory.mktemp("browser-oidc")
    home = root / "home"
    shutil.copytree(base_home, home, symlinks=True)
    (home / "users.json").unlink()  # single sign-on only
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = home / "auth.toml"
    auth.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        'client_id = "docqa"\n'
        f'client_secret = "{secrets.token_urlsafe(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
        "\n[docqa]\n"
        'admin_groups = ["docqa-admins"]\n'
        'editor_groups = ["docqa-editors"]\n',
        encoding="utf-8",
    )
    os.chmod(auth, 0o600)
    command = [sys.executable, "-m", "docqa", "ui", "--home", str(home), "--port", str(port)]
    command += ["--no-demo", "--headless"]
    with running(command, url, root / "ui.log", {}) as started:
        yield started, home


def test_single_sign_on_logs_in_with_the_groups_claim_and_logs_out(
    provider: str, sso_server: tuple[str, Path], browser: Browser
) -> None:
    url, home = sso_server
    request = urllib.request.Request(
        f"{provider}/users/olivia",
        data=json.dumps(CLAIMS).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 204

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url)
        login = page.get_by_role("button", name="Log in with single sign-on")
        expect(login).to_be_visible(timeout=60_000)
        expect(page.get_by_role("textbox", name="Question")).to_have_count(0)
        login.click()

        # The provider's authorization form: who is logging in.
        page.get_by_placeholder("sub").fill("olivia")
        page.get_by_role("button", name="Authorize").click()

        # Back on the page, as olivia, an editor (docqa-editors) in the groups of the claim.
        expect(page.get_by_text("olivia (editor · groups docqa-editors, ops)")).to_be_visible(
            timeout=60_000
        )
        wait_idle(page)
        expect(page.get_by_role("textbox", name="Question")).to_be_visible()
        expect(page.get_by_role("link", name="Annotate")).to_be_visible()
        expect(page.get_by_role("link", name="Models")).to_have_count(0)  # admins only

        # Logging out ends the session here and at the provider.
        page.get_by_role("button", name="Log out").click()
        end = page.get_by_role("button", name="End session")  # the provider asks to confirm
        expect(end).to_be_visible(timeout=30_000)
        assert page.url.startswith(provider)
        end.click()
        expect(page.get_by_role("button", name="Log in with single sign-on")).to_be_visible(
            timeout=60_000
        )
        expect(page.get_by_role("textbox", name="Question")).to_have_count(0)
    finally:
        page.close()
    events = [
        (e.actor, e.action, e.outcome)
        for e in AuditLog.of(Settings(home=home)).events()
        if e.action in ("login", "logout")
    ]
    assert events == [("sso:olivia", "login", "ok"), ("sso:olivia", "logout", "ok")]
