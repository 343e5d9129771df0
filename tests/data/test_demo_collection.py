"""Checks of the bundled demo collection and its labeled questions (SQuAD v2.0).

The labels are only useful if every answer offset points at its answer in exactly the text the
indexer produces, so the contexts are compared with a fresh :func:`convert_file` of each document,
and the built files are compared with the hand-written ``source-*.jsonl`` they are built from.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from indexer.convert import SUPPORTED_EXTENSIONS, ConvertedDocument, convert_file

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
DOCUMENTS = DEMO / "documents"
LABELS = DEMO / "labels"
SPLITS = ("train", "dev")


@cache
def converted(relative: str) -> ConvertedDocument:
    return convert_file(DOCUMENTS / relative)


def converted_text(relative: str) -> str:
    return converted(relative).text


@cache
def load_split(name: str) -> dict[str, Any]:
    return json.loads((LABELS / f"{name}.json").read_text(encoding="utf-8"))


def qas(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(title, context, qa) for every question of a split."""
    return [
        (entry["title"], paragraph["context"], qa)
        for entry in load_split(name)["data"]
        for paragraph in entry["paragraphs"]
        for qa in paragraph["qas"]
    ]


def collection_files() -> list[Path]:
    return sorted(
        p for p in DOCUMENTS.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
    )


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_build_labels", DEMO / "build_labels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("split", SPLITS)
def test_split_is_squad_v2_with_exact_answer_offsets(split: str) -> None:
    data = load_split(split)
    assert data["version"] == "v2.0"
    rows = qas(split)
    assert rows, f"{split}.json has no questions"
    for title, context, qa in rows:
        assert qa["question"].strip(), qa["id"]
        if qa["is_impossible"]:
            assert qa["answers"] == [], (title, qa["question"])
            continue
        assert len(qa["answers"]) == 1, (title, qa["question"])
        answer = qa["answers"][0]
        start, text = answer["answer_start"], answer["text"]
        assert context[start : start + len(text)] == text, (title, qa["question"], text)
        assert "\n" not in text, (title, qa["question"])


@pytest.mark.parametrize("split", SPLITS)
def test_contexts_are_the_converted_documents(split: str) -> None:
    for entry in load_split(split)["data"]:
        assert (DOCUMENTS / entry["title"]).is_file(), entry["title"]
        assert len(entry["paragraphs"]) == 1, entry["title"]
        context = entry["paragraphs"][0]["context"]
        assert context == converted_text(entry["title"]), f"{entry['title']}: context is stale"


def test_splits_are_disjoint_by_document_and_cover_every_folder() -> None:
    titles = {name: {entry["title"] for entry in load_split(name)["data"]} for name in SPLITS}
    assert not titles["train"] & titles["dev"]
    folders = {title.split("/", 1)[0] for title in titles["train"] | titles["dev"]}
    assert folders <= {title.split("/", 1)[0] for title in titles["train"]}
    for name in SPLITS:
        kinds = {qa["is_impossible"] for _, _, qa in qas(name)}
        assert kinds == {True, False}, f"{name} needs answerable and unanswerable questions"
    ids = [qa["id"] for name in SPLITS for _, _, qa in qas(name)]
    assert len(ids) == len(set(ids)), "question ids must be unique across splits"


def test_enough_labeled_pairs_and_unanswerable_share() -> None:
    rows = [qa for name in SPLITS for _, _, qa in qas(name)]
    assert len(rows) >= 400
    impossible = sum(qa["is_impossible"] for qa in rows)
    assert impossible / len(rows) >= 0.15


def test_built_labels_match_their_sources() -> None:
    builder = load_builder()
    sources = sorted(LABELS.glob("source-*.jsonl"))
    labels, errors = builder.read_labels(sources, builder.Converter())
    assert errors == []
    expected = {label.qa_id: label for label in labels}
    built = {qa["id"]: (title, qa) for name in SPLITS for title, _, qa in qas(name)}
    assert set(built) == set(expected), "train/dev.json are stale: run data/demo/build_labels.py"
    for qa_id, (title, qa) in built.items():
        label = expected[qa_id]
        assert title == label.document
        assert qa["question"] == label.question
        if label.answer is None:
            assert qa["is_impossible"]
        else:
            assert qa["answers"] == [{"text": label.answer, "answer_start": label.answer_start}]


def test_collection_size_and_formats() -> None:
    files = collection_files()
    assert len(files) >= 40
    documents = [converted(str(path.relative_to(DOCUMENTS))) for path in files]
    formats = Counter(document.file_type for document in documents)
    assert set(formats) == {"pdf", "docx", "html", "md", "txt"}
    words = sum(len(document.text.split()) for document in documents)
    assert words >= 40_000


def test_rendered_sources_have_their_documents() -> None:
    for source in sorted((DEMO / "sources").rglob("*.md")):
        first_line = source.read_text(encoding="utf-8").splitlines()[0]
        if first_line.startswith("<!-- target:"):
            target = first_line.removeprefix("<!-- target:").removesuffix("-->").strip()
            assert (DOCUMENTS / target).is_file(), f"{source.name}: {target} not rendered"
