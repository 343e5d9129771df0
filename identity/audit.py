"""The audit log: who did what, when, with what outcome, as append-only JSON lines.

``<home>/audit/audit.jsonl`` (0600; its folder 0700), one object per line: ``time`` (UTC ISO),
``actor`` (``kind:name``), ``role``, ``action``, ``outcome`` ("ok", "denied", "failed"),
``target`` and ``detail``. Lines are appended with ``O_APPEND`` under a lock, so concurrent
writers (page, API workers, CLI) never interleave a line. The file is rotated when it passes
``max_bytes`` (``audit.jsonl.1`` ... ``.N``; the oldest dropped): the standard library's
``RotatingFileHandler`` would rotate per process and lose lines when several processes write,
so rotation is done here under the same file lock.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from identity.roles import Caller
from pipelines.settings import Settings

logger = logging.getLogger(__name__)

AUDIT_DIR = "audit"
AUDIT_FILE = "audit.jsonl"


@dataclass(frozen=True)
class AuditEvent:
    time: str
    actor: str
    role: str
    action: str
    outcome: str
    target: str | None = None
    detail: str | None = None


class AuditLog:
    def __init__(self, folder: Path, max_bytes: int = 10 * 2**20, keep: int = 10) -> None:
        self.folder = Path(folder)
        self.path = self.folder / AUDIT_FILE
        self.max_bytes, self.keep = max_bytes, keep
        self._lock = FileLock(str(self.folder / (AUDIT_FILE + ".lock")), timeout=30)

    @classmethod
    def of(cls, settings: Settings) -> AuditLog:
        return cls(settings.home / AUDIT_DIR)

    def record(
        self,
        caller: Caller | None,
        action: str,
        outcome: str = "ok",
        target: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one event. An audit write that fails is logged as an error, not raised: the
        caller's action already happened (or was refused) and must be answered."""
        event = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "actor": caller.identity if caller else "anonymous",
            "role": caller.role.value if caller else None,
            "action": action,
            "outcome": outcome,
            "target": target,
            "detail": detail,
        }
        line = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._lock:
                self._rotate_if_full(len(line))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except (OSError, Timeout) as exc:
            logger.error("could not write the audit log %s: %s (event %s)", self.path, exc, event)

    def _rotate_if_full(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + incoming <= self.max_bytes:
            return
        for n in range(self.keep - 1, 0, -1):
            older = self.folder / f"{AUDIT_FILE}.{n}"
            if older.exists():
                os.replace(older, self.folder / f"{AUDIT_FILE}.{n + 1}")
        os.replace(self.path, self.folder / f"{AUDIT_FILE}.1")
        (self.folder / f"{AUDIT_FILE}.{self.keep + 1}").unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """Oldest first."""
        rotated = sorted(
            self.folder.glob(f"{AUDIT_FILE}.*[0-9]"),
            key=lambda p: -int(p.suffix[1:]),
        )
        return [*rotated, self.path] if self.path.exists() else rotated

    def events(
        self, since: datetime | None = None, actor: str | None = None
    ) -> Iterator[AuditEvent]:
        """Events oldest first; ``actor`` matches ``kind:name`` or the name alone."""
        for path in self.files():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        data: dict[str, Any] = json.loads(line)
                        event = AuditEvent(**data)
                    except (json.JSONDecodeError, TypeError):
                        logger.warning("%s: an unreadable line skipped", path)
                        continue
                    if since is not None and datetime.fromisoformat(event.time) < since:
                        continue
                    if actor is not None and actor not in (
                        event.actor,
                        event.actor.split(":", 1)[-1],
                    ):
                        continue
                    yield event
