"""The label queue: which logged questions would teach the reader most if someone labeled them.

Active learning by uncertainty, plus what users told us. A question scores for

* being marked wrong (and not yet corrected): the reader is known to fail it;
* a small margin between its top result and the runner-up, whether that is another answer or
  "no answer": the reader could not decide, so a label moves it most;
* being asked often: one label fixes every future ask.

The order can spread over documents (``spread_decay`` < 1): each question already ahead in the
queue that cites the same document multiplies a question's priority by it, so the first labels
cover more documents. Off by default: measured on the demo (benchmarks/bench_label_queue.py),
spreading by the cited document (often not the gold one) gained no F1 over the priority order.

Questions that already have a label with an answer (feedback "correct"/"corrected", or an
annotation) leave the queue. Plain Python over question-log rows and the labeled questions: the
caller reads the rows it may show (``QuestionLog.questions(asker=..., scope=...)``: its own
questions unless an admin, citing only documents in its scope), so the queue never offers a
question, answer or passage the caller may not see.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipelines.learning_loop.monitoring import WRONG_VERDICTS
from pipelines.learning_loop.question_log import LoggedQuestion

# How much each signal weighs in the priority (wrong answers come first).
WRONG_WEIGHT = 2.0
MARGIN_WEIGHT = 1.0
FREQUENCY_WEIGHT = 0.3
# Margins at or above this count as sure (no uncertainty).
SURE_MARGIN = 0.5
# Priority factor per question ahead in the queue citing the same document (1.0: off).
SPREAD_DECAY = 1.0


def normalize_question(question: str) -> str:
    """Questions that differ only in case and spacing are the same question."""
    return " ".join(question.lower().split()).rstrip("?").strip()


@dataclass(frozen=True)
class QueueItem:
    """A question to label, why, and its latest ask (to open its passage)."""

    question: str
    priority: float
    reasons: tuple[str, ...]
    times_asked: int
    latest: LoggedQuestion

    @property
    def top_answer(self) -> dict | None:
        """The latest ask's first ranked answer with a citation, if any."""
        return next((a for a in self.latest.answers if a.get("doc_id")), None)


def label_queue(
    questions: Sequence[LoggedQuestion],
    labeled: Iterable[str] = (),
    limit: int | None = None,
    spread_decay: float = SPREAD_DECAY,
) -> list[QueueItem]:
    """Unlabeled logged questions, most useful to label first (``spread_decay`` 1.0: by
    priority alone, not spread over documents)."""
    done = {normalize_question(q) for q in labeled}
    asks: dict[str, list[LoggedQuestion]] = defaultdict(list)
    for q in questions:
        key = normalize_question(q.question)
        if key and key not in done:
            asks[key].append(q)
    items = []
    for group in asks.values():
        latest = group[-1]
        reasons = []
        priority = 0.0
        if any(q.feedback in WRONG_VERDICTS for q in group):
            priority += WRONG_WEIGHT
            reasons.append("marked wrong")
        margin = latest.margin
        if margin is not None and margin < SURE_MARGIN:
            priority += MARGIN_WEIGHT * (1.0 - max(0.0, margin) / SURE_MARGIN)
            runner_up = (
                "answer and no answer" if _null_in_top_two(latest) else "the top two answers"
            )
            reasons.append(f"margin {margin:.2f} between {runner_up}")
        if len(group) > 1:
            priority += FREQUENCY_WEIGHT * min(3.0, math.log2(len(group)))
            reasons.append(f"asked {len(group)} times")
        if priority > 0:
            items.append(QueueItem(latest.question, priority, tuple(reasons), len(group), latest))
    items.sort(key=lambda item: (-item.priority, -item.latest.id))
    ordered = spread_over_documents(items, spread_decay)
    return ordered[:limit] if limit is not None else ordered


def spread_over_documents(items: Sequence[QueueItem], decay: float) -> list[QueueItem]:
    """``items`` (sorted by priority) reordered so that each one's priority counts
    ``decay ** k``, k the items placed before it that cite the same document (its top answer's
    document; questions without a cited answer are never discounted). Stable for equal
    priorities. Priorities only fall, so a lazily updated heap suffices: O(n log n)."""
    if decay >= 1.0:
        return list(items)
    placed: dict[str, int] = defaultdict(int)
    heap = [(-item.priority, rank, 0) for rank, item in enumerate(items)]
    heapq.heapify(heap)
    out: list[QueueItem] = []
    while heap:
        _, rank, seen = heapq.heappop(heap)
        document = _document(items[rank])
        count = placed[document] if document is not None else 0
        if count != seen:  # more of its document placed since this entry: re-score
            heapq.heappush(heap, (-items[rank].priority * decay**count, rank, count))
            continue
        out.append(items[rank])
        if document is not None:
            placed[document] += 1
    return out


def _document(item: QueueItem) -> str | None:
    answer = item.top_answer
    if answer is None:
        return None
    return answer.get("document") or answer.get("doc_id")


def _null_in_top_two(question: LoggedQuestion) -> bool:
    return any(a.get("answer") is None for a in question.answers[:2])
