"""``docqa users``, ``docqa access``, ``docqa keys`` and ``docqa audit``: who may use DocQA and
see which documents, and what was done.

The command line is run by the data home's owner, who can read every file of the home anyway:
it acts as an admin (``cli:<OS user name>`` in the audit log) and asks no password. Every
command that changes something records an audit event (:func:`audited`), whatever its outcome.

``identity`` is imported inside the commands: ``docqa --help`` and the other commands do not
pay for it (nor for its Argon2 set-up).
"""

from __future__ import annotations

import functools
import getpass
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from docqa.options import HomeOption, fail, settings_from

if TYPE_CHECKING:
    from identity import Caller

F = TypeVar("F", bound=Callable[..., Any])

RoleOption = Annotated[
    str,
    typer.Option(
        "--role",
        help="viewer (ask, read), editor (+ feedback, labels, uploads) or admin (everything);"
        " 'ask' means viewer.",
    ),
]
GroupsOption = Annotated[
    str | None,
    typer.Option(
        "--groups",
        help="Comma-separated groups (G1,G2): the documents access rules give to them.",
        show_default=False,
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts).",
    ),
]


def operator() -> Caller:
    """The command line's caller: the home's owner, an admin named after the OS user."""
    from identity import local_operator

    return local_operator(os_user())


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): say which uid it was
        import os

        return f"uid{os.getuid()}"


def audited(
    action: str,
    target: str | None = None,
    details: Sequence[str] = (),
    unless: Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[F], F]:
    """Record an audit event for a command, whatever its outcome: "ok" when it returns (or
    exits 0), "failed" otherwise. ``target``: the parameter naming what was acted on;
    ``details``: parameters worth recording (never a password: none is a parameter);
    ``unless``: true of the parameters of a run that changes nothing (``--dry-run``)."""

    def wrap(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            if unless is not None and unless(kwargs):
                return command(*args, **kwargs)
            outcome = "failed"
            try:
                result = command(*args, **kwargs)
                outcome = "ok"
                return result
            except typer.Exit as exc:
                if exc.exit_code == 0:
                    outcome = "ok"
                raise
            finally:
                _record(kwargs, action, outcome, target, details)

        return run  # type: ignore[return-value]

    return wrap


def _record(
    kwargs: dict[str, Any], action: str, outcome: str, target: str | None, details: Sequence[str]
) -> None:
    from identity import AuditLog

    def shown(value: Any) -> str:
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    named = kwargs.get(target) if target else None
    detail = " ".join(f"{d}={shown(kwargs[d])}" for d in details if kwargs.get(d))
    settings = settings_from(kwargs.get("home"), migrate=False)  # the command opened it
    if not settings.home.exists():
        return  # refused before it touched anything: there is no home to hold a log
    AuditLog.of(settings).record(
        operator(),
        action,
        outcome,
        target=shown(named) if named is not None else None,
        detail=detail or None,
    )


def read_password(from_stdin: bool) -> str:
    """A new password: one line of standard input, or typed twice at the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to type a password at: give it with --password-stdin", 2)
    first = getpass.getpass("password: ")
    if getpass.getpass("password again: ") != first:
        raise fail("the two passwords differ; nothing was changed", 2)
    return first


# -- users ---------------------------------------------------------------------------------

users_app = typer.Typer(
    help="Local accounts for the page (installs without single sign-on).", no_args_is_help=True
)


@users_app.command("create")
@audited("user_create", target="name", details=("role", "groups"))
def users_create(
    name: Annotated[str, typer.Argument(help="The login name.")],
    role: RoleOption = "viewer",
    groups: GroupsOption = None,
    password_stdin: PasswordStdinOption = False,
    home: HomeOption = None,
) -> None:
    """Create a local account; its password is Argon2id-hashed (never stored as typed)."""
    from identity import UserError, UserStore

    store = UserStore.of(settings_from(home))
    try:
        user = store.create(name, role, groups, read_password(password_stdin))
    except UserError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"created {user.role} {user.name!r}, groups: {', '.join(user.groups) or '-'}")


@users_app.command("list")
def users_list(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """The local accounts: name, role, groups, created (never their password hashes)."""
    from identity import UserError, UserStore

    try:
        users = UserStore.of(settings_from(home)).list()
    except UserError as exc:
        raise fail(str(exc)) from exc
    rows = [
        {"name": u.name, "role": u.role, "groups": list(u.groups), "created": u.created}
        for u in users
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        groups = ",".join(row["groups"]) or "-"
        typer.echo(f"{row['name']:24} {row['role']:6} {groups:24} created {row['created']}")


@users_app.command("remove")
@audited("user_remove", target="name")
def users_remove(
    name: Annotated[str, typer.Argument(help="The login name.")], home: HomeOption = None
) -> None:
    """Remove a local account (a session already open on the page ends at its next request)."""
    from identity import UserError, UserStore

    try:
        removed = UserStore.of(settings_from(home)).remove(name)
    except UserError as exc:
        raise fail(str(exc)) from exc
    if not removed:
        raise fail(f"no user named {name!r}")
    typer.echo(f"removed {name!r}")


@users_app.command("set-password")
@audited("user_set_password", target="name")
def users_set_password(
    name: Annotated[str, typer.Argument(help="The login name.")],
    password_stdin: PasswordStdinOption = False,
    home: HomeOption = None,
) -> None:
    """Give a local account a new password."""
    from identity import UserError, UserStore

    store = UserStore.of(settings_from(home))
    try:
        if store.get(name) is None:  # before asking for a password that would be thrown away
            raise UserError(f"no user named {name!r}")
        store.set_password(name, read_password(password_stdin))
    except UserError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"set a new password for {name!r}")


# -- access rules --------------------------------------------------------------------------

access_app = typer.Typer(
    help="Document permissions: which groups may see which documents.", no_args_is_help=True
)


@access_app.command("allow")
@audited("access_allow", target="pattern", details=("groups",))
def access_allow(
    pattern: Annotated[
        str,
        typer.Argument(
            help="A glob over the paths citations show ('hr/**': any hr folder, at any depth;"
            " '/docs/hr/*': anchored at the start). Quote it."
        ),
    ],
    groups: Annotated[str, typer.Option("--groups", help="The groups that may see them (G1,G2).")],
    home: HomeOption = None,
) -> None:
    """Give the documents a glob matches to some groups (replacing that glob's rule). Documents
    no rule matches are visible to everyone; admins see every document. Applies to the next
    question: nothing is re-indexed."""
    from identity import AccessRuleError, AccessRules

    settings = settings_from(home)
    try:
        rule = AccessRules.of(settings).allow(pattern, groups)
    except (AccessRuleError, ValueError) as exc:
        raise fail(str(exc), 2) from exc
    counts = _match_counts(settings, [rule.pattern])
    matched = f" ({counts[0]} indexed documents)" if counts else ""
    typer.echo(f"{rule.pattern} -> {', '.join(rule.groups)}{matched}")


@access_app.command("list")
def access_list(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """The access rules, with how many indexed documents each matches (when there is an index),
    and how many no rule matches (visible to everyone)."""
    from identity import AccessRuleError, AccessRules

    settings = settings_from(home)
    try:
        rules = AccessRules.of(settings).list()
    except AccessRuleError as exc:
        raise fail(str(exc)) from exc
    counts = _match_counts(settings, [r.pattern for r in rules])
    rows = [
        {"pattern": r.pattern, "groups": list(r.groups)}
        | ({"documents": counts[i]} if counts else {})
        for i, r in enumerate(rules)
    ]
    if as_json:
        unmatched = {"unmatched_documents": counts[-1]} if counts else {}
        typer.echo(json.dumps({"rules": rows} | unmatched, indent=2, ensure_ascii=False))
        return
    if not rules:
        typer.echo("no access rules: every document is visible to everyone")
    for row in rows:
        matched = f"  ({row['documents']} documents)" if "documents" in row else ""
        typer.echo(f"{row['pattern']} -> {', '.join(row['groups'])}{matched}")
    if counts and rules:
        typer.echo(f"{counts[-1]} documents match no rule: visible to everyone")


@access_app.command("remove")
@audited("access_remove", target="pattern")
def access_remove(
    pattern: Annotated[str, typer.Argument(help="The rule's glob, as `docqa access list` shows.")],
    home: HomeOption = None,
) -> None:
    """Remove an access rule: what it matched becomes visible per the remaining rules."""
    from identity import AccessRuleError, AccessRules

    try:
        removed = AccessRules.of(settings_from(home)).remove(pattern)
    except AccessRuleError as exc:
        raise fail(str(exc)) from exc
    if not removed:
        raise fail(f"no rule for {pattern!r} (see `docqa access list`)")
    typer.echo(f"removed the rule for {pattern!r}")


def _match_counts(settings: Any, patterns: list[str]) -> list[int]:
    """How many indexed documents each glob matches, then how many none matches; [] without
    an index."""
    from identity.access import source_matches
    from pipelines.store import PassageStore, StoreError

    if not PassageStore.exists(settings.index_dir):
        return []
    try:
        store = PassageStore.load(settings.index_dir)
    except StoreError:
        return []
    try:
        sources = [r.source for r in store.sources()]
    finally:
        store.close()
    hits = [[source_matches(p, s) for s in sources] for p in patterns]
    unmatched = sum(1 for i in range(len(sources)) if not any(h[i] for h in hits))
    return [sum(h) for h in hits] + [unmatched]


# -- API keys ------------------------------------------------------------------------------

keys_app = typer.Typer(
    help="API keys of `docqa serve`: create, list, revoke.", no_args_is_help=True
)


@keys_app.command("create")
@audited("key_create", target="name", details=("role", "groups"))
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    role: RoleOption = "viewer",
    groups: GroupsOption = None,
    home: HomeOption = None,
) -> None:
    """Create an API key; it is printed once, as the last word (only its hash is stored)."""
    from api.keys import KeyStore, KeyStoreError

    try:
        key, token = KeyStore.of(settings_from(home)).create(name, role, groups)
    except KeyStoreError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"created {key.role} key {key.name!r}; it is shown only now: {token}")


@keys_app.command("list")
def keys_list(home: HomeOption = None) -> None:
    """The API keys: name, role, groups, created, last used (never the keys themselves)."""
    from api.keys import KeyStore, KeyStoreError

    try:
        keys = KeyStore.of(settings_from(home)).list()
    except KeyStoreError as exc:
        raise fail(str(exc)) from exc
    for key in keys:
        used = key.last_used or "-"
        groups = ",".join(key.groups) or "-"
        typer.echo(
            f"{key.name:24} {key.role:6} groups {groups}  created {key.created}  last used {used}"
        )


@keys_app.command("revoke")
@audited("key_revoke", target="name")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")], home: HomeOption = None
) -> None:
    """Revoke an API key: it stops working on the next request, in every worker."""
    from api.keys import KeyStore, KeyStoreError

    try:
        revoked = KeyStore.of(settings_from(home)).revoke(name)
    except KeyStoreError as exc:
        raise fail(str(exc)) from exc
    if not revoked:
        raise fail(f"no key named {name!r}")
    typer.echo(f"revoked {name!r}")


# -- audit log -----------------------------------------------------------------------------

_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` ago, or a date or time (``2026-12-01``,
    ``2026-12-01T08:00``; UTC unless it names its zone)."""
    text = value.strip().lower()
    ago = _AGO.match(text)
    if ago:
        delta = timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since takes a date (2026-12-01), a time (2026-12-01T08:00) or an age"
            f" (30m, 12h, 7d, 2w), not {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only events after a date or time (UTC: 2026-12-01, 2026-12-01T08:00) or"
            " within an age (30m, 12h, 7d, 2w).",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Only this actor's events: a name, or kind:name (user:ann, key:ci-bot,"
            " sso:ann@example.com, cli:ops).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """The audit log: who did what, when, and the outcome (logins, questions, uploads,
    deletions, labels, retraining, promotions, key, user and rule changes), oldest first."""
    from dataclasses import asdict

    from identity import AuditLog

    try:
        after = parse_since(since) if since else None
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    events = list(AuditLog.of(settings_from(home)).events(since=after, actor=user))
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in events], indent=2, ensure_ascii=False))
        return
    for e in events:
        extra = " ".join(x for x in (e.target, e.detail) if x)
        typer.echo(f"{e.time}  {e.actor:24} {e.action:18} {e.outcome:6} {extra}".rstrip())


# -- asking as someone ----------------------------------------------------------------------


def narrowed_caller(settings: Any, user: str | None, groups: str | None) -> Caller | None:
    """Whom ``docqa ask --user NAME --groups G1,G2`` answers as: the local account (its role
    and groups), a viewer in the groups, or the account limited to those of its groups that
    are given (both options only ever narrow). None without either: the operator sees all."""
    from identity import Caller, Role, UserError, UserStore
    from identity.roles import parse_groups

    if user is None and groups is None:
        return None
    try:
        chosen = parse_groups(groups) if groups is not None else None
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    if user is None:
        return Caller(name=f"groups {groups}", role=Role.VIEWER, groups=chosen or frozenset())
    try:
        account = UserStore.of(settings).get(user)
    except UserError as exc:
        raise fail(str(exc)) from exc
    if account is None:
        raise fail(
            f"no local user named {user!r}; for a single sign-on user give their --groups", 2
        )
    caller = account.caller()
    if chosen is None:
        return caller
    return Caller(name=caller.name, role=caller.role, groups=caller.groups & chosen)
