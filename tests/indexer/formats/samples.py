"""Small real files of the new formats, written by the libraries that read them (or the stdlib)."""

from __future__ import annotations

import datetime as dt
import zipfile
from email.message import EmailMessage
from pathlib import Path

from openpyxl import Workbook
from pptx import Presentation
from pptx.util import Inches


def make_deck(path: Path) -> Path:
    """Three slides: text boxes drawn out of reading order and notes; a table; a group."""
    deck = Presentation()
    deck.core_properties.title = "Quarterly review"
    first = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    first.shapes.title.text = "Results by region"
    # Drawn lower box first: reading order puts the upper one first.
    lower = first.shapes.add_textbox(Inches(1), Inches(5), Inches(6), Inches(1))
    lower.text_frame.text = "Outlook: growth continues in APAC."
    upper = first.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    upper.text_frame.text = "Revenue grew in every region."
    first.notes_slide.notes_text_frame.text = "Mention the currency effects."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Revenue table"
    table = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([("Region", "Revenue"), ("EMEA", "1200"), ("APAC", "900")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    third = deck.slides.add_slide(deck.slide_layouts[6])  # blank
    group = third.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "Grouped shapes are read too."
    deck.save(path)
    return path


def make_workbook(path: Path) -> Path:
    """Sheets "Sales" (with an empty row 3) and "Staff" (header on row 2, a cell past it)."""
    book = Workbook()
    sales = book.active
    sales.title = "Sales"
    sales.append(["Region", "Revenue", "Closed"])
    sales.append(["EMEA", 1200, dt.datetime(2024, 3, 31)])
    sales.append([])  # an empty row keeps the numbering of the rows below it
    sales.append(["APAC", 900.5, None])
    staff = book.create_sheet("Staff")
    staff.append([None, None])  # leading empty row: the header is the first row with values
    staff.append(["Name", "Office"])
    staff.append(["Ana", "Lisbon", "extra"])  # a cell past the header is labelled by its column
    book.properties.title = "Figures 2024"
    book.save(path)
    return path


def make_csv(path: Path) -> Path:
    path.write_text("City,Desks\nLisbon,80\nPorto,35\n", encoding="utf-8")
    return path


def make_message(path: Path) -> Path:
    """A plain-text message with an HTML alternative and a PDF attachment."""
    msg = EmailMessage()
    msg["From"] = "Facilities <facilities@example.com>"
    msg["To"] = "All staff <staff@example.com>"
    msg["Date"] = "Mon, 27 May 2024 09:30:00 +0200"
    msg["Subject"] = "Office move on 3 June"
    msg.set_content("The office moves to Rua Augusta 10.\nBring your badge.", charset="utf-8")
    msg.add_alternative("<p>The office moves to <b>Rua Augusta 10</b>.</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 floor plan", maintype="application", subtype="pdf",
                       filename="floor-plan.pdf")  # fmt: skip
    path.write_bytes(bytes(msg))
    return path


def pdf_bytes(*pages: str) -> bytes:
    """A real PDF (fpdf2) with one page per text."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_message_with_attachments(path: Path) -> Path:
    """A message with a PDF (two pages), a text file and an attachment of no supported type."""
    msg = EmailMessage()
    msg["From"] = "Finance <finance@example.com>"
    msg["To"] = "Board <board@example.com>"
    msg["Subject"] = "Travel budget"
    msg.set_content("The travel budget is attached.")
    plan = pdf_bytes("Budget overview.", "Each trip is capped at 900 euros.")
    msg.add_attachment(plan, maintype="application", subtype="pdf", filename="budget.pdf")
    msg.add_attachment("Trains are preferred to planes.", filename="rules.txt")
    msg.add_attachment(b"\x00\x01", maintype="application", subtype="zip", filename="misc.zip")
    path.write_bytes(bytes(msg))
    return path


_ODT_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" office:version="1.3"'
)


def write_odt(path: Path, body: str, title: str | None = None, kind: str = "text") -> Path:
    """An ODT package (``kind`` "spreadsheet": an ODS) as LibreOffice lays it out: ``mimetype``
    first and stored, then the XML."""
    content = f"<office:document-content {_ODT_NS}><office:body><office:{kind}>{body}"
    content += f"</office:{kind}></office:body></office:document-content>"
    meta = f"<office:document-meta {_ODT_NS}><office:meta>"
    meta += f"<dc:title>{title}</dc:title>" if title else ""
    meta += "</office:meta></office:document-meta>"
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}")
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("meta.xml", meta, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def make_odt(path: Path) -> Path:
    """Headings, a paragraph with ODF spaces, a list, a table with a header row, a footnote."""
    body = (
        '<text:h text:outline-level="1">Leave policy</text:h>'
        '<text:p>Everyone gets<text:s text:c="2"/>25 days of leave.'
        '<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation>'
        "<text:note-body><text:p>Part-time staff pro rata.</text:p></text:note-body></text:note>"
        "</text:p>"
        '<text:h text:outline-level="2">Carry-over</text:h>'
        "<text:list><text:list-item><text:p>Up to 5 days</text:p></text:list-item>"
        "<text:list-item><text:p>Until 31 March</text:p></text:list-item></text:list>"
        '<table:table table:name="Allowances"><table:table-column/>'
        "<table:table-header-rows><table:table-row>"
        "<table:table-cell><text:p>Years</text:p></table:table-cell>"
        "<table:table-cell><text:p>Extra days</text:p></table:table-cell>"
        "</table:table-row></table:table-header-rows>"
        "<table:table-row><table:table-cell><text:p>10</text:p></table:table-cell>"
        "<table:table-cell><text:p>2</text:p></table:table-cell></table:table-row>"
        "</table:table>"
    )
    return write_odt(path, body, title="Staff handbook")


def write_epub(path: Path, chapters: list[tuple[str, str]], title: str = "Field guide") -> Path:
    """An EPUB 3 package: ``chapters`` as (file name, XHTML body), the spine in reverse file
    order so that reading order cannot come from the ZIP's order."""
    items = "".join(
        f'<item id="c{i}" href="text/{name}" media-type="application/xhtml+xml"/>'
        for i, (name, _) in enumerate(chapters)
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">urn:test</dc:identifier><dc:title>{title}</dc:title>'
        f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", container)
        for name, body in reversed(chapters):
            xhtml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Book</title></head>'
                f"<body>{body}</body></html>"
            )
            archive.writestr(f"OEBPS/text/{name}", xhtml, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/content.opf", opf)
    return path


def make_epub(path: Path) -> Path:
    return write_epub(
        path,
        [
            ("intro.xhtml", "<p>Birds are counted at dawn.</p>"),
            ("gulls.xhtml", "<h1>Gulls</h1><p>Gulls nest on cliffs.</p>"
             "<table><tr><th>Species</th><th>Pairs</th></tr>"
             "<tr><td>Herring gull</td><td>120</td></tr></table>"),
        ],
    )  # fmt: skip


def make_ods(path: Path) -> Path:
    """A two-sheet ODS as LibreOffice lays it out (a header row, a repeated empty row)."""
    cell = "<table:table-cell><text:p>{}</text:p></table:table-cell>"
    rows = [("Region", "Revenue"), ("EMEA", "1200"), ("APAC", "900.5")]
    sales = "".join(
        "<table:table-row>" + "".join(cell.format(v) for v in r) + "</table:table-row>"
        for r in rows
    )
    body = (
        f'<table:table table:name="Sales">{sales}'
        '<table:table-row table:number-rows-repeated="5"><table:table-cell/></table:table-row>'
        '</table:table><table:table table:name="Staff"><table:table-row>'
        f"{cell.format('Name')}{cell.format('Office')}</table:table-row><table:table-row>"
        f"{cell.format('Ana')}{cell.format('Lisbon')}</table:table-row></table:table>"
    )
    return write_odt(path, body, title="Figures", kind="spreadsheet")


def write_locked_odf(path: Path) -> Path:
    """An OpenDocument package saved with a password: its manifest lists encryption data and
    its parts are ciphertext."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("content.xml", b"\x8f\x11 encrypted bytes")
        archive.writestr("META-INF/manifest.xml", "<manifest:encryption-data/>")
    return path
