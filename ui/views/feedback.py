"""Feedback page: the judgments collected on the Ask page, as labeled SQuAD v2.0 pairs.

The pairs are in ``Settings.feedback_file`` (SQuAD v2.0), so ``docqa train`` can learn from them.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

from ui import pairs, render, state

st.title("Feedback")
store = state.feedback_store()
records = state.labeled_pairs(store, "feedback", "feedback file")

counts = Counter(r.meta.get("verdict", "other") for r in records)
columns = st.columns(4)
for column, (label, verdict) in zip(
    columns,
    [
        ("Correct", "correct"),
        ("Wrong", "wrong"),
        ("Corrected", "corrected"),
        ("No answer in passage", "no_answer_in_passage"),
    ],
    strict=True,
):
    column.metric(label, counts.get(verdict, 0))
st.caption(
    f"Answers judged on the Ask page, stored as SQuAD v2.0 pairs in {render.md(store.path)} "
    "(train on them with `docqa train`). Correct and marked answers cite the whole document; "
    "“wrong” and “no answer” pairs cite the passage."
)
pairs.pairs_list(records, "feedback", "docqa-feedback.json", store)
