"""Users' verdicts on answers, and their own annotations, as labeled pairs for the feedback file.

The web page (``ui/labeling.py``, ``ui/views/annotate.py``) and the REST API (``api/``) both turn
a judgment into a pair here, so both store the same pairs the same way, the way the trainer
learns most from them:

* a correct or corrected answer: context = the document text around the answer, a window of at
  most :data:`~reader_training.feedback.MAX_CONTEXT_CHARS` characters (the whole document when
  it is that short), so the trainer sees the answer among its neighbours;
* "wrong" and "no answer in this passage": context = the passage only, as an unanswerable pair;
  "wrong" says nothing about the rest of the document;
* an annotation: a question about a document (or one stretch of it), its answer span or
  "no answer", likewise bounded (a window around the answer; for "no answer", the start of the
  stretch: what holds no answer as a whole holds none in part).

Contexts come from the index only. The caller passes the cited document's text as the store
holds it (``PassageStore.source_text``); the passage a client shows (:class:`PassageRef`, built
from an answer the client may have sent back) must be exactly that text at its offset, else the
judgment is refused (:func:`indexed_passage`): a client can never make its own text a training
context. Each pair names its ``author`` ("user:alice", "key:bot"): the latest judgment wins per
author (:mod:`reader_training.feedback`).

The caller also checks that the caller may see the document (its scope): these functions only
see the text they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pipelines.learning_loop.question_log import VERDICTS
from reader_training.feedback import (
    MAX_CONTEXT_CHARS,
    FeedbackError,
    LabeledPair,
    locate_answer,
    validate_answer,
)

if TYPE_CHECKING:
    from haystack import Document

    from pipelines.answers import AnswerResult
    from pipelines.store import SourceRecord

__all__ = [
    "VERDICTS",
    "PassageRef",
    "annotation_pair",
    "context_window",
    "indexed_passage",
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


def indexed_passage(ref: PassageRef, document_text: str | None) -> str:
    """``ref``'s passage as the index holds it: ``document_text`` (the cited document's text,
    from the store; None when it is gone) must hold ``ref.text`` at ``ref.start``, else
    :class:`FeedbackError` (re-indexed since the question was asked, removed, or a passage
    the client changed: never stored as it was sent)."""
    where = ref.source or ref.doc_id
    if document_text is None:
        raise FeedbackError(
            f"{where} is no longer in the index: ask the question again to judge its answers"
        )
    if not ref.text:
        raise FeedbackError("the passage is empty")
    end = ref.start + len(ref.text)
    if ref.start < 0 or document_text[ref.start : end] != ref.text:
        raise FeedbackError(
            f"the passage does not match the indexed text of {where} at offset {ref.start} "
            "(changed since it was shown, or re-indexed): ask the question again"
        )
    return document_text[ref.start : end]


def _snap(text: str, begin: int, end: int, keep: tuple[int, int]) -> tuple[int, int]:
    """``begin``/``end`` moved inward to whitespace so that no word is cut at either edge,
    never past ``keep`` (the span that must stay inside)."""
    if begin > 0 and not text[begin - 1].isspace():
        space = next((i for i in range(begin, keep[0]) if text[i].isspace()), None)
        if space is not None:
            begin = space + 1
    if end < len(text) and not text[end].isspace():
        space = next((i for i in range(end - 1, keep[1] - 1, -1) if text[i].isspace()), None)
        if space is not None:
            end = space
    return begin, end


def context_window(
    text: str,
    span: tuple[int, int] | None = None,
    within: tuple[int, int] | None = None,
    limit: int = MAX_CONTEXT_CHARS,
) -> tuple[int, int]:
    """The stretch (begin, end) of ``text`` a pair's context is: ``within`` (default all of
    ``text``) when it has at most ``limit`` characters, else a window of at most ``limit``
    characters inside it, centered on ``span`` (the answer; without one the window starts where
    ``within`` does), cut at whitespace. FeedbackError when the span itself is too long."""
    lo, hi = within if within is not None else (0, len(text))
    if hi - lo <= limit:
        return lo, hi
    if span is None:
        return _snap(text, lo, lo + limit, (lo, lo))
    start, end = span
    if end - start > limit:
        raise FeedbackError(
            f"the answer is {end - start:,} characters, longer than a labeled pair's context "
            f"may be ({limit:,}): mark a shorter answer"
        )
    begin = max(lo, start - (limit - (end - start)) // 2)
    stop = min(hi, begin + limit)
    begin = max(lo, stop - limit)
    return _snap(text, begin, stop, span)


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


def _author(author: str) -> str:
    if not isinstance(author, str) or not author.strip():
        raise FeedbackError("a labeled pair needs its author (who judged or wrote it)")
    return author.strip()


def judged_pair(
    question: str,
    ref: PassageRef,
    verdict: str,
    *,
    document_text: str | None,
    author: str,
    answer: str | None = None,
    offset: int | None = None,
    rejected: str | None = None,
    score: float | None = None,
) -> LabeledPair:
    """The pair a verdict on ``ref``'s passage makes.

    ``verdict``: "correct" (``answer`` at ``offset`` in the passage is right), "wrong" (the
    ``answer`` read from this passage is wrong), "corrected" (``answer`` at ``offset`` in the
    passage is the right one; ``rejected`` the answer shown, if any) or "no_answer_in_passage"
    (``rejected`` likewise). ``document_text``: the cited document's text from the index (None
    when it is gone: refused); the passage must match it (:func:`indexed_passage`).
    ``author``: who judged ("user:alice", "key:bot"). ``score`` is the score of the answer
    judged.
    """
    if verdict not in VERDICTS:
        raise FeedbackError(f"unknown verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    extra: dict[str, Any] = {"origin": "feedback", "verdict": verdict, "author": _author(author)}
    if score is not None:
        extra["score"] = round(float(score), 4)
    if verdict in ("correct", "corrected"):
        if answer is None or offset is None:
            raise FeedbackError(f"a '{verdict}' verdict needs the answer text and its offset")
        passage = indexed_passage(ref, document_text)
        if offset < 0 or passage[offset : offset + len(answer)] != answer:
            raise FeedbackError(f"{answer[:60]!r} does not occur at offset {offset} of the passage")
        if rejected is not None:
            extra["rejected_answer"] = rejected
        text = cast(str, document_text)  # indexed_passage refused None
        span = (ref.start + offset, ref.start + offset + len(answer))
        begin, end = context_window(text, span)
        meta = ref.meta(**extra, doc_start=begin)
        return LabeledPair(question, text[begin:end], answer, span[0] - begin, ref.title, meta)
    rejected = answer if verdict == "wrong" else rejected
    if verdict == "wrong" and rejected is None:
        raise FeedbackError("a 'wrong' verdict needs the answer judged wrong")
    if rejected is not None:
        extra["rejected_answer"] = rejected
    passage = indexed_passage(ref, document_text)
    text = cast(str, document_text)
    begin, end = context_window(text, within=(ref.start, ref.start + len(passage)))
    meta = ref.meta(**extra, doc_start=begin)
    return LabeledPair(question, text[begin:end], None, None, ref.title, meta)


def annotation_pair(
    question: str,
    record: SourceRecord,
    document_text: str,
    answer_text: str | None,
    answer_start: int | None,
    passage: tuple[int, int] | None = None,
    *,
    author: str,
) -> LabeledPair:
    """A question a user wrote about a document, with its answer (None: the stretch holds no
    answer). ``document_text`` is the document's text from the index; the stretch is all of
    it, or its ``passage`` (start, end) when given, and ``answer_start`` is an offset into that
    stretch (None: the answer's one occurrence in it). The stored context is the stretch when
    it has at most :data:`MAX_CONTEXT_CHARS` characters, else a window of it around the answer
    (or, without one, its start). ``author``: who wrote it."""
    lo, hi = 0, len(document_text)
    if passage is not None:
        lo, hi = passage
        if not 0 <= lo < hi <= len(document_text):
            raise FeedbackError(
                f"passage {lo}-{hi} is outside the document ({len(document_text):,} characters)"
            )
    # Resolved in the stretch (the one occurrence when no start is given), so the pair's id is
    # final and "occurs twice" means twice in what the user chose, not in a window of it.
    answer_text, answer_start = validate_answer(document_text[lo:hi], answer_text, answer_start)
    span = None
    if answer_text is not None and answer_start is not None:
        span = (lo + answer_start, lo + answer_start + len(answer_text))
    begin, end = context_window(document_text, span, within=(lo, hi))
    meta = {
        "origin": "annotation",
        "doc_id": record.doc_id,
        "source": record.source,
        "doc_start": begin,
        "author": _author(author),
    }
    start = span[0] - begin if span is not None else None
    return LabeledPair(question, document_text[begin:end], answer_text, start, record.title, meta)
