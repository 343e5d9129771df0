"""Faults while training: a full disk, and a save killed between its renames."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from pipelines.reader_registry import is_model_folder, resolve_reader, set_serving
from pipelines.settings import REPO_ROOT, Settings

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _small_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_while_training_keeps_the_earlier_version(
    tmp_path: Path, tiny_reader: Path, tiny_base: str
) -> None:
    settings = Settings(home=tmp_path / "home")
    earlier = settings.models_dir / "mine"
    shutil.copytree(tiny_reader, earlier)
    before = _fingerprint(earlier)
    pairs = tmp_path / "pairs.json"
    data = json.loads(DEMO_TRAIN.read_text(encoding="utf-8"))
    pairs.write_text(json.dumps({"version": "v2.0", "data": data["data"][:3]}), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "docqa", "train", str(pairs), "--name", "mine", "--base-model",
         tiny_base, "--epochs", "1", "--home", str(settings.home)],
        preexec_fn=_small_disk,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: could not write the model to {earlier} (")
    assert "Traceback" not in done.stderr
    assert _fingerprint(earlier) == before


def test_a_save_killed_between_its_renames_is_recovered(tmp_path: Path, tiny_reader: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    serving = settings.models_dir / "mine"
    shutil.copytree(tiny_reader, serving)
    set_serving(settings, "mine")
    before = _fingerprint(serving)
    # What `kill -9` leaves after the first rename (old folder aside) and before the second:
    # no folder under the name, the old one beside it, a half-written new one.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = dead.stdout.strip()
    serving.rename(settings.models_dir / f".mine.old-{pid}")
    (settings.models_dir / f".mine.tmp-{pid}").mkdir()
    (settings.models_dir / f".mine.tmp-{pid}" / "config.json").write_text("{", "utf-8")

    assert resolve_reader(settings) == str(serving)  # the serving reader is put back
    assert is_model_folder(serving) and _fingerprint(serving) == before
    assert sorted(p.name for p in settings.models_dir.iterdir() if p.name.startswith(".")) == []
