"""Rendering helpers of the page: escaping, and never handing the browser megabytes."""

from __future__ import annotations

from ui.render import DOCUMENT_VIEW_CHARS, PASSAGE_VIEW_CHARS, document_page, esc, highlight


def test_highlight_escapes_and_marks_the_span() -> None:
    text = "Use <b>guest</b> & friends"
    start = text.index("guest")
    html = highlight(text, start, start + 5)
    assert html == "Use &lt;b&gt;<mark>guest</mark>&lt;/b&gt; &amp; friends"
    assert highlight(text, 5, 99) == esc(text)  # out of range: no mark, nothing lost


def test_a_huge_passage_is_shown_around_its_answer() -> None:
    text = "x" * 1_500_000 + " The guest Wi-Fi is DocQA-Guest. " + "y" * 1_500_000
    start = text.index("DocQA-Guest")
    html = highlight(text, start, start + len("DocQA-Guest"))
    assert len(html) <= PASSAGE_VIEW_CHARS + 40
    assert "<mark>DocQA-Guest</mark>" in html
    assert html.startswith("… x") and html.endswith("y …")
    assert len(highlight(text, None, None)) <= PASSAGE_VIEW_CHARS + 10


def test_a_huge_document_page_stays_bounded() -> None:
    text = "z" * 3_000_000
    page = document_page(text, 2_999_990, 3_000_000)
    assert len(page) < DOCUMENT_VIEW_CHARS + 5_000
    assert '<mark id="docqa-answer">zzzzzzzzzz</mark>' in page
