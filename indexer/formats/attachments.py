"""A message's attachments, converted and indexed with the message as sections of their own.

Each attachment of a supported type (PDF, DOCX, a sheet, another message...) is converted by
the same converter a file of that type gets (:func:`indexer.convert.convert_file` on a copy in a
temporary folder, so OCR, bounds and error messages are the same) and its text follows the
message's body under an "Attachment: NAME" line; every span is cited as ``attachment NAME``
(with the attachment's own page, slide or row: "attachment plan.pdf, page 2").

Sections of the message's document, not documents of their own: the indexer's manifest keeps
one record per file on disk (doc_id from the path, incremental re-runs by size, mtime and hash),
and records without a file of their own would need changes to the run, the manifest and both
engines. An answer from an attachment still cites the message and names the attachment.

Bounded: at most ``max_count`` attachments, ``max_mb`` each and ``max_total_mb`` together are
converted; a message attached to a message is converted, but its own attachments are only
listed (``max_depth``). ZIP bombs named ``.xlsx`` are refused by the converter of their type.
What was and was not indexed is in ``ConvertedDocument.meta["attachments"]``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.convert import SUPPORTED_EXTENSIONS, convert_file
from indexer.document import Block, ConversionError, one_line

logger = logging.getLogger(__name__)

# How deep the attachment being converted is: a message inside a message is depth 1.
_DEPTH: ContextVar[int] = ContextVar("attachment_depth", default=0)


@dataclass(frozen=True)
class AttachmentLimits:
    """How much of a message's attachments is converted."""

    max_count: int = 20
    max_mb: float = 25.0
    max_total_mb: float = 100.0
    max_depth: int = 1


@dataclass(frozen=True)
class Attachment:
    """An attached file: its name as sent and its bytes (``None``: not stored in the message)."""

    name: str
    data: bytes | None
    why_no_data: str = "content not stored in the message"


def safe_name(name: str | None) -> str:
    """The attachment's file name on one line, without any folder part."""
    name = one_line(name).replace("\\", "/").rsplit("/", 1)[-1]
    return name.strip(". ")[:200]


def section_label(name: str, page: int | None, section: str | None) -> str:
    """The section an attachment's span is cited as: "attachment plan.pdf, page 2"."""
    parts = [f"attachment {name}"]
    if page is not None:
        parts.append(f"page {page}")
    if section:
        parts.append(section)
    return ", ".join(parts)


def attachment_blocks(
    path: Path, attachments: Iterable[Attachment], limits: AttachmentLimits = AttachmentLimits()
) -> tuple[list[Block], list[dict[str, Any]]]:
    """The "Attachments:" line and each converted attachment's blocks, and what became of each."""
    attachments = list(attachments)
    names = [a.name for a in attachments if a.name]
    blocks = [Block("Attachments: " + ", ".join(names))] if names else []
    report: list[dict[str, Any]] = []
    depth = _DEPTH.get()
    total = 0.0
    converted = 0
    with tempfile.TemporaryDirectory(prefix="docqa-attachments-") as folder:
        for attachment in attachments:
            reason = _refusal(attachment, depth, converted, total, limits)
            if reason is None:
                assert attachment.data is not None
                total += len(attachment.data) / 2**20
                converted += 1
                token = _DEPTH.set(depth + 1)
                try:
                    blocks.extend(_convert(Path(folder), attachment))
                except ConversionError as exc:
                    reason = exc.reason
                finally:
                    _DEPTH.reset(token)
            if reason is not None:
                logger.info("%s: attachment %r not indexed (%s)", path.name, attachment.name,
                            reason)  # fmt: skip
            report.append({"name": attachment.name, "indexed": reason is None, "reason": reason})
    return blocks, report


def _refusal(
    attachment: Attachment, depth: int, converted: int, total_mb: float, limits: AttachmentLimits
) -> str | None:
    """Why ``attachment`` is not converted, or ``None`` when it is."""
    if attachment.data is None:
        return attachment.why_no_data
    suffix = Path(attachment.name).suffix.lower()
    if not attachment.name or suffix not in SUPPORTED_EXTENSIONS:
        return f"unsupported type '{suffix or '(no extension)'}'"
    if depth >= limits.max_depth:
        return "attached to an attached message (only listed)"
    if converted >= limits.max_count:
        return f"more than {limits.max_count} attachments"
    size_mb = len(attachment.data) / 2**20
    if size_mb > limits.max_mb:
        return f"larger than the {limits.max_mb:g} MB limit for one attachment"
    if total_mb + size_mb > limits.max_total_mb:
        return f"attachments over {limits.max_total_mb:g} MB in all"
    return None


def _convert(folder: Path, attachment: Attachment) -> list[Block]:
    """The attachment's text, one block per span, cited as sections of the message."""
    assert attachment.data is not None
    copy = folder / attachment.name
    copy.write_bytes(attachment.data)
    try:
        doc = convert_file(copy)
    finally:
        copy.unlink(missing_ok=True)
    label = f"attachment {attachment.name}"
    blocks = [Block(f"Attachment: {attachment.name}", section=label)]
    for span in doc.spans:
        section = section_label(attachment.name, span.page, span.section)
        blocks.append(Block(doc.text[span.start : span.end], section=section))
    return blocks
