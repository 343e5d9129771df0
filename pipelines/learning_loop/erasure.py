"""Erase a document from what the learning loop kept of it: labeled pairs and logged questions.

Deleting a document from the index (``indexer.uploads.remove_document``) calls
:func:`forget_document`, which removes

* the labeled pairs (``Settings.feedback_file``) whose context was cut from it: their extras
  name its ``doc_id`` or its displayed ``source``;
* the logged questions (``Settings.question_log_file``) whose answers cite it (they quote its
  passages), with :meth:`pipelines.learning_loop.question_log.QuestionLog.forget_document`.

It lives here, below both the indexer and the trainer, because the indexer may not import the
trainer: the feedback file is edited as the SQuAD JSON it is, under the same lock file and with
the same atomic write as :class:`reader_training.feedback.FeedbackStore` (which takes
:data:`FEEDBACK_EXTRA_KEY` and :func:`feedback_lock` from here, so the two never disagree).

What it cannot erase: readers already trained on those pairs keep what they learned (their
weights are not retrained), and copies made outside DocQA (exports, backups).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

# Key of the per-question extras in the feedback file (reader_training.feedback reads it).
FEEDBACK_EXTRA_KEY = "docqa"
_LOCK_TIMEOUT_S = 30


class ErasureError(RuntimeError):
    """The feedback file cannot be read, so its pairs were not erased; says why."""


def feedback_lock(path: str | Path) -> FileLock:
    """The lock every writer of the feedback file at ``path`` holds."""
    path = Path(path)
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=_LOCK_TIMEOUT_S)


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_document` erased, and what it could not."""

    pairs: int  # labeled pairs removed from the feedback file
    questions: int  # logged questions removed
    problems: tuple[str, ...] = ()  # what was not erased, and why

    def describe(self) -> str:
        said = f"{self.pairs} labeled pair(s) and {self.questions} logged question(s) erased"
        return "; ".join((said, *self.problems))


def _cites(extras: Any, doc_id: str, source: str | None) -> bool:
    if not isinstance(extras, dict):
        return False
    if extras.get("doc_id") == doc_id:
        return True
    return source is not None and extras.get("source") == source


def forget_pairs(feedback_file: str | Path, doc_id: str, source: str | None = None) -> int:
    """Remove the labeled pairs cut from the document ``doc_id`` (or displayed as ``source``)
    from the feedback file; how many. Paragraphs and articles left without questions go too.
    Raises :class:`ErasureError` when the file cannot be read (it is never overwritten then)."""
    path = Path(feedback_file)
    if not path.exists():
        return 0
    with feedback_lock(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise ErasureError(f"the feedback file cannot be read ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ErasureError("the feedback file is not SQuAD JSON")
        removed = 0
        articles = []
        for article in data["data"]:
            paragraphs = []
            for para in (article.get("paragraphs") or []) if isinstance(article, dict) else []:
                qas = (para.get("qas") or []) if isinstance(para, dict) else []
                kept = [
                    qa
                    for qa in qas
                    if not (
                        isinstance(qa, dict) and _cites(qa.get(FEEDBACK_EXTRA_KEY), doc_id, source)
                    )
                ]
                removed += len(qas) - len(kept)
                if kept:
                    paragraphs.append({**para, "qas": kept})
            if paragraphs:
                articles.append({**article, "paragraphs": paragraphs})
        if removed:
            data["data"] = articles
            write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))
    return removed


def forget_document(settings: Any, doc_id: str, source: str | None = None) -> Forgotten:
    """Erase the document ``doc_id`` (displayed as ``source``) from the feedback file and the
    question log of ``settings.home``.

    Never raises for what it cannot erase: a feedback file or question log that cannot be read
    is named in :attr:`Forgotten.problems` (and logged), so that the caller can say so.
    Trained readers are not changed: what they learned from the pairs stays in their weights.
    """
    import sqlite3

    from pipelines.learning_loop.question_log import QuestionLog

    problems: list[str] = []
    pairs = questions = 0
    try:
        pairs = forget_pairs(settings.feedback_file, doc_id, source)
    except ErasureError as exc:
        problems.append(f"labeled pairs not erased: {exc}")
    except OSError as exc:  # a full disk, or the file locked by a stuck writer
        problems.append(f"labeled pairs not erased: the feedback file cannot be written ({exc})")
    # The log is cleaned even when logging is now off: rows from before may still be there.
    log = QuestionLog(settings.question_log_file)
    try:
        questions = log.forget_document(doc_id)
    except (sqlite3.Error, OSError) as exc:
        problems.append(f"logged questions not erased: the question log cannot be changed ({exc})")
    forgotten = Forgotten(pairs, questions, tuple(problems))
    level = logging.WARNING if problems else logging.INFO
    logger.log(level, "forgot document %s: %s", doc_id, forgotten.describe())
    return forgotten
