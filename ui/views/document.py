"""Document page: the converted text of one document with the cited span highlighted.

Opened from an answer with ``?doc=<doc_id>&start=<offset>&end=<offset>``; the text is shown in
a scrolling frame that brings the highlighted span into view. A document outside the caller's
scope gets the same answer as one that does not exist (no title, no download): which documents
exist is itself something the access rules keep.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from identity import Action
from ui import auth, cards, render, state


def _offset(name: str) -> int | None:
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


caller = auth.user()
doc_id = st.query_params.get("doc", "")
# A question in an old link is dropped from the address bar: URLs are logged and shared.
st.query_params.pop("q", None)
store = state.store_or_none()
record = store.source(doc_id) if store is not None and doc_id else None
if record is not None and not (
    caller.may(Action.READ_DOCUMENT) and state.visible(caller, doc_id, store)
):
    record = None  # told apart from an unknown document by nothing

question = st.session_state.get("question", "")
st.page_link(
    "views/ask.py",
    label="Back to the answers" if question else "Ask a question",
    icon=":material/arrow_back:",
)

if store is None or record is None:
    st.warning(
        "This document is not in the index (any more). It may have been removed or "
        "re-indexed under another name."
    )
    st.stop()

text = store.source_text(doc_id)
start, end = _offset("start"), _offset("end")
if start is None or end is None or not 0 <= start < end <= len(text):
    start = end = None

# Page or section of the highlighted span: where the nearest passage containing it starts.
where = ""
if start is not None:
    passages = store.filter_documents({"field": "meta.doc_id", "operator": "==", "value": doc_id})
    around = [p for p in passages if p.meta.get("start", 0) <= start < p.meta.get("end", 0)]
    if around:
        nearest = max(around, key=lambda p: p.meta.get("start", 0))
        where = render.location(nearest.meta.get("page"), nearest.meta.get("section"))

modified = dt.datetime.fromtimestamp(record.mtime, tz=dt.UTC).strftime("%Y-%m-%d")
plural = "passage" if record.passages == 1 else "passages"
details = (
    f"{record.source} · {record.file_type.upper()} · {record.passages} {plural} · "
    f"modified {modified}"
)
render.html_text(
    f'<div class="docqa-title">{render.esc(record.title)}</div>'
    f'<div class="docqa-meta">{render.esc(details)}</div>'
    + (
        f'<div class="docqa-meta">Question: {render.esc(question)}</div>'
        if question and start is not None
        else ""
    )
    + (f'<div class="docqa-meta">Highlighted: {render.esc(where)}</div>' if where else "")
)
cards.download_original(record.path, key="document-download")
st.iframe(render.document_page(text, start, end), height=620)
