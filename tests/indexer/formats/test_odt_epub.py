"""ODT and EPUB files written here with zipfile as their applications lay them out."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest

from indexer.convert import ConversionError, convert_file, locate
from tests.indexer.formats.samples import (
    make_epub,
    make_odt,
    write_epub,
    write_locked_odf,
    write_odt,
)


def test_odt_headings_sections_lists_tables_and_notes(tmp_path: Path) -> None:
    doc = convert_file(make_odt(tmp_path / "handbook.odt"))
    assert (doc.file_type, doc.title) == ("odt", "Staff handbook")
    assert "Everyone gets 25 days of leave. (Part-time staff pro rata.)" in doc.text
    assert "- Up to 5 days\n- Until 31 March" in doc.text
    assert "Years | Extra days\nYears: 10 | Extra days: 2" in doc.text  # like DOCX/HTML tables
    assert locate(doc, doc.text.index("25 days")).section == "Leave policy"
    assert locate(doc, doc.text.index("Years: 10")).section == "Carry-over"


def test_odt_broken_encrypted_and_bomb_files_are_named(tmp_path: Path) -> None:
    broken = write_odt(tmp_path / "broken.odt", "<text:p>unclosed")
    with pytest.raises(ConversionError, match=r"^broken\.odt: not a readable ODT \(broken XML"):
        convert_file(broken)
    locked = write_locked_odf(tmp_path / "locked.odt")
    with pytest.raises(ConversionError, match=r"^locked\.odt: password-protected ODT"):
        convert_file(locked)
    bomb = tmp_path / "bomb.odt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("content.xml", b" " * (40 * 2**20))
    with pytest.raises(ConversionError, match=r"^bomb\.odt: refused as a possible ZIP bomb"):
        convert_file(bomb)
    text = tmp_path / "notes.odt"
    text.write_text("just text")
    with pytest.raises(ConversionError, match=r"^notes\.odt: not a readable ODT"):
        convert_file(text)


def test_epub_chapters_in_spine_order_each_a_section(tmp_path: Path) -> None:
    doc = convert_file(make_epub(tmp_path / "guide.epub"))
    assert (doc.file_type, doc.title) == ("epub", "Field guide")
    assert doc.text.index("counted at dawn") < doc.text.index("nest on cliffs")
    assert locate(doc, doc.text.index("counted at dawn")).section == "chapter 1"
    assert locate(doc, doc.text.index("nest on cliffs")).section == "Gulls"
    assert "Species: Herring gull | Pairs: 120" in doc.text
    assert "Book" not in doc.text  # the chapters' <title> is not text


def test_epub_chapters_of_real_length_convert_without_a_warning(tmp_path: Path) -> None:
    """bs4 warns that XHTML "looks like XML" once a chapter is a few hundred words long; it is
    read as HTML on purpose, so the index log gets no warning per chapter."""
    long_chapter = "".join(
        f"<p>Paragraph {i}: gulls nest on cliffs and dunes.</p>" for i in range(60)
    )
    epub = write_epub(tmp_path / "long.epub", [("c1.xhtml", long_chapter)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = convert_file(epub)
    assert "Paragraph 59: gulls nest" in doc.text


def test_epub_without_container_drm_or_bomb_is_named(tmp_path: Path) -> None:
    bare = tmp_path / "bare.epub"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
    with pytest.raises(ConversionError, match=r"^bare\.epub: not a readable EPUB \(missing"):
        convert_file(bare)
    drm = write_epub(tmp_path / "drm.epub", [("one.xhtml", "<p>secret</p>")])
    with zipfile.ZipFile(drm, "a") as archive:
        archive.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
            '<enc:CipherData><enc:CipherReference URI="OEBPS/text/one.xhtml"/></enc:CipherData>'
            "</enc:EncryptedData></encryption>",
        )
    with pytest.raises(ConversionError, match=r"^drm\.epub: encrypted EPUB \(DRM\)"):
        convert_file(drm)
    bomb = write_epub(tmp_path / "bomb.epub", [("one.xhtml", "<p>x</p>")])
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("OEBPS/big.xhtml", b" " * (40 * 2**20))
    with pytest.raises(ConversionError, match=r"^bomb\.epub: refused as a possible ZIP bomb"):
        convert_file(bomb)
