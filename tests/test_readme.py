"""The README a newcomer reads first stays short, its links and the docs' links lead somewhere, and
its module table names every module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.settings import REPO_ROOT
from tests.test_architecture import PACKAGES

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def links(markdown: str) -> list[str]:
    """Link and image targets outside fenced code blocks."""
    return LINK.findall(FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1 -2 ...
    for repeats."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def test_readme_is_short() -> None:
    lines = len(_text(README).splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_lead_to_files_and_headings(path: Path) -> None:
    broken = []
    for target in links(_text(path)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(_text(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO_ROOT)}")
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_a_broken_link() -> None:
    text = "See [a](docs/nowhere.md), [b](https://example.com) and\n```\n[c](x.md)\n```\n"
    assert links(text) == ["docs/nowhere.md", "https://example.com"]
    assert anchors("# Results\n## Measured (2026-12-02, 2 cores)\n## Results\n") == {
        "results",
        "measured-2026-12-02-2-cores",
        "results-1",
    }


def _modules(package: str) -> set[str]:
    root = REPO_ROOT / package
    return {
        path.stem
        for path in root.rglob("*.py")
        if path.stem != "__init__" and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_the_module_tables_name_every_module(package: str) -> None:
    """The README's table (its rows for the package) and docs/architecture.md name every module."""
    readme_rows = [
        line for line in _text(README).splitlines() if line.startswith(f"| `{package}` ")
    ]
    assert readme_rows, f"README.md has no row for {package}"
    architecture = _text(REPO_ROOT / "docs" / "architecture.md")
    section = architecture.split(f"## `{package}`", 1)[1].split("\n## ", 1)[0]
    for where, text in (("README.md", "\n".join(readme_rows)), ("docs/architecture.md", section)):
        missing = sorted(m for m in _modules(package) if f"`{m}`" not in text)
        assert not missing, f"{where} leaves out {package} modules: {missing}"


def test_readme_keeps_the_quick_start() -> None:
    text = _text(README)
    assert "bash scripts/setup.sh && .venv/bin/docqa ui" in text
    assert "bash scripts/setup.sh --dev && .venv/bin/python -m pytest" in text
    assert "through a sign-in link that `docqa ui` prints" in text
