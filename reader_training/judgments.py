"""Users' verdicts on answers, and their own annotations, as labeled pairs for the feedback file.

The web page (``ui/labeling.py``, ``ui/views/annotate.py``) and the REST API (``api/``) both turn
a judgment into a pair here, so both store the same pairs the same way, the way the trainer
learns most from them:

* a correct or corrected answer: context = the whole converted document text, with the answer's
  absolute offset (the trainer windows long contexts itself);
* "wrong" and "no answer in this passage": context = the passage only, as an unanswerable pair;
  "wrong" says nothing about the rest of the document;
* an annotation: a question about a whole document (or one stretch of it), its answer span or
  "no answer".

When the document's text no longer holds the passage at its offset (re-indexed since the
question was asked, or removed), the passage itself is the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.question_log import VERDICTS
from reader_training.feedback import (
    FeedbackError,
    FeedbackStore,
    locate_answer,
    make_id,
    validate_answer,
)

if TYPE_CHECKING:
    from haystack import Document

    from pipelines.query import AnswerResult
    from pipelines.store import SourceRecord

__all__ = [
    "VERDICTS",
    "LabeledPair",
    "PassageRef",
    "annotation_pair",
    "document_context",
    "judged_pair",
    "locate_span",
]


@dataclass(frozen=True)
class PassageRef:
    """A passage shown to a user, with what a labeled pair needs to cite it."""

    doc_id: str
    title: str
    source: str
    text: str  # the passage
    start: int  # where the passage starts in the document text
    page: int | None = None
    section: str | None = None

    @classmethod
    def of_answer(cls, result: AnswerResult) -> PassageRef:
        """The passage an answer was read from (its ``context``)."""
        if result.doc_id is None or result.context is None:
            raise FeedbackError("the answer cites no passage (a 'no answer' result)")
        doc_start = result.document_offsets[0] if result.document_offsets else 0
        ctx_start = result.context_offsets[0] if result.context_offsets else 0
        return cls(
            doc_id=result.doc_id,
            title=result.title or "",
            source=result.document or "",
            text=result.context,
            start=doc_start - ctx_start,
            page=result.page,
            section=result.section,
        )

    @classmethod
    def of_passage(cls, doc: Document) -> PassageRef:
        """A retrieved passage (shown when the documents hold no answer)."""
        meta = doc.meta
        return cls(
            doc_id=str(meta.get("doc_id")),
            title=str(meta.get("title") or ""),
            source=str(meta.get("source") or ""),
            text=doc.content or "",
            start=int(meta.get("start", 0)),
            page=meta.get("page"),
            section=meta.get("section"),
        )

    def meta(self, **extra: Any) -> dict[str, Any]:
        data = {
            "doc_id": self.doc_id,
            "source": self.source,
            "page": self.page,
            "section": self.section,
        }
        return {**{k: v for k, v in data.items() if v is not None}, **extra}


@dataclass(frozen=True)
class LabeledPair:
    """A pair ready for :meth:`FeedbackStore.add` (``answer_text`` None: no answer)."""

    question: str
    context: str
    answer_text: str | None
    answer_start: int | None
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The id the feedback store gives this pair."""
        question = " ".join(self.question.split())
        return make_id(question, self.context, self.answer_text, self.answer_start)

    @property
    def verdict(self) -> str | None:
        return self.meta.get("verdict")

    def save(self, store: FeedbackStore) -> bool:
        """Add it to ``store``; False when the same pair is already there (FeedbackError when
        the answer is not where it is said to be)."""
        return store.add(
            self.question, self.context, self.answer_text, self.answer_start, self.title, self.meta
        )


def document_context(ref: PassageRef, document_text: str | None) -> tuple[str, int]:
    """The context for a pair about ``ref``'s passage, and where that context starts in the
    document: the whole ``document_text`` (start 0) when it still holds the passage at its
    offset, else the passage itself (start ``ref.start``)."""
    if document_text is not None and (
        document_text[ref.start : ref.start + len(ref.text)] == ref.text
    ):
        return document_text, 0
    return ref.text, ref.start


def locate_span(text: str, answer: str, start: int | None = None) -> tuple[str, int]:
    """An answer span in ``text``: ``answer`` at ``start``, or its one occurrence when ``start``
    is None (as the text spells it, whitespace differences allowed); FeedbackError otherwise."""
    if start is not None:
        if text[start : start + len(answer)] != answer:
            raise FeedbackError(f"{answer[:60]!r} does not occur at offset {start}")
        return answer, start
    spans = locate_answer(text, answer)
    if not spans:
        raise FeedbackError(f"{answer.strip()[:60]!r} does not occur in the text")
    if len(spans) > 1:
        raise FeedbackError(
            f"{answer.strip()[:60]!r} occurs {len(spans)} times in the text: give its start"
        )
    begin, end = spans[0]
    return text[begin:end], begin


def judged_pair(
    question: str,
    ref: PassageRef,
    verdict: str,
    *,
    answer: str | None = None,
    offset: int | None = None,
    rejected: str | None = None,
    score: float | None = None,
    document_text: str | None = None,
) -> LabeledPair:
    """The pair a verdict on ``ref``'s passage makes.

    ``verdict``: "correct" (``answer`` at ``offset`` in the passage is right), "wrong" (the
    ``answer`` read from this passage is wrong), "corrected" (``answer`` at ``offset`` in the
    passage is the right one; ``rejected`` the answer shown, if any) or "no_answer_in_passage"
    (``rejected`` likewise). ``document_text`` is the cited document's text, when the caller
    has it (see :func:`document_context`). ``score`` is the score of the answer judged.
    """
    if verdict not in VERDICTS:
        raise FeedbackError(f"unknown verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    extra: dict[str, Any] = {"origin": "feedback", "verdict": verdict}
    if score is not None:
        extra["score"] = round(float(score), 4)
    if verdict in ("correct", "corrected"):
        if answer is None or offset is None:
            raise FeedbackError(f"a '{verdict}' verdict needs the answer text and its offset")
        if rejected is not None:
            extra["rejected_answer"] = rejected
        context, doc_start = document_context(ref, document_text)
        start = ref.start + offset - doc_start
        meta = ref.meta(**extra, doc_start=doc_start)
        return LabeledPair(question, context, answer, start, ref.title, meta)
    rejected = answer if verdict == "wrong" else rejected
    if verdict == "wrong" and rejected is None:
        raise FeedbackError("a 'wrong' verdict needs the answer judged wrong")
    if rejected is not None:
        extra["rejected_answer"] = rejected
    meta = ref.meta(**extra, doc_start=ref.start)
    return LabeledPair(question, ref.text, None, None, ref.title, meta)


def annotation_pair(
    question: str,
    record: SourceRecord,
    document_text: str,
    answer_text: str | None,
    answer_start: int | None,
    passage: tuple[int, int] | None = None,
) -> LabeledPair:
    """A question a user wrote about a document, with its answer (None: the context holds no
    answer). The context is the whole ``document_text``, or its ``passage`` (start, end) when
    given; ``answer_start`` is an offset into that context."""
    context, doc_start = document_text, 0
    if passage is not None:
        begin, end = passage
        if not 0 <= begin < end <= len(document_text):
            raise FeedbackError(
                f"passage {begin}-{end} is outside the document ({len(document_text):,} characters)"
            )
        context, doc_start = document_text[begin:end], begin
    # Resolved now (the one occurrence when no start is given), so the pair's id is final.
    answer_text, answer_start = validate_answer(context, answer_text, answer_start)
    meta = {
        "origin": "annotation",
        "doc_id": record.doc_id,
        "source": record.source,
        "doc_start": doc_start,
    }
    return LabeledPair(question, context, answer_text, answer_start, record.title, meta)
