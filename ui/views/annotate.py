"""Annotate page: write questions about a document and mark their answers.

Pairs are saved to the same SQuAD v2.0 file as the feedback (``Settings.feedback_file``), with
the whole converted document text as the context.
"""

from __future__ import annotations

import streamlit as st

from reader_training.feedback import FeedbackError
from ui import labeling, pairs, render, state

KEY = "annotate"


def _save(
    question: str, doc_id: str, title: str, source: str, text: str, choice: labeling.SpanChoice
) -> None:
    try:
        added = state.feedback_store().add(
            question,
            text,
            choice.text,
            choice.start,
            title,
            {"origin": "annotation", "doc_id": doc_id, "source": source, "doc_start": 0},
        )
    except FeedbackError as exc:
        labeling.say(KEY, "error", f"Not saved: {render.md(exc)}")
        return
    if not added:
        labeling.say(KEY, "info", "Already saved: this exact pair is in the file.")
        return
    labeling.say(KEY, "success", "Saved. Write the next question.")
    # Callbacks run before the widgets are drawn again, so the inputs can be cleared here
    # (assigned, not deleted: a deleted key would leave the old text in the browser).
    st.session_state[f"{KEY}-question"] = ""
    st.session_state[f"{KEY}-span-text"] = ""
    st.session_state[f"{KEY}-span-none"] = False


st.title("Annotate")
st.caption(
    "Write a question that the document answers, mark the answer, save. The pairs train "
    "the reader (`docqa train`)."
)
store = state.store_or_none()
records = store.sources() if store is not None else []
if store is None or not records:
    st.info("No documents are indexed yet: add some on the Documents page.")
    st.stop()

by_id = {r.doc_id: r for r in records}
doc_id = st.selectbox(
    "Document",
    list(by_id),
    key=f"{KEY}-doc",
    format_func=lambda d: f"{by_id[d].title} — {by_id[d].source}",
)
record = by_id[doc_id]
text = store.source_text(doc_id)

question = st.text_input(
    "Question", key=f"{KEY}-question", placeholder="A question this document answers"
)
choice = labeling.span_picker(
    text, key=f"{KEY}-span", no_answer_label="This document does not answer the question"
)
start = choice.start if choice is not None else None
end = start + len(choice.text) if choice is not None and choice.text and start is not None else None
st.iframe(render.document_page(text, start, end), height=320)
st.button(
    "Save pair",
    type="primary",
    key=f"{KEY}-save",
    disabled=choice is None or not question.strip(),
    on_click=_save,
    args=(question, doc_id, record.title, record.source, text, choice),
)
labeling.show_message(KEY)

st.divider()
st.subheader("Labeled pairs")
feedback = state.feedback_store()
annotations = state.labeled_pairs(feedback, "annotation", "labeled pairs")
pairs.pairs_list(annotations, "annotations", "docqa-annotations.json", feedback)
