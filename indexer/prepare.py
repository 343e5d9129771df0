"""One file's work, the same for both engines: hash, convert (in a bounded child process) and
split into passages (:func:`prepare_file`), and the format those passages are made in
(:func:`passage_format`). :mod:`indexer.run` (the local engine and the one writer) and
:mod:`indexer.ray_engine` (Ray Data stages) both call it; it imports neither.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from indexer.convert import TEXT_FORMAT_VERSION, ConversionError
from indexer.isolation import ConversionLimits, Progress, convert_bounded
from indexer.manifest import FileState
from indexer.split import doc_id_for, modified_iso, split_document
from pipelines.settings import Settings

if TYPE_CHECKING:
    from haystack import Document

    from pipelines.store import SourceRecord


def passage_format(settings: Settings) -> str:
    """What a file's stored text and passages depend on besides its bytes: the converters'
    version and the split settings. Recorded with each file; a file recorded with another
    format is converted and split again by the next run, changed or not."""
    return (
        f"text{TEXT_FORMAT_VERSION};words{settings.split_words};"
        f"overlap{settings.split_overlap};chars{settings.split_max_chars}"
        + (";sections" if settings.split_sections else "")
    )


class IndexingError(Exception):
    """The run cannot start (nothing to index, a missing folder); the message says why."""


@dataclass
class PreparedFile:
    """One file converted and split: its record, text and passages (embedded by the engine)."""

    record: SourceRecord
    text: str
    passages: list[Document]


# What an engine yields per file, in the plan's order: the prepared file, or why it failed.
Outcome = tuple[FileState, "PreparedFile | str"]


def prepare_file(
    state: FileState,
    settings: Settings,
    limits: ConversionLimits,
    on_progress: Progress | None = None,
) -> PreparedFile:
    """Hash, convert (bounded by ``limits``; ``on_progress`` hears of each page OCR'd) and split
    one file: each engine's work per file.

    Raises :class:`ConversionError`, whose ``reason`` is what the run reports for the file.
    """
    from pipelines.store import SourceRecord

    try:
        # Hash before converting: if the file changes in between, the record holds the older
        # hash and the next run sees the change (the other order would store the new hash with
        # the old text, and the next run would take the stale text as current).
        sha256 = state.sha256
        doc = convert_bounded(state.path, limits, on_progress)
    except OSError as exc:
        raise ConversionError(state.path, f"cannot read file ({exc.strerror or exc})") from exc
    doc_id = doc_id_for(state.path)
    passages = split_document(
        doc, settings.split_words, settings.split_overlap, max_chars=settings.split_max_chars,
        sections=settings.split_sections, source=state.source, doc_id=doc_id,
        modified=modified_iso(state.mtime),
    )  # fmt: skip
    if not passages:  # converted text is never empty; a file without passages is no document
        raise ConversionError(state.path, "no text to index after splitting")
    record = SourceRecord(
        doc_id=doc_id, source=state.source, path=str(state.path), title=doc.title,
        file_type=doc.file_type, sha256=sha256, size=state.size, mtime=state.mtime,
        indexed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        passages=len(passages), text_format=passage_format(settings),
    )  # fmt: skip
    return PreparedFile(record, doc.text, passages)
