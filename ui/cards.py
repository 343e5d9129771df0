"""An answer (or a retrieved passage) as a card: text, confidence, citation, links, feedback.

Cards show only what the search returned within the caller's scope; the feedback buttons are
there for roles that may give feedback (and their callbacks check again, :mod:`ui.labeling`).
The original file is read on the server when the button is clicked; its path never reaches the
browser (only its file name).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from haystack import Document
from streamlit.delta_generator import DeltaGenerator

from identity import Action, Caller
from pipelines.answers import AnswerResult
from ui import labeling, render

DOCUMENT_PAGE = "views/document.py"


def _reader(path: Path) -> Callable[[], bytes]:
    # Read when the button is clicked, not on every rerun of the page.
    return path.read_bytes


def download_original(path: str | None, key: str, where: DeltaGenerator | None = None) -> None:
    """A button that downloads the indexed file, disabled when it is no longer on disk."""
    where = where or st.container()
    file = Path(path) if path else None
    if file is None or not file.is_file():
        where.button(
            "Download original",
            key=key,
            disabled=True,
            icon=":material/download:",
            help="The original file is no longer where it was indexed from.",
        )
        return
    where.download_button(
        "Download original",
        data=_reader(file),
        file_name=file.name,
        mime=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def document_link(doc_id: str, start: int, end: int, where: DeltaGenerator) -> None:
    # No question in the link: a URL lands in browser history and proxy logs.
    where.page_link(
        DOCUMENT_PAGE,
        label="Open in document",
        icon=":material/article:",
        query_params={"doc": doc_id, "start": str(start), "end": str(end)},
    )


def answer_card(
    result: AnswerResult, question: str, rank: int, caller: Caller, low: bool = False
) -> None:
    """One ranked answer with its highlighted passage, citation, links and feedback."""
    assert result.answer is not None and result.doc_id is not None
    doc_start, doc_end = result.document_offsets or (0, 0)
    ctx_start = result.context_offsets[0] if result.context_offsets else 0
    key = f"answer-{rank}-{result.doc_id}-{doc_start}"
    with st.container(border=True):
        render.html_text(answer_html(result, low))
        row = st.container(horizontal=True, vertical_alignment="center")
        if result.cases:  # the document view marks all the values, cases between them
            doc_start = min(doc_start, result.cases[0]["document_start"])
            doc_end = max(doc_end, result.cases[-1]["document_end"])
        document_link(result.doc_id, doc_start, doc_end, row)
        download_original(result.path, key=f"{key}-download", where=row)
        if caller.may(Action.FEEDBACK):
            ref = labeling.PassageRef.of_answer(result)
            labeling.answer_feedback(
                key, question, ref, result.answer, ctx_start, result.score, row
            )


def answer_html(result: AnswerResult, low: bool = False) -> str:
    """An answer's text, confidence, highlighted passage and citation, escaped. A
    case-dependent answer shows "Depends on the case" and each case with its value, all the
    values marked in the passage."""
    ctx_start, ctx_end = result.context_offsets or (0, 0)
    passage = result.context or ""
    score_class = "docqa-score low" if low else "docqa-score"
    score = f'<span class="{score_class}">{render.percent(result.score)} confidence</span>'
    if result.cases:
        head = f'<div class="docqa-answer">Depends on the case{score}</div>'
        head += render.cases_list(result.cases)
        marked = render.highlight_spans(passage, [(c["start"], c["end"]) for c in result.cases])
    else:
        head = f'<div class="docqa-answer">{render.esc(result.answer)}{score}</div>'
        marked = render.highlight(passage, ctx_start, ctx_end)
    return (
        f'{head}<div class="docqa-passage">{marked}</div>'
        f'<div class="docqa-meta">{render.esc(_citation(result))}</div>'
    )


def passage_card(doc: Document, question: str, rank: int, caller: Caller) -> None:
    """A retrieved passage (shown when there is no answer), with "Mark the right answer"."""
    meta = doc.meta
    text = doc.content or ""
    start = int(meta.get("start", 0))
    key = f"passage-{rank}-{doc.id}"
    with st.container(border=True):
        cite = render.citation(
            meta.get("title"), meta.get("source"), meta.get("page"), meta.get("section")
        )
        relevance = f"{doc.score:.2f}" if doc.score is not None else "?"
        render.html_text(
            f'<div class="docqa-passage">{render.esc(text)}</div>'
            f'<div class="docqa-meta">{render.esc(cite)} · relevance {render.esc(relevance)}</div>'
        )
        row = st.container(horizontal=True, vertical_alignment="center")
        document_link(str(meta.get("doc_id")), start, start + len(text), row)
        download_original(meta.get("path"), key=f"{key}-download", where=row)
        if caller.may(Action.FEEDBACK):
            ref = labeling.PassageRef.of_passage(doc)
            labeling.answer_feedback(key, question, ref, None, None, 0.0, row)


def _citation(result: AnswerResult) -> str:
    cited = render.citation(result.title, result.document, result.page, result.section)
    copies = [
        render.citation(c["title"], c["document"], c["page"], c["section"]) for c in result.also_in
    ]
    return cited + "".join(f" · also in {copy}" for copy in copies)
