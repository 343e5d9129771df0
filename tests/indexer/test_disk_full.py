"""A full disk while saving the index: a clear error, the last saved index intact, and recovery.

The disk is "full" for a subprocess through ``RLIMIT_FSIZE`` (any write past 8 KB to a file
fails with EFBIG, as ENOSPC would), which needs neither root nor a small file system.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from indexer.run import index_folder
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def _small_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))


def _fingerprint(index_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(index_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(index_dir.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


def test_a_full_disk_while_saving_keeps_the_last_index_and_the_next_run_recovers(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("onboarding.md", "opening-hours.txt"):
        shutil.copy2(FIXTURES / name, docs / name)
    settings = Settings(home=tmp_path / "home")
    index_folder([docs], settings, progress=False)
    before = _fingerprint(settings.index_dir)

    shutil.copy2(FIXTURES / "security.html", docs / "security.html")
    with (docs / "opening-hours.txt").open("a", encoding="utf-8") as out:
        out.write("\nThe car park closes at 22:00.\n")
    full = subprocess.run(
        [sys.executable, "-m", "docqa", "index", str(docs), "--home", str(settings.home),
         "--no-progress"],
        preexec_fn=_small_disk,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert full.returncode != 0
    error = full.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {settings.index_dir}: could not save the index (")
    assert error.endswith("is the disk full?); the last saved version is unchanged")
    assert "Traceback" not in full.stderr
    assert _fingerprint(settings.index_dir) == before  # not a byte changed, no half version

    summary = index_folder([docs], settings, progress=False)
    assert (summary.added, summary.updated) == (1, 1)
    store = PassageStore.load(settings.index_dir)
    assert sorted(r.source for r in store.sources()) == [
        "docs/onboarding.md",
        "docs/opening-hours.txt",
        "docs/security.html",
    ]
