"""EML messages made here with the standard library: headers, then the plain or HTML body."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from indexer.convert import ConversionError, convert_file, locate
from tests.indexer.formats.samples import make_message


def message(subject: str = "Office move on 3 June") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Facilities <facilities@example.com>"
    msg["To"] = "All staff <staff@example.com>"
    msg["Date"] = "Mon, 27 May 2024 09:30:00 +0200"
    msg["Subject"] = subject
    return msg


def test_headers_then_plain_body_and_attachment_names(tmp_path: Path) -> None:
    path = make_message(tmp_path / "move.eml")
    doc = convert_file(path)
    assert doc.file_type == "eml"
    assert doc.title == "Office move on 3 June"
    assert doc.text.startswith(
        "From: Facilities <facilities@example.com>\nTo: All staff <staff@example.com>\n"
        "Date: Mon, 27 May 2024 09:30:00 +0200\nSubject: Office move on 3 June\n\n"
        "The office moves to Rua Augusta 10.\nBring your badge."
    )
    assert doc.text.count("Rua Augusta") == 1  # the plain body is preferred to the HTML one
    # The attachment is not a readable PDF: listed by name, its content not indexed.
    assert doc.text.endswith("Attachments: floor-plan.pdf")
    assert doc.meta["attachments"][0]["reason"].startswith("not a readable PDF")


def test_an_html_only_body_goes_through_the_html_converter(tmp_path: Path) -> None:
    msg = message("Parking — new rules")
    msg.set_content(
        "<html><head><style>p {color: red}</style></head><body><h2>Parking</h2>"
        "<p>Spaces are <b>assigned</b> by Facilities.</p>"
        "<table><tr><th>Level</th><th>Spaces</th></tr><tr><td>-1</td><td>40</td></tr></table>"
        "<script>track()</script></body></html>",
        subtype="html",
        charset="iso-8859-1",
    )
    path = tmp_path / "parking.eml"
    path.write_bytes(bytes(msg))
    doc = convert_file(path)
    assert "Subject: Parking — new rules" in doc.text
    assert "Spaces are assigned by Facilities." in doc.text
    assert "Level: -1 | Spaces: 40" in doc.text
    assert "color" not in doc.text and "track()" not in doc.text and "<b>" not in doc.text
    assert locate(doc, doc.text.index("Spaces are")).section == "Parking"
    assert locate(doc, 0).section is None  # the headers belong to no section


def test_a_file_without_headers_is_not_a_message(tmp_path: Path) -> None:
    path = tmp_path / "notes.eml"
    path.write_bytes(b"\x00\x01binary garbage\xff\xfe")
    with pytest.raises(ConversionError, match=r"^notes\.eml: not an e-mail message"):
        convert_file(path)
