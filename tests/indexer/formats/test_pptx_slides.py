"""PPTX decks made here with python-pptx: slide text in reading order, tables, notes, citations."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from indexer.convert import ConversionError, convert_file, locate
from indexer.split import split_document
from tests.indexer.formats.samples import make_deck


def test_slides_are_sections_with_text_tables_and_notes(tmp_path: Path) -> None:
    doc = convert_file(make_deck(tmp_path / "review.pptx"))
    assert doc.file_type == "pptx"
    assert doc.title == "Quarterly review"
    assert [s.section for s in doc.spans] == ["slide 1", "slide 2", "slide 3"]
    first = doc.text[doc.spans[0].start : doc.spans[0].end]
    assert first.index("Results by region") < first.index("Revenue grew") < first.index("Outlook")
    assert "Notes: Mention the currency effects." in first
    assert "Region: EMEA | Revenue: 1200" in doc.text
    assert locate(doc, doc.text.index("Revenue: 1200")).section == "slide 2"
    assert locate(doc, doc.text.index("Grouped shapes")).section == "slide 3"


def test_a_passage_cites_the_slide_of_an_answer(tmp_path: Path) -> None:
    doc = convert_file(make_deck(tmp_path / "review.pptx"))
    passages = split_document(doc, words=200, overlap=10)
    assert len(passages) == 1  # the whole deck is one passage; boundaries say where slides start
    passage = passages[0]
    offset = passage.content.index("Region: APAC | Revenue: 900")
    slide = passage.meta["section"]
    for start, _, section in passage.meta["boundaries"]:
        if start <= offset:
            slide = section
    assert slide == "slide 2"


def test_a_corrupt_deck_is_an_error_naming_the_file(tmp_path: Path) -> None:
    good = make_deck(tmp_path / "good.pptx")
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # cut off mid-package
    with pytest.raises(ConversionError, match=r"^broken\.pptx: not a readable PPTX"):
        convert_file(broken)
    not_deck = tmp_path / "other.pptx"
    with zipfile.ZipFile(not_deck, "w") as archive:
        archive.writestr("hello.txt", "a zip, but no presentation in it")
    with pytest.raises(ConversionError, match=r"^other\.pptx: not a readable PPTX"):
        convert_file(not_deck)
