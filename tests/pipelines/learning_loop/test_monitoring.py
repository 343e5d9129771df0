"""The Monitor page's numbers, from question-log rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.learning_loop.monitoring import (
    PeriodStats,
    by_day_and_reader,
    by_reader,
    confidence_histogram,
    drift_alert,
    troubled_series,
)
from pipelines.learning_loop.question_log import LoggedQuestion

DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def logged(
    i: int,
    score: float = 0.9,
    answered: bool = True,
    feedback: str | None = None,
    reader: str = "v0.4",
    latency: float = 100.0,
    when: datetime = DAY,
) -> LoggedQuestion:
    return LoggedQuestion(
        id=i, asked_at=when, channel="page", question=f"q{i}", filters=None, top_k=10,
        answered=answered, top_answer="x" if answered else None, top_score=score,
        margin=0.2, answers=[], latency_ms=latency, reader=reader, feedback=feedback,
    )  # fmt: skip


def test_period_stats() -> None:
    group = [
        logged(1, 0.9, feedback="correct", latency=100),
        logged(2, 0.3, feedback="wrong", latency=200),  # low confidence and wrong
        logged(3, 0.95, answered=False, latency=300),  # a confident "no answer" is not low
        logged(4, 0.4, latency=400),
    ]
    s = PeriodStats.of(group)
    assert s.questions == 4
    assert s.answered_share == 0.75
    assert s.low_confidence_share == 0.5
    assert s.feedback_rate == 0.5 and s.wrong_share_of_feedback == 0.5
    assert s.p50_ms == 250.0 and 380 <= s.p95_ms <= 400
    assert PeriodStats.of([logged(5)]).wrong_share_of_feedback is None
    with pytest.raises(ValueError):
        PeriodStats.of([])


def test_groups_by_day_and_reader_and_histogram() -> None:
    rows = [
        logged(1, when=DAY),
        logged(2, reader="v0.5", when=DAY),
        logged(3, reader="v0.5", when=DAY + timedelta(days=1)),
        logged(4, 0.05, answered=False, reader="v0.5", when=DAY + timedelta(days=1)),
    ]
    days = by_day_and_reader(rows)
    assert list(days) == [
        (DAY.date(), "v0.4"),
        (DAY.date(), "v0.5"),
        ((DAY + timedelta(days=1)).date(), "v0.5"),
    ]
    assert days[((DAY + timedelta(days=1)).date(), "v0.5")].answered_share == 0.5
    assert {r: s.questions for r, s in by_reader(rows).items()} == {"v0.4": 1, "v0.5": 3}
    histogram = confidence_histogram(rows, bins=10)
    assert histogram["answer"][9] == 3 and histogram["no answer"][0] == 1
    assert sum(histogram["answer"]) + sum(histogram["no answer"]) == 4


def test_drift_alert_when_the_troubled_share_rises() -> None:
    calm = [logged(i, 0.9) for i in range(50)]
    troubled = [logged(50 + i, 0.2 if i % 2 else 0.9) for i in range(50)]  # 50% low
    assert drift_alert(calm + calm, window=50) is None  # stable
    assert drift_alert(calm, window=50) is None  # not enough questions for two windows
    alert = drift_alert(calm + troubled, window=50, min_rise=0.2)
    assert alert is not None
    assert alert.recent_share == 0.5 and alert.previous_share == 0.0
    assert "50% of the last 50 questions" in alert.message()
    assert drift_alert(calm + troubled, window=50, min_rise=0.6) is None
    # Wrong answers count as troubled too, whatever their confidence.
    wrong = [logged(100 + i, 0.9, feedback="wrong" if i < 20 else None) for i in range(50)]
    assert drift_alert(calm + wrong, window=50, min_rise=0.3) is not None
    assert drift_alert(troubled + calm, window=50) is None  # it fell: no alert

    series = troubled_series(calm + troubled, window=50)
    assert series[0] == (50, 0.0) and series[-1] == (100, 0.5)
    assert len(series) == 51
