"""Load, validate, repair and write SQuAD v1.1 / v2.0 JSON files.

Labeled data from annotation tools is often subtly wrong. Validation happens before any training:
a file that is not SQuAD at all raises :class:`SquadFormatError` naming the file; a single bad
question is skipped with a reason naming the file and the question id; an ``answer_start`` that
does not point at its answer text is repaired when the text occurs exactly once nearby; exact
duplicates are dropped. Everything is counted in a :class:`ValidationReport`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

# How far (in characters, each side) a misplaced answer_start may be from its real position.
REPAIR_WINDOW = 1000


class SquadFormatError(ValueError):
    """The file cannot be read as SQuAD at all; the message names the file and the problem."""


@dataclass(frozen=True)
class Answer:
    text: str
    start: int


@dataclass(frozen=True)
class SquadExample:
    """One question over one context; ``answers`` is empty when it is unanswerable."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[Answer, ...]
    source: str = ""  # the file it came from

    @property
    def is_impossible(self) -> bool:
        return not self.answers


@dataclass
class ValidationReport:
    files: list[str] = field(default_factory=list)
    kept: int = 0
    repaired: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (file, qid, reason)

    def merge(self, other: ValidationReport) -> None:
        self.files += other.files
        self.kept += other.kept
        self.repaired += other.repaired
        self.duplicates += other.duplicates
        self.skipped += other.skipped

    def summary(self) -> str:
        return (
            f"{len(self.files)} file(s): kept {self.kept} questions "
            f"({self.repaired} with a repaired answer_start), skipped {len(self.skipped)}, "
            f"dropped {self.duplicates} duplicates"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "kept": self.kept,
            "repaired": self.repaired,
            "duplicates": self.duplicates,
            "skipped": [{"file": f, "id": q, "reason": r} for f, q, r in self.skipped],
        }


def _repair_start(context: str, text: str, start: Any) -> tuple[int | None, str]:
    """The corrected start of ``text`` in ``context``, and "ok", "repaired" or why not."""
    if not isinstance(start, int) or isinstance(start, bool):
        return None, f"answer_start {start!r} is not an integer"
    if context[start : start + len(text)] == text:
        return start, "ok"
    lo = max(0, start - REPAIR_WINDOW)
    hi = min(len(context), start + len(text) + REPAIR_WINDOW)
    window = context[lo:hi]
    first = window.find(text)
    if first == -1:
        if text in context:
            return None, f"answer text {text[:40]!r} is not near answer_start {start}"
        return None, f"answer text {text[:40]!r} does not occur in the context"
    if window.find(text, first + 1) != -1:
        return None, f"answer text {text[:40]!r} occurs more than once near answer_start {start}"
    return lo + first, "repaired"


def _question_id(raw: dict[str, Any], context: str) -> str:
    if isinstance(raw.get("id"), str | int) and str(raw["id"]):
        return str(raw["id"])
    digest = hashlib.sha1(f"{raw.get('question')}\x00{context}".encode()).hexdigest()
    return f"q-{digest[:16]}"


def parse_squad(
    data: Any, source: str, drop_duplicates: bool = True
) -> tuple[list[SquadExample], ValidationReport]:
    """Examples and a report from parsed SQuAD JSON (v1.1 or v2.0).

    ``drop_duplicates`` drops a question asked twice over the same context (for training);
    evaluation keeps every id, since official predictions must cover them all.
    """
    report = ValidationReport(files=[source])
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFormatError(f"{source}: not SQuAD JSON (expected an object with a 'data' list)")
    examples: list[SquadExample] = []
    seen_ids: set[str] = set()
    seen_pairs: set[tuple[str, str]] = set()
    for a_i, article in enumerate(data["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise SquadFormatError(f"{source}: data[{a_i}] has no 'paragraphs' list")
        title = str(article.get("title", ""))
        for p_i, para in enumerate(article["paragraphs"]):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                report.skipped.append(
                    (source, f"data[{a_i}].paragraphs[{p_i}]", "missing or empty 'context'")
                )
                continue
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                report.skipped.append(
                    (source, f"data[{a_i}].paragraphs[{p_i}]", "'qas' is not a list")
                )
                continue
            for raw in qas:
                if not isinstance(raw, dict):
                    report.skipped.append((source, "?", "a 'qas' entry is not an object"))
                    continue
                qid = _question_id(raw, context)
                example, problem, repaired = _parse_question(raw, qid, title, context, source)
                if example is None:
                    report.skipped.append((source, qid, problem))
                    continue
                pair = (
                    example.question.strip().lower(),
                    hashlib.sha1(context.encode()).hexdigest(),
                )
                if qid in seen_ids or (drop_duplicates and pair in seen_pairs):
                    report.duplicates += 1
                    continue
                seen_ids.add(qid)
                seen_pairs.add(pair)
                report.repaired += repaired
                examples.append(example)
    report.kept = len(examples)
    for f, q, r in report.skipped[:20]:
        logger.warning("%s: question %s skipped: %s", f, q, r)
    if len(report.skipped) > 20:
        logger.warning("... and %d more skipped questions", len(report.skipped) - 20)
    return examples, report


def _parse_question(
    raw: dict[str, Any], qid: str, title: str, context: str, source: str
) -> tuple[SquadExample | None, str, int]:
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        return None, "missing or empty 'question'", 0
    impossible = raw.get("is_impossible", False)
    if not isinstance(impossible, bool):
        return None, f"'is_impossible' is {impossible!r}, not true/false", 0
    raw_answers = raw.get("answers", [])
    if not isinstance(raw_answers, list):
        return None, "'answers' is not a list", 0
    if impossible:
        return SquadExample(qid, title, context, question.strip(), (), source), "", 0
    if not raw_answers:
        return None, "no answers and not marked is_impossible", 0
    answers: list[Answer] = []
    repaired = 0
    problems: list[str] = []
    for ans in raw_answers:
        if not isinstance(ans, dict) or not isinstance(ans.get("text"), str) or not ans["text"]:
            problems.append("an answer has no 'text'")
            continue
        start, status = _repair_start(context, ans["text"], ans.get("answer_start"))
        if start is None:
            problems.append(status)
            continue
        repaired |= status == "repaired"
        if Answer(ans["text"], start) not in answers:
            answers.append(Answer(ans["text"], start))
    if not answers:
        return None, "; ".join(problems), 0
    return SquadExample(qid, title, context, question.strip(), tuple(answers), source), "", repaired


def load_squad(
    path: str | os.PathLike[str], drop_duplicates: bool = True
) -> tuple[list[SquadExample], ValidationReport]:
    """Read and validate one SQuAD file; raises SquadFormatError naming the file if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SquadFormatError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SquadFormatError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise SquadFormatError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError:
        raise SquadFormatError(f"{path}: JSON nested too deeply to be SQuAD") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise SquadFormatError(f"{path}: invalid JSON ({exc})") from None
    try:
        return parse_squad(data, str(path), drop_duplicates)
    except RecursionError:
        raise SquadFormatError(f"{path}: JSON nested too deeply to be SQuAD") from None


def load_many(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[SquadExample], ValidationReport]:
    """Examples of several files, de-duplicated across files too."""
    report = ValidationReport()
    examples: list[SquadExample] = []
    seen: set[str] = set()
    for path in paths:
        exs, rep = load_squad(path)
        report.merge(rep)
        for ex in exs:
            if ex.id in seen:
                report.duplicates += 1
                report.kept -= 1
                continue
            seen.add(ex.id)
            examples.append(ex)
    return examples, report


def to_squad_json(examples: Sequence[SquadExample], version: str = "v2.0") -> dict[str, Any]:
    """SQuAD v2.0 JSON, grouping questions by title and context."""
    articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for ex in examples:
        paras = articles.setdefault(ex.title, {})
        paras.setdefault(ex.context, []).append(
            {
                "id": ex.id,
                "question": ex.question,
                "is_impossible": ex.is_impossible,
                "answers": [{"text": a.text, "answer_start": a.start} for a in ex.answers],
            }
        )
    return {
        "version": version,
        "data": [
            {"title": t, "paragraphs": [{"context": c, "qas": q} for c, q in paras.items()]}
            for t, paras in articles.items()
        ],
    }


def write_json_atomic(data: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))


def write_squad(examples: Sequence[SquadExample], path: str | os.PathLike[str]) -> None:
    write_json_atomic(to_squad_json(examples), path)
