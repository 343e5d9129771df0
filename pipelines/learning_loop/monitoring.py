"""How answers are doing in use, from the question log: the Monitor page's numbers.

Per day and reader version: questions, share answered (vs "no answer"), share answered with low
confidence, feedback rate and share of feedback saying the answer was wrong, latency p50/p95. And
a drift alert: the share of questions answered with low confidence or marked wrong in the last
``window`` questions against the ``window`` before, raised when it rose by ``min_rise`` or more.

Plain Python over :class:`~pipelines.learning_loop.question_log.LoggedQuestion` rows, so it is
tested without the page; the page draws the charts. The numbers are those of the rows given: the
page reads them with the caller's ``asker`` and ``scope`` (``QuestionLog.questions``), so counts
never include questions the caller may not see.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pipelines.learning_loop.question_log import LoggedQuestion

# An answer shown with less confidence than this counts as low confidence.
LOW_CONFIDENCE = 0.5
# Verdicts that say the answer shown was not right.
WRONG_VERDICTS = frozenset({"wrong", "corrected", "no_answer_in_passage"})


def is_low_confidence(question: LoggedQuestion, threshold: float = LOW_CONFIDENCE) -> bool:
    """Answered, with a top score under ``threshold``."""
    return question.answered and (question.top_score or 0.0) < threshold


def is_marked_wrong(question: LoggedQuestion) -> bool:
    return question.feedback in WRONG_VERDICTS


def _percentile(values: Sequence[float], q: float) -> float:
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1])


@dataclass(frozen=True)
class PeriodStats:
    """The numbers of one group of questions (a day, a reader version, a day and version)."""

    questions: int
    answered_share: float
    low_confidence_share: float
    feedback_rate: float
    wrong_share_of_feedback: float | None  # None without feedback
    p50_ms: float
    p95_ms: float

    @classmethod
    def of(cls, group: Sequence[LoggedQuestion], threshold: float = LOW_CONFIDENCE) -> PeriodStats:
        if not group:
            raise ValueError("no questions in the group")
        n = len(group)
        judged = [q for q in group if q.feedback]
        latencies = [q.latency_ms for q in group]
        return cls(
            questions=n,
            answered_share=sum(q.answered for q in group) / n,
            low_confidence_share=sum(is_low_confidence(q, threshold) for q in group) / n,
            feedback_rate=len(judged) / n,
            wrong_share_of_feedback=(
                sum(is_marked_wrong(q) for q in judged) / len(judged) if judged else None
            ),
            p50_ms=_percentile(latencies, 50),
            p95_ms=_percentile(latencies, 95),
        )


def by_day_and_reader(
    questions: Sequence[LoggedQuestion], threshold: float = LOW_CONFIDENCE
) -> dict[tuple[date, str], PeriodStats]:
    """Stats per (UTC day, reader version), in day order."""
    groups: dict[tuple[date, str], list[LoggedQuestion]] = defaultdict(list)
    for q in questions:
        groups[(q.asked_at.date(), q.reader)].append(q)
    return {key: PeriodStats.of(groups[key], threshold) for key in sorted(groups)}


def by_reader(
    questions: Sequence[LoggedQuestion], threshold: float = LOW_CONFIDENCE
) -> dict[str, PeriodStats]:
    """Stats per reader version, in the order each first answered."""
    groups: dict[str, list[LoggedQuestion]] = defaultdict(list)
    for q in questions:
        groups[q.reader].append(q)
    return {reader: PeriodStats.of(group, threshold) for reader, group in groups.items()}


def confidence_histogram(
    questions: Sequence[LoggedQuestion], bins: int = 10
) -> dict[str, list[int]]:
    """Counts of top scores in ``bins`` equal bins over [0, 1], for answers and "no answer"."""
    counts = {"answer": [0] * bins, "no answer": [0] * bins}
    for q in questions:
        if q.top_score is None:
            continue
        b = min(bins - 1, max(0, int(q.top_score * bins)))
        counts["answer" if q.answered else "no answer"][b] += 1
    return counts


@dataclass(frozen=True)
class DriftAlert:
    """The share of troubled answers (low confidence or marked wrong) rose between periods."""

    recent_share: float
    previous_share: float
    window: int

    @property
    def rise(self) -> float:
        return self.recent_share - self.previous_share

    def message(self) -> str:
        return (
            f"{self.recent_share:.0%} of the last {self.window} questions were answered with "
            f"low confidence or marked wrong, against {self.previous_share:.0%} of the "
            f"{self.window} before: new documents or new kinds of questions the reader handles "
            "badly? Label them on the Annotate page."
        )


def troubled_share(questions: Sequence[LoggedQuestion], threshold: float = LOW_CONFIDENCE) -> float:
    """Share answered with low confidence or marked wrong."""
    if not questions:
        return 0.0
    troubled = sum(is_low_confidence(q, threshold) or is_marked_wrong(q) for q in questions)
    return troubled / len(questions)


def drift_alert(
    questions: Sequence[LoggedQuestion],
    window: int = 100,
    min_rise: float = 0.10,
    threshold: float = LOW_CONFIDENCE,
) -> DriftAlert | None:
    """An alert when the troubled share of the last ``window`` questions exceeds that of the
    ``window`` before by ``min_rise`` or more; None otherwise or with fewer than 2 windows."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if len(questions) < 2 * window:
        return None
    recent = questions[-window:]
    previous = questions[-2 * window : -window]
    alert = DriftAlert(
        troubled_share(recent, threshold), troubled_share(previous, threshold), window
    )
    return alert if alert.rise >= min_rise - 1e-12 else None


def troubled_series(
    questions: Sequence[LoggedQuestion], window: int = 100, threshold: float = LOW_CONFIDENCE
) -> list[tuple[int, float]]:
    """(question number, troubled share of the ``window`` questions ending there): the line the
    alert watches, one point per question from the ``window``-th on."""
    flags = [is_low_confidence(q, threshold) or is_marked_wrong(q) for q in questions]
    out, running = [], 0
    for i, flag in enumerate(flags):
        running += flag
        if i >= window:
            running -= flags[i - window]
        if i + 1 >= window:
            out.append((i + 1, running / window))
    return out
