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


# -- no import cycles between modules --------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports, at any depth: at module level, inside
    functions and under ``TYPE_CHECKING`` alike. ``from pkg import name`` points at the module
    ``pkg.name`` where there is one, else at ``pkg`` itself."""
    files = [p for package in packages for p in sorted((root / package).rglob("*.py"))]
    paths = {module_name(p, root): p for p in files}

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in map(resolve, targets) if t and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path back to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Layers inside a package too: a cycle (often hidden by an import inside a function) means
    two modules that cannot be read, tested or moved apart."""
    cycle = find_cycle(import_graph(REPO_ROOT, PACKAGES))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "a.py").write_text("from pkg.b import g\n", encoding="utf-8")
    (package / "b.py").write_text("def g():\n    from pkg import a\n", encoding="utf-8")
    assert find_cycle(import_graph(tmp_path, ("pkg",))) == ["pkg.a", "pkg.b", "pkg.a"]
    (package / "b.py").write_text("def g():\n    return 1\n", encoding="utf-8")
    assert find_cycle(import_graph(tmp_path, ("pkg",))) is None


def test_every_public_name_of_a_package_resolves() -> None:
    """A package's ``__all__`` is its surface: every name in it can be imported (a lazy map
    pointing at a module that does not define the name is dead code)."""
    import importlib

    missing = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            try:
                getattr(module, name)
            except AttributeError as exc:
                missing.append(f"{package}.{name}: {exc}")
    assert not missing, "\n".join(missing)
