"""The audit log (identity.audit): append-only JSON lines, private, rotated without losing or
splitting a line, also when several processes (API workers, the page, the CLI) write at once."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity import AuditLog, Caller, Role
from pipelines.settings import REPO_ROOT

ANN = Caller("ann", Role.VIEWER, frozenset({"hr"}))
OPS = Caller("ops", Role.ADMIN, kind="cli")


def all_lines(log: AuditLog) -> list[str]:
    return [line for path in log.files() for line in path.read_text("utf-8").splitlines()]


def test_events_are_recorded_privately_and_filtered(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    log.record(ANN, "login")
    log.record(OPS, "key_create", target="ci-bot", detail="role=viewer")
    log.record(None, "ask", outcome="denied")
    events = list(log.events())
    assert [(e.actor, e.role, e.action, e.outcome, e.target) for e in events] == [
        ("user:ann", "viewer", "login", "ok", None),
        ("cli:ops", "admin", "key_create", "ok", "ci-bot"),
        ("anonymous", None, "ask", "denied", None),
    ]
    assert events[1].detail == "role=viewer"
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.folder.stat().st_mode) == 0o700

    assert [e.action for e in log.events(actor="ann")] == ["login"]
    assert [e.action for e in log.events(actor="user:ann")] == ["login"]
    assert list(log.events(actor="key:ann")) == []
    assert len(list(log.events(since=datetime.now(UTC) - timedelta(minutes=5)))) == 3
    assert list(log.events(since=datetime.now(UTC) + timedelta(minutes=5))) == []

    # A damaged line (a disk that filled up mid-write) is skipped, not fatal.
    with log.path.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2026-\n')
    log.record(ANN, "logout")
    assert [e.action for e in log.events(actor="ann")] == ["login", "logout"]


def test_rotation_keeps_every_line_in_order(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", max_bytes=2000, keep=100)
    for i in range(120):
        log.record(ANN, "ask", detail=f"event {i:03d}")
    files = log.files()
    assert len(files) > 5  # it did rotate, many times
    assert all(p.stat().st_size <= 2000 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert [e.detail for e in log.events()] == [f"event {i:03d}" for i in range(120)]


def test_rotation_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", max_bytes=1000, keep=3)
    for i in range(200):
        log.record(ANN, "ask", detail=f"event {i:03d}")
    files = log.files()
    assert len(files) == 4  # the current file and three rotated ones
    details = [e.detail for e in log.events()]
    # The newest events, contiguous and in order: only whole old files were dropped.
    assert details == [f"event {i:03d}" for i in range(200 - len(details), 200)]
    assert 10 < len(details) < 200


WRITER = """
import sys, time
from pathlib import Path
from identity import AuditLog, Caller, Role

folder, name, count, gate = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
log = AuditLog(folder, max_bytes=40_000, keep=500)
who = Caller(name, Role.VIEWER)
(gate.parent / f"ready-{name}").touch()
while not gate.exists():  # all four start writing at once, not one after another's import
    time.sleep(0.005)
for i in range(count):
    # Lines longer than a pipe's atomic write: only the lock keeps them whole.
    log.record(who, "ask", detail=f"{name} {i} " + name[0] * 6000)
"""
NAMES = ("alpha", "bravo", "charlie", "delta")


def test_concurrent_writers_leave_whole_lines_only(tmp_path: Path) -> None:
    """Without the lock, rotations racing each other lose lines (a file renamed over another):
    about 1% of 400 when this was written."""
    folder, per_writer, gate = tmp_path / "audit", 100, tmp_path / "go"
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), name, str(per_writer), str(gate)],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in NAMES
    ]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"ready-{n}").exists() for n in NAMES):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers)
        time.sleep(0.05)
    gate.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-2000:]

    log = AuditLog(folder)
    lines = all_lines(log)
    assert len(log.files()) > 10  # rotations happened while the others were writing
    parsed = [json.loads(line) for line in lines]  # every line is one whole event
    seen = sorted((p["actor"], int(p["detail"].split()[1])) for p in parsed)
    expected = sorted(
        (f"user:{name}", i) for name in NAMES for i in range(per_writer)
    )  # fmt: skip
    assert seen == expected  # none lost, none twice
    for p in parsed:
        name = p["actor"].split(":")[1]
        assert p["detail"].endswith(name[0] * 6000)
    # Each writer's own events stay in its order.
    for name in ("alpha", "bravo"):
        mine = [int(p["detail"].split()[1]) for p in parsed if p["actor"] == f"user:{name}"]
        assert mine == list(range(per_writer))


def test_a_failed_write_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "audit"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    log = AuditLog(blocked)
    with caplog.at_level(logging.ERROR, logger="identity.audit"):
        log.record(ANN, "login")
    assert "could not write the audit log" in caplog.text
