"""Rule-made pairs from documentation structure: API entries, option lists and tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.doc_pairs import (
    PairSettings,
    build_doc_pairs,
    html_pages,
    pairs_from_page,
    to_squad,
)
from evaluation.squad import load_squad
from indexer.convert import convert_file
from indexer.split import split_document

FILLER = " ".join(
    f"Paragraph {i} explains background material about configuration files, logging and"
    " deployment that no question below asks about."
    for i in range(40)
)

# The shapes Sphinx writes (Python's own documentation is built this way).
PAGE = f"""<html><head><title>clock — time access</title></head><body>
<h1>clock — time access</h1>
<p>This module reads clocks.</p>
<dl class="py function">
<dt class="sig sig-object py" id="clock.monotonic_ns">
<span class="sig-prename descclassname"><span class="pre">clock.</span></span><span
class="sig-name descname"><span class="pre">monotonic_ns</span></span><span
class="sig-paren">(</span><span class="sig-paren">)</span><a class="headerlink"
href="#clock.monotonic_ns">¶</a></dt>
<dd><p>Return the value of a clock that cannot go backwards, in nanoseconds. More text.</p></dd>
</dl>
<dl class="py function">
<dt class="sig sig-object py" id="clock.sleep_until">
<span class="sig-prename descclassname"><span class="pre">clock.</span></span><span
class="sig-name descname"><span class="pre">sleep_until</span></span><span
class="sig-paren">(</span><em>deadline</em><span class="sig-paren">)</span></dt>
<dd><p>Suspend execution of the calling thread until the <code>deadline</code> passes.</p></dd>
</dl>
<dl class="std cmdoption">
<dt class="sig sig-object std" id="cmdoption-u"><span class="sig-name descname">
<span class="pre">-u</span></span></dt>
<dd><p>Force the stdout and stderr streams to be unbuffered.</p></dd>
</dl>
<p>{FILLER}</p>
<table class="docutils">
<thead><tr><th><p>Directive</p></th><th><p>Meaning</p></th><th><p>Notes</p></th></tr></thead>
<tbody>
<tr><td><p><code>%j</code></p></td><td><p>Day of the year as a decimal number.</p></td>
<td><p>(2)</p></td></tr>
<tr><td><p><code>%W</code></p></td><td><p>Week number of the year, Monday first.</p></td>
<td></td></tr>
</tbody></table>
<p>{FILLER}</p>
</body></html>
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "clock.html"
    path.write_text(PAGE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairs(page: Path) -> list:
    return pairs_from_page(page, PairSettings(unanswerable_share=0.0))


def by_answer(pairs: list, answer: str):
    found = [p for p in pairs if p.answer == answer]
    assert found, f"no pair answered {answer!r}: {[(p.question, p.answer) for p in pairs]}"
    return found[0]


def test_an_api_entry_is_asked_by_what_it_does_and_answered_by_its_name(pairs: list) -> None:
    pair = by_answer(pairs, "clock.monotonic_ns()")
    assert pair.kind == "api"
    assert "returns the value of a clock that cannot go backwards" in pair.question
    assert pair.question.startswith(("Which", "What")) and pair.question.endswith("?")
    # The imperative "Suspend" becomes "suspends"; the inline <code> joins without a gap.
    suspend = by_answer(pairs, "clock.sleep_until")
    assert "suspends execution of the calling thread until the deadline passes?" in (
        suspend.question
    )


def test_what_a_function_returns_is_asked_by_its_name(pairs: list) -> None:
    pair = by_answer(pairs, "the value of a clock that cannot go backwards, in nanoseconds")
    assert pair.kind == "api-return" and "clock.monotonic_ns()" in pair.question


def test_an_option_is_answered_by_its_name(pairs: list) -> None:
    pair = by_answer(pairs, "-u")
    assert pair.kind == "option"
    assert "command-line option forces the stdout and stderr streams to be unbuffered" in (
        pair.question
    )


def test_a_table_cell_is_asked_by_its_row_and_header(pairs: list) -> None:
    meaning = by_answer(pairs, "Day of the year as a decimal number")
    assert meaning.kind == "table" and "%j" in meaning.question
    # The reader sees the row as the indexer writes it, header before each cell.
    assert "Directive: %j | Meaning: Day of the year as a decimal number." in meaning.context
    key = by_answer(pairs, "%W")
    assert key.kind == "table-key" and "Week number of the year, Monday first" in key.question
    # Footnote marks and a "Notes" column make no questions.
    assert not any(p.answer in {"(2)", ""} for p in pairs)


def test_every_answer_sits_at_its_offset_in_one_of_the_indexers_passages(
    page: Path, pairs: list
) -> None:
    passages = {p.content for p in split_document(convert_file(page))}
    assert len(passages) >= 3  # the filler makes a page of several passages
    assert len(pairs) >= 6
    for pair in pairs:
        assert pair.context in passages
        assert pair.context[pair.answer_start : pair.answer_start + len(pair.answer)] == (
            pair.answer
        )


def test_unanswerable_pairs_read_another_passage_without_the_answer(page: Path) -> None:
    pairs = pairs_from_page(page, PairSettings(unanswerable_share=1.0))
    unanswerable = [p for p in pairs if p.answer is None]
    assert unanswerable, "a page of several passages gives unanswerable pairs"
    answered = {
        (p.question, p.answer) for p in pairs_from_page(page, PairSettings(unanswerable_share=0.0))
    }
    answers = {q: a for q, a in answered}
    for pair in unanswerable:
        assert pair.kind.endswith("+none") and pair.answer_start == -1
        assert answers[pair.question] not in pair.context


def test_the_pairs_are_a_squad_file_the_trainer_loads(tmp_path: Path, page: Path) -> None:
    other = tmp_path / "plain.html"
    other.write_text("<html><body><p>Only prose here, nothing to ask.</p></body></html>")
    broken = tmp_path / "broken.html"
    broken.write_bytes(b"\x00\x01<table><tr><th>")
    folder_pages = [page, other, broken]
    pairs = build_doc_pairs(folder_pages, PairSettings(unanswerable_share=0.3, seed=1))
    assert {p.source for p in pairs} == {"clock.html"}  # prose and a broken page give none
    out = tmp_path / "pairs.json"
    out.write_text(json.dumps(to_squad(pairs)), encoding="utf-8")
    examples, report = load_squad(out)
    assert len(examples) == len(pairs)
    assert sum(ex.is_impossible for ex in examples) == sum(p.answer is None for p in pairs)
    assert report.summary()  # a clean file: nothing dropped or repaired
    assert html_pages(tmp_path) == sorted([broken, other])
