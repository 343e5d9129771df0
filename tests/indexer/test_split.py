"""Splitting into passages: exact offsets, coverage, sizes, overlap, and the contract's meta."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.convert import ConvertedDocument, Span, convert_file, locate
from indexer.split import doc_id_for, source_for, split_document, word_ranges

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODIFIED = "2024-01-01T00:00:00+00:00"  # generated documents have no file to stat
GOOD = ["handbook.pdf", "travel-policy.docx", "security.html", "onboarding.md", "opening-hours.txt"]


def check_passages(doc: ConvertedDocument, passages: list, words: int) -> None:
    """The invariants every split must keep."""
    text = doc.text
    assert passages
    covered: set[int] = set()
    previous_start = -1
    for index, passage in enumerate(passages):
        meta = passage.meta
        assert text[meta["start"] : meta["end"]] == passage.content
        assert passage.content and passage.content == passage.content.strip()
        assert meta["passage_index"] == index
        assert passage.id == f"{meta['doc_id']}-{index:05d}"
        assert meta["start"] > previous_start  # in order, always making progress
        previous_start = meta["start"]
        assert len(passage.content.split()) <= words
        where = locate(doc, meta["start"])
        assert (meta["page"], meta["section"]) == (where.page, where.section)
        # Every page/section that starts inside the passage is listed, so an answer deep in a
        # passage is cited at its own page or section.
        for offset in range(0, len(passage.content), max(1, len(passage.content) // 7)):
            page, section = meta["page"], meta["section"]
            for start, b_page, b_section in meta["boundaries"]:
                if start <= offset:
                    page, section = b_page, b_section
            here = locate(doc, meta["start"] + offset)
            assert (page, section) == (here.page, here.section)
        covered.update(m.start() + meta["start"] for m in re.finditer(r"\S+", passage.content))
    # Every word of the document is in a passage, and passages start and end on word boundaries.
    assert covered == {m.start() for m in re.finditer(r"\S+", text)}


@pytest.mark.parametrize("name", GOOD)
@pytest.mark.parametrize(("words", "overlap"), [(200, 30), (20, 5), (7, 0), (1, 0)])
def test_invariants_on_fixtures(name: str, words: int, overlap: int) -> None:
    doc = convert_file(FIXTURES / name)
    passages = split_document(doc, words=words, overlap=overlap, root=FIXTURES)
    check_passages(doc, passages, words)


def test_meta_follows_the_contract() -> None:
    path = FIXTURES / "handbook.pdf"
    doc = convert_file(path)
    passages = split_document(doc, words=40, overlap=8, root=FIXTURES.parent)
    assert len(passages) > 2
    first = passages[0]
    assert set(first.meta) == {
        "doc_id", "source", "path", "title", "file_type", "page", "section", "start", "end",
        "passage_index", "modified", "boundaries",
    }  # fmt: skip
    assert first.meta["doc_id"] == doc_id_for(path) and len(first.meta["doc_id"]) == 16
    assert first.meta["source"] == "tests/fixtures/handbook.pdf"
    assert first.meta["path"] == str(path.resolve())
    assert first.meta["title"] == "Employee Handbook"
    assert first.meta["file_type"] == "pdf"
    modified = dt.datetime.fromisoformat(first.meta["modified"])
    assert modified.utcoffset() == dt.timedelta(0)
    assert abs(modified.timestamp() - path.stat().st_mtime) < 1
    assert next(p.meta["page"] for p in passages) == 1 and passages[-1].meta["page"] == 2


def test_source_names() -> None:
    root = FIXTURES.parent
    assert source_for(FIXTURES / "security.html", root) == "tests/fixtures/security.html"
    assert source_for(FIXTURES / "security.html", None) == "security.html"


def test_sections_of_passages() -> None:
    doc = convert_file(FIXTURES / "security.html")
    passages = split_document(doc, words=12, overlap=2)
    sections = [p.meta["section"] for p in passages]
    assert sections[0] == "IT Security Guidelines"
    assert "Devices" in sections
    assert all(p.meta["page"] is None for p in passages)


def test_paragraphs_are_packed_whole() -> None:
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(30)) for i in range(10)]
    doc = _doc("\n\n".join(paragraphs))
    passages = split_document(doc, words=100, overlap=0, modified=MODIFIED)
    # 30-word paragraphs, at most 100 words: 3 whole paragraphs per passage.
    assert [len(p.content.split()) for p in passages] == [90, 90, 90, 30]
    assert all(p.content.startswith("p") and p.content.endswith("w29") for p in passages)


def test_overlap_shares_words() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    doc = _doc(text)
    passages = split_document(doc, words=100, overlap=20, modified=MODIFIED)
    for before, after in itertools.pairwise(passages):
        shared = set(before.content.split()) & set(after.content.split())
        assert len(shared) == 20
        assert after.content.split()[:20] == before.content.split()[-20:]
    assert all(len(p.content.split()) == 100 for p in passages[:-1])


def test_long_paragraph_breaks_after_a_sentence() -> None:
    sentences = [f"Sentence {i} has exactly six words." for i in range(40)]
    doc = _doc(" ".join(sentences))
    passages = split_document(doc, words=50, overlap=0, modified=MODIFIED)
    assert all(p.content.endswith(".") for p in passages)
    assert all(40 <= len(p.content.split()) <= 50 for p in passages[:-1])


def test_bad_sizes() -> None:
    with pytest.raises(ValueError):
        word_ranges("a b c", words=0, overlap=0)
    with pytest.raises(ValueError):
        word_ranges("a b c", words=10, overlap=10)
    with pytest.raises(ValueError):
        word_ranges("a b c", words=10, overlap=-1)


def test_a_run_without_spaces_becomes_many_bounded_passages() -> None:
    run = "".join(f"{i:07d}" for i in range(45_000))  # 315,000 characters without a space
    text = "What follows is a dump.\n\n" + run + "\n\nEnd of the dump."
    doc = _doc(text)
    passages = split_document(doc, words=200, overlap=30, max_chars=4000, modified=MODIFIED)
    assert len(passages) > len(text) // 4000
    covered: set[int] = set()
    for passage in passages:
        start, end = passage.meta["start"], passage.meta["end"]
        assert text[start:end] == passage.content
        assert len(passage.content) <= 4000
        covered.update(range(start, end))
    assert covered >= {i for i, ch in enumerate(text) if not ch.isspace()}
    # Neighbours overlap, so an answer on a boundary is whole in one of them.
    for before, after in itertools.pairwise(passages):
        assert after.meta["start"] < before.meta["end"]


def test_max_chars_leaves_ordinary_text_alone() -> None:
    doc = convert_file(FIXTURES / "handbook.pdf")
    bounded = split_document(doc, words=200, overlap=30, max_chars=4000, root=FIXTURES)
    unbounded = split_document(doc, words=200, overlap=30, max_chars=None, root=FIXTURES)
    assert [p.content for p in bounded] == [p.content for p in unbounded]
    with pytest.raises(ValueError, match="max_chars must be at least 100"):
        word_ranges("a b c", words=10, overlap=0, max_chars=50)


def _doc(text: str, spans: list[Span] | None = None) -> ConvertedDocument:
    return ConvertedDocument(
        path=FIXTURES / "generated.txt",
        text=text,
        title="generated",
        file_type="txt",
        spans=spans or [Span(0, len(text))],
    )


_word = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
                min_size=1, max_size=8)  # fmt: skip
_separator = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", ".\n\n", " \u00a0 "])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(_word, min_size=1, max_size=300))
    parts = [words[0]]
    for word in words[1:]:
        parts.extend([draw(_separator), word])
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(text=_texts(), words=st.integers(1, 60), overlap_share=st.floats(0, 0.9), cuts=st.data())
def test_invariants_on_generated_texts(
    text: str, words: int, overlap_share: float, cuts: st.DataObject
) -> None:
    overlap = min(words - 1, int(words * overlap_share))
    # Random contiguous spans (pages) over the text, to check page lookup.
    points = sorted(set(cuts.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=4))))
    bounds = [0, *[p for p in points if 0 < p < len(text)], len(text)]
    spans = [Span(a, b, page=i + 1) for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    doc = _doc(text, spans)
    passages = split_document(doc, words=words, overlap=overlap, doc_id="0123456789abcdef",
                              modified=MODIFIED)  # fmt: skip
    check_passages(doc, passages, words)
    starts = [p.meta["start"] for p in passages]
    assert starts == sorted(set(starts))


def _straddled(doc: ConvertedDocument, passages: list, words: int) -> list[tuple[int, str]]:
    """(passage index, section) for each section that starts past a passage's first words / 8
    words, inside it (sections that start inside a word belong to the word's passage)."""
    text, out = doc.text, []
    lead = max(1, int(words * 0.125))
    starts = [
        span
        for before, span in itertools.pairwise(doc.spans)
        if span.section
        and span.section != before.section
        and (text[span.start - 1].isspace() or text[span.start].isspace())
    ]
    for i, passage in enumerate(passages):
        start, end = passage.meta["start"], passage.meta["end"]
        out += [
            (i, span.section)
            for span in starts
            if start < span.start < end and len(text[start : span.start].split()) >= lead
        ]
    return out


def test_with_sections_a_heading_starts_a_new_passage() -> None:
    doc = convert_file(FIXTURES / "security.html")
    plain = split_document(doc, words=200, overlap=30, root=FIXTURES)
    by_section = split_document(doc, words=200, overlap=30, root=FIXTURES, sections=True)
    assert _straddled(doc, plain, 200)  # without it, passages run across headings
    assert not _straddled(doc, by_section, 200)
    check_passages(doc, by_section, 200)
    starts = {p.meta["start"] for p in by_section}
    for before, span in itertools.pairwise(doc.spans):
        if span.section != before.section and len(doc.text[: span.start].split()) >= 25:
            assert span.start in starts, span.section


@settings(max_examples=150, deadline=None)
@given(text=_texts(), words=st.integers(1, 60), overlap_share=st.floats(0, 0.9), cuts=st.data())
def test_section_splitting_keeps_every_invariant(
    text: str, words: int, overlap_share: float, cuts: st.DataObject
) -> None:
    overlap = min(words - 1, int(words * overlap_share))
    points = sorted(set(cuts.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=6))))
    bounds = [0, *[p for p in points if 0 < p < len(text)], len(text)]
    spans = [
        Span(a, b, section=f"S{i // 2}") for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]  # every other span starts a new section
    doc = _doc(text, spans)
    passages = split_document(doc, words=words, overlap=overlap, doc_id="0123456789abcdef",
                              modified=MODIFIED, sections=True)  # fmt: skip
    check_passages(doc, passages, words)
    assert not _straddled(doc, passages, words)
