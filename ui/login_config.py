"""How people log in to the page, configured in the data home: single sign-on or local accounts.

Two ways, chosen by what the home holds:

* **Single sign-on (OpenID Connect)** when ``<home>/auth.toml`` has an ``[auth]`` section. It is
  Streamlit's own login (``st.login``, Authlib): ``docqa ui`` hands the file to Streamlit with
  ``--secrets.files``, so the ``[auth]`` keys are Streamlit's (``redirect_uri`` ending in
  ``/oauth2callback``, where ``{port}`` is filled in; ``cookie_secret``; ``client_id``;
  ``client_secret``; ``server_metadata_url``; optionally ``client_kwargs``). DocQA's own
  ``[docqa]`` section maps the provider's groups to roles::

      [auth]
      redirect_uri = "https://docqa.example.com/oauth2callback"
      cookie_secret = "at least 32 random characters"  # secrets.token_urlsafe(32)
      client_id = "docqa"
      client_secret = "from the identity provider"
      server_metadata_url = "https://sso.example.com/realms/acme/.well-known/openid-configuration"
      client_kwargs = { scope = "openid profile email" }  # what makes the provider send groups

      [docqa]
      groups_claim = "groups"           # the ID token claim listing the user's groups
      admin_groups = ["docqa-admins"]   # any of these: admin
      editor_groups = ["docqa-editors"] # any of these: editor
      viewer_groups = []                # empty: everyone the provider lets in is a viewer;
                                        # else only members of these (others are refused)
      name_claims = ["preferred_username", "email", "sub"]  # the first present names the user
      max_session_hours = 12            # then the user signs in again

  A user's groups (for the access rules) are every group in the claim (a list, or one string
  of names separated by commas or spaces; a leading "/" as Keycloak's full group paths write it
  is dropped). The role is the highest one whose groups they are in. The file holds secrets:
  it must be private to the home's owner (0600), or ``docqa ui`` refuses to start.
* **Local accounts** (``docqa users create NAME --role ROLE --groups G1,G2``, kept in
  ``<home>/users.json``) otherwise: a name and password form.

With neither (a fresh install), ``docqa ui`` on a loopback address opens the page through a
sign-in link with a secret token, as Jupyter does (:func:`issue_sign_in_token`): the person who
started it is the home's owner (admin); nobody else who reaches the port gets in.

``docqa ui --no-auth`` shows the page without a login: to the local operator (admin) when the
server listens on a loopback address only, as an anonymous viewer (no groups: only documents no
access rule restricts) when it listens on any other address.

This module reads the configuration only (no Streamlit): ``docqa ui`` checks it before starting
the server, and :mod:`ui.auth` reads it on every run.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from identity import Caller, Role, UserError, UserStore
from pipelines.settings import Settings
from pipelines.store.versions import write_atomic

AUTH_FILE = "auth.toml"
REQUIRED_AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret")
MIN_COOKIE_SECRET_CHARS = 32
_SEPARATORS = re.compile(r"[,\s]+")
MAX_GROUPS = 500  # more than any provider sends (Entra ID stops at 200 in a token)


class AuthConfigError(ValueError):
    """``auth.toml`` cannot be used; the message says what to fix."""


def auth_file(settings: Settings) -> Path:
    return settings.home / AUTH_FILE


@dataclass(frozen=True)
class RoleMapping:
    """``[docqa]`` of ``auth.toml``: which provider groups make which role."""

    groups_claim: str = "groups"
    admin_groups: frozenset[str] = frozenset()
    editor_groups: frozenset[str] = frozenset()
    viewer_groups: frozenset[str] = frozenset()
    name_claims: tuple[str, ...] = ("preferred_username", "email", "sub")
    max_session_hours: float = 12.0

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> RoleMapping:
        def names(key: str) -> frozenset[str]:
            value = section.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AuthConfigError(f"[docqa] {key} is a list of group names")
            return frozenset(_group(v) for v in value if _group(v))

        claims = section.get("name_claims", list(cls.name_claims))
        if not isinstance(claims, list) or not claims:
            raise AuthConfigError("[docqa] name_claims is a list of claim names")
        hours = section.get("max_session_hours", cls.max_session_hours)
        if not isinstance(hours, int | float) or hours <= 0:
            raise AuthConfigError("[docqa] max_session_hours is a positive number")
        return cls(
            groups_claim=str(section.get("groups_claim", cls.groups_claim)),
            admin_groups=names("admin_groups"),
            editor_groups=names("editor_groups"),
            viewer_groups=names("viewer_groups"),
            name_claims=tuple(str(c) for c in claims),
            max_session_hours=float(hours),
        )

    def groups(self, claims: Mapping[str, Any]) -> frozenset[str]:
        value = claims.get(self.groups_claim)
        if isinstance(value, str):
            raw = _SEPARATORS.split(value)
        elif isinstance(value, list | tuple):
            raw = [str(v) for v in value]
        else:
            raw = []
        return frozenset(g for g in (_group(r) for r in raw[:MAX_GROUPS]) if g)

    def role(self, groups: frozenset[str]) -> Role | None:
        """The highest role the groups give; None when they give none (not let in)."""
        if groups & self.admin_groups:
            return Role.ADMIN
        if groups & self.editor_groups:
            return Role.EDITOR
        if not self.viewer_groups or groups & self.viewer_groups:
            return Role.VIEWER
        return None

    def name(self, claims: Mapping[str, Any]) -> str | None:
        for claim in self.name_claims:
            value = claims.get(claim)
            if isinstance(value, str) and value.strip():
                return value.strip()[:200]
        return None

    def caller(self, claims: Mapping[str, Any]) -> Caller | None:
        """The caller an ID token's claims make; None without a name or a role."""
        name, groups = self.name(claims), self.groups(claims)
        role = self.role(groups)
        if name is None or role is None:
            return None
        return Caller(name=name, role=role, groups=groups, kind="sso")


def _group(value: str) -> str:
    return value.strip().lstrip("/")


@dataclass(frozen=True)
class SsoConfig:
    mapping: RoleMapping
    redirect_uri: str


def read_sso(settings: Settings) -> SsoConfig | None:
    """The single sign-on configuration of the home; None when it has none (no ``auth.toml``
    or no ``[auth]`` in it). Raises :class:`AuthConfigError` when it is there but unusable."""
    path = auth_file(settings)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuthConfigError(f"{path}: not valid TOML ({exc})") from exc
    auth = data.get("auth")
    if auth is None:
        if "docqa" in data:
            raise AuthConfigError(f"{path}: [docqa] without [auth]: add the [auth] section")
        return None
    if not isinstance(auth, dict):
        raise AuthConfigError(f"{path}: [auth] is a table")
    missing = [key for key in REQUIRED_AUTH_KEYS if not auth.get(key)]
    if not auth.get("server_metadata_url"):
        missing.append("server_metadata_url")
    if missing:
        raise AuthConfigError(f"{path}: [auth] needs {', '.join(missing)}")
    if not str(auth["redirect_uri"]).endswith("/oauth2callback"):
        raise AuthConfigError(f"{path}: [auth] redirect_uri must end with /oauth2callback")
    if len(str(auth["cookie_secret"])) < MIN_COOKIE_SECRET_CHARS:
        raise AuthConfigError(
            f"{path}: [auth] cookie_secret has at least {MIN_COOKIE_SECRET_CHARS} characters"
            " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    section = data.get("docqa", {})
    if not isinstance(section, dict):
        raise AuthConfigError(f"{path}: [docqa] is a table")
    return SsoConfig(RoleMapping.of(section), str(auth["redirect_uri"]))


def check_private(path: Path) -> None:
    """Refuse a secrets file other local users can read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & 0o077:
        raise AuthConfigError(
            f"{path} holds the client and cookie secrets but other users may read it:"
            f" chmod 600 {path}"
        )
    if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
        raise AuthConfigError(f"{path} belongs to another user: it must be yours (0600)")


def has_local_accounts(settings: Settings) -> bool:
    try:
        return bool(UserStore.of(settings).list())
    except UserError:
        return True  # an unreadable file: the page says so at login, it is not "no login"


def login_configured(settings: Settings) -> bool:
    """Whether the page can ask anyone to log in: single sign-on or at least one account."""
    try:
        if read_sso(settings) is not None:
            return True
    except AuthConfigError:
        return True  # configured, if broken: the start refuses with its message
    return has_local_accounts(settings)


def is_loopback(host: str | None) -> bool:
    """Whether a listening address reaches this machine only ("": every interface)."""
    if not host:
        return False
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


# -- the sign-in link of a page nobody can log in to yet ------------------------------------------

SIGN_IN_FILE = "ui_sign_in.sha256"


def issue_sign_in_token(settings: Settings) -> str:
    """A new secret for the link ``docqa ui`` opens when no login is configured (loopback only),
    as Jupyter does: whoever opens ``?token=...`` is the home's owner; anyone else who can reach
    the port (another local user) is not. Only its SHA-256 is kept (``<home>/ui_sign_in.sha256``,
    0600); each start replaces it, so an old link stops working."""
    token = secrets.token_urlsafe(32)
    path = settings.home / SIGN_IN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, hashlib.sha256(token.encode()).hexdigest())
    os.chmod(path, 0o600)
    return token


def sign_in_token_matches(settings: Settings, token: str | None) -> bool:
    if not token:
        return False
    try:
        expected = (settings.home / SIGN_IN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return hmac.compare_digest(expected, hashlib.sha256(token.encode()).hexdigest())
