"""Upgrading in place through the real command line: the first command on a home of an older
release migrates it (backup first) and says so on stderr, once; ``docqa backup`` copies a home
as it is, an older format included; a newer home is refused in one line."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from docqa.cli import app
from pipelines.operations.home_format import BACKUPS_DIR, HOME_FILE, home_format

API_RELEASE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "homes"
    / "release-2026-12-02-c917935.tar.gz"
)  # fmt: skip


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def old_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with tarfile.open(API_RELEASE) as tar:
        tar.extractall(home, filter="data")
    return home


def test_the_first_command_migrates_once_and_says_so(tmp_path: Path) -> None:
    home = old_home(tmp_path)

    code, out, err = run("keys", "list", "--home", home)
    assert code == 0, err
    assert "migrated" in err and "from home format 1 to 2" in err and "API keys: 1 of 1" in err
    assert "bot" in out and "viewer" in out  # the key reads with today's role name
    assert len(list((home / BACKUPS_DIR).glob("before-format-2-*.tar"))) == 1

    code, out, err = run("keys", "list", "--home", home)
    assert code == 0 and "migrated" not in err


def test_backup_copies_an_older_home_as_it_is(tmp_path: Path) -> None:
    home = old_home(tmp_path)
    code, _, err = run("backup", tmp_path / "old.tar", "--home", home, "--no-progress")
    assert code == 0, err
    assert home_format(home) == 1 and not (home / BACKUPS_DIR).exists()


def test_a_newer_home_is_refused_in_one_line(tmp_path: Path) -> None:
    home = old_home(tmp_path)
    (home / HOME_FILE).write_text(json.dumps({"format": "docqa-home", "format_version": 7}))
    code, out, err = run("ask", "What is the guest Wi-Fi network called?", "--home", home)
    assert code == 1 and not out
    assert err.startswith("error: ") and "newer DocQA (home format 7" in err
    assert len(err.strip().splitlines()) == 1
