"""Who is using the page: the login (single sign-on or local accounts), the caller of each run,
and the gate every action passes.

How logging in is configured is :mod:`ui.login_config`. The caller is worked out again on every
run, never trusted from an earlier one: a local account's name is kept in the session only after
:meth:`identity.UserStore.authenticate` accepted its password, and its role and groups are read
from ``users.json`` each time (removing an account or changing its role applies at its next
click); a single sign-on user is ``st.user`` (Streamlit's signed identity cookie) mapped to a role
by ``[docqa]``. Nothing of the page is drawn before there is a caller.

Every handler that changes something (a button's callback, an upload) asks :func:`permitted`
first: pages hide what a role may not do, and the server code refuses it too (a role taken away
while the page was open, a crafted message). Refusals are shown and written to the audit log,
as are logins (accepted or not), logouts and every change.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import streamlit as st

from identity import Action, AuditLog, Caller, PermissionDenied, Role, UserError, UserStore
from identity.roles import ACTION_ROLE, local_operator
from ui import login_config, render, state

SESSION_USER = "docqa_user"  # a local account's name, set after its password was checked
SESSION_LINK = "docqa_signed_in_by_link"  # this session opened the sign-in link of docqa ui
SESSION_SSO_SEEN = "docqa_sso_seen"  # the single sign-on login of this session is audited
FLASH = "docqa_flash"  # refusals to show on the next run (callbacks run before the page)
ANONYMOUS = Caller(name="anonymous", role=Role.VIEWER, kind="anonymous")


class Mode(StrEnum):
    OPERATOR = "operator"  # --no-auth on loopback: the home's owner
    ANONYMOUS = "anonymous"  # --no-auth on another address: a viewer with no groups
    SSO = "sso"
    LOCAL = "local"
    LINK = "link"  # nothing configured, loopback: the sign-in link docqa ui opened (the owner)
    BROKEN = "broken"  # auth.toml unusable, or not loaded by Streamlit: nobody gets in


@dataclass
class LoginThrottle:
    """At most ``limit`` failed logins per account name in ``window`` seconds (per process):
    guessing passwords through the form is slowed to a crawl; the account's owner waits."""

    limit: int = 5
    window: float = 600.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, name: str) -> deque[float]:
        now = time.monotonic()
        failures = self._failures.setdefault(name, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def blocked(self, name: str) -> bool:
        with self._lock:
            return len(self._recent(name)) >= self.limit

    def failed(self, name: str) -> None:
        with self._lock:
            self._recent(name).append(time.monotonic())
            if len(self._failures) > 10_000:  # names typed by a guesser: keep memory bounded
                self._failures.clear()

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


@st.cache_resource(show_spinner=False)
def _throttle(home: str) -> LoginThrottle:
    return LoginThrottle()


def audit_log() -> AuditLog:
    return AuditLog.of(state.settings())


def audit(
    who: Caller | None,
    action: str,
    outcome: str = "ok",
    target: str | None = None,
    **detail: object,
) -> None:
    text = ", ".join(f"{k}={v}" for k, v in detail.items() if v is not None) or None
    audit_log().record(who, action, outcome, target=target, detail=text)


def mode() -> tuple[Mode, str]:
    """How this page logs people in, and why when nobody can (``BROKEN``)."""
    settings = state.settings()
    if state.no_auth():
        address = st.get_option("server.address")
        return (Mode.OPERATOR if login_config.is_loopback(address) else Mode.ANONYMOUS), ""
    try:
        sso = login_config.read_sso(settings)
        if sso is not None:
            login_config.check_private(login_config.auth_file(settings))
    except login_config.AuthConfigError as exc:
        return Mode.BROKEN, str(exc)
    if sso is None:
        address = st.get_option("server.address")
        if not login_config.has_local_accounts(settings) and login_config.is_loopback(address):
            return Mode.LINK, ""
        return Mode.LOCAL, ""
    try:
        loaded = "auth" in st.secrets
    except FileNotFoundError:
        loaded = False
    if not loaded:
        return Mode.BROKEN, (
            f"Single sign-on is configured in {login_config.auth_file(settings)} but this server"
            " did not load it: start the page with `docqa ui`."
        )
    return Mode.SSO, ""


def _sso_caller() -> Caller | None:
    if not st.user.is_logged_in:
        return None
    sso = login_config.read_sso(state.settings())
    if sso is None:
        return None
    claims = st.user.to_dict()
    issued = claims.get("iat")
    too_old = sso.mapping.max_session_hours * 3600
    if isinstance(issued, int | float) and time.time() - issued > too_old:
        return None  # signed in too long ago: the provider is asked again
    return sso.mapping.caller(claims)


def current() -> Caller | None:
    """The caller of this run, None before a login."""
    how, _ = mode()
    if how is Mode.OPERATOR:
        return local_operator()
    if how is Mode.ANONYMOUS:
        return ANONYMOUS
    if how is Mode.SSO:
        return _sso_caller()
    if how is Mode.LINK:
        return local_operator() if st.session_state.get(SESSION_LINK) else None
    if how is Mode.LOCAL:
        name = st.session_state.get(SESSION_USER)
        if not name:
            return None
        try:
            user = UserStore.of(state.settings()).get(name)
        except UserError:
            return None
        return user.caller() if user is not None else None
    return None


def user() -> Caller:
    """The caller of a page (app.py drew nothing before there was one)."""
    who = current()
    if who is None:
        st.warning("Your session has ended: log in again.")
        st.stop()
    return who


def page_for(action: Action) -> Caller:
    """The caller of a page that only roles allowed ``action`` use. The navigation offers it to
    them only; this stops the page for anyone else all the same."""
    who = user()
    if not who.may(action):
        st.warning(f"This page needs the role {ACTION_ROLE[action].value!r}.")
        st.stop()
    return who


def _flash(message: str) -> None:
    st.session_state.setdefault(FLASH, []).append(message)


def show_flash() -> None:
    for message in st.session_state.pop(FLASH, []):
        st.error(message, icon=":material/block:")


def permitted(action: Action, target: str | None = None, show: bool = False) -> Caller | None:
    """The caller when their role allows ``action`` now; else None, the refusal recorded in the
    audit log and shown (at once with ``show``, else at the top of the next run: callbacks run
    before the page is drawn)."""
    who = current()
    if who is None:
        message = "Your session has ended: log in again."
    else:
        try:
            who.require(action)
            return who
        except PermissionDenied as exc:
            audit(who, action.value, "denied", target)
            message = f"Not allowed: {render.md(exc)}."
    if show:
        st.error(message, icon=":material/block:")
    else:
        _flash(message)
    return None


# -- logging in and out ---------------------------------------------------------------------------


def _local_login(name: str, password: str) -> None:
    name = name.strip()
    throttle = _throttle(str(state.settings().home))
    if throttle.blocked(name):
        audit(None, "login", "failed", name, reason="too many failed attempts")
        st.session_state["docqa_login_error"] = (
            "Too many failed logins for this name: wait ten minutes and try again."
        )
        return
    try:
        found = UserStore.of(state.settings()).authenticate(name, password)
    except UserError as exc:
        st.session_state["docqa_login_error"] = f"Logins cannot be checked: {render.md(exc)}"
        return
    if found is None:
        throttle.failed(name)
        audit(None, "login", "failed", name)
        st.session_state["docqa_login_error"] = "Wrong name or password."
        return
    throttle.succeeded(name)
    # A new person at this browser starts from nothing the previous one left in the session.
    st.session_state.clear()
    st.session_state[SESSION_USER] = found.name
    audit(found.caller(), "login", "ok", method="password")


def login_page() -> None:
    """Everything a visitor who is not logged in sees; then the run stops."""
    how, problem = mode()
    st.title("DocQA")
    if how is Mode.BROKEN:
        st.error(render.md(problem))
    elif how is Mode.SSO:
        _sso_login()
    elif how is Mode.LINK:
        _link_login()
    elif how is Mode.LOCAL and not login_config.has_local_accounts(state.settings()):
        st.info(
            "Nobody can log in yet. On the server, create an account with "
            "`docqa users create NAME --role admin`, or start the page for this machine only "
            "with `docqa ui --no-auth`."
        )
    else:
        with st.form("login", border=True, clear_on_submit=True):
            st.subheader("Log in")
            name = st.text_input("Name", key="login_name", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="login_password", autocomplete="current-password"
            )
            submitted = st.form_submit_button("Log in", type="primary")
        if submitted:
            _local_login(name, password)
            if st.session_state.get(SESSION_USER):
                st.rerun()
        error = st.session_state.pop("docqa_login_error", None)
        if error:
            st.error(error)
    st.stop()


def _link_login() -> None:
    token = st.query_params.get("token")
    if login_config.sign_in_token_matches(state.settings(), token):
        st.query_params.clear()  # the secret leaves the address bar and the history
        st.session_state[SESSION_LINK] = True
        audit(local_operator(), "login", "ok", method="sign-in link")
        st.rerun()
    if token:
        audit(None, "login", "failed", method="sign-in link")
    st.info(
        "Open the sign-in link that `docqa ui` printed when it started (it opens the browser "
        "itself when run at a terminal), or create an account on the server with "
        "`docqa users create NAME --role admin`."
    )


def _sso_login() -> None:
    if st.user.is_logged_in:
        # Signed in at the provider, but no role here (or too long ago).
        claims = st.user.to_dict()
        sso = login_config.read_sso(state.settings())
        name = sso.mapping.name(claims) if sso else None
        if not st.session_state.get(SESSION_SSO_SEEN):
            st.session_state[SESSION_SSO_SEEN] = True
            audit(None, "login", "denied", name, method="sso", reason="no role or expired")
        st.warning(
            f"{render.md(name or 'This account')} has no DocQA role, or signed in too long ago. "
            "Sign in again, or ask an administrator to add you to a DocQA group."
        )
        if st.button("Sign in again", type="primary"):
            st.logout()
        return
    st.caption("Sign in with your company account.")
    if st.button("Log in with single sign-on", type="primary", icon=":material/login:"):
        st.login()


def note_sso_login(who: Caller) -> None:
    """Audit a single sign-on login once per browser session."""
    if who.kind == "sso" and not st.session_state.get(SESSION_SSO_SEEN):
        st.session_state[SESSION_SSO_SEEN] = True
        audit(who, "login", "ok", method="sso", groups=",".join(sorted(who.groups)) or None)


def _logout(who: Caller) -> None:
    audit(who, "logout")
    st.session_state.clear()


def account_box(who: Caller) -> None:
    """Who is logged in, with a logout button (sidebar)."""
    how, _ = mode()
    groups = f" · groups {', '.join(sorted(who.groups))}" if who.groups else ""
    st.sidebar.caption(
        f":material/person: {render.md(who.name)} ({who.role.value}{render.md(groups)})"
    )
    if how is Mode.LOCAL:
        st.sidebar.button("Log out", key="logout", on_click=_logout, args=(who,))
    elif how is Mode.SSO and st.sidebar.button("Log out", key="logout"):
        _logout(who)
        st.logout()
