"""Labeled pairs from users (answer feedback and annotation), kept as a SQuAD v2.0 file.

The file at ``Settings.feedback_file`` *is* SQuAD v2.0 JSON, so ``docqa train`` reads it like any
other training file. Each question entry carries one extra key, ``"docqa"``, with what the
trainer does not need but the web page does (where the pair came from, the document it cites,
when it was made); :func:`evaluation.squad.parse_squad` ignores unknown keys.

Every change is read-modify-write under a lock file, written to a temporary file and renamed
over the old one (:func:`evaluation.squad.write_json_atomic`), so two browser tabs or a
training run reading the file never see half a file.

Rules that keep the file fit for training:

* a pair is a duplicate when the same author already has (question, context hash, answer
  text, answer start); :meth:`FeedbackStore.add` then returns False and changes nothing. Two
  authors who agree keep a pair each (their ids differ), so that either can change their mind
  without taking the other's judgment with them;
* the latest judgment wins, per author: a new pair replaces the same author's older pairs of
  the same question that it contradicts, i.e. the same context with another answer, another
  answer in the same document, or, within the same document, a "no answer in this passage"
  whose passage holds the new answer (and the reverse). Without this, a user who first clicks
  "Wrong" and then marks the right span in that passage would leave the trainer two
  contradicting labels. One user's verdict never replaces another's pair (``meta["author"]``,
  e.g. "user:alice" or "key:bot"; pairs stored before authors were recorded have none, and are
  one author together);
* bounded: a context is at most :data:`MAX_CONTEXT_CHARS` characters (the passage or a window
  of the document around the answer, never a whole long document), and one author keeps at
  most :data:`MAX_PAIRS_PER_AUTHOR` pairs, so no caller can grow the file without bound.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from evaluation.squad import Answer, SquadExample, to_squad_json, write_json_atomic
from pipelines.learning_loop.erasure import FEEDBACK_EXTRA_KEY, feedback_lock

logger = logging.getLogger(__name__)

# Key of the per-question extras in the SQuAD file (one definition: pipelines.learning_loop.erasure
# edits the file when a document is deleted).
EXTRA_KEY = FEEDBACK_EXTRA_KEY
# The longest context a pair may have: about two passages (Settings.split_max_chars is 4,000 by
# default), enough for the trainer's windows around an answer, never whole long documents.
MAX_CONTEXT_CHARS = 4000
# The most pairs one author may keep: a day of steady labeling is a few hundred, so this stops
# only a runaway script, and bounds the file (with the context bound) at about 20 MB an author.
MAX_PAIRS_PER_AUTHOR = 5000
# Meta keys the store itself reads (the rest is kept as given):
#   "doc_id"     the source document the context was cut from;
#   "doc_start"  where the context starts in that document's converted text (0: the whole text);
#   "region"     [start, end] of the document a judgment covers: the answer span, or the whole
#                context for "no answer" (derived from doc_start when not given);
#   "author"     who made the pair ("user:alice", "key:bot"); absent in older files.


class FeedbackError(ValueError):
    """A pair cannot be stored (answer not in the context, unreadable file); says why."""


def context_hash(context: str) -> str:
    return hashlib.sha1(context.encode("utf-8")).hexdigest()


def _normalize_question(question: str) -> str:
    return " ".join(question.split())


def find_occurrences(context: str, text: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of ``text`` in ``context``."""
    if not text:
        return []
    starts = []
    at = context.find(text)
    while at != -1:
        starts.append(at)
        at = context.find(text, at + 1)
    return starts


def locate_answer(context: str, text: str) -> list[tuple[int, int]]:
    """Where a typed or pasted answer occurs in ``context``, as (start, end) spans.

    Exact occurrences first; when there are none, occurrences that differ only in whitespace
    (a span copied from a page that wrapped the lines, or typed with single spaces), so that
    ``context[start:end]`` is the answer as the context spells it.
    """
    text = text.strip()
    if not text:
        return []
    exact = find_occurrences(context, text)
    if exact:
        return [(start, start + len(text)) for start in exact]
    pattern = re.compile(r"\s+".join(re.escape(word) for word in text.split()))
    return [(m.start(), m.end()) for m in pattern.finditer(context)]


@dataclass(frozen=True)
class LabeledPair:
    """One labeled pair: a question, the context it is about and its answer (``answer_text``
    None: "no answer in this context"). The same record before :meth:`FeedbackStore.add` stores
    it (``id`` computed from the pair, ``created`` empty) and as the store lists it."""

    question: str
    context: str
    answer_text: str | None
    answer_start: int | None
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # The store's id: given for pairs read from a file (ids of imported SQuAD files are kept),
    # else the id FeedbackStore.add gives this pair.
    id: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            pair_id = make_id(
                self.question, self.context, self.answer_text, self.answer_start, self.author
            )
            object.__setattr__(self, "id", pair_id)

    @property
    def is_impossible(self) -> bool:
        return self.answer_text is None

    @property
    def author(self) -> str | None:
        """Who made the pair ("user:alice", "key:bot"), None for pairs from before authors."""
        author = self.meta.get("author")
        return author if isinstance(author, str) else None

    @property
    def verdict(self) -> str | None:
        """The user's verdict this pair came from ("correct", "wrong", ...), if any."""
        verdict = self.meta.get("verdict")
        return verdict if isinstance(verdict, str) else None

    @property
    def key(self) -> tuple[str, str, str | None, int | None, str | None]:
        """What makes two pairs the same: question, context hash, answer text and start, and
        author."""
        return (
            _normalize_question(self.question).lower(),
            context_hash(self.context),
            self.answer_text,
            self.answer_start,
            self.author,
        )

    def to_example(self) -> SquadExample:
        answers: tuple[Answer, ...] = ()
        if self.answer_text is not None and self.answer_start is not None:
            answers = (Answer(self.answer_text, self.answer_start),)
        return SquadExample(self.id, self.title, self.context, self.question, answers)

    def save(self, store: FeedbackStore) -> bool:
        """Add it to ``store``; False when the same pair is already there (FeedbackError when
        the answer is not where it is said to be)."""
        return store.add(
            self.question, self.context, self.answer_text, self.answer_start, self.title, self.meta
        )

    def region(self) -> tuple[int, int] | None:
        """The span of the source document this judgment is about, if known."""
        raw = self.meta.get("region")
        if isinstance(raw, list | tuple) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
            return int(raw[0]), int(raw[1])
        return None


def make_id(
    question: str,
    context: str,
    answer_text: str | None,
    answer_start: int | None,
    author: str | None = None,
) -> str:
    raw = f"{_normalize_question(question).lower()}\x00{context_hash(context)}\x00"
    raw += f"{answer_text}\x00{answer_start}"
    if author is not None:  # pairs from before authors keep the ids they had
        raw += f"\x00{author}"
    return "fb-" + hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


def validate_answer(
    context: str, answer_text: str | None, answer_start: int | None
) -> tuple[str | None, int | None]:
    """The checked (text, start): the text must occur at ``start`` (or exactly once if None)."""
    if answer_text is None:
        if answer_start is not None:
            raise FeedbackError("an answer start was given without an answer text")
        return None, None
    if not answer_text.strip():
        raise FeedbackError("the answer is empty: type the exact answer text, or mark no answer")
    if answer_start is None:
        starts = find_occurrences(context, answer_text)
        if not starts:
            raise FeedbackError(f"{_clip(answer_text)!r} does not occur in the text")
        if len(starts) > 1:
            raise FeedbackError(
                f"{_clip(answer_text)!r} occurs {len(starts)} times in the text: choose one"
            )
        return answer_text, starts[0]
    if not 0 <= answer_start <= len(context) - len(answer_text):
        raise FeedbackError(f"answer start {answer_start} is outside the text")
    if context[answer_start : answer_start + len(answer_text)] != answer_text:
        raise FeedbackError(f"{_clip(answer_text)!r} does not occur at offset {answer_start}")
    return answer_text, answer_start


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class FeedbackStore:
    """The labeled pairs in one SQuAD v2.0 file (created on the first :meth:`add`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock: FileLock = feedback_lock(self.path)

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> list[LabeledPair]:
        """All pairs, oldest first."""
        return self._read()

    def get(self, record_id: str) -> LabeledPair | None:
        return next((r for r in self._read() if r.id == record_id), None)

    def __len__(self) -> int:
        return len(self._read())

    def _read(self) -> list[LabeledPair]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise FeedbackError(f"{self.path}: cannot read ({exc.strerror})") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            # Never overwrite a file we cannot parse: it may hold hours of labeling.
            raise FeedbackError(
                f"{self.path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise FeedbackError(f"{self.path}: not SQuAD JSON (expected an object with 'data')")
        records: list[LabeledPair] = []
        for article in data["data"]:
            title = str(article.get("title", "")) if isinstance(article, dict) else ""
            for para in (article.get("paragraphs") or []) if isinstance(article, dict) else []:
                context = para.get("context") if isinstance(para, dict) else None
                if not isinstance(context, str):
                    continue
                for qa in para.get("qas") or []:
                    record = _record_from_qa(qa, title, context)
                    if record is not None:
                        records.append(record)
        records.sort(key=lambda r: r.created)
        return records

    # -- writing ----------------------------------------------------------------------------

    @contextmanager
    def _editing(self) -> Iterator[list[LabeledPair]]:
        """The records under the lock; what the caller leaves in the list is written back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            records = self._read()
            yield records
            self._write(records)

    def _write(self, records: list[LabeledPair]) -> None:
        data = to_squad_json([r.to_example() for r in records])
        extras = {r.id: _extras(r) for r in records}
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    qa[EXTRA_KEY] = extras[qa["id"]]
        write_json_atomic(data, self.path)

    def add(
        self,
        question: str,
        context: str,
        answer_text: str | None,
        answer_start: int | None,
        title: str = "",
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """Store one pair; False when the same pair is already there.

        ``answer_text`` None stores "no answer in this context". With ``answer_start`` None the
        text must occur exactly once in the context. ``meta["author"]`` names who made it (see
        the module docstring). Raises :class:`FeedbackError` when the question is empty, the
        answer does not occur where it is said to, the context is longer than
        :data:`MAX_CONTEXT_CHARS` or the author already keeps :data:`MAX_PAIRS_PER_AUTHOR`.
        """
        question = _normalize_question(question)
        if not question:
            raise FeedbackError("the question is empty")
        if not context.strip():
            raise FeedbackError("the context is empty")
        if len(context) > MAX_CONTEXT_CHARS:
            raise FeedbackError(
                f"the context is {len(context):,} characters, more than the "
                f"{MAX_CONTEXT_CHARS:,} a labeled pair may keep: choose a passage of the document"
            )
        answer_text, answer_start = validate_answer(context, answer_text, answer_start)
        record = LabeledPair(  # its id computed from the pair and its author
            question=question,
            context=context,
            answer_text=answer_text,
            answer_start=answer_start,
            title=title,
            meta=_with_region(dict(meta or {}), context, answer_text, answer_start),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._editing() as records:
            if any(r.key == record.key for r in records):
                return False
            kept = [r for r in records if not _contradicts(record, r)]
            owned = sum(r.author == record.author for r in kept)
            if owned >= MAX_PAIRS_PER_AUTHOR:
                who = record.author or "this author"
                raise FeedbackError(
                    f"{who} already keeps {owned:,} labeled pairs, the most one author may: "
                    "delete or edit older pairs first (an admin can, on the Feedback page)"
                )
            dropped = len(records) - len(kept)
            if dropped:
                logger.info("feedback %s replaces %d older pair(s)", record.id, dropped)
            records[:] = [*kept, record]
        return True

    def update(
        self,
        record_id: str,
        *,
        question: str | None = None,
        answer_text: str | None = None,
        answer_start: int | None = None,
        no_answer: bool = False,
        title: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> LabeledPair:
        """Change a pair's question or answer (``no_answer=True`` makes it unanswerable).

        The answer is changed when ``answer_text`` or ``no_answer`` is given. Raises KeyError for
        an unknown id and :class:`FeedbackError` for an answer not in the context, or when the
        change makes it a duplicate of another pair.
        """
        with self._editing() as records:
            index = next((i for i, r in enumerate(records) if r.id == record_id), None)
            if index is None:
                raise KeyError(f"no labeled pair with id {record_id!r}")
            old = records[index]
            new_question = _normalize_question(question) if question is not None else old.question
            if not new_question:
                raise FeedbackError("the question is empty")
            text, start = old.answer_text, old.answer_start
            if no_answer:
                text, start = None, None
            elif answer_text is not None:
                text, start = validate_answer(old.context, answer_text, answer_start)
            new_meta = {**old.meta, **(meta or {})}
            # Who made a pair is not editable: it decides whose later judgments replace it.
            new_meta.pop("author", None)
            if old.author is not None:
                new_meta["author"] = old.author
            if "doc_start" in new_meta:
                new_meta.pop("region", None)
            new_meta = _with_region(new_meta, old.context, text, start)
            new = replace(
                old,
                id=make_id(new_question, old.context, text, start, old.author),
                question=new_question,
                answer_text=text,
                answer_start=start,
                title=old.title if title is None else title,
                meta=new_meta,
            )
            if any(r.key == new.key for i, r in enumerate(records) if i != index):
                raise FeedbackError(
                    "another labeled pair of the same author already has this question and answer"
                )
            records[index] = new
            return new

    def forget_document(self, doc_id: str, source: str | None = None) -> int:
        """Remove the pairs cut from the document ``doc_id`` (or displayed as ``source``); how
        many (:func:`pipelines.learning_loop.erasure.forget_pairs`, which deleting a document
        calls)."""
        from pipelines.learning_loop.erasure import ErasureError, forget_pairs

        try:
            return forget_pairs(self.path, doc_id, source)
        except ErasureError as exc:
            raise FeedbackError(f"{self.path}: {exc}") from exc

    def delete(self, record_id: str) -> bool:
        """Remove a pair; False when there was none with this id."""
        with self._editing() as records:
            kept = [r for r in records if r.id != record_id]
            found = len(kept) != len(records)
            records[:] = kept
        return found

    # -- export -----------------------------------------------------------------------------

    def to_squad(self, records: list[LabeledPair] | None = None) -> dict[str, Any]:
        """Plain SQuAD v2.0 JSON of the pairs (all, or the given ones), without extras."""
        chosen = self._read() if records is None else records
        return to_squad_json([r.to_example() for r in chosen])

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write plain SQuAD v2.0 JSON of all pairs to ``path`` atomically; the number written."""
        records = self._read()
        write_json_atomic(self.to_squad(records), path)
        return len(records)


def _with_region(
    meta: dict[str, Any], context: str, text: str | None, start: int | None
) -> dict[str, Any]:
    """``meta`` with "region" filled in from "doc_start" when it is missing."""
    offset = meta.get("doc_start")
    if "region" in meta or not isinstance(offset, int):
        return meta
    if text is None or start is None:
        meta["region"] = [offset, offset + len(context)]
    else:
        meta["region"] = [offset + start, offset + start + len(text)]
    return meta


def _extras(record: LabeledPair) -> dict[str, Any]:
    return {"created": record.created, **record.meta}


def _record_from_qa(qa: Any, title: str, context: str) -> LabeledPair | None:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
        return None
    extras = qa.get(EXTRA_KEY) if isinstance(qa.get(EXTRA_KEY), dict) else {}
    answers = qa.get("answers") or []
    text: str | None = None
    start: int | None = None
    if not qa.get("is_impossible") and answers and isinstance(answers[0], dict):
        text = answers[0].get("text")
        start = answers[0].get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            return None
    meta = {k: v for k, v in extras.items() if k != "created"}
    qid = qa.get("id") if isinstance(qa.get("id"), str) else None
    return LabeledPair(
        id=qid or make_id(qa["question"], context, text, start),
        question=qa["question"],
        context=context,
        answer_text=text,
        answer_start=start,
        title=title,
        meta=meta,
        created=str(extras.get("created", "")),
    )


def _contradicts(new: LabeledPair, old: LabeledPair) -> bool:
    """Whether ``new`` overrules ``old`` (see the module docstring)."""
    if new.author != old.author:
        return False  # one user's judgment never replaces another's
    if _normalize_question(new.question).lower() != _normalize_question(old.question).lower():
        return False
    if context_hash(new.context) == context_hash(old.context):
        return new.key != old.key
    doc = new.meta.get("doc_id")
    if not doc or doc != old.meta.get("doc_id"):
        return False
    if not new.is_impossible and not old.is_impossible:
        # Two answers to one question in one document: contexts are windows around their
        # answers now, so they differ, but the latest answer is what the author means.
        return True
    if new.is_impossible and old.is_impossible:
        return False
    new_region, old_region = new.region(), old.region()
    if new_region is None or old_region is None:
        return False
    # One is an answer span, the other a passage judged to hold no answer: they contradict
    # when the span lies inside that passage.
    span, passage = (old_region, new_region) if new.is_impossible else (new_region, old_region)
    return passage[0] <= span[0] and span[1] <= passage[1]
