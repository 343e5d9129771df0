"""OCR of scanned PDFs and images with real Tesseract on files rendered here with PIL.

Text is drawn with PIL's own font, saved as PNG, JPEG, a multi-page TIFF and PDFs without a text
layer (PIL writes each image as a PDF page); OCR may misread a letter, so tests look for key
words. Pages are kept small so the whole file runs in a few seconds.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

from indexer import index_folder
from indexer.convert import ConversionError, convert_file, locate
from indexer.formats.ocr import OcrSettings, convert_image
from indexer.uploads import check_upload, index_uploads
from pipelines.settings import Settings
from pipelines.store import PassageStore
from tests.indexer.formats.samples import pdf_bytes

FIRST = ["Travel Policy", "Flights are booked through the portal.", "Economy class is the rule."]
SECOND = ["Airport parking is reimbursed", "up to forty euros per trip."]


def page_image(lines: list[str]) -> Image.Image:
    """A white page (about 150 dpi for a 6.7 x 3.3 inch page) with black text."""
    image = Image.new("L", (1000, 500), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=32)
    for index, line in enumerate(lines):
        draw.text((60, 60 + 56 * index), line, font=font, fill=0)
    return image


def scanned_pdf(*pages: list[str]) -> bytes:
    """A PDF whose pages are images only (no text layer), as a scanner writes."""
    images = [page_image(lines) for lines in pages]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


def page_text(doc: Any, page: int) -> str:
    return " ".join(doc.text[s.start : s.end].strip() for s in doc.spans if s.page == page)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_image_is_read_as_page_1(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"policy{suffix}"
    page_image(FIRST).save(path)
    doc = convert_file(path)
    assert doc.file_type == "image"
    assert {"Flights", "portal", "Economy"} <= set(doc.text.replace(".", " ").split())
    assert [span.page for span in doc.spans] == [1]
    assert doc.title == "Travel Policy"


def test_each_frame_of_a_tiff_is_a_page(tmp_path: Path) -> None:
    path = tmp_path / "scan.tiff"
    page_image(FIRST).save(path, save_all=True, append_images=[page_image(SECOND)])
    doc = convert_file(path)
    assert "portal" in page_text(doc, 1) and "parking" not in page_text(doc, 1)
    assert "parking" in page_text(doc, 2) and "euros" in page_text(doc, 2)
    assert locate(doc, doc.text.index("euros")).page == 2


def test_a_scanned_pdf_keeps_its_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_pdf(FIRST, SECOND))
    assert all(not (page.extract_text() or "").strip() for page in PdfReader(path).pages)
    doc = convert_file(path)
    assert doc.file_type == "pdf"
    assert "Economy" in page_text(doc, 1)
    assert "forty euros" in page_text(doc, 2)
    assert doc.meta["ocr_pages"] == [1, 2]


def test_a_mixed_pdf_reads_its_text_page_and_ocrs_its_scanned_page(tmp_path: Path) -> None:
    writer = PdfWriter()
    for data in (pdf_bytes("Hotels are booked by the travel desk."), scanned_pdf(SECOND)):
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as out:
        writer.write(out)
    doc = convert_file(path)
    assert page_text(doc, 1) == "Hotels are booked by the travel desk."  # the text layer, as is
    assert "forty euros" in page_text(doc, 2)
    assert doc.meta["ocr_pages"] == [2]  # only the page without text was OCR'd


def scribbles() -> Image.Image:
    """Rows of random strokes the size of letters: Tesseract reads words in them ("AS VAN")."""
    rng = random.Random(3)
    image = Image.new("L", (1000, 700), 255)
    draw = ImageDraw.Draw(image)
    for row in range(12):
        x = 40
        while x < 940:
            y = 40 + row * 50
            draw.line([(x + rng.randrange(18), y + rng.randrange(26)) for _ in range(4)], 0, 3)
            x += rng.randrange(16, 30)
    return image


def pixel_noise() -> Image.Image:
    return Image.fromarray(np.random.default_rng(29).integers(0, 256, (600, 800), dtype=np.uint8))


@pytest.mark.parametrize("make", [pixel_noise, scribbles])
def test_an_image_of_noise_is_no_text_found(tmp_path: Path, make: Any) -> None:
    path = tmp_path / "noise.png"
    make().save(path)
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value) == "noise.png: no text found (OCR read no words)"


def test_a_long_scan_is_bounded_and_says_what_it_left_out(tmp_path: Path) -> None:
    path = tmp_path / "long.tiff"
    pages = [page_image([f"Chapter {n}", "Budgets are reviewed monthly."]) for n in (1, 2, 3, 4)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    doc = convert_image(path, path.read_bytes(), OcrSettings(max_pages=2))
    assert doc.meta["ocr_pages"] == [1, 2]
    assert doc.meta["truncated"] == ["2 of 4 scanned pages from page 3 (the 2-page OCR limit)"]
    assert "Chapter 2" in doc.text and "Chapter 3" not in doc.text


def test_without_tesseract_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.png"
    page_image(FIRST).save(path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value) == (
        "policy.png: OCR needs Tesseract (tesseract-ocr), not installed: run scripts/setup.sh"
    )


def test_a_corrupt_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpeg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ConversionError) as info:
        convert_file(path)
    assert str(info.value).startswith("broken.jpeg: not a readable image (")


def test_uploads_accept_images() -> None:
    for name in ("scan.png", "photo.JPG", "photo.jpeg", "fax.tif", "fax.TIFF"):
        assert check_upload(name, 10) == name


def test_index_folder_cites_page_2_of_a_scanned_pdf_and_shows_its_pages_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "travel.pdf").write_bytes(scanned_pdf(FIRST, SECOND))
    settings = Settings(home=tmp_path / "home")
    summary = index_folder([folder], settings, progress=True)  # OCR in the conversion child
    assert summary.failed == [] and summary.added == 1
    # The child reports each page as it is read; the progress bar shows it.
    bar = capsys.readouterr().err
    assert bar.index("documents/travel.pdf: OCR page 1/2") < bar.index("OCR page 2/2"), bar
    store = PassageStore.load(settings.index_dir)
    passage = next(p for p in store.filter_documents() if "euros" in (p.content or ""))
    offset = passage.content.index("euros")
    page = passage.meta["page"]
    for start, boundary_page, _ in passage.meta.get("boundaries") or []:
        if start <= offset:
            page = boundary_page
    assert page == 2


def test_an_uploaded_scan_shows_its_pages_on_the_pages_progress_bar(tmp_path: Path) -> None:
    """The page's uploads (index_uploads' on_progress, drawn with st.progress) move through a
    scan page by page within its file's share of the bar."""
    calls: list[tuple[float, int, str]] = []
    outcomes = index_uploads(
        [("travel.pdf", scanned_pdf(FIRST, SECOND))],
        Settings(home=tmp_path / "home"),
        on_progress=lambda done, total, message: calls.append((done, total, message)),
    )
    assert [o.status for o in outcomes] == ["indexed"]
    assert calls == [
        (0, 1, "Indexing travel.pdf"),
        (0.5, 1, "Indexing travel.pdf: OCR page 1/2"),
        (1.0, 1, "Indexing travel.pdf: OCR page 2/2"),
        (1, 1, "Done"),
    ]
