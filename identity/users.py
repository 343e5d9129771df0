"""Local accounts for installs without an identity provider: ``docqa users create NAME --role
ROLE --groups G1,G2``.

Passwords are hashed with Argon2id (``argon2-cffi``, its default parameters: memory-hard, so a
stolen ``users.json`` does not give the passwords away cheaply). The file is 0600 and written
atomically under a lock. A failed login for an unknown name costs the same hash as a wrong
password, so timing does not tell which names exist.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from filelock import FileLock

from identity.roles import Caller, Role, parse_groups
from pipelines.settings import Settings
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

USERS_FILE = "users.json"
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so both failures take the same time."""
    return _HASHER.hash("docqa-no-such-user")


class UserError(ValueError):
    """A user cannot be created, changed or read; says why."""


@dataclass(frozen=True)
class LocalUser:
    name: str
    role: str
    groups: tuple[str, ...]
    password_hash: str
    created: str

    def caller(self) -> Caller:
        return Caller(name=self.name, role=Role.parse(self.role), groups=frozenset(self.groups))


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    return password


class UserStore:
    """The local accounts of one data home."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=10)

    @classmethod
    def of(cls, settings: Settings) -> UserStore:
        return cls(settings.home / USERS_FILE)

    def _read(self) -> dict[str, LocalUser]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read ({exc.strerror})") from exc
        try:
            users = [
                LocalUser(**(u | {"groups": tuple(u["groups"])})) for u in json.loads(raw)["users"]
            ]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{self.path}: not a DocQA users file ({exc})") from exc
        return {u.name: u for u in users}

    def _write(self, users: dict[str, LocalUser]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(users.values(), key=lambda u: u.name)
        data = {"users": [asdict(u) | {"groups": list(u.groups)} for u in ordered]}
        write_atomic(self.path, json.dumps(data, indent=2) + "\n")
        os.chmod(self.path, 0o600)

    def list(self) -> list[LocalUser]:
        return sorted(self._read().values(), key=lambda u: u.name)

    def get(self, name: str) -> LocalUser | None:
        return self._read().get(name)

    def create(self, name: str, role: str, groups: str | None, password: str) -> LocalUser:
        if not _NAME.fullmatch(name or ""):
            raise UserError(
                f"{name!r}: a user name is 1-64 letters, digits, '.', '_', '@' or '-'"
                " (starting with a letter or digit)"
            )
        try:
            parsed_role, parsed_groups = Role.parse(role), parse_groups(groups)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        user = LocalUser(
            name=name,
            role=parsed_role.value,
            groups=tuple(sorted(parsed_groups)),
            password_hash=_HASHER.hash(check_password(password)),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._lock:
            users = self._read()
            if name in users:
                raise UserError(f"a user named {name!r} exists: remove it first or pick another")
            users[name] = user
            self._write(users)
        logger.info("created %s user %s", user.role, name)
        return user

    def remove(self, name: str) -> bool:
        with self._lock:
            users = self._read()
            if users.pop(name, None) is None:
                return False
            self._write(users)
        return True

    def set_password(self, name: str, password: str) -> None:
        hashed = _HASHER.hash(check_password(password))
        with self._lock:
            users = self._read()
            if name not in users:
                raise UserError(f"no user named {name!r}")
            users[name] = replace(users[name], password_hash=hashed)
            self._write(users)

    def authenticate(self, name: str, password: str) -> LocalUser | None:
        """The user when the password is theirs, else None (same cost either way)."""
        user = self._read().get(name or "")
        try:
            _HASHER.verify(user.password_hash if user else _dummy_hash(), password or "")
        except (VerificationError, InvalidHashError):
            return None
        return user
