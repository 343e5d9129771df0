"""``docqa users``, ``access``, ``keys``, ``audit``, ``ask --user/--groups`` and the private home,
run through the real command line (typer's CliRunner) on real homes, indexes and models."""

from __future__ import annotations

import getpass
import json
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from docqa.cli import app
from identity import AuditLog, Caller, Role, UserStore
from pipelines.settings import REPO_ROOT, Settings
from tests.conftest import leaks_hr

FIXTURES = REPO_ROOT / "tests" / "fixtures"
PASSWORD = "correct horse battery"
ME = f"cli:{getpass.getuser()}"
SALARY_QUESTION = "What is the salary band for a senior engineer?"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str | Path, stdin: str | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], input=stdin, catch_exceptions=False)


@pytest.fixture
def access_copy(access_home: Settings, tmp_path: Path) -> Settings:
    """A writable copy of the leak matrix's home (hr/** -> group hr)."""
    home = tmp_path / "home"
    shutil.copytree(access_home.home, home)
    return access_home.with_(home=home)


def audit_events(runner: CliRunner, home: Path, *options: str) -> list[dict]:
    result = run(runner, "audit", "--home", home, "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


# -- users ----------------------------------------------------------------------------------


def test_users_create_list_set_password_remove(runner: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = run(
        runner, "users", "create", "ann", "--role", "editor", "--groups", "hr,eng",
        "--password-stdin", "--home", home, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "created editor 'ann'" in created.stdout
    users_file = home / "users.json"
    raw = users_file.read_text(encoding="utf-8")
    assert PASSWORD not in raw and "$argon2id$" in raw
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    store = UserStore.of(Settings(home=home))
    user = store.authenticate("ann", PASSWORD)
    assert user is not None and user.caller().groups == frozenset({"hr", "eng"})
    assert user.caller().role is Role.EDITOR
    assert store.authenticate("ann", PASSWORD + "!") is None

    listed = run(runner, "users", "list", "--home", home)
    assert listed.exit_code == 0
    assert listed.stdout.split()[:3] == ["ann", "editor", "eng,hr"]
    assert "argon2" not in listed.stdout and "$" not in listed.stdout
    as_json = json.loads(run(runner, "users", "list", "--home", home, "--json").stdout)
    assert as_json == [
        {"name": "ann", "role": "editor", "groups": ["eng", "hr"], "created": user.created}
    ]

    changed = run(
        runner, "users", "set-password", "ann", "--password-stdin", "--home", home,
        stdin="another long secret\n",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert store.authenticate("ann", PASSWORD) is None
    assert store.authenticate("ann", "another long secret") is not None
    unknown = run(
        runner, "users", "set-password", "bob", "--password-stdin", "--home", home, stdin="x" * 12
    )
    assert unknown.exit_code == 2 and "no user named 'bob'" in unknown.stderr

    removed = run(runner, "users", "remove", "ann", "--home", home)
    assert removed.exit_code == 0 and "removed 'ann'" in removed.stdout
    assert store.authenticate("ann", "another long secret") is None
    again = run(runner, "users", "remove", "ann", "--home", home)
    assert again.exit_code == 1 and "no user named 'ann'" in again.stderr


def test_users_create_refuses_bad_input(runner: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"

    def create(name: str, password: str, *extra: str) -> Result:
        return run(
            runner, "users", "create", name, "--password-stdin", "--home", home, *extra,
            stdin=password + "\n",
        )  # fmt: skip

    short = create("ann", "short")
    assert short.exit_code == 2 and "at least 10 characters" in short.stderr
    assert UserStore.of(Settings(home=home)).get("ann") is None
    for name in ("../ann", "ann/..", "../../etc/passwd", ".hidden"):
        bad = create(name, PASSWORD)
        assert bad.exit_code == 2 and "a user name is" in bad.stderr, name
    assert create("ann", PASSWORD, "--role", "root").exit_code == 2
    assert create("ann", PASSWORD, "--groups", "hr,../x").exit_code == 2
    assert UserStore.of(Settings(home=home)).list() == []

    assert create("ann", PASSWORD).exit_code == 0
    duplicate = create("ann", "a different password")
    assert duplicate.exit_code == 2 and "a user named 'ann' exists" in duplicate.stderr
    assert UserStore.of(Settings(home=home)).authenticate("ann", PASSWORD) is not None
    # The default role is the least: viewer.
    assert UserStore.of(Settings(home=home)).get("ann").role == "viewer"

    # Without --password-stdin and without a terminal, nothing waits for a password.
    no_tty = run(runner, "users", "create", "bob", "--home", home, stdin="")
    assert no_tty.exit_code == 2 and "--password-stdin" in no_tty.stderr


# -- access rules ---------------------------------------------------------------------------


def test_access_allow_list_remove_with_document_counts(
    runner: CliRunner, access_copy: Settings
) -> None:
    home = access_copy.home
    listed = run(runner, "access", "list", "--home", home)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        "hr/** -> hr  (2 documents)",
        "2 documents match no rule: visible to everyone",
    ]
    allowed = run(runner, "access", "allow", "eng/deploy.md", "--groups", "eng,ops", "--home", home)
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.strip() == "eng/deploy.md -> eng, ops (1 indexed documents)"
    as_json = json.loads(run(runner, "access", "list", "--home", home, "--json").stdout)
    assert as_json == {
        "rules": [
            {"pattern": "hr/**", "groups": ["hr"], "documents": 2},
            {"pattern": "eng/deploy.md", "groups": ["eng", "ops"], "documents": 1},
        ],
        "unmatched_documents": 1,
    }
    assert stat.S_IMODE((home / "access_rules.json").stat().st_mode) == 0o600

    for bad in (["../secret/**", "--groups", "hr"], ["eng/**", "--groups", ""]):
        refused = run(runner, "access", "allow", *bad, "--home", home)
        assert refused.exit_code == 2, bad
    assert run(runner, "access", "allow", "eng/**", "--home", home).exit_code == 2  # no --groups

    removed = run(runner, "access", "remove", "eng/deploy.md", "--home", home)
    assert removed.exit_code == 0 and "removed the rule for 'eng/deploy.md'" in removed.stdout
    missing = run(runner, "access", "remove", "eng/deploy.md", "--home", home)
    assert missing.exit_code == 1 and "no rule for 'eng/deploy.md'" in missing.stderr
    assert run(runner, "access", "remove", "hr/**", "--home", home).exit_code == 0
    empty = run(runner, "access", "list", "--home", home)
    assert empty.stdout.strip() == "no access rules: every document is visible to everyone"

    # Without an index, the rules are listed without counts.
    bare = access_copy.home.parent / "bare"
    assert run(runner, "access", "allow", "hr/**", "--groups", "hr", "--home", bare).exit_code == 0
    assert run(runner, "access", "list", "--home", bare).stdout.splitlines() == ["hr/** -> hr"]


# -- ask as someone -------------------------------------------------------------------------


def ask(runner: CliRunner, settings: Settings, *options: str) -> Result:
    result = run(
        runner, "ask", SALARY_QUESTION, "--home", settings.home, "--reader",
        settings.reader_model, "--reader-backend", "torch", "-n", "10", *options,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def test_ask_as_groups_or_a_user_never_shows_what_they_may_not_see(
    runner: CliRunner, access_copy: Settings
) -> None:
    for options in (["--groups", "eng"], ["--groups", "eng", "--json"], ["--groups", ""]):
        result = ask(runner, access_copy, *options)
        assert leaks_hr(result.stdout) == [], options
        assert result.stdout.strip(), options  # eng answers (or "no answer"), not nothing

    hr = ask(runner, access_copy, "--groups", "hr", "--json")
    answers = json.loads(hr.stdout)
    assert any(a["document"] == "collection/hr/salaries.md" for a in answers)
    assert leaks_hr(hr.stdout)
    # --json never gives the absolute path of a file, only the path relative to the collection.
    assert all("path" not in a for a in answers)
    assert str(access_copy.home.parent) not in hr.stdout
    operator = ask(runner, access_copy, "--json")  # the home's owner sees everything
    assert any(a["document"] == "collection/hr/salaries.md" for a in json.loads(operator.stdout))

    store = UserStore.of(access_copy)
    store.create("eve", "viewer", "eng", PASSWORD)
    store.create("hana", "viewer", "hr,eng", PASSWORD)
    assert leaks_hr(ask(runner, access_copy, "--user", "eve").stdout) == []
    assert leaks_hr(ask(runner, access_copy, "--user", "hana").stdout)
    # Both options only narrow: hana limited to her eng group sees no hr document.
    assert leaks_hr(ask(runner, access_copy, "--user", "hana", "--groups", "eng").stdout) == []

    nobody = run(runner, "ask", SALARY_QUESTION, "--home", access_copy.home, "--user", "zed")
    assert nobody.exit_code == 2 and "no local user named 'zed'" in nobody.stderr
    remote = run(
        runner, "ask", "q", "--server", "http://127.0.0.1:9", "--groups", "eng", "--api-key", "k"
    )
    assert remote.exit_code == 2 and "API key's role and groups" in remote.stderr


# -- keys -----------------------------------------------------------------------------------


def test_keys_create_with_a_role_and_groups(runner: CliRunner, tmp_path: Path) -> None:
    from api.keys import KeyStore

    home = tmp_path / "home"
    created = run(
        runner, "keys", "create", "eng-bot", "--role", "editor", "--groups", "eng,ops",
        "--home", home,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    token = created.stdout.split()[-1]
    legacy = run(runner, "keys", "create", "old-bot", "--role", "ask", "--home", home)
    assert legacy.exit_code == 0, legacy.output
    keys = {k.name: k for k in KeyStore.of(Settings(home=home)).list()}
    assert Role.parse(keys["eng-bot"].role) is Role.EDITOR
    assert set(keys["eng-bot"].groups) == {"eng", "ops"}
    assert Role.parse(keys["old-bot"].role) is Role.VIEWER and not keys["old-bot"].groups
    assert stat.S_IMODE((home / "api_keys.json").stat().st_mode) == 0o600
    assert token not in (home / "api_keys.json").read_text(encoding="utf-8")

    listed = run(runner, "keys", "list", "--home", home)
    line = next(x for x in listed.stdout.splitlines() if x.startswith("eng-bot"))
    assert "groups eng,ops" in line and token not in listed.stdout
    assert run(runner, "keys", "create", "x", "--role", "root", "--home", home).exit_code == 2


# -- audit ----------------------------------------------------------------------------------


def test_every_change_is_audited_and_audit_filters(runner: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    assert run(runner, "index", docs, "--home", home, "--dry-run").exit_code == 0
    assert run(runner, "index", docs, "--home", home, "--no-progress").exit_code == 0
    create = ["users", "create", "ann", "--groups", "hr", "--password-stdin", "--home", home]
    assert run(runner, *create, stdin=PASSWORD).exit_code == 0
    assert run(runner, *create, stdin=PASSWORD).exit_code == 2  # a duplicate: failed
    assert run(runner, "access", "allow", "hr/**", "--groups", "hr", "--home", home).exit_code == 0
    assert run(runner, "access", "remove", "hr/**", "--home", home).exit_code == 0
    assert run(runner, "users", "remove", "ann", "--home", home).exit_code == 0
    assert run(runner, "promote", "no-such-version", "--home", home).exit_code == 1

    events = audit_events(runner, home)
    assert [(e["actor"], e["action"], e["outcome"], e["target"]) for e in events] == [
        (ME, "index", "ok", str(docs)),  # the dry run changed nothing: not recorded
        (ME, "user_create", "ok", "ann"),
        (ME, "user_create", "failed", "ann"),
        (ME, "access_allow", "ok", "hr/**"),
        (ME, "access_remove", "ok", "hr/**"),
        (ME, "user_remove", "ok", "ann"),
        (ME, "promote", "failed", "no-such-version"),
    ]
    assert events[1]["detail"] == "role=viewer groups=hr" and events[1]["role"] == "admin"
    assert PASSWORD not in (home / "audit" / "audit.jsonl").read_text(encoding="utf-8")

    # Someone else's event (as the page records it), and one from long ago.
    log = AuditLog.of(Settings(home=home))
    log.record(Caller("ann", Role.VIEWER, frozenset({"hr"})), "login")
    with (home / "audit" / "audit.jsonl").open("a", encoding="utf-8") as handle:
        old = {"time": "2020-01-01T00:00:00.000+00:00", "actor": "user:ann", "role": "viewer",
               "action": "login", "outcome": "denied", "target": None, "detail": None}  # fmt: skip
        handle.write(json.dumps(old) + "\n")
    anns = audit_events(runner, home, "--user", "ann")
    assert [(e["action"], e["outcome"]) for e in anns] == [("login", "ok"), ("login", "denied")]
    assert audit_events(runner, home, "--user", "user:ann") == anns
    assert len(audit_events(runner, home, "--user", ME)) == 7
    recent = audit_events(runner, home, "--since", "1d")
    assert len(recent) == 8 and all(e["time"] > "2021" for e in recent)
    assert len(audit_events(runner, home, "--since", "2019-12-31")) == 9
    assert audit_events(runner, home, "--since", "2099-01-01") == []

    text = run(runner, "audit", "--home", home, "--user", "ann")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and "user:ann" in lines[0] and " login " in lines[0]
    bad = run(runner, "audit", "--home", home, "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since takes" in bad.stderr


# -- private home ---------------------------------------------------------------------------


def test_nothing_under_the_home_is_readable_by_others(runner: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("opening-hours.txt", "onboarding.md"):
        shutil.copy2(FIXTURES / name, docs / name)
    home = tmp_path / "home"
    assert run(runner, "index", docs, "--home", home, "--no-progress").exit_code == 0
    create = ["users", "create", "ann", "--password-stdin", "--home", home]
    assert run(runner, *create, stdin=PASSWORD).exit_code == 0
    assert run(runner, "access", "allow", "x/**", "--groups", "x", "--home", home).exit_code == 0

    walked = [home, *home.rglob("*")]
    assert len(walked) > 10 and (home / "audit" / "audit.jsonl").is_file()
    open_to_others = [
        f"{p.relative_to(tmp_path)} {oct(stat.S_IMODE(p.stat().st_mode))}"
        for p in walked
        if not p.is_symlink() and not private(p)
    ]
    assert open_to_others == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700

    # An existing home that others could read is closed on the next command.
    home.chmod(0o755)
    assert run(runner, "users", "list", "--home", home).exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
