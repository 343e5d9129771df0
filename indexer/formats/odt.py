"""OpenDocument text (``.odt``) as text: headings as sections, tables as "header: value" rows.

An ODT file is a ZIP package whose ``content.xml`` holds the body: ``text:h`` headings (they
start a section, like DOCX headings), ``text:p`` paragraphs, ``text:list`` items, and
``table:table`` tables, linearized like DOCX and HTML tables (:func:`indexer.convert.table_text`;
the rows of ``table:table-header-rows`` label the cells below them). Footnote citations,
annotations (comments) and the deleted text kept for tracked changes are left out; ``meta.xml``
gives the title.

Read with :mod:`zipfile` and lxml (already a dependency, through python-docx and BeautifulSoup),
not odfpy: odfpy (Apache-2.0/GPL, last release 2020) builds a DOM of its own element classes and
offers text only through a generic ``teletype`` walk that knows neither sections nor tables, so
the walk below would be written either way. The package is checked first like an Office file
(:func:`~indexer.formats.office_zip.check_office_zip`: ZIP bombs, an OLE file misnamed); a
password-protected ODT (its ``manifest.xml`` lists encryption data) is named as such.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.convert import table_text
from indexer.document import Block, ConversionError, ConvertedDocument, assemble, one_line
from indexer.formats.office_zip import check_office_zip

logger = logging.getLogger(__name__)

_NS = {
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_T, _TB, _OFFICE = (f"{{{_NS[k]}}}" for k in ("text", "table", "office"))
TABLE_NS, OFFICE_NS = _TB, _OFFICE  # for the spreadsheet reader (indexer/formats/sheets.py)
# Inline elements whose text is not part of the running text.
_SKIP_INLINE = {f"{_T}note-citation", f"{_OFFICE}annotation", f"{_OFFICE}annotation-end",
                f"{_T}tracked-changes", f"{_T}bookmark-ref"}  # fmt: skip
# Repeated empty columns/rows (a table stretched to the page) are not expanded past these.
_MAX_COLUMNS = 200
_MAX_REPEAT = 1000


def xml_root(path: Path, data: bytes, kind: str) -> Any:
    """Parse XML without entities or network access (a package's part is untrusted input)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ConversionError(path, f"not a readable {kind} (broken XML: {exc})") from None


def inline_text(element: Any) -> str:
    """The text of a paragraph or heading: spaces, tabs and line breaks as ODF encodes them."""
    parts: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag in _SKIP_INLINE:
            pass
        elif tag == f"{_T}s":
            parts.append(" " * min(int(child.get(f"{_T}c", "1") or 1), 100))
        elif tag == f"{_T}tab":
            parts.append("\t")
        elif tag == f"{_T}line-break":
            parts.append("\n")
        elif tag == f"{_T}note":
            body = child.find(f"{_T}note-body")
            if body is not None:
                parts.append(" (" + " ".join(inline_text(p) for p in body.iter(f"{_T}p")) + ")")
        else:
            parts.append(inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _table_rows(table: Any) -> Iterator[tuple[list[str], bool]]:
    """(cells, is_header) per row; covered (merged-away) cells are left out."""
    for row in table.iter(f"{_TB}table-row"):
        if row.getparent() is None or _owning_table(row) is not table:
            continue  # a row of a table nested in a cell belongs to that table
        header = row.getparent().tag == f"{_TB}table-header-rows"
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (f"{_TB}table-cell", f"{_TB}covered-table-cell"):
                continue
            text = one_line(" ".join(inline_text(p) for p in cell.iter(f"{_T}p", f"{_T}h")))
            repeat = min(int(cell.get(f"{_TB}number-columns-repeated", "1") or 1), _MAX_COLUMNS)
            if cell.tag == f"{_TB}covered-table-cell":
                continue
            cells.extend([text] * (repeat if text else 1))
            if len(cells) >= _MAX_COLUMNS:
                break
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            repeat = min(int(row.get(f"{_TB}number-rows-repeated", "1") or 1), _MAX_REPEAT)
            for _ in range(repeat):
                yield cells, header


def _owning_table(element: Any) -> Any:
    parent = element.getparent()
    while parent is not None and parent.tag != f"{_TB}table":
        parent = parent.getparent()
    return parent


class _Walker:
    """Turns ``office:text`` into blocks: headings start sections, tables and lists are blocks."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.section: str | None = None
        self.first_heading: str | None = None

    def walk(self, element: Any) -> None:
        for child in element:
            tag = child.tag
            if tag == f"{_T}h":
                text = one_line(inline_text(child))
                if text:
                    self.section = text
                    self.first_heading = self.first_heading or text
                    self.blocks.append(Block(text, section=self.section))
            elif tag == f"{_T}p":
                self.blocks.append(Block(inline_text(child), section=self.section))
            elif tag == f"{_T}list":
                self.blocks.append(Block("\n".join(self._list_lines(child, 0)), None,
                                          self.section))  # fmt: skip
            elif tag == f"{_TB}table":
                self.blocks.append(Block(table_text(list(_table_rows(child))), None,
                                          self.section))  # fmt: skip
            elif tag in (f"{_T}tracked-changes", f"{_OFFICE}annotation", f"{_T}sequence-decls"):
                continue
            else:  # sections, frames, text boxes, index bodies: their paragraphs are text too
                self.walk(child)

    def _list_lines(self, element: Any, level: int) -> list[str]:
        lines: list[str] = []
        for item in element:
            if item.tag not in (f"{_T}list-item", f"{_T}list-header"):
                continue
            for child in item:
                if child.tag in (f"{_T}p", f"{_T}h"):
                    text = one_line(inline_text(child))
                    if text:
                        lines.append("  " * level + f"- {text}")
                elif child.tag == f"{_T}list":
                    lines.extend(self._list_lines(child, level + 1))
        return lines


def _encrypted(archive: zipfile.ZipFile) -> bool:
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        return False
    return b"encryption-data" in manifest


def odf_parts(path: Path, data: bytes, kind: str) -> tuple[Any, str]:
    """The parsed ``content.xml`` of an OpenDocument package (checked as an Office ZIP first)
    and its title from ``meta.xml`` ("" when none); ``kind`` names it in errors (ODT, ODS)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if _encrypted(archive):
            raise ConversionError(
                path, f"password-protected {kind}: remove the password to index it"
            )
        try:
            content = archive.read("content.xml")
        except KeyError:
            raise ConversionError(path, f"not a readable {kind} (no content.xml)") from None
        try:
            meta = archive.read("meta.xml")
        except KeyError:
            meta = b""
    title = ""
    if meta:
        found = xml_root(path, meta, kind).find(".//dc:title", _NS)
        title = one_line(found.text if found is not None else "")
    return xml_root(path, content, kind), title


def convert_odt(path: Path, data: bytes) -> ConvertedDocument:
    """An ODT document: its paragraphs, lists and tables, sections from its headings."""
    check_office_zip(path, data, "ODT")
    root, title = odf_parts(path, data, "ODT")
    body = root.find(f"{_OFFICE}body/{_OFFICE}text")
    if body is None:
        raise ConversionError(path, "not a readable ODT (no text body: a spreadsheet or drawing?)")
    walker = _Walker()
    walker.walk(body)
    logger.debug("%s: %d blocks", path.name, len(walker.blocks))
    return assemble(path, "odt", walker.blocks, title or walker.first_heading)
