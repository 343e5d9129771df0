"""Monitor page: how answers are doing in use, from the question log.

Questions per day, the share answered and answered with low confidence, feedback and the share
marked wrong, latency p50/p95, per reader version and over time; the confidence distribution;
and a drift alert when the share of low-confidence or wrong answers in the last N questions rose
past a threshold against the N before (``pipelines.learning_loop.monitoring``).

Admins see every question; everyone else sees the questions they asked themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from identity import Action
from pipelines.learning_loop.monitoring import (
    LOW_CONFIDENCE,
    PeriodStats,
    by_day_and_reader,
    by_reader,
    confidence_histogram,
    drift_alert,
    troubled_series,
)
from pipelines.learning_loop.question_log import question_log
from ui import auth, state

PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "All": None}

settings = state.settings()
caller = auth.user()
st.title("Monitor")
if caller.may(Action.READ_ALL_QUESTIONS):
    st.caption(
        "How answers are doing in use: every question asked on this page, with `docqa ask` and "
        "through the API is in the question log of this data directory."
    )
else:
    st.caption("How answers are doing for the questions you asked.")
log = question_log(settings)
if log is None:
    st.info("The question log is off (`question_log=False` or `DOCQA_QUESTION_LOG=0`).")
    st.stop()

with st.sidebar:
    st.subheader("Monitor settings")
    period = st.radio("Period", list(PERIODS), index=1, key="monitor_period", horizontal=True)
    window = st.number_input(
        "Drift window (questions)", 10, 5000, 100, step=10, key="monitor_window"
    )
    min_rise = st.slider(
        "Alert when the troubled share rises by",
        0.05,
        0.5,
        0.10,
        0.05,
        key="monitor_rise",
        format="%.2f",
        help="Troubled: answered with confidence under 50%, or marked wrong.",
    )

days = PERIODS[period]
since = datetime.now(UTC) - timedelta(days=days) if days else None
questions = state.questions(caller, since=since)
if not questions:
    st.info("No questions asked in this period yet. Ask some on the Ask page.")
    st.stop()

# -- drift ---------------------------------------------------------------------------------------
alert = drift_alert(questions, int(window), float(min_rise))
if alert is not None:
    st.error(alert.message(), icon=":material/warning:")
elif len(questions) < 2 * window:
    st.caption(f"The drift alert needs {2 * int(window)} questions ({len(questions)} so far).")
else:
    st.caption(f"No drift: the troubled share of the last {int(window)} questions is stable.")

# -- the period at a glance ----------------------------------------------------------------------
overall = PeriodStats.of(questions)
cols = st.columns(6)
cols[0].metric("Questions", f"{overall.questions:,}")
cols[1].metric("Answered", f"{overall.answered_share:.0%}")
cols[2].metric("Low confidence", f"{overall.low_confidence_share:.0%}")
cols[3].metric("With feedback", f"{overall.feedback_rate:.0%}")
wrong = overall.wrong_share_of_feedback
cols[4].metric("Marked wrong", "–" if wrong is None else f"{wrong:.0%}")
cols[5].metric("Latency p50 / p95", f"{overall.p50_ms:.0f} / {overall.p95_ms:.0f} ms")

# -- over time, per reader version ---------------------------------------------------------------
daily = pd.DataFrame(
    [
        {
            "day": pd.Timestamp(day),
            "reader": reader,
            "questions": s.questions,
            "answered": s.answered_share,
            "low confidence": s.low_confidence_share,
            "feedback": s.feedback_rate,
            "marked wrong": s.wrong_share_of_feedback,
            "p50 ms": s.p50_ms,
            "p95 ms": s.p95_ms,
        }
        for (day, reader), s in by_day_and_reader(questions).items()
    ]
)
left, right = st.columns(2)
with left:
    st.subheader("Questions per day")
    st.bar_chart(daily, x="day", y="questions", color="reader")
with right:
    st.subheader("Latency per day (ms)")
    latency = daily.groupby("day")[["p50 ms", "p95 ms"]].max()
    st.line_chart(latency)

left, right = st.columns(2)
with left:
    st.subheader("Answered and low-confidence share per day")
    shares = daily.groupby("day")[["answered", "low confidence"]].mean()
    st.line_chart(shares)
with right:
    st.subheader(f"Confidence of the top result ({int(LOW_CONFIDENCE * 100)}%: low)")
    histogram = confidence_histogram(questions)
    bins = len(histogram["answer"])
    st.bar_chart(
        pd.DataFrame(histogram, index=[f"{i / bins:.1f}" for i in range(bins)]),
        x_label="top score",
        y_label="questions",
    )

left, right = st.columns(2)
with left:
    st.subheader("Per reader version")
    readers = pd.DataFrame(
        {
            reader: {
                "answered": s.answered_share,
                "low confidence": s.low_confidence_share,
                "feedback": s.feedback_rate,
                "marked wrong": s.wrong_share_of_feedback or 0.0,
            }
            for reader, s in by_reader(questions).items()
        }
    ).T
    st.bar_chart(readers, stack=False, y_label="share of questions")
with right:
    st.subheader(f"Troubled share, last {int(window)} questions")
    series = troubled_series(questions, int(window))
    if series:
        st.line_chart(
            pd.DataFrame(series, columns=["question", "troubled share"]).set_index("question")
        )
    else:
        st.caption(f"Drawn once {int(window)} questions are logged.")
