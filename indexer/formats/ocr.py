"""OCR: the text of scanned PDF pages and of images (PNG, JPEG, TIFF), cited by page number.

Engine: Debian's Tesseract 5 (``tesseract-ocr``, ``eng``), run as a process per page, chosen by
``benchmarks/bench_ocr.py`` (``benchmarks/results/ocr.json``): 6 pages of the demo PDFs rendered
as skewed (±0.6-1.2°), noisy scans, on a busy 2-core AMD EPYC. Character error rate and pages/s:

    engine                       150 dpi           300 dpi
    tesseract (plain text)       0.33 %  0.48 p/s  0.07 %  0.27 p/s
    rapidocr 3.10 (ONNX wheel)  13.38 %  0.09 p/s  7.41 %  0.10 p/s
    shipped (this module)        0.82 %  0.72 p/s  0.07 %  0.46 p/s

The ``rapidocr`` wheel ships its PP-OCR ONNX models (nothing to download) but drops and garbles
parts of long English lines, and was 3-5 times slower. Tesseract reads page by page in bounded
memory and adds no Python dependency; ``scripts/setup.sh`` installs it (``tesseract-ocr
tesseract-ocr-eng``), so nothing is downloaded at run time. It runs single-threaded
(``OMP_THREAD_LIMIT=1``): with OpenMP's threads on the busy two-core machine a page took 17.6 s
instead of 2.2 s. "shipped" is faster than plain Tesseract because it hands over uncompressed
PGM rather than PNG; its extra error at 150 dpi is the unsure words it drops (below).

A PDF page is OCR'd only when it has no text layer and holds an image (a scan); pages with text
keep it, so a mixed file is read both ways and every page keeps its number. An image file's
frames (a multi-page TIFF) are its pages. PDF pages are rendered with pypdfium2 at ``dpi`` (300:
the accuracy above; fewer pixels for huge pages).

Bounded: OCR runs inside the conversion child (:mod:`indexer.isolation`), so at most
``max_pages`` pages per file are read and reading stops before ``max_seconds`` (below the child's
own time limit of 120 s); pages left out are logged as a warning and listed in
``ConvertedDocument.meta["truncated"]``, the pages read are indexed. Progress is logged per page
and reported to :data:`PAGE_PROGRESS` where a caller set it (the conversion child forwards it to
the indexer's progress bar: "scan.pdf: OCR page 12/80").
Words Tesseract is less than ``min_confidence`` (30) sure of are dropped, and a page whose words
average under ``min_page_confidence`` (50) or with fewer than ``min_chars`` letters or digits left
counts as empty, so an image of noise gives the error "no text found" instead of passages of
garbage. Measured: the bench's noisy scans average 93-96 per page (on 3 of them a floor of 30
cost 0.6 points of CER at 150 dpi and 0.4 at 300 against no floor, one of 50 cost 1.3 and 0.6),
while rows of random strokes that Tesseract reads as "AS VAN TENS NMA!" average 27 with single
words up to 80; pixel noise gives no words at all.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.document import Block, ConversionError, ConvertedDocument, assemble, first_line

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
NO_TEXT = "no text found (OCR read no words)"


@dataclass(frozen=True)
class OcrSettings:
    """How much OCR one file may cost, and how sure a word must be to be kept."""

    language: str = "eng"
    dpi: int = 300
    max_pages: int = 100
    # Below the conversion child's 120 s default, so a long scan ends with the pages read.
    max_seconds: float = 90.0
    max_page_pixels: int = 40_000_000
    min_confidence: float = 30.0
    min_page_confidence: float = 50.0
    min_chars: int = 3


@dataclass
class OcrPage:
    """One page's text (lines, paragraphs separated by a blank line) and its kept words."""

    text: str
    words: int = 0
    dropped: int = 0


# Called after each page OCR'd with (pages done, pages to read) of the file being converted.
PAGE_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar(
    "ocr_page_progress", default=None
)


@dataclass
class _Budget:
    settings: OcrSettings
    total: int
    started: float = field(default_factory=time.monotonic)
    slowest: float = 0.0
    done: int = 0

    def allows_next(self) -> bool:
        if self.done >= self.settings.max_pages:
            return False
        elapsed = time.monotonic() - self.started
        return elapsed + max(self.slowest, 1.0) <= self.settings.max_seconds

    def finished_page(self, path: Path, number: int, seconds: float) -> None:
        self.done += 1
        self.slowest = max(self.slowest, seconds)
        log = logger.info if self.total > 1 else logger.debug
        log("%s: OCR page %d (%d/%d) in %.1f s", path.name, number, self.done, self.total, seconds)
        report = PAGE_PROGRESS.get()
        if report is not None:
            report(self.done, self.total)


def _tesseract() -> str:
    found = shutil.which("tesseract")
    if found is None:
        raise FileNotFoundError("tesseract")
    return found


def ocr_image(image: Any, settings: OcrSettings, timeout: float | None = None) -> OcrPage:
    """The words Tesseract reads on a PIL image with at least ``min_confidence``."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "L":
        image = image.convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="PPM")  # PGM: no compression to pay for, Leptonica reads it
    result = subprocess.run(
        [_tesseract(), "stdin", "stdout", "-l", settings.language, "--psm", "3", "tsv"],
        input=buffer.getvalue(),
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"tesseract failed: {message[-1] if message else result.returncode}")
    return _page_from_tsv(result.stdout.decode("utf-8", "replace"), settings)


def _page_from_tsv(tsv: str, settings: OcrSettings) -> OcrPage:
    """Lines of confident words; a paragraph or block change starts a new paragraph."""
    paragraphs: list[list[str]] = []
    lines: dict[tuple[str, str, str], list[str]] = {}
    order: list[tuple[str, str, str]] = []
    kept = dropped = 0
    confidences: list[float] = []
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        word = (row.get("text") or "").strip()
        if row.get("level") != "5" or not word:
            continue
        try:
            confidence = float(row.get("conf") or -1)
        except ValueError:
            confidence = -1.0
        confidences.append(max(confidence, 0.0))
        if confidence < settings.min_confidence:
            dropped += 1
            continue
        key = (row["block_num"], row["par_num"], row["line_num"])
        if key not in lines:
            lines[key] = []
            order.append(key)
        lines[key].append(word)
        kept += 1
    previous: tuple[str, str] | None = None
    for key in order:
        if key[:2] != previous:
            paragraphs.append([])
            previous = key[:2]
        paragraphs[-1].append(" ".join(lines[key]))
    text = "\n\n".join("\n".join(paragraph) for paragraph in paragraphs)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    if mean < settings.min_page_confidence or sum(ch.isalnum() for ch in text) < settings.min_chars:
        return OcrPage("", 0, dropped + kept)  # noise or a picture read as letters
    return OcrPage(text, kept, dropped)


def _read_pages(
    path: Path, images: Iterator[tuple[int, Any]], total: int, settings: OcrSettings
) -> tuple[dict[int, str], list[str]]:
    """OCR each (page number, image) within the budget: texts by page, what was left out."""
    budget = _Budget(settings, total)
    texts: dict[int, str] = {}
    left_out: list[str] = []
    for number, load in images:
        if not budget.allows_next():
            left = total - budget.done
            reason = (
                f"the {settings.max_pages}-page OCR limit"
                if budget.done >= settings.max_pages
                else f"the {settings.max_seconds:g} s OCR time limit"
            )
            logger.warning("%s: %d of %d pages not OCR'd (%s)", path.name, left, total, reason)
            left_out.append(f"{left} of {total} scanned pages from page {number} ({reason})")
            break
        remaining = settings.max_seconds - (time.monotonic() - budget.started)
        started = time.monotonic()
        try:
            page = ocr_image(load(), settings, timeout=max(1.0, remaining))
        except FileNotFoundError:
            raise ConversionError(
                path, "OCR needs Tesseract (tesseract-ocr), not installed: run scripts/setup.sh"
            ) from None
        except subprocess.TimeoutExpired:
            logger.warning("%s: page %d: OCR stopped at the time limit", path.name, number)
            left_out.append(f"pages from {number} of {total} (the OCR time limit)")
            break
        budget.finished_page(path, number, time.monotonic() - started)
        if page.dropped:
            logger.debug("%s: page %d: %d unsure words dropped", path.name, number, page.dropped)
        texts[number] = page.text
    return texts, left_out


# -- PDF ----------------------------------------------------------------------------------------


def scanned_pages(reader: Any, candidates: Sequence[int]) -> list[int]:
    """The pages (1-based) of ``candidates`` that hold an image: a scan, worth OCR."""
    found: list[int] = []
    for number in candidates:
        try:
            if len(reader.pages[number - 1].images) > 0:
                found.append(number)
        except Exception:  # a damaged resource dictionary: let the renderer try
            logger.debug("page %d: cannot list images", number, exc_info=True)
            found.append(number)
    return found


def ocr_pdf_pages(
    path: Path, data: bytes, numbers: Sequence[int], settings: OcrSettings | None = None
) -> tuple[dict[int, str], list[str]]:
    """OCR the given pages (1-based) of a PDF: their texts by number, and what was left out."""
    import pypdfium2 as pdfium

    settings = settings or OcrSettings()
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ConversionError(path, f"cannot render the scanned pages ({exc})") from None

    def render(number: int) -> Any:
        page = document[number - 1]
        try:
            width, height = page.get_size()  # points
            scale = settings.dpi / 72
            pixels = width * height * scale * scale
            if pixels > settings.max_page_pixels:
                scale *= (settings.max_page_pixels / pixels) ** 0.5
            return page.render(scale=scale, grayscale=True).to_pil()
        finally:
            page.close()

    try:
        images = ((n, lambda n=n: render(n)) for n in numbers)
        return _read_pages(path, images, len(numbers), settings)
    finally:
        document.close()


def ocr_empty_pages(
    path: Path, data: bytes, reader: Any, blocks: list[Block], settings: OcrSettings | None = None
) -> tuple[list[Block], dict[str, Any]]:
    """A PDF's page blocks with OCR text on its pages without text that hold a scan.

    Raises :class:`ConversionError` when no page has text after that. Returns the blocks and
    what the document's ``meta`` should record (the pages OCR'd, the pages left out).
    """
    from indexer.document import clean_text

    empty = [n for n, block in enumerate(blocks, start=1) if not clean_text(block.text)]
    scans = scanned_pages(reader, empty) if empty else []
    meta: dict[str, Any] = {}
    if scans:
        texts, left_out = ocr_pdf_pages(path, data, scans, settings)
        blocks = [
            Block(texts.get(n, block.text), page=n) for n, block in enumerate(blocks, start=1)
        ]
        meta["ocr_pages"] = sorted(texts)
        if left_out:
            meta["truncated"] = left_out
    if not any(clean_text(block.text) for block in blocks):
        if scans:
            raise ConversionError(path, NO_TEXT)
        raise ConversionError(path, "no extractable text (no text layer, no scanned image)")
    return blocks, meta


# -- images -------------------------------------------------------------------------------------


def convert_image(
    path: Path, data: bytes, settings: OcrSettings | None = None
) -> ConvertedDocument:
    """An image file's text by OCR; each frame of a multi-page TIFF is a page."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    settings = settings or OcrSettings()
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        # Pillow's message names its in-memory buffer, not the file: say it in our words.
        raise ConversionError(path, "not a readable image (no image format recognized)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConversionError(path, f"not a readable image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise ConversionError(path, f"image too large to read ({exc})") from None
    frames = getattr(image, "n_frames", 1)

    def frame(index: int) -> Any:
        image.seek(index)
        page = ImageOps.exif_transpose(image.copy())
        if page.width * page.height > settings.max_page_pixels:  # a poster: OCR a smaller copy
            scale = (settings.max_page_pixels / (page.width * page.height)) ** 0.5
            page = page.resize((max(1, int(page.width * scale)), max(1, int(page.height * scale))))
        return page

    images = ((i + 1, lambda i=i: frame(i)) for i in range(frames))
    texts, left_out = _read_pages(path, images, frames, settings)
    blocks = [Block(text, page=number) for number, text in sorted(texts.items())]
    if not any(text.strip() for text in texts.values()):
        raise ConversionError(path, NO_TEXT)
    doc = assemble(path, "image", blocks, first_line(blocks))
    if left_out:
        doc.meta["truncated"] = left_out
    doc.meta["ocr_pages"] = sorted(texts)
    return doc
