"""Ask page: a question over the documents the caller may see, ranked answers with citations.

The question stays in the session, never in the URL: a URL ends up in browser history, proxy
logs and shared links, and a question can be confidential. Sidebar choices (passages, answers,
filters) re-ask the current question when changed. Results are kept in the session, so clicking
feedback buttons does not run the reader again. The search runs within the caller's scope (the
access rules), and the folder and type filters offer only what the caller may see.
"""

from __future__ import annotations

import json

import streamlit as st

from pipelines.answers import QuestionError
from pipelines.filters import build_filters, folders
from pipelines.query import IndexMissingError
from pipelines.reader_registry import ReaderNotFoundError
from ui import auth, cards, render, state

RECENT_LIMIT = 10

settings = state.settings()
caller = auth.user()
st.title("Ask your documents")

store = state.store_or_none()
if store is None:
    st.info(
        "No documents are indexed yet. Add some on the Documents page, or run `docqa index FOLDER`."
    )
    st.page_link("views/documents.py", label="Add documents", icon=":material/upload_file:")
    st.stop()
scope = state.scope(caller, store)
records = store.sources(scope=scope)


def _ask_recent(question: str) -> None:
    st.session_state["question"] = question
    st.session_state["question_input"] = question


# -- sidebar: search settings, filters, recent questions ----------------------------------------
with st.sidebar:
    st.subheader("Search settings")
    top_k = st.slider(
        "Passages to retrieve",
        1,
        50,
        settings.top_k_passages,
        key="top_k",
        help="How many passages the reader reads. More: slower, better recall.",
    )
    top_n = st.slider("Answers to show", 1, 10, settings.top_n_answers, key="top_n")
    with st.expander("Filters"):
        chosen_folders = st.multiselect(
            "Folder", folders(r.source for r in records), key="filter_folders"
        )
        chosen_types = st.multiselect(
            "File type", sorted({r.file_type for r in records}), key="filter_types"
        )
        modified_from = st.date_input(
            "Modified from", value=None, key="filter_from", format="YYYY-MM-DD"
        )
        modified_to = st.date_input(
            "Modified until", value=None, key="filter_to", format="YYYY-MM-DD"
        )
    recent: list[str] = st.session_state.setdefault("recent_questions", [])
    if recent:
        st.subheader("Recent questions")
        for i, past in enumerate(recent):
            st.button(
                render.md(past),
                key=f"recent-{i}",
                on_click=_ask_recent,
                args=(past,),
                type="tertiary",
                width="stretch",
            )

filters = build_filters(records, chosen_folders, chosen_types, modified_from, modified_to)

# -- the question -------------------------------------------------------------------------------
with st.form("ask_form", border=False):
    st.text_input(
        "Question", key="question_input", placeholder="e.g. How many days of annual leave do I get?"
    )
    submitted = st.form_submit_button("Ask", type="primary", icon=":material/search:")

if submitted:
    st.session_state["question"] = st.session_state["question_input"].strip()

question = st.session_state.get("question", "")
# Who asks and what they may see are part of the key: new access rules ask again.
seen = None if scope is None else hash(scope)
ask_key = json.dumps(
    [question, top_k, top_n, filters, caller.identity, seen], sort_keys=True, default=str
)
previous = st.session_state.get("ask_result")

if submitted and not question:
    st.session_state.pop("ask_result", None)
    st.warning("Type a question first.")
elif question and (submitted or previous is None or previous["key"] != ask_key):
    outcome: dict = {
        "key": ask_key,
        "question": question,
        "results": [],
        "passages": [],
        "error": None,
        "question_id": None,
    }
    with st.spinner("Reading the documents…"):
        try:
            service = state.service()
            asked = service.answer(
                question,
                top_k,
                top_n,
                filters,
                channel="page",
                scope=scope,
                asker=caller.identity,
            )
            results = asked.answers
            outcome["results"] = results
            outcome["question_id"] = asked.question_id  # feedback is noted in the question log
            if results and results[0].answer is None:
                outcome["passages"] = asked.passages[:top_n]
            # The text only where the question log may keep it (it can be personal), as the API.
            auth.audit(caller, "ask", question=question if state.settings().question_log else None)
        except QuestionError as exc:
            outcome["error"] = str(exc)
        except (IndexMissingError, ReaderNotFoundError) as exc:
            outcome["error"] = f"Cannot answer: {exc}"
    st.session_state["ask_result"] = outcome
    if outcome["error"] is None:
        st.session_state["recent_questions"] = [question, *[q for q in recent if q != question]][
            :RECENT_LIMIT
        ]

# -- answers ------------------------------------------------------------------------------------
shown = st.session_state.get("ask_result")
if shown and shown["question"] == question:
    if shown["error"]:
        st.error(render.md(shown["error"]))
    else:
        results = shown["results"]
        answers = [r for r in results if r.answer is not None][:top_n]
        no_answer = next((r for r in results if r.answer is None), None)
        if results and results[0].answer is None and filters and not shown["passages"]:
            st.warning("No passages match the filters: widen them in the sidebar.")
        elif results and results[0].answer is None:
            st.warning(
                "The documents do not seem to contain an answer to this question "
                f"(no-answer confidence {round(100 * results[0].score)}%). "
                "These are the most relevant passages:"
            )
            for rank, doc in enumerate(shown["passages"]):
                cards.passage_card(doc, question, rank, caller)
            if answers:
                st.subheader("Low-confidence candidates")
                for rank, result in enumerate(answers):
                    cards.answer_card(result, question, rank, caller, low=True)
        else:
            for rank, result in enumerate(answers):
                cards.answer_card(result, question, rank, caller)
            if no_answer is not None:
                st.caption(
                    f"Chance that the documents hold no answer: {round(100 * no_answer.score)}%"
                )
