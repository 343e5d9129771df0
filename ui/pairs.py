"""The list of labeled pairs (Feedback and Annotate pages): view, edit, delete, export.

The pages pass only the pairs about documents the caller may see (:func:`ui.state.labeled_pairs`),
so the export holds those only. Editing and deleting a pair is for admins (it changes what
others labeled): the buttons are drawn for them only and their callbacks check the role again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import streamlit as st

from identity import Action, Caller
from reader_training.feedback import FeedbackError, FeedbackStore, LabeledPair
from ui import auth, labeling, render, state

PAGE_SIZE = 50
# Characters of context shown on each side of an answer.
CONTEXT_RADIUS = 220


def _excerpt(record: LabeledPair) -> str:
    """Escaped HTML: the part of the context around the answer, the answer marked."""
    text = record.context
    if record.answer_start is None or record.answer_text is None:
        clipped = text[: 2 * CONTEXT_RADIUS]
        return render.esc(clipped) + ("…" if len(text) > len(clipped) else "")
    start, end = record.answer_start, record.answer_start + len(record.answer_text)
    left, right = max(0, start - CONTEXT_RADIUS), min(len(text), end + CONTEXT_RADIUS)
    body = render.highlight(text[left:right], start - left, end - left)
    return ("…" if left else "") + body + ("…" if right < len(text) else "")


def _update(key: str, record_id: str, question: str, choice: labeling.SpanChoice) -> None:
    who = auth.permitted(Action.EDIT_PAIRS, target=record_id)
    if who is None:
        return
    try:
        state.feedback_store().update(
            record_id,
            question=question,
            answer_text=choice.text,
            answer_start=choice.start,
            no_answer=choice.text is None,
        )
    except (FeedbackError, KeyError) as exc:
        labeling.say(key, "error", f"Not saved: {render.md(exc)}")
        return
    auth.audit(who, Action.EDIT_PAIRS.value, "ok", record_id, change="edit")
    labeling.say(key, "success", "Saved your changes.")


def _delete(key: str, record_id: str) -> None:
    who = auth.permitted(Action.EDIT_PAIRS, target=record_id)
    if who is None:
        return
    try:
        found = state.feedback_store().delete(record_id)
    except FeedbackError as exc:
        labeling.say(key, "error", f"Not deleted: {render.md(exc)}")
        return
    auth.audit(who, Action.EDIT_PAIRS.value, "ok", record_id, change="delete", found=found)
    labeling.say(
        key,
        "success" if found else "info",
        "Deleted the pair." if found else "This pair was already deleted.",
    )


def pair_card(record: LabeledPair, prefix: str, caller: Caller) -> None:
    key = f"{prefix}-{record.id}"
    with st.container(border=True):
        answer = (
            f"<mark>{render.esc(record.answer_text)}</mark>"
            if record.answer_text
            else "<em>no answer in this text</em>"
        )
        meta = record.meta
        details = " · ".join(
            str(part)
            for part in (
                meta.get("source") or record.title,
                meta.get("verdict", meta.get("origin", "")),
                record.created.replace("T", " ")[:16],
            )
            if part
        )
        render.html_text(
            f'<div class="docqa-answer">{render.esc(record.question)}</div>'
            f'<div class="docqa-meta">Answer: {answer}</div>'
            f'<div class="docqa-scrollbox">{_excerpt(record)}</div>'
            f'<div class="docqa-meta">{render.esc(details)}</div>'
        )
        if not caller.may(Action.EDIT_PAIRS):
            return
        with st.expander("Edit"):
            st.session_state.setdefault(f"{key}-question", record.question)
            question = st.text_input("Question", key=f"{key}-question")
            choice = labeling.span_picker(
                record.context,
                key=f"{key}-span",
                no_answer_label="No answer in this text",
                default=labeling.SpanChoice(record.answer_text, record.answer_start),
            )
            st.button(
                "Save changes",
                key=f"{key}-save",
                type="primary",
                disabled=choice is None or not question.strip(),
                on_click=_update,
                args=(prefix, record.id, question, choice),
            )
        st.button(
            "Delete",
            key=f"{key}-delete",
            icon=":material/delete:",
            on_click=_delete,
            args=(prefix, record.id),
        )


def pairs_list(
    records: Sequence[LabeledPair],
    prefix: str,
    export_name: str,
    store: FeedbackStore,
    caller: Caller,
) -> None:
    """Newest first, with an export of the listed pairs as plain SQuAD v2.0 JSON."""
    labeling.show_message(prefix)
    if not records:
        st.caption("Nothing here yet.")
        return
    if caller.may(Action.EXPORT_PAIRS):
        _export(records, prefix, export_name, store)
    newest = list(reversed(records))
    if len(newest) > PAGE_SIZE:
        st.caption(f"Showing the newest {PAGE_SIZE} of {len(newest)}; the export has all of them.")
    for record in newest[:PAGE_SIZE]:
        pair_card(record, prefix, caller)


def _export(
    records: Sequence[LabeledPair], prefix: str, export_name: str, store: FeedbackStore
) -> None:
    st.download_button(
        f"Export {len(records)} pairs (SQuAD v2.0 JSON)",
        data=json.dumps(store.to_squad(list(records)), ensure_ascii=False, indent=1),
        file_name=export_name,
        mime="application/json",
        key=f"{prefix}-export",
        icon=":material/download:",
        on_click="ignore",
    )
