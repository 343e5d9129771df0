"""API keys of ``docqa serve``: created, listed and revoked with ``docqa keys``, checked on every
request.

A key is a random token (``docqa_`` and 43 URL-safe characters: 256 bits from
:mod:`secrets`), shown once when it is created. Only its SHA-256 is stored, in
``<home>/api_keys.json`` (mode 0600, written atomically under a lock), with its name, role and
dates, so the file alone lets no one call the API. A high-entropy token needs no slow password
hash: guessing a 256-bit token is hopeless, and SHA-256 lets every request be checked in
microseconds (GitHub stores its tokens the same way).

A key has a role and groups, as a page user does (:mod:`identity.roles`): ``viewer`` (ask,
read documents, models and status), ``editor`` (also feedback, labels, uploads) or ``admin``
(everything, including deletions and promotions); its groups decide which documents it sees
(:mod:`identity.access`). Keys made before roles had these names have the role ``ask``: they
keep working, as viewers. :meth:`ApiKey.caller` is the key as a
:class:`~identity.roles.Caller` (kind "key"), what the routes check and the audit log names.

Several server processes read the same file: each keeps the parsed file and reads it again
when its modification time changes, so a revoked key stops working on the next request
everywhere. "Last used" is written at most every :data:`LAST_USED_EVERY_S` seconds per key and
process (a write per request would serialize every worker on the file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from identity.roles import Caller, Role, parse_groups
from pipelines.settings import Settings
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

ROLES = tuple(role.value for role in Role)  # viewer, editor, admin
KEYS_FILE = Settings().api_keys_file.name
TOKEN_PREFIX = "docqa_"
LAST_USED_EVERY_S = 300.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOCK_TIMEOUT_S = 10.0


class KeyStoreError(ValueError):
    """A key cannot be created or revoked, or the keys file cannot be read; says why."""


@dataclass(frozen=True)
class ApiKey:
    """One key as stored: never the token itself, only its SHA-256."""

    name: str
    role: str  # a Role's value; "ask" in files written before roles were renamed (a viewer)
    sha256: str
    created: str
    last_used: str | None = None
    groups: tuple[str, ...] = ()  # absent from files written before keys had groups

    def caller(self) -> Caller:
        """Who a request with this key acts as."""
        groups = frozenset(self.groups)
        return Caller(name=self.name, role=Role.parse(self.role), groups=groups, kind="key")


def _key(entry: dict[str, object]) -> ApiKey:
    """A key as the file stores it; TypeError or ValueError when it is not one."""
    groups = entry.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TypeError(f"a key's groups are a list of names, got {groups!r}")
    key = ApiKey(**(entry | {"groups": tuple(groups)}))  # type: ignore[arg-type]
    Role.parse(key.role)  # a role no one knows grants nothing: refuse the file
    return key


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The API keys of one data home."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = FileLock(str(lock_path), timeout=_LOCK_TIMEOUT_S)
        self._cache: tuple[tuple[int, int], dict[str, ApiKey]] | None = None
        self._cache_lock = threading.Lock()
        self._last_written: dict[str, float] = {}

    @classmethod
    def of(cls, settings: Settings) -> KeyStore:
        return cls(settings.api_keys_file)

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyStoreError(f"{self.path}: cannot read ({exc.strerror})") from exc
        try:
            entries = json.loads(raw)["keys"]
            keys = [_key(entry) for entry in entries]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # Never rewrite a file we cannot parse: it holds every client's access.
            raise KeyStoreError(f"{self.path}: not a DocQA keys file ({exc})") from exc
        return {key.name: key for key in keys}

    def _cached(self) -> dict[str, ApiKey]:
        """The keys, read again only when the file changed (size or modification time)."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            return {}
        with self._cache_lock:
            if self._cache is None or self._cache[0] != stamp:
                if stat.st_mode & 0o077:
                    logger.warning("%s is readable by others: chmod 600 it", self.path)
                self._cache = (stamp, self._read())
            return self._cache[1]

    def list(self) -> list[ApiKey]:
        """All keys, oldest first."""
        return sorted(self._read().values(), key=lambda key: key.created)

    # -- writing ----------------------------------------------------------------------------

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(keys.values(), key=lambda k: k.created)
        data = {"keys": [asdict(key) | {"groups": list(key.groups)} for key in ordered]}
        # write_atomic's temporary file is created 0600 (mkstemp) and renamed over the old one.
        write_atomic(self.path, json.dumps(data, indent=2) + "\n")
        os.chmod(self.path, 0o600)

    def create(self, name: str, role: str, groups: str | None = None) -> tuple[ApiKey, str]:
        """A new key with ``role`` (viewer, editor, admin; "ask" is viewer) and ``groups``
        ("hr,eng"): what is stored, and the token (shown once, never stored)."""
        try:
            parsed_role, parsed_groups = Role.parse(role), parse_groups(groups)
        except ValueError as exc:
            raise KeyStoreError(str(exc)) from exc
        if not _NAME.fullmatch(name):
            raise KeyStoreError(
                f"{name!r}: a key name is 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            name=name,
            role=parsed_role.value,
            sha256=token_hash(token),
            created=_now(),
            groups=tuple(sorted(parsed_groups)),
        )
        with self._lock:
            keys = self._read()
            if name in keys:
                raise KeyStoreError(f"a key named {name!r} exists: revoke it first or pick another")
            keys[name] = key
            self._write(keys)
        logger.info("created %s key %s", key.role, name)
        return key, token

    def revoke(self, name: str) -> bool:
        """Delete a key; False when there was none of that name."""
        with self._lock:
            keys = self._read()
            if keys.pop(name, None) is None:
                return False
            self._write(keys)
        logger.info("revoked key %s", name)
        return True

    # -- checking ---------------------------------------------------------------------------

    def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, None when it is none of them (or revoked)."""
        digest = token_hash(token)
        found = None
        for key in self._cached().values():
            # Compare every stored hash, in constant time each.
            if hmac.compare_digest(key.sha256, digest):
                found = key
        if found is not None:
            self._note_use(found.name)
        return found

    def _note_use(self, name: str) -> None:
        now = time.monotonic()
        if now - self._last_written.get(name, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
            return
        self._last_written[name] = now
        try:
            with self._lock.acquire(timeout=0.5):
                keys = self._read()
                if name in keys:
                    keys[name] = replace(keys[name], last_used=_now())
                    self._write(keys)
        except (Timeout, OSError, KeyStoreError) as exc:  # a date is not worth failing a request
            logger.debug("could not note the use of key %s: %s", name, exc)
