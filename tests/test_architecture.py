"""The packages' dependencies point one way, as the README's picture says."""

from __future__ import annotations

import ast
from pathlib import Path

from pipelines.settings import REPO_ROOT

PACKAGES = (
    "pipelines",
    "identity",
    "indexer",
    "evaluation",
    "reader_training",
    "ui",
    "api",
    "docqa",
)
# What each package may import of the others (the README's architecture). Who may do what
# (identity) sits beside the core: the core takes a plain scope, the front ends ask identity.
ALLOWED = {
    "pipelines": set(),
    "identity": {"pipelines"},
    "indexer": {"pipelines"},
    "evaluation": {"pipelines", "indexer"},
    "reader_training": {"pipelines", "evaluation"},
    "ui": {"pipelines", "identity", "indexer", "evaluation", "reader_training"},
    "api": {"pipelines", "identity", "indexer", "evaluation", "reader_training"},
    "docqa": {"pipelines", "identity", "indexer", "evaluation", "reader_training", "ui", "api"},
}


def imported_packages(path: Path) -> set[str]:
    """Our packages that a module imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
    return found


def test_every_package_imports_only_the_packages_below_it() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            extra = imported_packages(path) - allowed - {package}
            if extra:
                wrong.append(f"{path.relative_to(REPO_ROOT)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from indexer.run import index_folder\n", encoding="utf-8")
    assert imported_packages(module) == {"indexer"}


MAX_MODULE_LINES = 650


def test_no_module_is_too_big_to_read() -> None:
    """A room a newcomer can read: every module of the packages stays under the limit."""
    big = [
        f"{path.relative_to(REPO_ROOT)}: {n} lines"
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not big, "\n".join(big)
