"""``docqa backup`` and ``docqa restore`` through the real command line: a dry run writes
nothing, a restore gives a home that answers, a damaged archive is refused in one line, and
both commands are in the audit log."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from docqa.cli import app
from identity import AuditLog
from pipelines.settings import Settings


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_backup_dry_run_restore_and_a_refused_archive(demo_home: Settings, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(demo_home.home, home)
    archive = tmp_path / "backups" / "home.tar.gz"

    code, out, err = run("backup", archive, "--home", home, "--no-progress")
    assert code == 0, err
    assert "index v-000001" in out and archive.is_file()
    assert [e.action for e in AuditLog(home / "audit").events()][-1:] == ["backup"]

    target = tmp_path / "restored"
    code, out, err = run("restore", archive, "--home", target, "--dry-run", "--no-progress")
    assert code == 0, err
    assert "index/CURRENT" in out and "nothing was written" in out
    assert not target.exists()

    code, out, err = run("restore", archive, "--home", target, "--no-progress")
    assert code == 0, err
    assert (target / "index" / "CURRENT").read_text() == (home / "index" / "CURRENT").read_text()
    events = list(AuditLog(target / "audit").events())
    assert [(e.action, e.outcome) for e in events] == [("restore", "ok")]

    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(bytes(data))
    code, out, err = run("restore", damaged, "--home", tmp_path / "other", "--no-progress")
    assert code == 1 and not (tmp_path / "other").exists()
    assert err.startswith(f"error: {damaged}: ") and err.count("\n") == 1
    assert "nothing was restored" in err
