"""Spreadsheets (XLSX, ODS, CSV) as text a reader can answer a cell from; cites sheet and row.

The first non-empty row of a sheet is its header; every row under it becomes one line labelling
each value with its column's header ("Region: EMEA; Revenue: 1200"), so a passage cut from the
middle of a sheet still says what each number is. Each row is its own span, with the section
"sheet NAME, row N" (XLSX, ODS) or "row N" (CSV), N the row number a spreadsheet program shows,
so an answer is cited at its row.

Bounded: at most ``max_rows`` rows per sheet and ``max_total_rows`` per file are kept (a warning
is logged and ``ConvertedDocument.meta["truncated"]`` lists what was cut), and ``max_columns``
columns. openpyxl reads in read-only mode (rows streamed, the rows past the cap never parsed)
after :func:`~indexer.formats.office_zip.check_office_zip` refused ZIP bombs and
password-protected files; CSV is decoded like a text file (any encoding) and its dialect sniffed.
A sheet without a ``<dimension>`` element (some generators leave it out; Excel writes it) is read
through once by openpyxl to size it: about 5 s per 200,000 rows, within the child's time limit.

Not Haystack's ``XLSXToDocument``/``CSVToDocument``: they load a whole sheet into a pandas
DataFrame (unbounded memory), write it as one CSV or Markdown table without row numbers to cite,
and skip an unreadable file with a warning instead of an error naming it. Cells are shown as
stored (a formula's last computed value; number formats such as percentages are not applied).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.convert import decode_text
from indexer.document import Block, ConversionError, ConvertedDocument, assemble, one_line
from indexer.formats.odt import OFFICE_NS, TABLE_NS, inline_text, odf_parts
from indexer.formats.office_zip import ZipLimits, check_office_zip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SheetLimits:
    """How much of a spreadsheet is indexed."""

    max_rows: int = 10_000  # rows under the header, per sheet
    max_total_rows: int = 50_000  # per file, all sheets together
    max_columns: int = 200
    zip: ZipLimits = field(default_factory=ZipLimits)


# Enough lines for csv.Sniffer to see the delimiter; its regular expressions are slow on more.
_SNIFF_CHARS = 16_384


def column_name(index: int) -> str:
    """The spreadsheet letter of the 0-based column ``index``: 0 -> A, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def cell_text(value: Any) -> str:
    """A cell's value as one line: whole numbers without ".0", dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return one_line(str(value))


def row_line(header: Sequence[str], cells: Sequence[str]) -> str:
    """ "Region: EMEA; Revenue: 1200": each non-empty cell after its header (or column letter)."""
    parts = []
    for index, cell in enumerate(cells):
        if cell:
            label = header[index] if index < len(header) and header[index] else None
            parts.append(f"{label or column_name(index)}: {cell}")
    return "; ".join(parts)


@dataclass
class _Budget:
    """Rows left for the file; a sheet takes at most ``limits.max_rows`` of them."""

    limits: SheetLimits
    left: int
    truncated: list[dict[str, Any]] = field(default_factory=list)


def _sheet_blocks(
    path: Path,
    rows: Iterable[tuple[int, Sequence[Any]]],
    where: str,
    budget: _Budget,
    count_rest: bool,
    last_row: int | None = None,
) -> Iterator[Block]:
    """The header line and the row lines of one sheet, from its (row number, values) pairs;
    ``where`` prefixes "row N" ("sheet X, ").

    Past the cap, ``count_rest`` counts the rows left (streaming, for CSV); otherwise the total
    is the sheet's declared ``last_row`` (XLSX dimension: empty rows included) or unknown.
    """
    limits = budget.limits
    rows = iter(rows)  # the rows past the cap are counted from where the loop stopped
    header: list[str] | None = None
    kept = 0
    cap = min(limits.max_rows, budget.left)
    total: int | None = None
    truncated = False
    header_row: int | None = None
    for number, values in rows:
        cells = [cell_text(v) for v in values[: limits.max_columns]]
        if not any(cells):
            continue
        if header is None:
            header, header_row = cells, number
            yield Block(" | ".join(c for c in cells if c), section=f"{where}row {number}")
            continue
        if kept == cap:
            truncated = True
            if count_rest:  # streaming: memory stays bounded
                total = kept + 1 + sum(1 for _, rest in rows if any(cell_text(v) for v in rest))
            elif last_row is not None and header_row is not None:
                total = last_row - header_row
            break
        kept += 1
        yield Block(row_line(header, cells), section=f"{where}row {number}")
    budget.left -= kept
    if truncated:
        name = where.removesuffix(", ") or "the file"
        budget.truncated.append({"where": name, "rows_kept": kept, "rows_total": total})
        logger.warning(
            "%s: %s has %s rows; only the first %d are indexed",
            path.name, name, f"{total:,}" if total is not None else "more", kept,
        )  # fmt: skip


def convert_xlsx(path: Path, data: bytes, limits: SheetLimits | None = None) -> ConvertedDocument:
    """An XLSX workbook: each worksheet's rows as "header: value" lines, cited by sheet and row."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    limits = limits or SheetLimits()
    check_office_zip(path, data, "XLSX", limits.zip)
    budget = _Budget(limits, limits.max_total_rows)
    blocks: list[Block] = []
    try:
        with warnings.catch_warnings():  # "no default style" and the like: nothing to act on
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for sheet in book.worksheets:
                where = f"sheet {one_line(sheet.title)}, "
                rows = sheet.iter_rows(max_col=limits.max_columns, values_only=True)
                numbered = enumerate(rows, start=1)
                blocks.extend(_sheet_blocks(path, numbered, where, budget, False, sheet.max_row))
            title = one_line(book.properties.title)
        finally:
            book.close()
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except (InvalidFileException, KeyError, ValueError, TypeError, OSError) as exc:
        raise ConversionError(path, f"not a readable XLSX ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # lxml and zip errors from damaged packages
        raise ConversionError(path, f"not a readable XLSX ({type(exc).__name__}: {exc})") from None
    doc = assemble(path, "xlsx", blocks, title)
    if budget.truncated:
        doc.meta["truncated"] = budget.truncated
    return doc


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:  # one column, or too little to tell: plain commas
        return csv.excel


def convert_csv(path: Path, data: bytes, limits: SheetLimits | None = None) -> ConvertedDocument:
    """A CSV file (any delimiter and encoding): its rows as "header: value" lines, cited by row."""
    limits = limits or SheetLimits()
    text = decode_text(path, data)
    budget = _Budget(limits, limits.max_total_rows)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    try:
        numbered = enumerate(reader, start=1)
        blocks = list(_sheet_blocks(path, numbered, "", budget, count_rest=True))
    except csv.Error as exc:
        raise ConversionError(path, f"not a readable CSV (line {reader.line_num}: {exc})") from None
    doc = assemble(path, "csv", blocks, None)
    if budget.truncated:
        doc.meta["truncated"] = budget.truncated
    return doc


def _ods_rows(table: Any, max_columns: int) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts) of one ``table:table``: repeated rows and columns expanded as a
    spreadsheet program shows them, except empty ones (a sheet stretched to a million rows
    gives no million empty rows); merged-away cells keep their column, empty."""
    number = 0
    for row in table.iter(f"{TABLE_NS}table-row"):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (f"{TABLE_NS}table-cell", f"{TABLE_NS}covered-table-cell"):
                continue
            text = one_line(" ".join(inline_text(p) for p in cell if p.tag.endswith("}p")))
            repeat = int(cell.get(f"{TABLE_NS}number-columns-repeated", "1") or 1)
            cells.extend([text] * min(repeat, max_columns - len(cells)))
            if len(cells) >= max_columns:
                break
        repeat = max(int(row.get(f"{TABLE_NS}number-rows-repeated", "1") or 1), 1)
        if not any(cells):
            number += repeat
            continue
        for _ in range(repeat):
            number += 1
            yield number, cells


def convert_ods(path: Path, data: bytes, limits: SheetLimits | None = None) -> ConvertedDocument:
    """An OpenDocument spreadsheet: each sheet's rows as "header: value" lines, cited by sheet
    and row. Read like ODT (zipfile + lxml, :mod:`indexer.formats.odt`); a cell shows the text
    the spreadsheet program displays (number formats applied, as stored in the file)."""
    limits = limits or SheetLimits()
    check_office_zip(path, data, "ODS", limits.zip)
    root, title = odf_parts(path, data, "ODS")
    body = root.find(f"{OFFICE_NS}body/{OFFICE_NS}spreadsheet")
    if body is None:
        raise ConversionError(path, "not a readable ODS (no spreadsheet body: a text document?)")
    budget = _Budget(limits, limits.max_total_rows)
    blocks: list[Block] = []
    for table in body.iter(f"{TABLE_NS}table"):
        where = f"sheet {one_line(table.get(f'{TABLE_NS}name', ''))}, "
        rows = _ods_rows(table, limits.max_columns)
        blocks.extend(_sheet_blocks(path, rows, where, budget, count_rest=True))
    doc = assemble(path, "ods", blocks, title)
    if budget.truncated:
        doc.meta["truncated"] = budget.truncated
    return doc
