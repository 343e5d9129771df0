"""Starting the web page: Streamlit always headless (its first run would otherwise ask for an
email on stdin and exit where there is no terminal), and the browser opened by DocQA itself once
the server answers, when someone is at a terminal.

The server listens on 127.0.0.1 unless told another address (``docqa ui --host ADDR``); serving
on any other address with no login configured (no single sign-on, no local account) is refused
unless ``--no-auth`` says so (:func:`preflight`). Streamlit reads secrets (the ``[auth]`` of
single sign-on) from ``<home>/auth.toml`` only (``--secrets.files``), never from
``~/.streamlit`` or the working folder. ``--server.address`` and ``--browser.serverAddress``
are always set: without them Streamlit looks up this machine's addresses at start, asking
checkip.amazonaws.com for the public one (``net_util.get_external_ip``) and "connecting" a
socket to 8.8.8.8 for the local one.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.settings import Settings
from ui.login_config import (
    AuthConfigError,
    auth_file,
    check_private,
    has_local_accounts,
    is_loopback,
    issue_sign_in_token,
    login_configured,
    read_sso,
)

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_HOST = "127.0.0.1"
_WILDCARDS = {"", "0.0.0.0", "::"}


@dataclass
class Preflight:
    """Whether the page may start as asked: ``refusal`` says why not; ``notes`` what to know."""

    refusal: str | None = None
    notes: list[str] = field(default_factory=list)


def preflight(settings: Settings, host: str, no_auth: bool) -> Preflight:
    try:
        sso = read_sso(settings)
        if sso is not None:
            check_private(auth_file(settings))
    except AuthConfigError as exc:
        return Preflight(refusal=str(exc))
    loopback = is_loopback(host)
    if no_auth:
        if loopback:
            note = "no login (--no-auth): the page acts as you, the home's owner (admin)"
            note += f"; anyone who can connect to {host} on this machine can use it"
        else:
            note = (
                f"no login (--no-auth) on {host}: everyone who reaches it is an anonymous viewer"
                " of the documents no access rule restricts"
            )
        return Preflight(notes=[note])
    if sso is not None:
        return Preflight(notes=[f"single sign-on: {sso.redirect_uri}"])
    if has_local_accounts(settings):
        return Preflight()
    if not loopback:
        return Preflight(
            refusal=f"refusing to serve the page on {host} with no login configured: anyone who"
            " reaches it could read every document. Create an account (docqa users create NAME"
            f" --role admin), configure single sign-on in {auth_file(settings)}, or pass"
            " --no-auth to serve it without a login (visitors are anonymous viewers)."
        )
    return Preflight(
        notes=[
            "no login is configured: the page opens through the sign-in link below (you, the"
            " home's owner); to let others in, create accounts with `docqa users create NAME"
            " --role ROLE` or configure single sign-on"
        ]
    )


def browser_address(host: str) -> str:
    """The host name URLs are printed with (a wildcard address is no address to browse to)."""
    if host in _WILDCARDS:
        return socket.gethostname()  # this machine's own name: no lookup, no network
    return host


def streamlit_command(
    settings: Settings, port: int, host: str = DEFAULT_HOST, no_auth: bool = False
) -> list[str]:
    script_args = ["--home", str(settings.home)] + (["--no-auth"] if no_auth else [])
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--browser.serverAddress",
        browser_address(host),
        "--secrets.files",
        str(auth_file(settings)),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        "50",
        "--client.toolbarMode",
        "minimal",
        "--",
        *script_args,
    ]


def serve(
    settings: Settings,
    port: int,
    open_browser: bool,
    host: str = DEFAULT_HOST,
    no_auth: bool = False,
    url: str | None = None,
) -> int:
    """Run the page until it stops; its exit status. ``url``: what the browser opens (the
    sign-in link, see :func:`sign_in_url`)."""
    url = url or f"http://{page_host(host)}:{port}"
    server = subprocess.Popen(
        streamlit_command(settings, port, host, no_auth), stdin=subprocess.DEVNULL
    )
    # Stopping DocQA (Ctrl+C, or SIGTERM from systemd, a container, a test) stops the server.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    if open_browser:
        _open_when_up(url, server)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()


def sign_in_url(settings: Settings, host: str, port: int, no_auth: bool) -> str | None:
    """The page's sign-in link when nobody can log in yet (no single sign-on, no account) and
    it listens on loopback: a new secret each start (Jupyter's way), so the person who started
    it gets in and another local user who reaches the port does not. None otherwise."""
    if no_auth or not is_loopback(host) or login_configured(settings):
        return None
    return f"http://{page_host(host)}:{port}/?token={issue_sign_in_token(settings)}"


def page_host(host: str) -> str:
    """The host of the page's URL for someone on this machine."""
    if host in _WILDCARDS or is_loopback(host):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _open_when_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Open ``url`` in a browser once the server answers its health check."""

    def wait_and_open() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    webbrowser.open(url)
                    return
            except OSError:
                time.sleep(0.5)

    threading.Thread(target=wait_and_open, daemon=True).start()
