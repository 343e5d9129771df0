"""XLSX and CSV files made here: "header: value" rows cited by sheet and row, and the bounds."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from indexer.convert import ConversionError, convert_file, locate
from indexer.formats.office_zip import ZipLimits
from indexer.formats.sheets import SheetLimits, column_name, convert_xlsx
from tests.indexer.formats.samples import make_workbook


def section_of(doc: object, needle: str) -> str | None:
    return locate(doc, doc.text.index(needle)).section  # type: ignore[attr-defined]


def test_xlsx_rows_are_header_value_lines_cited_by_sheet_and_row(tmp_path: Path) -> None:
    doc = convert_file(make_workbook(tmp_path / "figures.xlsx"))
    assert doc.file_type == "xlsx"
    assert doc.title == "Figures 2024"
    assert "Region: EMEA; Revenue: 1200; Closed: 2024-03-31" in doc.text
    assert "Region: APAC; Revenue: 900.5" in doc.text
    assert "Name: Ana; Office: Lisbon; C: extra" in doc.text
    assert section_of(doc, "Region | Revenue | Closed") == "sheet Sales, row 1"
    assert section_of(doc, "Region: EMEA") == "sheet Sales, row 2"
    assert section_of(doc, "Region: APAC") == "sheet Sales, row 4"
    assert section_of(doc, "Name: Ana") == "sheet Staff, row 3"
    assert "truncated" not in doc.meta


def test_column_names_are_spreadsheet_letters() -> None:
    assert [column_name(i) for i in (0, 2, 25, 26, 701, 702)] == ["A", "C", "Z", "AA", "ZZ", "AAA"]


def test_a_corrupt_workbook_is_an_error_naming_the_file(tmp_path: Path) -> None:
    good = make_workbook(tmp_path / "good.xlsx")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ConversionError, match=r"^broken\.xlsx: not a readable XLSX"):
        convert_file(broken)
    renamed = tmp_path / "notes.xlsx"
    renamed.write_text("just text named .xlsx", encoding="utf-8")
    with pytest.raises(ConversionError, match=r"^notes\.xlsx: not a readable XLSX"):
        convert_file(renamed)


def test_a_zip_bomb_named_xlsx_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    megabyte = bytes(2**20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as member:
            for _ in range(100):  # 100 MB of zeros: the header declares it honestly
                member.write(megabyte)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(ConversionError, match=r"^bomb\.xlsx: refused as a possible ZIP bomb: part"):
        convert_file(bomb)
    # The total declared size is bounded too, whatever the ratio.
    small = SheetLimits(zip=ZipLimits(max_uncompressed_mb=50, max_ratio=1e9))
    with pytest.raises(ConversionError, match=r": 100 MB uncompressed \(limit 50 MB\)$"):
        convert_xlsx(bomb, bomb.read_bytes(), small)


def test_a_password_protected_office_file_says_so(tmp_path: Path) -> None:
    # An encrypted OOXML file is an OLE compound file with an EncryptedPackage stream; this is
    # its signature and stream name (not a whole compound file: nothing here writes one).
    locked = tmp_path / "locked.xlsx"
    locked.write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + "EncryptedPackage".encode("utf-16-le")
    )
    with pytest.raises(ConversionError, match=r"^locked\.xlsx: password-protected XLSX"):
        convert_file(locked)


def test_a_200000_row_csv_gives_bounded_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = tmp_path / "ledger.csv"
    lines = ["id,account,amount"] + [f"{i},ACC-{i % 97},{i * 3}" for i in range(1, 200_001)]
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="indexer.formats.sheets"):
        doc = convert_file(big)
    kept = SheetLimits().max_rows
    assert doc.meta["truncated"] == [
        {"where": "the file", "rows_kept": kept, "rows_total": 200_000}
    ]
    assert "ledger.csv: the file has 200,000 rows; only the first 10000 are indexed" in caplog.text
    assert doc.text.count("\n") < 3 * kept
    assert f"id: {kept}; account: ACC-{kept % 97}; amount: {kept * 3}" in doc.text
    assert f"id: {kept + 1};" not in doc.text
    assert section_of(doc, f"id: {kept};") == f"row {kept + 1}"


def test_a_workbook_is_bounded_per_sheet_and_per_file(tmp_path: Path) -> None:
    book = Workbook()
    for name in ("One", "Two", "Three"):
        sheet = book.create_sheet(name)
        sheet.append(["n"])
        for i in range(30):
            sheet.append([i])
    book.save(tmp_path / "many.xlsx")
    path = tmp_path / "many.xlsx"
    doc = convert_xlsx(path, path.read_bytes(), SheetLimits(max_rows=20, max_total_rows=45))
    assert doc.meta["truncated"] == [  # rows under the header, from the declared last row
        {"where": "sheet One", "rows_kept": 20, "rows_total": 30},
        {"where": "sheet Two", "rows_kept": 20, "rows_total": 30},
        {"where": "sheet Three", "rows_kept": 5, "rows_total": 30},
    ]
    assert doc.text.count("n: ") == 45


def test_a_non_utf8_csv_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "offices.csv"
    rows = ["Stadt;Leiterin;Umsatz", "Zürich;Müller;1200", "Genève;Lefèvre;950"]
    path.write_bytes("\r\n".join(rows).encode("cp1252"))
    doc = convert_file(path)
    assert doc.file_type == "csv"
    assert "Stadt: Zürich; Leiterin: Müller; Umsatz: 1200" in doc.text
    assert section_of(doc, "Stadt: Genève") == "row 3"


def test_a_quoted_csv_cell_with_a_newline_stays_in_its_row(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('topic,note\nbackup,"runs nightly,\nat 2am"\nvpn,required\n', encoding="utf-8")
    doc = convert_file(path)
    assert "topic: backup; note: runs nightly, at 2am" in doc.text
    assert section_of(doc, "topic: vpn") == "row 3"


def test_a_sheet_without_a_declared_size_is_cut_with_its_total_unknown(tmp_path: Path) -> None:
    book = Workbook(write_only=True)  # writes no <dimension>, as some generators do
    sheet = book.create_sheet("Log")
    sheet.append(["n"])
    for i in range(30):
        sheet.append([i])
    path = tmp_path / "log.xlsx"
    book.save(path)
    doc = convert_xlsx(path, path.read_bytes(), SheetLimits(max_rows=20))
    assert doc.meta["truncated"] == [{"where": "sheet Log", "rows_kept": 20, "rows_total": None}]
    assert locate(doc, doc.text.index("n: 19")).section == "sheet Log, row 21"
