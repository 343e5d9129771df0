"""`index_folder` on a folder of slides, sheets and e-mail: each passage cites its slide or row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from indexer import index_folder
from indexer.uploads import check_upload
from pipelines.settings import Settings
from pipelines.store import PassageStore
from tests.indexer.formats.msg_writer import make_msg
from tests.indexer.formats.samples import (
    make_csv,
    make_deck,
    make_epub,
    make_message,
    make_message_with_attachments,
    make_odt,
    make_workbook,
    pdf_bytes,
)


def cited_section(meta: dict[str, Any], offset: int) -> str | None:
    """Where an answer starting at ``offset`` in the passage is cited (as the API does)."""
    section = meta["section"]
    for start, _, boundary_section in meta.get("boundaries") or []:
        if start <= offset:
            section = boundary_section
    return section


def test_index_folder_indexes_each_new_format_with_its_citations(tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    make_deck(folder / "review.pptx")
    make_workbook(folder / "figures.xlsx")
    make_csv(folder / "offices.csv")
    make_message(folder / "move.eml")
    settings = Settings(home=tmp_path / "home")
    summary = index_folder([folder], settings, progress=False)  # converts in the child process
    assert summary.failed == [] and summary.skipped == []
    assert summary.added == 4

    store = PassageStore.load(settings.index_dir)
    assert {r.source: (r.file_type, r.title) for r in store.sources()} == {
        "documents/figures.xlsx": ("xlsx", "Figures 2024"),
        "documents/offices.csv": ("csv", "offices"),
        "documents/review.pptx": ("pptx", "Quarterly review"),
        "documents/move.eml": ("eml", "Office move on 3 June"),
    }
    passages = store.filter_documents()
    expected = {
        "Region: APAC; Revenue: 900.5": "sheet Sales, row 4",
        "Name: Ana; Office: Lisbon": "sheet Staff, row 3",
        "City: Porto; Desks: 35": "row 3",
        "Region: APAC | Revenue: 900": "slide 2",
        "Grouped shapes are read too.": "slide 3",
        "Rua Augusta 10": None,
    }
    for needle, section in expected.items():
        passage = next(p for p in passages if needle in (p.content or ""))
        assert cited_section(passage.meta, passage.content.index(needle)) == section, needle
        text = store.source_text(passage.meta["doc_id"])
        assert text[passage.meta["start"] : passage.meta["end"]] == passage.content


def test_the_page_and_api_uploads_accept_the_new_formats() -> None:
    for name in ("deck.pptx", "figures.XLSX", "offices.csv", "move.eml", "a.msg", "b.odt",
                 "c.EPUB", "d.ods"):  # fmt: skip
        assert check_upload(name, 10) == name


def test_index_folder_indexes_messages_with_attachments_odt_and_epub(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    make_message_with_attachments(folder / "budget.eml")
    (folder / "plan.msg").write_bytes(make_msg(
        "Plan", ("Ana", "ana@example.com"), [("Bo", "bo@example.com", 1)],
        body="The plan is attached.", attachments=[("plan.pdf", pdf_bytes("Desks: 40."))],
    ))  # fmt: skip
    make_odt(folder / "handbook.odt")
    make_epub(folder / "guide.epub")
    with pd.ExcelWriter(folder / "figures.ods", engine="odf") as book:  # odfpy writes it
        pd.DataFrame({"Region": ["EMEA", "APAC"], "Revenue": [1200, 900.5]}).to_excel(
            book, sheet_name="Sales", index=False
        )
    settings = Settings(home=tmp_path / "home")
    summary = index_folder([folder], settings, progress=False)  # converts in the child process
    assert summary.failed == [] and summary.added == 5

    store = PassageStore.load(settings.index_dir)
    assert {r.source: r.file_type for r in store.sources()} == {
        "mail/budget.eml": "eml", "mail/plan.msg": "msg", "mail/handbook.odt": "odt",
        "mail/guide.epub": "epub", "mail/figures.ods": "ods",
    }  # fmt: skip
    passages = store.filter_documents()
    expected = {
        "capped at 900 euros": ("mail/budget.eml", "attachment budget.pdf, page 2"),
        "Trains are preferred": ("mail/budget.eml", "attachment rules.txt"),
        "Desks: 40.": ("mail/plan.msg", "attachment plan.pdf, page 1"),
        "Years: 10 | Extra days: 2": ("mail/handbook.odt", "Carry-over"),
        "counted at dawn": ("mail/guide.epub", "chapter 1"),
        "Region: APAC; Revenue: 900.5": ("mail/figures.ods", "sheet Sales, row 3"),
    }
    for needle, (source, section) in expected.items():
        passage = next(p for p in passages if needle in (p.content or ""))
        assert passage.meta["source"] == source, needle
        assert cited_section(passage.meta, passage.content.index(needle)) == section, needle

    # Unchanged messages are not converted again on the next run.
    again = index_folder([folder], settings, progress=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
