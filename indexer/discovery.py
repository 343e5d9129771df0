"""Finding the files to index under the folders given: supported files, hidden ones ignored,
symbolic links followed only inside their folder, and why each other file was skipped.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from indexer.convert import SUPPORTED_EXTENSIONS
from indexer.manifest import FileState, is_under


def _hidden(name: str) -> bool:
    return name.startswith(".")


def collect_files(
    roots: list[Path], exclude: list[Path] | None = None
) -> tuple[list[FileState], list[tuple[str, str]], list[tuple[str, str]]]:
    """Supported files under ``roots`` (resolved), plus (source, reason) lists: skipped, failed.

    Hidden files and folders (".name") and the folders in ``exclude`` (DocQA's own data) are
    ignored without a word. A symbolic link is followed only when it stays inside its root;
    folder links are never followed (they could loop or index a folder twice).
    """
    excluded = [path.resolve() for path in exclude or []]
    found: dict[Path, FileState] = {}
    skipped: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []

    def consider(path: Path, root: Path, shown: str) -> None:
        if path.is_symlink():
            target, problem = _link_target(path)
            if target is None:
                skipped.append((shown, problem))
                return
            if not is_under(target, [root]):
                skipped.append((shown, "symbolic link to a file outside the indexed folder"))
                return
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            skipped.append((shown, f"unsupported file type '{suffix or '(none)'}'"))
            return
        if not path.is_file():
            skipped.append((shown, "not a regular file"))
            return
        try:
            state = FileState.from_path(path, shown)
        except OSError as exc:
            failed.append((shown, f"cannot read file ({exc.strerror or exc})"))
            return
        found.setdefault(state.path, state)  # first root wins when roots overlap

    for root in roots:
        if root.is_file():
            consider(root, root.parent, root.name)
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            folder = Path(dirpath)
            keep = []
            for name in sorted(dirnames):
                sub = folder / name
                if _hidden(name):
                    continue
                if sub.is_symlink():
                    skipped.append((source_for_link(sub, root), "symbolic link to a folder"))
                    continue
                if sub.resolve() in excluded:
                    continue
                keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                if not _hidden(name):
                    path = folder / name
                    consider(path, root, source_for_link(path, root))
    return list(found.values()), skipped, failed


def _link_target(link: Path) -> tuple[Path | None, str]:
    """Where a symbolic link leads, or None and why not (a loop, a missing target)."""
    try:
        return link.resolve(strict=True), ""
    except FileNotFoundError:
        return None, "broken symbolic link (its target does not exist)"
    except (RuntimeError, OSError) as exc:
        # Python 3.11 raises RuntimeError("Symlink loop ..."), later versions OSError(ELOOP).
        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
            return None, "symbolic link loop"
        return None, f"unreadable symbolic link ({exc})"


def source_for_link(path: Path, root: Path) -> str:
    """The displayed name of ``path`` under ``root`` without resolving a final symlink."""
    return (Path(root.name) / path.relative_to(root)).as_posix()
