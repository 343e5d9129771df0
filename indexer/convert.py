"""Convert one file (PDF, DOCX, HTML, Markdown, text; slides, sheets, e-mail) into text with spans.

Every converter produces a list of blocks that :func:`indexer.document.assemble` joins into a
:class:`~indexer.document.ConvertedDocument` with exact offsets (see :mod:`indexer.document`).

Problems with a file (missing, unreadable, corrupt, encrypted, scanned, binary, empty,
unsupported type) raise :class:`ConversionError`, whose message is one line naming the file.
PPTX, XLSX, ODS, CSV, EML, MSG, ODT and EPUB are converted by their own modules under
:mod:`indexer.formats`.
"""

from __future__ import annotations

import codecs
import importlib
import io
import logging
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from indexer.document import (
    Block,
    ConversionError,
    ConvertedDocument,
    Span,
    assemble,
    clean_text,
    first_line,
    locate,
    one_line,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "TEXT_FORMAT_VERSION",
    "ConversionError",
    "ConvertedDocument",
    "Span",
    "clean_text",
    "convert_file",
    "decode_text",
    "html_blocks",
    "locate",
    "table_text",
]

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = {
    ".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".pptx", ".xlsx", ".csv", ".eml",
    ".msg", ".odt", ".ods", ".epub", ".png", ".jpg", ".jpeg", ".tif", ".tiff",
}  # fmt: skip

# Raise whenever a converter's output changes for the same file: every file indexed with an
# older text is converted again on the next run (indexer.prepare.passage_format).
# 2: table rows label their cells with the column headers. Not raised for the formats added
# since (slides, sheets, mail, ODT, EPUB, images: never indexed before) nor for OCR of PDF pages
# without text: raising it re-embeds every file of every home on upgrade, for the few PDFs that
# mix text and scanned pages (`docqa index --full` reads those again).
TEXT_FORMAT_VERSION = 2

_FILE_TYPES = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".eml": "eml",
    ".msg": "msg",
    ".odt": "odt",
    ".ods": "ods",
    ".epub": "epub",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".tif", ".tiff"), "image"),
}
# File types converted by a module of indexer.formats (its ``convert_<type>(path, data)``).
_FORMAT_MODULES = {"md": "markdown", "pptx": "pptx", "xlsx": "sheets", "csv": "sheets",
                   "ods": "sheets",
                   "eml": "email", "msg": "msg", "odt": "odt", "epub": "epub",
                   "image": "ocr"}  # fmt: skip

# -- entry point --------------------------------------------------------------------------------


def convert_file(path: Path | str) -> ConvertedDocument:
    """Convert one file; raises :class:`ConversionError` with a one-line reason on any problem."""
    path = Path(path)
    if path.is_dir():
        raise ConversionError(path, "is a directory, not a file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        shown = f"'{suffix}'" if suffix else "(no extension)"
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise ConversionError(path, f"unsupported file type {shown} (supported: {supported})")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConversionError(path, "file not found") from None
    except PermissionError:
        raise ConversionError(path, "permission denied") from None
    except OSError as exc:
        raise ConversionError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data.strip():
        raise ConversionError(path, "empty document")
    file_type = _FILE_TYPES[suffix]
    try:
        if file_type in _FORMAT_MODULES:
            module = importlib.import_module(f"indexer.formats.{_FORMAT_MODULES[file_type]}")
            converter = getattr(module, f"convert_{file_type}")
        else:
            converter = {
                "pdf": _convert_pdf,
                "docx": _convert_docx,
                "html": _convert_html,
                "txt": _convert_text,
            }[file_type]
        doc = converter(path, data)
    except ConversionError:
        raise
    except RecursionError:
        raise ConversionError(path, f"{file_type.upper()} nested too deeply to read") from None
    except MemoryError:
        raise ConversionError(path, "too large to convert in memory") from None
    except Exception as exc:
        # A parser bug on a strange file must cost that file, not the whole indexing run.
        logger.debug("%s: converter failed", path, exc_info=True)
        raise ConversionError(path, f"cannot convert ({type(exc).__name__}: {exc})") from None
    logger.debug("converted %s: %d chars, %d spans", path, len(doc.text), len(doc.spans))
    return doc


# -- PDF ----------------------------------------------------------------------------------------

_NEEDS_PASSWORD = "encrypted: needs a password"


def _convert_pdf(path: Path, data: bytes) -> ConvertedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password only to restrict editing;
            # those (RC4 or AES, which needs the cryptography package) are read as usual.
            try:
                if not reader.decrypt(""):
                    raise ConversionError(path, _NEEDS_PASSWORD)
            except (FileNotDecryptedError, NotImplementedError, DependencyError) as exc:
                raise ConversionError(path, f"encrypted, cannot decrypt ({exc})") from None
        pages: list[str] = []
        errors: list[str] = []
        for number, page in enumerate(reader.pages, start=1):
            try:
                pages.append(page.extract_text() or "")
            except MemoryError:  # the caller reports it (and caps memory)
                raise
            except Exception as exc:  # one damaged page should not cost the whole document
                logger.warning("%s: page %d unreadable (%s)", path.name, number, exc)
                errors.append(f"{type(exc).__name__}: {exc}")
                pages.append("")
        if errors and len(errors) == len(pages):
            raise ConversionError(path, f"not a readable PDF ({errors[0]})")
    except ConversionError:
        raise
    except FileNotDecryptedError:
        raise ConversionError(path, _NEEDS_PASSWORD) from None
    except PdfReadError as exc:
        raise ConversionError(path, f"not a readable PDF ({exc})") from None
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise ConversionError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from None

    blocks = [Block(text, page=number) for number, text in enumerate(pages, start=1)]
    from indexer.formats.ocr import ocr_empty_pages  # scanned pages (no text layer): OCR

    blocks, ocr_meta = ocr_empty_pages(path, data, reader, blocks)
    title: str | None = None
    try:
        if reader.metadata is not None:
            title = one_line(reader.metadata.title)
    except Exception:  # a broken info dictionary only costs us the title
        logger.debug("%s: unreadable PDF metadata", path, exc_info=True)
    doc = assemble(path, "pdf", blocks, title or first_line(blocks))
    doc.meta.update(ocr_meta)
    return doc


# -- DOCX ---------------------------------------------------------------------------------------


def _heading_level(style_name: str | None) -> int | None:
    match = re.fullmatch(r"Heading\s*(\d)", style_name or "", flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def table_text(rows: Sequence[tuple[Sequence[str], bool]]) -> str:
    """A table as lines of text: ``(cells, is_header)`` per row, cells in column order.

    Header rows are kept as they are ("Setting | Meaning"); in a data row below a header of as
    many columns, each cell is labelled with its column's header ("Setting: 3 | Meaning: Always
    use memory"), so a passage cut from the middle of a table still says what each value is and
    a reader trained on prose finds "what does 3 mean". Cell texts stay verbatim; empty cells
    are left out.
    """
    lines: list[str] = []
    header: Sequence[str] | None = None
    for cells, is_header in rows:
        if is_header:
            header = cells
            labelled = list(cells)
        elif header is not None and len(header) == len(cells):
            labelled = [f"{h}: {c}" if h and c else c for h, c in zip(header, cells, strict=True)]
        else:
            labelled = list(cells)
        kept = [c for c, raw in zip(labelled, cells, strict=True) if raw]
        if kept:
            lines.append(" | ".join(kept))
    return "\n".join(lines)


def _table_rows(table: object) -> Iterator[list[str]]:
    """The non-empty cells of each row of a DOCX table (no header is known: rows as they are)."""
    for row in table.rows:  # type: ignore[attr-defined]
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = one_line(cell.text)
            if text:
                cells.append(text)
        if cells:
            yield cells


def _convert_docx(path: Path, data: bytes) -> ConvertedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[Block] = []
        section: str | None = None
        first_heading: str | None = None
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                rows = [(cells, False) for cells in _table_rows(item)]
                blocks.append(Block(table_text(rows), section=section))
                continue
            text = item.text
            style_name = item.style.name if item.style is not None else None
            if _heading_level(style_name) is not None and one_line(text):
                section = one_line(text)
                first_heading = first_heading or section
            elif style_name == "Title" and one_line(text):
                first_heading = first_heading or one_line(text)
            blocks.append(Block(text, section=section))
        core_title = one_line(document.core_properties.title)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ConversionError(path, f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except Exception as exc:  # lxml and zip errors from damaged packages
        raise ConversionError(path, f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    return assemble(path, "docx", blocks, core_title or first_heading)


# -- HTML ---------------------------------------------------------------------------------------

# Elements whose text is not part of the document: code, navigation, page chrome, forms.
_HTML_DROP = (
    "script", "style", "noscript", "template", "nav", "footer", "aside", "form", "button",
    "select", "iframe", "object", "embed", "svg", "canvas", "head", "menu", "dialog",
)  # fmt: skip
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "blockquote", "address", "figure",
    "figcaption", "dl", "dt", "dd", "hr", "body", "html", "center", "details", "summary",
    "fieldset", "caption", "hgroup", "li",
}  # fmt: skip
_WS = re.compile(r"\s+")


class _HtmlWalker:
    """Turns a parsed HTML tree into blocks: paragraphs, headings, lists and tables."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.section: str | None = None
        self.first_h1: str | None = None
        self._inline: list[str] = []

    def flush(self) -> None:
        text = "".join(self._inline)
        self._inline = []
        if text.strip():
            self.blocks.append(Block(text, section=self.section))

    @staticmethod
    def inline_text(node: object) -> str:
        from bs4 import Tag

        if not isinstance(node, Tag):
            return one_line(str(node))
        parts: list[str] = []
        for element in node.descendants:
            if isinstance(element, Tag):
                if element.name == "br":
                    parts.append(" ")
                elif element.name in _HTML_BLOCKS or element.name in {"td", "th", "tr"}:
                    parts.append(" ")  # <p>a</p><p>b</p> inside one cell is "a b", not "ab"
            elif _is_text(element):
                parts.append(str(element))
        return one_line("".join(parts))

    def list_lines(self, node: object, ordered: bool) -> list[str]:
        from bs4 import Tag

        lines: list[str] = []
        number = 1
        if ordered and isinstance(node, Tag):
            try:
                number = int(str(node.get("start", "1")))
            except ValueError:
                number = 1
        for item in getattr(node, "children", []):
            if not isinstance(item, Tag) or item.name != "li":
                continue
            nested = list(_outermost_lists(item))
            for sub in nested:
                sub.extract()
            marker = f"{number}." if ordered else "-"
            text = self.inline_text(item)
            if text:
                lines.append(f"{marker} {text}")
            number += 1
            for sub in nested:
                lines.extend(self.list_lines(sub, sub.name == "ol"))
        return lines

    def walk(self, node: object) -> None:
        from bs4 import Tag

        if not isinstance(node, Tag):
            if _is_text(node):
                self._inline.append(_WS.sub(" ", str(node)))
            return
        name = node.name
        if name in _HTML_HEADINGS:
            self.flush()
            text = self.inline_text(node)
            if text:
                self.section = text
                if name == "h1" and self.first_h1 is None:
                    self.first_h1 = text
                self.blocks.append(Block(text, section=self.section))
        elif name in ("ul", "ol"):
            self.flush()
            self.blocks.append(
                Block("\n".join(self.list_lines(node, name == "ol")), None, self.section)
            )
        elif name == "table":
            self.flush()
            rows = []
            for row in node.find_all("tr"):
                tags = row.find_all(["td", "th"], recursive=False)
                # A row of <th> only (or in <thead>) names the columns of the rows below it;
                # a cell spanning columns would shift the labels, so such rows stay unlabelled.
                spans = any(str(c.get("colspan", "1")).strip() not in ("", "1") for c in tags)
                header = bool(tags) and (
                    all(c.name == "th" for c in tags) or row.find_parent("thead") is not None
                )
                cells = [self.inline_text(c) for c in tags]
                rows.append((cells, header and not spans))
            self.blocks.append(Block(table_text(rows), section=self.section))
        elif name == "pre":
            self.flush()
            self.blocks.append(Block(node.get_text(), section=self.section))
        elif name == "br":
            self._inline.append("\n")
        elif name in _HTML_BLOCKS:
            self.flush()
            for child in list(node.children):
                self.walk(child)
            self.flush()
        else:
            for child in list(node.children):
                self.walk(child)


def _outermost_lists(node: object) -> Iterator[object]:
    """The ``ul``/``ol`` elements inside ``node`` that are not inside another list of it.

    Walks without entering the lists it finds, so a list nested n deep costs O(n) in all, not the
    O(n²) of searching every item's whole subtree.
    """
    from bs4 import Tag

    stack = [
        child for child in reversed(list(getattr(node, "children", []))) if isinstance(child, Tag)
    ]
    while stack:
        element = stack.pop()
        if element.name in ("ul", "ol"):
            yield element
        else:
            stack.extend(c for c in reversed(list(element.children)) if isinstance(c, Tag))


def _is_text(node: object) -> bool:
    from bs4 import CData, NavigableString
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    if not isinstance(node, NavigableString):
        return False
    if isinstance(node, CData):
        return True
    return not isinstance(node, (Comment, Declaration, Doctype, ProcessingInstruction))


def html_fragment_text(html: str) -> str:
    """The visible text of an HTML fragment (raw HTML inside Markdown)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    return soup.get_text(" ")


def _convert_html(path: Path, data: bytes) -> ConvertedDocument:
    blocks, title = html_blocks(path, data)  # bytes: encoding from BOM / <meta charset>
    return assemble(path, "html", blocks, title)


def html_blocks(path: Path, markup: bytes | str) -> tuple[list[Block], str | None]:
    """The blocks of an HTML page (or an e-mail's HTML body) and its title or first ``<h1>``."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    try:
        with warnings.catch_warnings():
            # XHTML (EPUB chapters, some exports) is read as HTML on purpose: the same walker.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(markup, "lxml")
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except Exception as exc:
        raise ConversionError(path, f"not readable HTML ({type(exc).__name__}: {exc})") from None
    title = one_line(soup.title.get_text()) if soup.title is not None else ""
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for tag in soup.find_all(attrs={"hidden": True}):
        tag.decompose()
    walker = _HtmlWalker()
    walker.walk(soup.body if soup.body is not None else soup)
    walker.flush()
    return walker.blocks, title or walker.first_h1


# -- Markdown and text --------------------------------------------------------------------------


# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Among equally plausible single-byte encodings, Windows-1252 is what "not UTF-8" company files
# most often are (Office on Western-European Windows); short texts leave charset-normalizer
# unsure between code pages that decode them differently ("naïve" vs "na’ve").
_PREFERRED_LEGACY = "cp1252"
_CHAOS_TOLERANCE = 0.1


def decode_text(path: Path, data: bytes) -> str:
    """The text of a plain-text or Markdown file, whatever its encoding; binary content is refused.

    UTF-8 (with or without BOM) and UTF-16/32 with a BOM are read as such; anything else is
    detected with charset-normalizer (Latin-1, Windows-125x, ...).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                # utf-8-sig counts from after its mark, the UTF-16/32 codecs from the start.
                offset = exc.start + (len(bom) if codec == "utf-8-sig" else 0)
                name = codec.removesuffix("-sig").upper()
                raise ConversionError(path, f"not valid {name} at byte {offset}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise ConversionError(path, "binary content, not text")
    import charset_normalizer

    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        raise ConversionError(path, "binary content, not text (no known text encoding fits)")
    least_chaos = min(match.chaos for match in matches)
    plausible = [m for m in matches if m.chaos <= least_chaos + _CHAOS_TOLERANCE]
    chosen = next(
        (m for m in plausible if _PREFERRED_LEGACY in m.could_be_from_charset), plausible[0]
    )
    encoding = (
        _PREFERRED_LEGACY
        if _PREFERRED_LEGACY in chosen.could_be_from_charset
        else (chosen.encoding)
    )
    logger.info("%s: not UTF-8; read as %s", path.name, encoding)
    return data.decode(encoding)


def _convert_text(path: Path, data: bytes) -> ConvertedDocument:
    return assemble(path, "txt", [Block(decode_text(path, data))], None)
