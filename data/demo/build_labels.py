"""Build the demo collection's labeled questions (SQuAD v2.0) from the hand-written label sources.

Reads ``data/demo/labels/source-*.jsonl``; each line is one question about one document::

    {"document": "hr/leave-policy.pdf", "question": "...", "answer": "25 vacation days" | null,
     "anchor": "optional verbatim string, unique in the document, that contains the answer"}

Every referenced document is converted with :func:`indexer.convert.convert_file`, exactly as the
indexer sees it, and each answer is located in that text: the answer must occur exactly once, or
the anchor must occur exactly once and contain the answer once. Anything else is an error naming
the line, the document and the problem (exit status 1), because a label pointing at the wrong
occurrence would silently teach and grade the reader wrongly.

Writes ``data/demo/labels/train.json`` and ``dev.json``: one SQuAD ``data`` entry per document
(title = path relative to ``data/demo/documents``, one paragraph whose context is the full
converted text). The split is by document, so no context is shared between train and dev: within
each folder about a quarter of the documents, chosen by a hash of their path, go to dev, and at
least one document of every folder stays in train.

    .venv/bin/python data/demo/build_labels.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DOCUMENTS = HERE / "documents"
LABELS = HERE / "labels"
DEV_SHARE = 0.25

sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere: indexer is a repo package

from indexer.convert import ConversionError, convert_file  # noqa: E402


class LabelError(Exception):
    """A label that cannot be placed in its document; the message names line and document."""


@dataclass
class Label:
    """One located question: ``answer_start`` is None for unanswerable questions."""

    where: str  # "source-a.jsonl:12", for error messages
    document: str
    question: str
    answer: str | None
    answer_start: int | None

    @property
    def qa_id(self) -> str:
        # Stable across rebuilds and reorderings of the source files.
        return hashlib.sha1(f"{self.document}\n{self.question}".encode()).hexdigest()[:20]


def _occurrences(text: str, needle: str) -> list[int]:
    found, start = [], text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + 1)
    return found


def locate(text: str, answer: str, anchor: str | None) -> int:
    """Offset of ``answer`` in ``text``, made unambiguous by ``anchor``; LabelError otherwise."""
    if anchor is None:
        hits = _occurrences(text, answer)
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise LabelError(f"answer {answer!r} not found in the converted text")
        raise LabelError(f"answer {answer!r} occurs {len(hits)} times; add a unique anchor")
    anchors = _occurrences(text, anchor)
    if len(anchors) != 1:
        state = "not found" if not anchors else f"found {len(anchors)} times"
        raise LabelError(f"anchor {anchor!r} {state} in the converted text (must be unique)")
    inside = _occurrences(anchor, answer)
    if len(inside) != 1:
        state = "does not contain" if not inside else "contains more than once"
        raise LabelError(f"anchor {anchor!r} {state} the answer {answer!r}")
    return anchors[0] + inside[0]


def _field(record: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise LabelError(f"missing {name!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise LabelError(f"{name!r} must be a non-empty string")
    return value


class Converter:
    """Converts each document once and keeps its text."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def text(self, document: str) -> str:
        if document not in self.texts:
            path = DOCUMENTS / document
            if not path.is_file():
                raise LabelError(f"document {document!r} does not exist under {DOCUMENTS}")
            try:
                self.texts[document] = convert_file(path).text
            except ConversionError as exc:
                raise LabelError(f"document cannot be converted: {exc}") from exc
        return self.texts[document]


def read_labels(sources: list[Path], converter: Converter) -> tuple[list[Label], list[str]]:
    """All labels of all sources, located; plus the error messages of the bad lines."""
    labels: list[Label] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{source.name}:{number}"
            document = "?"
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise LabelError("a line must be a JSON object")
                unknown = set(record) - {"document", "question", "answer", "anchor"}
                if unknown:
                    raise LabelError(f"unknown keys {sorted(unknown)}")
                document = _field(record, "document", required=True) or ""
                question = (_field(record, "question", required=True) or "").strip()
                answer = _field(record, "answer", required=False)
                anchor = _field(record, "anchor", required=False)
                if answer is not None and answer != answer.strip():
                    raise LabelError(f"answer {answer!r} has leading or trailing whitespace")
                if answer is None and anchor is not None:
                    raise LabelError("an unanswerable question cannot have an anchor")
                key = (document, question.casefold())
                if key in seen:
                    raise LabelError(f"duplicate of the question at {seen[key]}")
                seen[key] = where
                text = converter.text(document)
                start = None if answer is None else locate(text, answer, anchor)
                labels.append(Label(where, document, question, answer, start))
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: not valid JSON ({exc})")
            except LabelError as exc:
                errors.append(f"{where} [{document}]: {exc}")
    return labels, errors


def split_documents(documents: list[str]) -> tuple[list[str], list[str]]:
    """Deterministic split by document: ~25% of each folder to dev, never a folder's last one."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for document in documents:
        by_folder[document.split("/", 1)[0] if "/" in document else ""].append(document)
    train: list[str] = []
    dev: list[str] = []
    for folder in sorted(by_folder):
        ordered = sorted(by_folder[folder], key=lambda d: hashlib.sha1(d.encode()).hexdigest())
        n_dev = min(int(len(ordered) * DEV_SHARE + 0.5), len(ordered) - 1)
        dev.extend(ordered[:n_dev])
        train.extend(ordered[n_dev:])
    return sorted(train), sorted(dev)


def squad(labels: list[Label], documents: list[str], texts: dict[str, str]) -> dict[str, Any]:
    """The SQuAD v2.0 structure for the given documents."""
    by_document: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_document[label.document].append(label)
    data = []
    for document in documents:
        qas = []
        for label in by_document[document]:
            answers = (
                []
                if label.answer is None
                else [{"text": label.answer, "answer_start": label.answer_start}]
            )
            qas.append(
                {
                    "id": label.qa_id,
                    "question": label.question,
                    "answers": answers,
                    "is_impossible": label.answer is None,
                }
            )
        data.append({"title": document, "paragraphs": [{"context": texts[document], "qas": qas}]})
    return {"version": "v2.0", "data": data}


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stats(labels: list[Label]) -> str:
    impossible = sum(label.answer is None for label in labels)
    share = 100.0 * impossible / len(labels) if labels else 0.0
    return f"{len(labels)} pairs, {impossible} unanswerable ({share:.1f}%)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS, help="folder of source-*.jsonl")
    parser.add_argument("--check", action="store_true", help="validate only, write nothing")
    args = parser.parse_args(argv)

    sources = sorted(args.labels.glob("source-*.jsonl"))
    if not sources:
        print(f"error: no source-*.jsonl in {args.labels}", file=sys.stderr)
        return 1
    converter = Converter()
    labels, errors = read_labels(sources, converter)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} label error(s); nothing written", file=sys.stderr)
        return 1

    documents = sorted({label.document for label in labels})
    train_docs, dev_docs = split_documents(documents)
    splits = {"train": train_docs, "dev": dev_docs}
    problems = []
    for name, docs in splits.items():
        chosen = [label for label in labels if label.document in set(docs)]
        if not any(label.answer is None for label in chosen):
            problems.append(f"{name} split has no unanswerable question")
        if not any(label.answer is not None for label in chosen):
            problems.append(f"{name} split has no answerable question")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1

    print(f"sources: {', '.join(s.name for s in sources)}")
    print(f"all: {len(documents)} documents, {_stats(labels)}")
    for name, docs in splits.items():
        chosen = [label for label in labels if label.document in set(docs)]
        folders = sorted({d.split("/", 1)[0] for d in docs})
        print(f"{name}: {len(docs)} documents ({', '.join(folders)}), {_stats(chosen)}")
        if not args.check:
            write_json_atomic(args.labels / f"{name}.json", squad(chosen, docs, converter.texts))
    if not args.check:
        print(f"wrote {args.labels / 'train.json'} and {args.labels / 'dev.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
