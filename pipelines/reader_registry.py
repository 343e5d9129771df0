"""Where reader models live, which one serves, and the versions ``docqa train`` wrote.

Resolution order for the serving reader: an explicit ``Settings.reader_model`` (a folder, a
version name under ``<home>/models``, or a hub id when online), else the version named in
``<home>/models/serving.json`` (set by promotion), else the reader shipped in the repository
(``data/reader``), trained by the default recipe.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.settings import SHIPPED_READER, Settings
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

SHIPPED_NAME = "shipped"


class ReaderNotFoundError(FileNotFoundError):
    pass


@dataclass
class ModelInfo:
    name: str
    path: Path
    created: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    serving: bool = False

    @property
    def heldout_f1(self) -> float | None:
        held = self.metrics.get("metrics", {}).get("heldout", {})
        return held.get("f1")


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(
        (path / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")
    )


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def serving_name(settings: Settings) -> str | None:
    try:
        data = json.loads(settings.serving_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    name = data.get("name")
    return name if isinstance(name, str) else None


def model_path(settings: Settings, name: str) -> Path:
    """The folder of a model version by name (``shipped`` is the repository's reader)."""
    if name == SHIPPED_NAME:
        return SHIPPED_READER
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' and '.'")
    return settings.models_dir / name


def reader_version_name(path: str | Path) -> str:
    """The name users know a reader by: a version folder's name, or "shipped"."""
    resolved = Path(path)
    if resolved == SHIPPED_READER:
        return SHIPPED_NAME
    return resolved.name


def resolve_reader(settings: Settings) -> str:
    """The reader to load: a local folder path, or a hub id when that is what was configured."""
    if settings.reader_model:
        candidate = Path(settings.reader_model).expanduser()
        if is_model_folder(candidate):
            return str(candidate)
        by_name = settings.models_dir / settings.reader_model
        if is_model_folder(by_name):
            return str(by_name)
        if candidate.exists() or settings.reader_model.startswith((".", "/")):
            raise ReaderNotFoundError(f"{settings.reader_model}: not a reader model folder")
        return settings.reader_model  # a hub id; loads only where the hub is reachable
    name = serving_name(settings)
    if name:
        path = model_path(settings, name)
        if not path.exists():
            recover_model_folder(path)  # a save killed between its two renames
        if is_model_folder(path):
            return str(path)
        logger.warning("serving model %s is missing (%s); using the shipped reader", name, path)
    if is_model_folder(SHIPPED_READER):
        return str(SHIPPED_READER)
    raise ReaderNotFoundError(
        f"no reader model: {SHIPPED_READER} is missing and none is promoted in "
        f"{settings.models_dir}"
        " (train one with `docqa train`)"
    )


def list_models(settings: Settings) -> list[ModelInfo]:
    """The shipped reader and every complete version in ``<home>/models``, newest first."""
    current = resolve_reader_or_none(settings)
    infos = []
    candidates = [(SHIPPED_NAME, SHIPPED_READER)]
    if settings.models_dir.is_dir():
        candidates += [
            (p.name, p)
            for p in settings.models_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".")
        ]
    for name, path in candidates:
        if not is_model_folder(path):
            continue
        meta = _read_metrics(path)
        infos.append(
            ModelInfo(
                name,
                path,
                meta.get("created", ""),
                meta,
                serving=current is not None and Path(current) == path,
            )
        )
    shipped = [i for i in infos if i.name == SHIPPED_NAME]
    versions = sorted(
        (i for i in infos if i.name != SHIPPED_NAME), key=lambda i: i.created, reverse=True
    )
    return versions + shipped


def resolve_reader_or_none(settings: Settings) -> str | None:
    try:
        return resolve_reader(settings)
    except ReaderNotFoundError:
        return None


def set_serving(settings: Settings, name: str) -> Path:
    """Make a version the serving reader (atomic write of ``serving.json``)."""
    path = model_path(settings, name)
    if not is_model_folder(path):
        raise ReaderNotFoundError(f"{name}: no complete model folder at {path}")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "since": datetime.now(UTC).isoformat(timespec="seconds")}
    write_atomic(settings.serving_file, json.dumps(payload))
    logger.info("serving reader is now %s", name)
    return path


def recover_model_folder(out: Path) -> None:
    """Undo what a writer killed mid-save (``kill -9``, power cut) left beside ``out``.

    Killed between its two renames, it left the old folder as ``.<name>.old-<pid>`` and nothing
    at ``out``: that folder is put back. Temporary and old folders of writers no longer running
    are removed.
    """
    for leftover in sorted(out.parent.glob(f".{out.name}.old-*")):
        if _writer_alive(leftover):
            continue
        if not out.exists():
            leftover.rename(out)
            logger.warning("restored %s from an interrupted save", out)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in out.parent.glob(f".{out.name}.tmp-*"):
        if not _writer_alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _writer_alive(leftover: Path) -> bool:
    pid = leftover.name.rpartition("-")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_own_version(settings: Settings, model_dir: Path) -> bool:
    """Whether ``model_dir`` is one of the versions in the home's models folder."""
    return Path(model_dir).resolve().parent == settings.models_dir.resolve()


def copy_as_version(settings: Settings, source: Path, name: str) -> Path:
    """Copy a reader folder into the home as version ``name`` (complete or absent, never half)."""
    target = model_path(settings, name)
    if target.exists():
        raise FileExistsError(f"{name}: a version of that name exists in {settings.models_dir}")
    tmp = target.parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".*"))
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
