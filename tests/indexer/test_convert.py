"""Conversion of real PDF, DOCX, HTML, Markdown and text files (tests/fixtures/make_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF

from indexer.convert import (
    SUPPORTED_EXTENSIONS,
    ConversionError,
    ConvertedDocument,
    Span,
    clean_text,
    convert_file,
    locate,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOOD = ["handbook.pdf", "travel-policy.docx", "security.html", "onboarding.md", "opening-hours.txt"]


def check_spans(doc: ConvertedDocument) -> None:
    """Spans are contiguous, in order, and cover the whole text."""
    assert doc.spans
    assert doc.spans[0].start == 0
    assert doc.spans[-1].end == len(doc.text)
    for before, after in zip(doc.spans, doc.spans[1:], strict=False):
        assert before.end == after.start
        assert before.start < before.end


@pytest.mark.parametrize("name", GOOD)
def test_good_fixtures_are_clean(name: str) -> None:
    doc = convert_file(FIXTURES / name)
    check_spans(doc)
    assert doc.text == doc.text.strip()
    assert "\n\n\n" not in doc.text
    assert "\r" not in doc.text and "\t" not in doc.text and "  " not in doc.text
    assert all(line == line.strip() for line in doc.text.split("\n"))
    assert clean_text(doc.text) == doc.text  # cleaning is idempotent


def test_pdf_pages_and_title() -> None:
    doc = convert_file(FIXTURES / "handbook.pdf")
    assert doc.file_type == "pdf"
    assert doc.title == "Employee Handbook"  # from the PDF metadata
    assert [span.page for span in doc.spans] == [1, 2]
    assert all(span.section is None for span in doc.spans)
    page_1, page_2 = (doc.text[span.start : span.end] for span in doc.spans)
    assert "37.5 hours" in page_1 and "25 days of paid annual leave" not in page_1
    assert "25 days of paid annual leave" in page_2
    assert page_1.endswith("\n\n")  # the separator between pages belongs to page 1
    assert locate(doc, doc.text.index("Sick leave")).page == 2
    assert locate(doc, 0).page == 1
    assert locate(doc, len(doc.text)).page == 2


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "Quarterly Report\nRevenue grew by 12 percent.")
    path = tmp_path / "q3.pdf"
    path.write_bytes(bytes(pdf.output()))
    assert convert_file(path).title == "Quarterly Report"


def test_docx_sections_title_and_table() -> None:
    doc = convert_file(FIXTURES / "travel-policy.docx")
    assert doc.file_type == "docx"
    assert doc.title == "Travel Policy"
    assert [span.section for span in doc.spans] == [None, "Booking", "Expenses", "Receipts"]
    assert all(span.page is None for span in doc.spans)
    assert "Hotel | 150 EUR per night" in doc.text
    assert locate(doc, doc.text.index("Taxi | 40 EUR")).section == "Expenses"
    # A heading starts its own section: its text lies inside it.
    booking = next(span for span in doc.spans if span.section == "Booking")
    assert doc.text[booking.start :].startswith("Booking\n\n")


def test_html_drops_scripts_and_chrome() -> None:
    doc = convert_file(FIXTURES / "security.html")
    assert doc.file_type == "html"
    assert doc.title == "IT Security Guidelines"
    for gone in ("tracking", "console.log", "font-family", "Home", "2024 Northwind"):
        assert gone not in doc.text
    assert "These guidelines protect company data and your personal accounts." in doc.text
    assert "- Use the company password manager.\n- Enable two-factor authentication." in doc.text
    # Each data row carries its column headers, so a passage cut from the table still says
    # what "Required" is.
    assert "Device | Encryption\nDevice: Laptop | Encryption: Required" in doc.text
    assert "long.\nNever reuse" in doc.text  # <br>
    sections = [span.section for span in doc.spans]
    assert sections == ["IT Security Guidelines", "Passwords", "Devices"]
    assert locate(doc, doc.text.index("Laptop")).section == "Devices"


def test_html_title_from_h1_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    html = "<html><head><meta charset='iso-8859-1'></head><body><h1>Caf\xe9</h1><p>Ol\xe9</p>"
    path.write_bytes(html.encode("latin-1"))
    doc = convert_file(path)
    assert doc.title == "Café"
    assert doc.text == "Café\n\nOlé"


def test_markdown_sections_and_lists() -> None:
    doc = convert_file(FIXTURES / "onboarding.md")
    assert doc.file_type == "md"
    assert doc.title == "Onboarding Guide"
    assert doc.text.startswith("Onboarding Guide\n\nWelcome to the team! This guide covers your")
    assert "**" not in doc.text and "#" not in doc.text and "```" not in doc.text
    assert "- Collect your laptop from IT.\n- Meet your buddy" in doc.text
    assert "1. Sign in to the intranet.\n2. Change your password." in doc.text
    assert "ssh-keygen -t ed25519" in doc.text
    assert [span.section for span in doc.spans] == ["Onboarding Guide", "Day one", "Accounts"]


def test_text_cleaning_and_unicode(tmp_path: Path) -> None:
    doc = convert_file(FIXTURES / "opening-hours.txt")
    assert doc.file_type == "txt"
    assert doc.title == "opening-hours"
    assert doc.spans == [Span(0, len(doc.text), None, None)]
    assert doc.text == (
        "Office opening hours\n\nThe office is open from 08:00 to 19:00 on working days. "
        "Visitors sign in at the reception.\n\nCafé Müller on the ground floor serves lunch "
        "from 11:30 to 14:00."
    )
    # BOM stripped, CRLF normalized, decomposed "é" composed (NFC).
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfCafe\xcc\x81 \r\nline two\r\n")
    assert convert_file(path).text == "Café\nline two"


def test_latin1_text_is_read() -> None:
    # Saved by an old editor in Latin-1: "é" is byte 0xE9, invalid in UTF-8.
    doc = convert_file(FIXTURES / "latin1.txt")
    assert doc.text == "Résumé of the meeting"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("naïve façade – déjà vu, the fee is €5 per day.", "cp1252"),
        ("The “holiday” policy: all staff get 25 days. Grüße aus Köln.", "cp1252"),
        ("Le conseil a décidé que les congés payés sont de vingt-cinq jours.", "latin-1"),
        ("Annual leave: 25 days.\nCarry-over: up to 5 days.", "utf-16"),
    ],
)
def test_legacy_encodings_are_detected(tmp_path: Path, text: str, encoding: str) -> None:
    for name in ("notes.txt", "notes.md"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        assert convert_file(path).text == text


def test_binary_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value) == "photo.txt: binary content, not text"


def test_utf8_with_a_bom_and_a_bad_byte_names_the_byte(tmp_path: Path) -> None:
    # The mark says UTF-8: a bad byte is damage, not another encoding to guess.
    path = tmp_path / "notes.md"
    path.write_bytes(b"\xef\xbb\xbf# Hi\n\xff")
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value) == "notes.md: not valid UTF-8 at byte 8"


def test_broken_utf16_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"\xff\xfeH\x00i\x00\x00\xd8")  # a lone high surrogate at the end
    with pytest.raises(ConversionError, match=r"^notes.md: not valid UTF-16 at byte"):
        convert_file(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.txt", "empty.txt: empty document"),
        ("corrupt.pdf", "corrupt.pdf: not a readable PDF ("),
        ("scanned.pdf", "scanned.pdf: no extractable text (no text layer, no scanned image)"),
        ("data.xyz", "data.xyz: unsupported file type '.xyz'"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(name: str, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        convert_file(FIXTURES / name)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert info.value.path == FIXTURES / name


def test_whitespace_only_is_empty(tmp_path: Path) -> None:
    for name, data in [("blank.md", b"  \n\n\t\n"), ("blank.html", b"<html><body> </body></html>")]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ConversionError, match=f"^{name}: empty document$"):
            convert_file(path)
    path = tmp_path / "scripts-only.html"
    path.write_bytes(b"<html><body><script>var a = 1;</script><nav>Home</nav></body></html>")
    with pytest.raises(ConversionError, match="empty document"):
        convert_file(path)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"^missing.pdf: file not found$"):
        convert_file(tmp_path / "missing.pdf")
    folder = tmp_path / "folder.md"
    folder.mkdir()
    with pytest.raises(ConversionError, match=r"^folder.md: is a directory"):
        convert_file(folder)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.txt"
        locked.write_text("secret")
        locked.chmod(0)
        with pytest.raises(ConversionError, match=r"^locked.txt: permission denied$"):
            convert_file(locked)


def test_docx_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0 this is a Word 97 file")
    with pytest.raises(ConversionError, match=r"^old.docx: not a readable DOCX \("):
        convert_file(path)


def _pdf(text: str) -> FPDF:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=text)
    return pdf


def test_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    pdf = _pdf("Salaries 2024")
    pdf.set_encryption(owner_password="owner", user_password="secret")
    path = tmp_path / "salaries.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value) == "salaries.pdf: encrypted: needs a password"


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_pdf_encrypted_with_an_empty_password_is_read(tmp_path: Path, algorithm: str) -> None:
    # Such PDFs only restrict editing or printing; readers open them without asking.
    from pypdf import PdfReader, PdfWriter

    plain = tmp_path / "plain.pdf"
    plain.write_bytes(bytes(_pdf("Expenses are reimbursed within 30 days.").output()))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="", owner_password="owner", algorithm=algorithm)
    path = tmp_path / "policy.pdf"
    with path.open("wb") as out:
        writer.write(out)
    assert PdfReader(path).is_encrypted
    doc = convert_file(path)
    assert doc.text == "Expenses are reimbursed within 30 days."
    assert doc.spans[0].page == 1


def test_supported_extensions() -> None:
    assert {
        ".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt",
        ".pptx", ".xlsx", ".csv", ".eml", ".msg", ".odt", ".ods", ".epub",
        ".png", ".jpg", ".jpeg", ".tif", ".tiff",
    } == SUPPORTED_EXTENSIONS  # fmt: skip


def test_locate_rejects_offsets_outside() -> None:
    doc = convert_file(FIXTURES / "onboarding.md")
    with pytest.raises(ValueError):
        locate(doc, len(doc.text) + 1)
    with pytest.raises(ValueError):
        locate(doc, -1)


def test_convert_imports_without_torch_or_faiss() -> None:
    code = "import sys, indexer.convert; print(sorted({'torch', 'faiss'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=FIXTURES.parent.parent,
    )  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_markdown_raw_html_keeps_text_drops_scripts(tmp_path: Path) -> None:
    path = tmp_path / "raw.markdown"
    path.write_text(
        "# Notes\n\n<div>Visible <b>text</b></div>\n\n"
        "<script>\nvar hidden = 1;\n</script>\n\nEnd.\n",
        encoding="utf-8",
    )
    assert convert_file(path).text == "Notes\n\nVisible text\n\nEnd."


def test_table_rows_are_labelled_with_their_headers_only_when_columns_line_up() -> None:
    from indexer.convert import table_text

    rows = [
        (["SQLITE_TEMP_STORE", "Meaning"], True),
        (["0", "Always use temporary files"], False),
        (["3", "Always use memory"], False),
        (["a note spanning the table"], False),  # fewer cells: no labels to trust
        (["", "only a meaning"], False),  # an empty cell is left out, the rest keep theirs
    ]
    assert table_text(rows).splitlines() == [
        "SQLITE_TEMP_STORE | Meaning",
        "SQLITE_TEMP_STORE: 0 | Meaning: Always use temporary files",
        "SQLITE_TEMP_STORE: 3 | Meaning: Always use memory",
        "a note spanning the table",
        "Meaning: only a meaning",
    ]
    # Without a header row, rows are as they were.
    assert table_text([(["Hotel", "150 EUR per night"], False)]) == "Hotel | 150 EUR per night"


def test_markdown_and_html_tables_get_the_same_labels(tmp_path: Path) -> None:
    md = tmp_path / "t.md"
    md.write_text("| Device | Encryption |\n|---|---|\n| Laptop | Required |\n", "utf-8")
    html = tmp_path / "t.html"
    html.write_text(
        "<table><thead><tr><td>Device</td><td>Encryption</td></tr></thead>"
        "<tr><td>Laptop</td><td>Required</td></tr></table>",
        "utf-8",
    )
    for path in (md, html):
        assert "Device: Laptop | Encryption: Required" in convert_file(path).text, path
