"""Who a caller is and what their role lets them do: one role model for the page, the API and
the command line.

Three roles, each allowing what the one below allows and more:

* ``viewer``: ask, see answers and the documents they come from (within the access rules);
* ``editor``: also give feedback, add labeled pairs, upload documents;
* ``admin``: also delete documents, retrain and promote readers, manage API keys, users and
  access rules, read the audit log and every caller's questions.

Every action a caller can take is an :class:`Action`, and :data:`ACTION_ROLE` is the one table
saying which role it needs: the page hides what a role may not do and its server code, the API's
routes and the CLI all ask :meth:`Caller.require` before acting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """A role from its name; ``ask`` (the API keys' first role) reads as ``viewer``."""
        if isinstance(value, Role):
            return value
        name = str(value).strip().lower()
        if name == "ask":
            return cls.VIEWER
        try:
            return cls(name)
        except ValueError:
            raise ValueError(
                f"role must be one of {', '.join(r.value for r in cls)}, got {value!r}"
            ) from None


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


class Action(StrEnum):
    ASK = "ask"
    READ_DOCUMENT = "read_document"
    FEEDBACK = "feedback"
    LABEL = "label"
    UPLOAD = "upload"
    EXPORT_PAIRS = "export_pairs"
    DELETE_DOCUMENT = "delete_document"
    EDIT_PAIRS = "edit_pairs"
    RETRAIN = "retrain"
    PROMOTE = "promote"
    MANAGE_KEYS = "manage_keys"
    MANAGE_USERS = "manage_users"
    MANAGE_ACCESS = "manage_access"
    READ_AUDIT = "read_audit"
    READ_ALL_QUESTIONS = "read_all_questions"
    READ_METRICS = "read_metrics"


ACTION_ROLE: dict[Action, Role] = {
    Action.ASK: Role.VIEWER,
    Action.READ_DOCUMENT: Role.VIEWER,
    Action.FEEDBACK: Role.EDITOR,
    Action.LABEL: Role.EDITOR,
    Action.UPLOAD: Role.EDITOR,
    Action.EXPORT_PAIRS: Role.EDITOR,
    Action.DELETE_DOCUMENT: Role.ADMIN,
    Action.EDIT_PAIRS: Role.ADMIN,
    Action.RETRAIN: Role.ADMIN,
    Action.PROMOTE: Role.ADMIN,
    Action.MANAGE_KEYS: Role.ADMIN,
    Action.MANAGE_USERS: Role.ADMIN,
    Action.MANAGE_ACCESS: Role.ADMIN,
    Action.READ_AUDIT: Role.ADMIN,
    Action.READ_ALL_QUESTIONS: Role.ADMIN,
    Action.READ_METRICS: Role.ADMIN,
}


class PermissionDenied(PermissionError):
    """The caller's role does not allow the action; the message says which role it needs."""

    def __init__(self, caller: Caller, action: Action) -> None:
        self.caller, self.action = caller, action
        needed = ACTION_ROLE[action]
        super().__init__(
            f"{caller.name!r} has the role {caller.role.value!r}; {action.value.replace('_', ' ')}"
            f" needs {needed.value!r}"
        )


@dataclass(frozen=True)
class Caller:
    """Someone acting: a page user (local account or single sign-on), an API key, or the
    command line. ``kind`` says which ("user", "sso", "key", "cli", "anonymous")."""

    name: str
    role: Role
    groups: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role.parse(self.role))
        object.__setattr__(self, "groups", frozenset(self.groups))

    def may(self, action: Action) -> bool:
        return self.role.rank >= ACTION_ROLE[action].rank

    def require(self, action: Action) -> None:
        """Raise :class:`PermissionDenied` unless the caller's role allows ``action``."""
        if not self.may(action):
            raise PermissionDenied(self, action)

    @property
    def sees_everything(self) -> bool:
        """Admins see every document: they set the access rules, so hiding one from them
        protects nothing."""
        return self.role is Role.ADMIN

    @property
    def identity(self) -> str:
        """How the audit log and the question log name the caller: ``kind:name``."""
        return f"{self.kind}:{self.name}"


def local_operator(name: str = "operator") -> Caller:
    """The command line run by the home's owner: it can read every file of the home anyway."""
    return Caller(name=name, role=Role.ADMIN, kind="cli")


def parse_groups(value: str | None) -> frozenset[str]:
    """``"hr, eng"`` -> {"hr", "eng"}; group names are 1-64 letters, digits, '.', '_', '-'."""
    if not value:
        return frozenset()
    groups = {g.strip() for g in value.split(",") if g.strip()}
    bad = [g for g in groups if not _valid_name(g)]
    if bad:
        raise ValueError(
            f"group names are 1-64 letters, digits, '.', '_' or '-': {', '.join(sorted(bad))}"
        )
    return frozenset(groups)


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-@" for c in name) and name[0] != "-"
