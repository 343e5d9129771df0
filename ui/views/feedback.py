"""Feedback page: the judgments collected on the Ask page, as labeled SQuAD v2.0 pairs.

The pairs are in ``Settings.feedback_file`` (SQuAD v2.0), so ``docqa train`` can learn from them.
Editors and admins use this page; it lists (and exports) only the pairs about documents the
caller may see, and only admins may edit or delete them.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

from identity import Action
from ui import auth, pairs, state

caller = auth.page_for(Action.FEEDBACK)
st.title("Feedback")
store = state.feedback_store()
records = state.labeled_pairs(store, "feedback", "feedback file", caller)

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
    "Answers judged on the Ask page, stored as SQuAD v2.0 pairs in the data directory's "
    "feedback file (train on them with `docqa train`). Correct and marked answers cite the "
    "whole document; “wrong” and “no answer” pairs cite the passage."
)
pairs.pairs_list(records, "feedback", "docqa-feedback.json", store, caller)
