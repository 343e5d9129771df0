"""Small real files of the new formats, written by the libraries that read them (or the stdlib)."""

from __future__ import annotations

import datetime as dt
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
