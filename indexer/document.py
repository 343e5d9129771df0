"""A converted document: its text, the spans that place every character on a page or in a
section, and the blocks converters build it from.

Every converter (:mod:`indexer.convert` and the modules of :mod:`indexer.formats`) produces a
list of :class:`Block` (a piece of text with its page and section); :func:`assemble` cleans each
block, joins them with a blank line and records the :class:`Span` list, so offsets into
:attr:`ConvertedDocument.text` are exact by construction. The splitter and the citations both rely
on those offsets, never on re-searching the text. This module is below every converter, so a
format module never imports the dispatcher that loads it.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A title taken from the first line of a document is cut here: a first "line" of a PDF page can
# be a whole paragraph when the PDF has no line structure.
_MAX_TITLE_CHARS = 200


class ConversionError(Exception):
    """A file that cannot be converted; ``str()`` is one line: "<file name>: <reason>"."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the library said
        super().__init__(f"{self.path.name}: {self.reason}")


@dataclass(frozen=True)
class Span:
    """A stretch ``text[start:end]`` of a converted document on one page / in one section."""

    start: int
    end: int
    page: int | None = None
    section: str | None = None


@dataclass
class ConvertedDocument:
    """The cleaned text of one file and the spans (contiguous, in order) that cover it."""

    path: Path
    text: str
    title: str
    file_type: str
    spans: list[Span] = field(default_factory=list)
    # What a converter wants known about the conversion, e.g. the rows a sheet's cap left out.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Block:
    text: str
    page: int | None = None
    section: str | None = None


# -- cleaning -----------------------------------------------------------------------------------

_NEWLINES = re.compile(r"\r\n|\r|\u2028|\u2029|\x0c|\x0b|\x85")
# Invisible characters that only get in the way of matching words: soft hyphen, zero-width
# space/joiners, BOM, and C0/C1 control characters other than newline and tab.
_INVISIBLE = re.compile(
    r"[\u00ad\u200b\u200c\u200d\u2060\ufeff\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]"
)
_HSPACE = re.compile(r"[^\S\n]+")  # any whitespace except newline (tabs, NBSP, thin spaces...)
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalize newlines and spaces, NFC, no trailing spaces, at most one blank line; stripped."""
    text = _NEWLINES.sub("\n", text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def assemble(
    path: Path, file_type: str, blocks: Iterable[Block], title: str | None
) -> ConvertedDocument:
    """Clean and join the blocks; spans merge neighbouring blocks with the same page and section."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for block in blocks:
        cleaned = clean_text(block.text)
        if not cleaned:
            continue
        if parts:
            pos += 2  # the "\n\n" separator belongs to the span before it
        start = pos
        parts.append(cleaned)
        pos += len(cleaned)
        if spans and (spans[-1].page, spans[-1].section) == (block.page, block.section):
            spans[-1] = Span(spans[-1].start, pos, block.page, block.section)
        else:
            if spans:
                spans[-1] = Span(spans[-1].start, start, spans[-1].page, spans[-1].section)
            spans.append(Span(start, pos, block.page, block.section))
    text = "\n\n".join(parts)
    if not text:
        raise ConversionError(path, "empty document")
    title = one_line(title)
    if not title:
        title = path.stem
    return ConvertedDocument(path=path, text=text, title=title, file_type=file_type, spans=spans)


def first_line(blocks: list[Block]) -> str | None:
    for block in blocks:
        for line in block.text.splitlines():
            line = one_line(line)
            if line:
                return line[:_MAX_TITLE_CHARS].rstrip()
    return None


def locate(doc: ConvertedDocument, offset: int) -> Span:
    """The span containing character ``offset`` of ``doc.text`` (``len(text)`` gives the last)."""
    if not doc.spans or offset < 0 or offset > len(doc.text):
        raise ValueError(f"offset {offset} outside the document (length {len(doc.text)})")
    starts = [span.start for span in doc.spans]
    return doc.spans[max(0, bisect.bisect_right(starts, offset) - 1)]
