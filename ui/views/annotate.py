"""Annotate page: write questions about a document and mark their answers.

Pairs are saved to the same SQuAD v2.0 file as the feedback (``Settings.feedback_file``), with
the whole converted document text as the context. The label queue on top offers the logged
questions that would teach the reader most (``pipelines.learning_loop.label_queue``): one click puts
the question and the document of its top answer into the form.

Editors use this page. It offers only the documents the caller may see; the queue holds the
questions the caller may read (their own; everyone's for admins) whose answers all come from
documents the caller may see (:func:`ui.state.questions`). Saving checks the role and the
document again.
"""

from __future__ import annotations

import streamlit as st

from identity import Action, Caller
from pipelines.learning_loop.label_queue import QueueItem, label_queue
from pipelines.learning_loop.question_log import question_log
from pipelines.store import SourceRecord
from reader_training.feedback import FeedbackError
from reader_training.judgments import annotation_pair
from ui import auth, labeling, pairs, render, state

KEY = "annotate"
QUEUE_SHOWN = 10
# Verdicts that do not give a question its answer (it stays in the label queue).
_NOT_A_LABEL = {"wrong", "no_answer_in_passage"}


def _save(question: str, record: SourceRecord, text: str, choice: labeling.SpanChoice) -> None:
    who = auth.permitted(Action.LABEL, target=record.source)
    if who is None:
        return
    if not state.visible(who, record.doc_id):
        labeling.say(KEY, "error", "Not saved: this document is not in the index (any more).")
        return
    try:
        pair = annotation_pair(
            question, record, text, choice.text, choice.start, author=who.identity
        )
        added = pair.save(state.feedback_store())
    except FeedbackError as exc:
        labeling.say(KEY, "error", f"Not saved: {render.md(exc)}")
        auth.audit(who, Action.LABEL.value, "failed", record.source)
        return
    auth.audit(who, Action.LABEL.value, "ok", record.source, added=added)
    if not added:
        labeling.say(KEY, "info", "Already saved: this exact pair is in the file.")
        return
    labeling.say(KEY, "success", "Saved. Write the next question.")
    # Callbacks run before the widgets are drawn again, so the inputs can be cleared here
    # (assigned, not deleted: a deleted key would leave the old text in the browser).
    st.session_state[f"{KEY}-question"] = ""
    st.session_state[f"{KEY}-span-text"] = ""
    st.session_state[f"{KEY}-span-none"] = False


def _label(item: QueueItem, doc_ids: set[str]) -> None:
    """Fill the form with a queued question and the document of its top answer."""
    st.session_state[f"{KEY}-question"] = item.question
    top = item.top_answer
    if top is not None and top["doc_id"] in doc_ids:
        st.session_state[f"{KEY}-doc"] = top["doc_id"]
    st.session_state[f"{KEY}-span-text"] = ""
    st.session_state[f"{KEY}-span-none"] = False


def _queue(doc_ids: set[str], caller: Caller) -> None:
    if question_log(state.settings()) is None:
        return
    feedback = state.feedback_store()
    labeled = [
        r.question
        for r in state.labeled_pairs(feedback, "feedback", "feedback", caller)
        + state.labeled_pairs(feedback, "annotation", "labeled pairs", caller)
        if r.meta.get("verdict") not in _NOT_A_LABEL
    ]
    # The caller's own questions (everyone's for admins) citing only documents they may see.
    queue = label_queue(state.questions(caller, limit=5000), labeled)
    with st.expander(f"Label queue: {len(queue)} questions to label", expanded=bool(queue)):
        if not queue:
            st.caption(
                "Questions asked on the Ask page that were marked wrong, answered with a small "
                "margin, or asked often show up here, most useful first."
            )
        for rank, item in enumerate(queue[:QUEUE_SHOWN]):
            row = st.container(horizontal=True, vertical_alignment="center")
            row.markdown(f"**{render.md(item.question)}** · {render.md('; '.join(item.reasons))}")
            row.button(
                "Label",
                key=f"{KEY}-queue-{rank}",
                on_click=_label,
                args=(item, doc_ids),
                icon=":material/edit:",
            )


caller = auth.page_for(Action.LABEL)
st.title("Annotate")
st.caption(
    "Write a question that the document answers, mark the answer, save. The pairs train "
    "the reader (`docqa train`)."
)
store = state.store_or_none()
records = state.sources(caller, store)
if store is None or not records:
    st.info("No documents are indexed yet: add some on the Documents page.")
    st.stop()

by_id = {r.doc_id: r for r in records}
_queue(set(by_id), caller)
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
    args=(question, record, text, choice),
)
labeling.show_message(KEY)

st.divider()
st.subheader("Labeled pairs")
feedback = state.feedback_store()
annotations = state.labeled_pairs(feedback, "annotation", "labeled pairs", caller)
pairs.pairs_list(annotations, "annotations", "docqa-annotations.json", feedback, caller)
