"""PowerPoint (PPTX) slides as text: each slide a section cited "slide N".

A slide's text boxes, placeholders and grouped shapes are read top to bottom, left to right (the
order a reader sees, not the order the shapes were drawn); tables become "header: value" rows
like DOCX and HTML tables (:func:`indexer.convert.table_text`, the first row as header when the
table marks one); the speaker notes follow the slide's text as "Notes: ...".

python-pptx directly, not Haystack's ``PPTXToDocument``: that joins the slides' text with form
feeds but leaves out tables, speaker notes and grouped shapes, keeps the drawing order, and logs
and skips a file it cannot read, where the indexer needs an error naming the file.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from indexer.convert import table_text
from indexer.document import Block, ConversionError, ConvertedDocument, assemble, one_line
from indexer.formats.office_zip import check_office_zip

logger = logging.getLogger(__name__)

# The title python-pptx (and PowerPoint's blank template) gives a deck nobody titled.
_DEFAULT_TITLE = "PowerPoint Presentation"


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    """Shapes top to bottom, then left to right; shapes without a position last, as drawn."""
    indexed = list(enumerate(shapes))
    indexed.sort(
        key=lambda item: (item[1].top is None, item[1].top or 0, item[1].left or 0, item[0])
    )
    return [shape for _, shape in indexed]


def _shape_texts(shapes: Iterable[Any]) -> Iterator[str]:
    """The text of each shape in reading order: text frames, tables, the shapes of groups."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in _reading_order(shapes):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            table = shape.table
            rows = [
                ([one_line(cell.text) for cell in row.cells], index == 0 and table.first_row)
                for index, row in enumerate(table.rows)
            ]
            yield table_text(rows)
        elif shape.has_text_frame:
            yield "\n".join(paragraph.text for paragraph in shape.text_frame.paragraphs)


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    text = frame.text.strip() if frame is not None else ""
    return f"Notes: {text}" if text else ""


def convert_pptx(path: Path, data: bytes) -> ConvertedDocument:
    """A PPTX deck: per slide its text in reading order, its tables and its speaker notes."""
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    check_office_zip(path, data, "PPTX")
    try:
        deck = Presentation(io.BytesIO(data))
        blocks: list[Block] = []
        first_title: str | None = None
        for number, slide in enumerate(deck.slides, start=1):
            section = f"slide {number}"
            title_shape = slide.shapes.title
            if first_title is None and title_shape is not None:
                first_title = one_line(title_shape.text) or None
            blocks.extend(Block(text, section=section) for text in _shape_texts(slide.shapes))
            blocks.append(Block(_notes(slide), section=section))
        core_title = one_line(deck.core_properties.title)
        if core_title == _DEFAULT_TITLE:
            core_title = ""
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ConversionError(path, f"not a readable PPTX ({type(exc).__name__}: {exc})") from None
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except Exception as exc:  # lxml and zip errors from damaged packages
        raise ConversionError(path, f"not a readable PPTX ({type(exc).__name__}: {exc})") from None
    logger.debug("%s: %d slides", path.name, len(deck.slides))
    return assemble(path, "pptx", blocks, core_title or first_title)
