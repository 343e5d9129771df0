"""Rendering helpers of the page: escaping, and never handing the browser megabytes."""

from __future__ import annotations

from ui.render import (
    DOCUMENT_VIEW_CHARS,
    PASSAGE_VIEW_CHARS,
    cases_list,
    citation,
    document_page,
    esc,
    highlight,
    highlight_spans,
    location,
)


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


def test_highlight_spans_marks_each_value_and_escapes_the_rest() -> None:
    text = "<b>NL</b> gets 25 days & US gets 20 days."
    a, b = text.index("25 days"), text.index("20 days")
    html = highlight_spans(text, [(a, a + 7), (b, b + 7)])
    assert html == (
        "&lt;b&gt;NL&lt;/b&gt; gets <mark>25 days</mark> &amp; US gets <mark>20 days</mark>."
    )
    assert highlight_spans(text, [(5, 999)]) == esc(text)  # out of range: nothing marked
    huge = "x" * 1_000_000 + " NL 25 days, US 20 days " + "y" * 1_000_000
    a, b = huge.index("25 days"), huge.index("20 days")
    shown = highlight_spans(huge, [(a, a + 7), (b, b + 7)])
    assert len(shown) <= PASSAGE_VIEW_CHARS + 40 and shown.count("<mark>") == 2


def test_cases_list_escapes_cases_and_values() -> None:
    html = cases_list([{"case": "Team <Pro>", "value": "€9\nper month"}])
    item = "<li>Team &lt;Pro&gt;: <mark>€9 per month</mark></li>"
    assert html == f'<ul class="docqa-cases">{item}</ul>'


def test_sections_the_converters_name_are_shown_bare_headings_quoted() -> None:
    assert location(None, "slide 2") == "slide 2"
    assert location(None, "sheet Sales, row 4") == "sheet Sales, row 4"
    assert location(None, "row 3") == "row 3"
    assert location(None, "attachment plan.pdf, page 2") == "attachment plan.pdf, page 2"
    assert location(None, "chapter 3") == "chapter 3"
    assert location(2, "Getting started") == "page 2, section “Getting started”"
    assert location(None, "Slide 2 of the deck") == "section “Slide 2 of the deck”"
    assert citation("Review", "docs/review.pptx", None, "slide 2") == (
        "Review — docs/review.pptx, slide 2"
    )
