"""Outlook .msg files (real CFB files from msg_writer) and message attachments as sections."""

from __future__ import annotations

import datetime as dt
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from indexer.convert import ConversionError, convert_file, locate
from indexer.formats.attachments import Attachment, AttachmentLimits, attachment_blocks
from tests.indexer.formats.msg_writer import make_msg
from tests.indexer.formats.samples import make_message_with_attachments, pdf_bytes

SENT = dt.datetime(2024, 5, 27, 7, 30, tzinfo=dt.UTC)


def test_msg_headers_from_properties_body_and_attachments(tmp_path: Path) -> None:
    path = tmp_path / "budget.msg"
    path.write_bytes(make_msg(
        "Budget 2025", ("Ana Silva", "ana@example.com"),
        [("Bo Chen", "bo@example.com", 1), ("Cy Diaz", "cy@example.com", 2),
         ("Hidden", "bcc@example.com", 3)],
        body="The budget is approved.\r\nTravel is capped.", sent=SENT,
        attachments=[("plan.pdf", pdf_bytes("Each trip is capped at 900 euros.")),
                     ("notes.csv", b"City,Desks\nLisbon,80\n")],
    ))  # fmt: skip
    doc = convert_file(path)
    assert (doc.file_type, doc.title) == ("msg", "Budget 2025")
    assert doc.text.startswith(
        'From: "Ana Silva" <ana@example.com>\nTo: Bo Chen <bo@example.com>\n'
        "Cc: Cy Diaz <cy@example.com>\nDate: Mon, 27 May 2024 07:30:00 +0000\n"
        "Subject: Budget 2025\n\nThe budget is approved.\nTravel is capped."
    )
    assert "bcc@example.com" not in doc.text
    assert locate(doc, doc.text.index("900 euros")).section == "attachment plan.pdf, page 1"
    assert locate(doc, doc.text.index("City: Lisbon")).section == "attachment notes.csv, row 2"
    assert [a["indexed"] for a in doc.meta["attachments"]] == [True, True]


def test_msg_stored_internet_headers_and_an_html_only_body(tmp_path: Path) -> None:
    path = tmp_path / "parking.msg"
    headers = ("From: Facilities <fac@example.com>\r\nTo: All <all@example.com>\r\n"
               "Date: Tue, 28 May 2024 10:00:00 +0200\r\n")  # fmt: skip
    path.write_bytes(make_msg(
        "Parking", ("Facilities", "fac@example.com"), [("Someone", "x@example.com", 1)],
        html="<h2>Levels</h2><p>Level -1 is for visitors – café nearby.</p>".encode(),
        internet_headers=headers,
    ))  # fmt: skip
    doc = convert_file(path)
    assert "To: All <all@example.com>\nDate: Tue, 28 May 2024 10:00:00 +0200" in doc.text
    assert "x@example.com" not in doc.text  # the stored headers win over the recipients
    assert locate(doc, doc.text.index("visitors – café")).section == "Levels"


def test_corrupt_and_misnamed_msg_files_are_named(tmp_path: Path) -> None:
    good = make_msg("Hi", ("A", "a@example.com"), [], body="Hello there.")
    truncated = tmp_path / "cut.msg"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ConversionError, match=r"^cut\.msg: not a readable Outlook message"):
        convert_file(truncated)
    text = tmp_path / "mail.msg"
    text.write_bytes(b"From: someone\n\nnot an Outlook file")
    with pytest.raises(ConversionError, match=r"^mail\.msg: not an Outlook message"):
        convert_file(text)


def test_eml_attachments_are_sections_citing_the_message(tmp_path: Path) -> None:
    doc = convert_file(make_message_with_attachments(tmp_path / "budget.eml"))
    assert "Attachments: budget.pdf, rules.txt, misc.zip" in doc.text
    assert locate(doc, doc.text.index("Attachment: budget.pdf")).section == (
        "attachment budget.pdf"
    )
    assert locate(doc, doc.text.index("capped at 900")).section == "attachment budget.pdf, page 2"
    assert locate(doc, doc.text.index("Trains are")).section == "attachment rules.txt"
    assert locate(doc, doc.text.index("travel budget is")).section is None
    assert doc.meta["attachments"][2] == {
        "name": "misc.zip", "indexed": False, "reason": "unsupported type '.zip'",
    }  # fmt: skip


def test_nested_messages_bombs_and_limits_are_bounded(tmp_path: Path) -> None:
    inner = EmailMessage()
    inner["Subject"] = "Forwarded minutes"
    inner.set_content("The minutes say yes.")
    inner.add_attachment("Deep text.", filename="deep.txt")
    outer = EmailMessage()
    outer["Subject"] = "Fwd"
    outer.set_content("See below.")
    outer.add_attachment(inner)  # message/rfc822
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (40 * 2**20))
    outer.add_attachment(bomb.read_bytes(), maintype="application", subtype="vnd.ms-excel",
                         filename="figures.xlsx")  # fmt: skip
    path = tmp_path / "fwd.eml"
    path.write_bytes(bytes(outer))
    doc = convert_file(path)
    assert locate(doc, doc.text.index("The minutes say yes.")).section == (
        "attachment Forwarded minutes.eml"
    )
    assert "Deep text." not in doc.text  # an attached message's attachments are only listed
    assert "Attachments: deep.txt" in doc.text
    report = {a["name"]: a for a in doc.meta["attachments"]}
    assert report["figures.xlsx"]["reason"].startswith("refused as a possible ZIP bomb")

    many = [Attachment(f"n{i}.txt", b"text") for i in range(5)] + [
        Attachment("big.txt", b"x" * 2**20), Attachment("linked.pdf", None)
    ]  # fmt: skip
    _, done = attachment_blocks(path, many, AttachmentLimits(max_count=3, max_mb=0.5))
    assert [a["indexed"] for a in done] == [True] * 3 + [False] * 4
    assert done[3]["reason"] == "more than 3 attachments"
    assert done[6]["reason"] == "content not stored in the message"
