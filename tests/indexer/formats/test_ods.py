"""OpenDocument spreadsheets (indexer/formats/sheets.py): rows as "header: value" lines cited by
sheet and row, as a spreadsheet program numbers them; broken, locked and huge files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from indexer.convert import ConversionError, convert_file
from indexer.formats.sheets import SheetLimits, convert_ods
from tests.indexer.formats.samples import make_odt, write_locked_odf, write_odt
from tests.indexer.formats.test_sheets import section_of


def cell(text: str, repeat: int = 1) -> str:
    repeated = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    inner = f"<text:p>{text}</text:p>" if text else ""
    return f"<table:table-cell{repeated}>{inner}</table:table-cell>"


def row(*cells: str, repeat: int = 1) -> str:
    repeated = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{repeated}>{''.join(cells)}</table:table-row>"


def test_an_ods_written_by_pandas_and_odfpy_reads_like_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "figures.ods"
    with pd.ExcelWriter(path, engine="odf") as book:
        pd.DataFrame({"Region": ["EMEA", "APAC"], "Revenue": [1200, 900.5]}).to_excel(
            book, sheet_name="Sales", index=False
        )
        pd.DataFrame({"Name": ["Ana"], "Office": ["Lisbon"]}).to_excel(
            book, sheet_name="Staff", index=False
        )
    doc = convert_file(path)
    assert doc.file_type == "ods"
    assert "Region: EMEA; Revenue: 1200" in doc.text
    assert "Region: APAC; Revenue: 900.5" in doc.text
    assert section_of(doc, "Region | Revenue") == "sheet Sales, row 1"
    assert section_of(doc, "Region: APAC") == "sheet Sales, row 3"
    assert section_of(doc, "Name: Ana; Office: Lisbon") == "sheet Staff, row 2"


def test_rows_are_numbered_as_a_spreadsheet_program_shows_them(tmp_path: Path) -> None:
    """LibreOffice's layout: repeated empty rows and cells, merged cells, display text, and a
    sheet stretched to a million rows (counted, not expanded)."""
    sales = (
        '<table:table table:name="Q1 sales">'
        + row(cell(""), repeat=2)  # rows 1-2 empty: the header is row 3
        + row(cell("Region"), cell("Share"), cell("Owner"), cell("", 1021))
        + row(cell("EMEA"), cell("12%"), cell("Ana"), cell("", 1021))
        + row(cell("", 1024), repeat=3)  # rows 5-7 empty
        + row(
            '<table:table-cell table:number-columns-spanned="2"><text:p>APAC'
            "</text:p></table:table-cell><table:covered-table-cell/>",
            cell("Raj"),
        )
        + row(cell("LATAM"), cell("3%"), cell("Eva"), repeat=2)
        + row(cell("", 1024), repeat=1_048_560)
        + "</table:table>"
    )
    path = write_odt(tmp_path / "shares.ods", sales, title="Shares", kind="spreadsheet")
    doc = convert_file(path)
    assert doc.title == "Shares"
    assert section_of(doc, "Region | Share | Owner") == "sheet Q1 sales, row 3"
    assert section_of(doc, "Region: EMEA; Share: 12%; Owner: Ana") == "sheet Q1 sales, row 4"
    # A merged cell keeps the columns after it where they are.
    assert section_of(doc, "Region: APAC; Owner: Raj") == "sheet Q1 sales, row 8"
    assert doc.text.count("Region: LATAM; Share: 3%; Owner: Eva") == 2
    assert section_of(doc, "Region: LATAM") == "sheet Q1 sales, row 9"
    assert "truncated" not in doc.meta


def test_an_ods_is_bounded_per_sheet(tmp_path: Path) -> None:
    body = '<table:table table:name="Log">' + row(cell("Day"), cell("Visitors"))
    body += "".join(row(cell(f"day {n}"), cell(str(n))) for n in range(1, 31))
    path = write_odt(tmp_path / "log.ods", body + "</table:table>", kind="spreadsheet")
    doc = convert_ods(path, path.read_bytes(), SheetLimits(max_rows=10))
    assert "Day: day 10; Visitors: 10" in doc.text and "day 11" not in doc.text
    assert doc.meta["truncated"] == [{"where": "sheet Log", "rows_kept": 10, "rows_total": 30}]


def test_broken_locked_and_misnamed_ods_files_are_named(tmp_path: Path) -> None:
    broken = write_odt(tmp_path / "broken.ods", "<table:table>", kind="spreadsheet")
    with pytest.raises(ConversionError, match=r"^broken\.ods: not a readable ODS \(broken XML"):
        convert_file(broken)
    locked = write_locked_odf(tmp_path / "locked.ods")
    with pytest.raises(ConversionError, match=r"^locked\.ods: password-protected ODS"):
        convert_file(locked)
    text_document = make_odt(tmp_path / "handbook.odt").rename(tmp_path / "handbook.ods")
    with pytest.raises(ConversionError, match=r"^handbook\.ods: not a readable ODS \(no spread"):
        convert_file(text_document)
    plain = tmp_path / "notes.ods"
    plain.write_text("just text")
    with pytest.raises(ConversionError, match=r"^notes\.ods: not a readable ODS"):
        convert_file(plain)
