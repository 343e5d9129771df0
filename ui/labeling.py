"""Widgets that turn a user's judgment into a labeled pair in the :class:`FeedbackStore`.

Answers get "Correct" / "Wrong" buttons and a "Mark the right answer" form; the Annotate page
uses the same span picker over a whole document. Which pair a judgment makes (the whole document
or the passage as context, and the meta kept with it) is decided in
:mod:`reader_training.judgments`, which the REST API uses too.

Every save first asks :func:`ui.auth.permitted` (feedback needs an editor) and that the cited
document is still one the caller may see; it is then written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from identity import Action
from reader_training.feedback import FeedbackError, locate_answer
from reader_training.judgments import PassageRef, judged_pair
from ui import auth, render, state

__all__ = ["PassageRef", "SpanChoice", "answer_feedback", "say", "show_message", "span_picker"]


@dataclass(frozen=True)
class SpanChoice:
    """What the user picked: an answer span (offsets into the text shown), or no answer."""

    text: str | None
    start: int | None


def _messages() -> dict[str, tuple[str, str]]:
    return st.session_state.setdefault("labeling_messages", {})


def say(key: str, kind: str, message: str) -> None:
    _messages()[key] = (kind, message)


def show_message(key: str) -> None:
    kind, message = _messages().get(key, ("", ""))
    if message:
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def _document_text(ref: PassageRef) -> str | None:
    """The cited document's whole text, None when it is gone from the index."""
    store = state.store_or_none()
    try:
        return store.source_text(ref.doc_id) if store is not None else None
    except KeyError:
        return None


def _judge(
    key: str, question: str, ref: PassageRef, verdict: str, saved: str, **judgment: Any
) -> None:
    """Save the pair a verdict on ``ref``'s passage makes, when the caller may give feedback on
    that document now; the pair's context is the indexed text, never the passage as shown."""
    who = auth.permitted(Action.FEEDBACK, target=ref.source)
    if who is None:
        return
    if not state.visible(who, ref.doc_id):
        say(key, "error", "Not saved: this document is not in the index (any more).")
        return
    try:
        pair = judged_pair(
            question,
            ref,
            verdict,
            document_text=_document_text(ref),
            author=who.identity,
            **judgment,
        )
        added = pair.save(state.feedback_store())
    except FeedbackError as exc:
        say(key, "error", f"Not saved: {render.md(exc)}")
        auth.audit(who, Action.FEEDBACK.value, "failed", ref.source, verdict=verdict)
        return
    if added:
        say(key, "success", saved)
    else:
        say(key, "info", "Already saved: this exact pair is in the feedback file.")
    auth.audit(who, Action.FEEDBACK.value, "ok", ref.source, verdict=verdict)
    state.note_feedback(pair.question, pair.verdict)


def save_correct(
    key: str, question: str, ref: PassageRef, answer: str, offset: int, score: float
) -> None:
    """``answer`` at ``offset`` in the passage is right."""
    _judge(
        key,
        question,
        ref,
        "correct",
        "Thanks! Saved as a correct answer.",
        answer=answer,
        offset=offset,
        score=score,
    )


def save_wrong(key: str, question: str, ref: PassageRef, answer: str, score: float) -> None:
    """The answer from this passage is wrong: the passage, as judged, does not answer."""
    _judge(
        key,
        question,
        ref,
        "wrong",
        "Thanks! Saved as wrong. If the right answer is in this passage, mark it below.",
        answer=answer,
        score=score,
    )


def save_marked(
    key: str, question: str, ref: PassageRef, choice: SpanChoice, rejected: str | None
) -> None:
    """The user marked the right span in the passage, or said it holds no answer."""
    if choice.text is None or choice.start is None:
        _judge(
            key,
            question,
            ref,
            "no_answer_in_passage",
            "Thanks! Saved: this passage does not answer the question.",
            rejected=rejected,
        )
        return
    _judge(
        key,
        question,
        ref,
        "corrected",
        f"Thanks! Saved “{render.md(choice.text)}” as the right answer.",
        answer=choice.text,
        offset=choice.start,
        rejected=rejected,
    )


def span_picker(
    text: str, key: str, no_answer_label: str, default: SpanChoice | None = None
) -> SpanChoice | None:
    """Inputs for choosing an answer in ``text``: exact text (and which occurrence), or none.

    None while nothing valid is chosen (errors are shown under the inputs). ``default`` fills
    the inputs the first time they are shown (editing a stored pair).
    """
    if default is not None:
        st.session_state.setdefault(f"{key}-none", default.text is None)
        st.session_state.setdefault(f"{key}-text", default.text or "")
    none = st.checkbox(no_answer_label, key=f"{key}-none")
    typed = st.text_input(
        "Exact answer text",
        key=f"{key}-text",
        disabled=none,
        placeholder="Copy the answer from the text",
        help="The shortest span that answers the question, exactly as the text writes it.",
    )
    if none:
        return SpanChoice(None, None)
    if not typed.strip():
        return None
    spans = locate_answer(text, typed)
    if not spans:
        st.error(f"“{render.md(typed.strip())}” does not occur in the text: copy it exactly.")
        return None
    index = 0
    if len(spans) > 1:
        if default is not None and default.start is not None:
            at = [i for i, (s, _) in enumerate(spans) if s == default.start]
            st.session_state.setdefault(f"{key}-occurrence", at[0] if at else 0)
        index = (
            st.radio(
                f"It occurs {len(spans)} times; which one answers the question?",
                range(len(spans)),
                format_func=lambda i: render.md(render.snippet(text, *spans[i])),
                key=f"{key}-occurrence",
            )
            or 0
        )
        index = min(index, len(spans) - 1)
    start, end = spans[index]
    return SpanChoice(text[start:end], start)


def answer_feedback(
    key: str,
    question: str,
    ref: PassageRef,
    answer: str | None,
    offset: int | None,
    score: float,
    row: DeltaGenerator,
) -> None:
    """Correct / Wrong buttons (for an answer) in ``row``, the "Mark the right answer" form."""
    if answer is not None and offset is not None:
        row.button(
            "Correct",
            key=f"{key}-correct",
            icon=":material/thumb_up:",
            on_click=save_correct,
            args=(key, question, ref, answer, offset, score),
        )
        row.button(
            "Wrong",
            key=f"{key}-wrong",
            icon=":material/thumb_down:",
            on_click=save_wrong,
            args=(key, question, ref, answer, score),
        )
    with st.expander("Mark the right answer"):
        choice = span_picker(
            ref.text, key=f"{key}-mark", no_answer_label="No answer in this passage"
        )
        st.button(
            "Save",
            key=f"{key}-save",
            disabled=choice is None,
            type="primary",
            on_click=save_marked,
            args=(key, question, ref, choice, answer),
        )
    show_message(key)
