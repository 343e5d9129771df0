"""Render the demo collection's PDF and DOCX documents from their Markdown sources.

Every ``data/demo/sources/**/*.md`` whose first line is ``<!-- target: hr/leave-policy.pdf -->``
is rendered into ``data/demo/documents/<target>``: PDF with fpdf2 (core font Helvetica), DOCX
with python-docx (Heading 1/2/3 and List Bullet styles). The sources use light Markdown only:
``#``/``##``/``###`` headings, blank-line separated paragraphs and ``- `` bullets. An optional
``<!-- title: ... -->`` line sets the document title; otherwise the first ``#`` heading does.

The output is deterministic (fixed dates, fixed ZIP timestamps), so re-running gives the same
bytes. By default only stale targets (missing, or older than their source or this script) are
rendered; ``--force`` renders all, ``--check`` renders nothing and exits 1 when a target is
missing or older than its source.

    .venv/bin/python data/demo/build_documents.py [--force | --check]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
DOCUMENTS = HERE / "documents"

# Fixed dates keep the rendered bytes stable across runs (the files carry no build time).
FIXED_DATE = datetime(2025, 1, 1, 9, 0, 0, tzinfo=UTC)
ZIP_DATE = (2025, 1, 1, 9, 0, 0)
AUTHOR = "Lumenfield Systems"

TARGET_RE = re.compile(r"^<!--\s*target:\s*(\S+)\s*-->\s*$")
TITLE_RE = re.compile(r"^<!--\s*title:\s*(.+?)\s*-->\s*$")
HEADING_RE = re.compile(r"^(#{1,3})\s+(.*\S)\s*$")
BULLET_RE = re.compile(r"^\s*[-*]\s+(.*\S)\s*$")

# The PDF core fonts only cover latin-1: map the usual typographic characters to near twins.
LATIN1_REPLACEMENTS = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u20ac": "EUR",
    "\u2022": "-",
    "\u2192": "->",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2212": "-",
    "\u2122": "(TM)",
}

log = logging.getLogger("build_documents")


@dataclass
class Block:
    """One block of a source: a heading (level 1-3), a paragraph or a bullet item."""

    kind: str  # "heading", "paragraph" or "bullet"
    text: str
    level: int = 0


@dataclass
class Source:
    """A parsed source file and the document it renders to."""

    path: Path
    target: str
    title: str
    blocks: list[Block]

    @property
    def output(self) -> Path:
        return DOCUMENTS / self.target


def _inline(text: str) -> str:
    """Drop inline Markdown emphasis and code marks: the renderers write plain text."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<!\w)\*(\S.*?\S|\S)\*(?!\w)", r"\1", text)
    return text.replace("`", "")


def parse_source(path: Path) -> Source | None:
    """Parse one source; None when its first line names no target."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not (match := TARGET_RE.match(lines[0])):
        return None
    target = match.group(1)
    if Path(target).suffix.lower() not in {".pdf", ".docx"}:
        raise ValueError(f"{path}: target {target!r} is neither .pdf nor .docx")
    title: str | None = None
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", _inline(" ".join(paragraph))))
            paragraph.clear()

    for line in lines[1:]:
        if (t := TITLE_RE.match(line)) and title is None:
            title = t.group(1)
            continue
        if not line.strip():
            flush()
        elif heading := HEADING_RE.match(line):
            flush()
            blocks.append(Block("heading", _inline(heading.group(2)), len(heading.group(1))))
        elif bullet := BULLET_RE.match(line):
            flush()
            blocks.append(Block("bullet", _inline(bullet.group(1))))
        elif blocks and blocks[-1].kind == "bullet" and not paragraph and line.startswith("  "):
            blocks[-1].text += " " + _inline(line.strip())  # continuation of a wrapped bullet
        else:
            paragraph.append(line.strip())
    flush()
    if title is None:
        title = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), path.stem)
    return Source(path, target, title, blocks)


def _latin1(text: str) -> str:
    for char, repl in LATIN1_REPLACEMENTS.items():
        text = text.replace(char, repl)
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(source: Source) -> bytes:
    """A4 PDF in Helvetica; fpdf2's automatic page breaks split long text over pages."""
    from fpdf import FPDF

    title = _latin1(source.title)

    class _PDF(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _PDF(format="A4")
    pdf.set_title(title)
    pdf.set_author(AUTHOR)
    pdf.set_creator("data/demo/build_documents.py")
    pdf.set_producer("fpdf2")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=22)
    pdf.add_page()
    width = pdf.epw
    for block in source.blocks:
        text = _latin1(block.text)
        if block.kind == "heading":
            size = {1: 17, 2: 13.5, 3: 11.5}[block.level]
            pdf.ln(3 if block.level > 1 else 0)
            pdf.set_font("Helvetica", "B", size)
            pdf.multi_cell(width, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind == "bullet":
            pdf.set_font("Helvetica", "", 10.5)
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(width - 4, 5.6, f"- {text}", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        else:
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(width, 5.6, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
    return bytes(pdf.output())


def render_docx(source: Source) -> bytes:
    """DOCX with real Heading and List Bullet styles; ZIP entries carry a fixed timestamp."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = source.title
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    for block in source.blocks:
        if block.kind == "heading":
            document.add_heading(block.text, level=block.level)
        elif block.kind == "bullet":
            document.add_paragraph(block.text, style="List Bullet")
        else:
            document.add_paragraph(block.text)
    raw = io.BytesIO()
    document.save(raw)
    # python-docx stamps ZIP entries with the current time: rewrite them with a fixed one.
    stable = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(stable, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return stable.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_sources() -> list[Source]:
    sources = []
    for path in sorted(SOURCES.rglob("*.md")):
        source = parse_source(path)
        if source is not None:
            sources.append(source)
    targets = [s.target for s in sources]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise ValueError(f"several sources render to {', '.join(duplicates)}")
    return sources


def is_stale(source: Source, against_script: bool) -> bool:
    if not source.output.exists():
        return True
    built = source.output.stat().st_mtime
    newest = source.path.stat().st_mtime
    if against_script:
        newest = max(newest, Path(__file__).stat().st_mtime)
    return built < newest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a target is missing/stale")
    mode.add_argument("--force", action="store_true", help="render every target")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        sources = find_sources()
    except ValueError as exc:
        log.error("error: %s", exc)
        return 1
    if args.check:
        stale = [s for s in sources if is_stale(s, against_script=False)]
        for source in stale:
            state = "missing" if not source.output.exists() else "older than its source"
            log.error("%s: %s", source.output.relative_to(HERE), state)
        log.info("%d of %d rendered documents up to date", len(sources) - len(stale), len(sources))
        return 1 if stale else 0

    rendered = 0
    for source in sources:
        if not args.force and not is_stale(source, against_script=True):
            continue
        renderer = render_pdf if source.target.lower().endswith(".pdf") else render_docx
        write_atomic(source.output, renderer(source))
        rendered += 1
        log.info("rendered %s", source.output.relative_to(HERE))
    log.info("%d rendered, %d up to date", rendered, len(sources) - rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
