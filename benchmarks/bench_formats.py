"""Top-1 F1 per file format over the same content: the multi-format benchmark.

The demo collection's dev documents (``data/demo/labels/dev.json``: 12 documents, 190 questions
of which 149 have an answer; CC0 text the project wrote) are written by this script in every
format DocQA reads, from the text DocQA extracts from them (the labels' contexts), line by line:

- ``txt``: the extracted text as it is: the baseline every other format is compared with;
- ``scan-150``, ``scan-300``: the text typeset as a PDF (fpdf2, Helvetica 11), each page rendered
  to a grey image at that dpi, turned by 0.6-1.2 degrees, with noise and specks
  (``bench_ocr.scan``), saved as a PDF of images only: the indexer's OCR reads it;
- ``pptx``: slides of at most 90 words (a text box, a paragraph per line), the first line of each
  slide as its title;
- ``xlsx``, ``ods``, ``csv``: a sheet with one column "Text", a row per line;
- ``eml``, ``msg``: a message with the document as its plain-text body, its title as subject;
- ``odt``: a paragraph per line; ``epub``: chapters of at most 300 words, a paragraph per line.

Each format's 12 files are indexed into a fresh home (default settings: the shipped reader, the
default embedder, hybrid retrieval; the reader in fp32 torch) and every dev question is asked over
that collection (:func:`evaluation.end_to_end.evaluate_end_to_end`: retrieve, read the top
passages, the first answer). Prints F1 (all questions and answerable ones) per format beside
``txt`` and checks the gate: every format within 5 F1 points of ``txt``, OCR at 300 dpi within
10. Writes ``benchmarks/results/formats.json``.

    python benchmarks/bench_formats.py [--formats txt,pptx,...] [--questions N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import html
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bench_env import REPO_ROOT, write_result
from bench_ocr import scan

from evaluation.end_to_end import evaluate_end_to_end
from evaluation.environment import cpu_description, environment
from evaluation.squad import SquadExample, load_squad
from indexer.run import index_folder
from pipelines.query import QueryService
from pipelines.settings import Settings
from tests.indexer.formats.msg_writer import make_msg
from tests.indexer.formats.samples import write_epub, write_odt

print = functools.partial(print, flush=True)  # progress shows as it comes

DEV_LABELS = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
BASELINE = "txt"
WITHIN = 5.0  # F1 points every format may lose against the plain text
WITHIN_OCR_300 = 10.0
SEED = 29
SLIDE_WORDS = 90
CHAPTER_WORDS = 300

Writer = Callable[[Path, str, str], list[Path]]  # (folder, stem, text) -> files written


def chunks(lines: list[str], max_words: int) -> Iterator[list[str]]:
    """Consecutive lines, at most ``max_words`` a chunk (a longer line is a chunk of its own)."""
    chunk: list[str] = []
    words = 0
    for line in lines:
        count = len(line.split())
        if chunk and words + count > max_words:
            yield chunk
            chunk, words = [], 0
        chunk.append(line)
        words += count
    if chunk:
        yield chunk


def lines_of(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def title_of(text: str) -> str:
    return lines_of(text)[0][:120]


# -- writers: one per format, each from the same extracted text -----------------------------------


def write_txt(folder: Path, stem: str, text: str) -> list[Path]:
    path = folder / f"{stem}.txt"
    path.write_text(text, encoding="utf-8")
    return [path]


def typeset_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for line in text.split("\n"):
        latin = line.replace("\u2013", "-").encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, 6, latin or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def scanned(dpi: int) -> Writer:
    def write(folder: Path, stem: str, text: str) -> list[Path]:
        import pypdfium2 as pdfium

        typeset = folder / f".{stem}.typeset.pdf"
        typeset.write_bytes(typeset_pdf(text))
        count = len(pdfium.PdfDocument(str(typeset)))
        rng = random.Random(f"{SEED}-{stem}-{dpi}")
        images = [scan(str(typeset), page, dpi, rng) for page in range(1, count + 1)]
        typeset.unlink()
        path = folder / f"{stem}.pdf"
        images[0].save(path, save_all=True, append_images=images[1:], resolution=float(dpi))
        return [path]

    return write


def write_pptx(folder: Path, stem: str, text: str) -> list[Path]:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    deck.core_properties.title = title_of(text)
    for chunk in chunks(lines_of(text), SLIDE_WORDS):
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
        slide.shapes.title.text = chunk[0]
        if len(chunk) > 1:
            frame = slide.shapes.add_textbox(Inches(0.5), Inches(1.6), Inches(9), Inches(5))
            frame = frame.text_frame
            frame.word_wrap = True
            frame.text = chunk[1]
            for line in chunk[2:]:
                paragraph = frame.add_paragraph()
                paragraph.text = line
                paragraph.font.size = Pt(12)
    path = folder / f"{stem}.pptx"
    deck.save(path)
    return [path]


def write_xlsx(folder: Path, stem: str, text: str) -> list[Path]:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Document"
    sheet.append(["Text"])
    for line in lines_of(text):
        sheet.append([line])
    book.properties.title = title_of(text)
    path = folder / f"{stem}.xlsx"
    book.save(path)
    return [path]


def write_ods(folder: Path, stem: str, text: str) -> list[Path]:
    cell = "<table:table-row><table:table-cell><text:p>{}</text:p></table:table-cell>"
    cell += "</table:table-row>"
    rows = "".join(cell.format(html.escape(line)) for line in ["Text", *lines_of(text)])
    body = f'<table:table table:name="Document">{rows}</table:table>'
    path = folder / f"{stem}.ods"
    return [write_odt(path, body, title=html.escape(title_of(text)), kind="spreadsheet")]


def write_csv(folder: Path, stem: str, text: str) -> list[Path]:
    path = folder / f"{stem}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Text"])
        out.writerows([line] for line in lines_of(text))
    return [path]


SENDER = ("Lumenfield Intranet", "intranet@lumenfield.example")


def write_eml(folder: Path, stem: str, text: str) -> list[Path]:
    message = EmailMessage()
    message["From"] = f"{SENDER[0]} <{SENDER[1]}>"
    message["To"] = "All staff <staff@lumenfield.example>"
    message["Date"] = "Mon, 02 Jun 2025 09:00:00 +0200"
    message["Subject"] = title_of(text)
    message.set_content(text, charset="utf-8")
    path = folder / f"{stem}.eml"
    path.write_bytes(bytes(message))
    return [path]


def write_msg(folder: Path, stem: str, text: str) -> list[Path]:
    data = make_msg(
        title_of(text),
        SENDER,
        [("All staff", "staff@lumenfield.example", 1)],
        body=text,
        sent=dt.datetime(2025, 6, 2, 7, 0, tzinfo=dt.UTC),
    )
    path = folder / f"{stem}.msg"
    path.write_bytes(data)
    return [path]


def write_odt_file(folder: Path, stem: str, text: str) -> list[Path]:
    body = "".join(f"<text:p>{html.escape(line)}</text:p>" for line in lines_of(text))
    return [write_odt(folder / f"{stem}.odt", body, title=html.escape(title_of(text)))]


def write_epub_file(folder: Path, stem: str, text: str) -> list[Path]:
    chapters = [
        (f"part{i:03d}.xhtml", "".join(f"<p>{html.escape(line)}</p>" for line in chunk))
        for i, chunk in enumerate(chunks(lines_of(text), CHAPTER_WORDS))
    ]
    return [write_epub(folder / f"{stem}.epub", chapters, title=html.escape(title_of(text)))]


WRITERS: dict[str, Writer] = {
    "txt": write_txt,
    "scan-150": scanned(150),
    "scan-300": scanned(300),
    "pptx": write_pptx,
    "xlsx": write_xlsx,
    "ods": write_ods,
    "csv": write_csv,
    "eml": write_eml,
    "msg": write_msg,
    "odt": write_odt_file,
    "epub": write_epub_file,
}


def write_collection(fmt: str, contexts: dict[str, str], folder: Path) -> int:
    """The documents (title -> extracted text) in format ``fmt`` under ``folder``; files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for title, text in contexts.items():
        stem = title.replace("/", "__").rsplit(".", 1)[0]
        written += len(WRITERS[fmt](folder, stem, text))
    return written


def measure(
    fmt: str, examples: list[SquadExample], contexts: dict[str, str], root: Path
) -> dict[str, Any]:
    folder, home = root / fmt / "documents", root / fmt / "home"
    started = time.perf_counter()
    files = write_collection(fmt, contexts, folder)
    write_seconds = time.perf_counter() - started
    # fp32 torch for every format: the same reader numerics, and no backend measurement in the
    # background of the timed questions.
    settings = Settings(home=home, reader_backend="torch", cpu_precision="fp32")
    started = time.perf_counter()
    summary = index_folder([folder], settings, progress=False)
    index_seconds = time.perf_counter() - started
    report = evaluate_end_to_end(
        examples, settings, settings.top_k_passages, progress=False, service=QueryService(settings)
    )
    answers = report["answers"]
    return {
        "format": fmt,
        "files": files,
        "failed": [str(item) for item in summary.failed],
        "passages": summary.total_passages,
        "write_seconds": round(write_seconds, 1),
        "index_seconds": round(index_seconds, 1),
        "f1": round(answers["f1"], 2),
        "exact": round(answers["exact"], 2),
        "has_answer_f1": round(answers.get("HasAns_f1", float("nan")), 2),
        "recall@1": round(report["retrieval"].get("recall@1", float("nan")), 3),
        "p50_ms": round(1000 * report["latency_seconds"]["p50"], 1),
        "reader": report["reader"],
        "reader_backend": report["reader_backend"],
    }


def gate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = next(row for row in rows if row["format"] == BASELINE)
    for row in rows:
        allowed = WITHIN_OCR_300 if row["format"] == "scan-300" else WITHIN
        if row["format"] == "scan-150":
            allowed = None  # measured, no bound: 150 dpi is below what the issue asks OCR to match
        row["f1_vs_txt"] = round(row["f1"] - base["f1"], 2)
        row["allowed_loss"] = allowed
        row["passes"] = None if allowed is None else row["f1_vs_txt"] >= -allowed
    return rows


def readme_row(result: dict[str, Any]) -> dict[str, str]:
    rows = result["rows"]
    by_format = "; ".join(f"{r['format']} {r['f1']:.1f} ({r['f1_vs_txt']:+.1f})" for r in rows)
    failing = [r["format"] for r in rows if r["passes"] is False]
    verdict = "all within bounds" if not failing else f"outside bounds: {', '.join(failing)}"
    return {
        "what": (
            f"the same content in {len(rows)} formats: demo dev documents ({result['documents']}"
            f" files each), {result['questions']} questions, top-1 F1 (vs plain text)"
        ),
        "number": f"{by_format}; {verdict} (5 points, OCR 300 dpi 10)",
        "command": "python benchmarks/bench_formats.py",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default=",".join(WRITERS))
    parser.add_argument("--questions", type=int, default=None, help="first N questions only")
    parser.add_argument("--keep", type=Path, default=None, help="write the collections here")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "formats.json"
    )
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(WRITERS))
    if unknown:
        parser.error(f"unknown formats {unknown}; known: {', '.join(WRITERS)}")
    if BASELINE not in formats:
        formats.insert(0, BASELINE)
    examples, _ = load_squad(DEV_LABELS)
    examples = examples[: args.questions] if args.questions else examples
    contexts = {ex.title: ex.context for ex in examples}
    print(f"{len(examples)} questions over {len(contexts)} documents; CPU: {cpu_description()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="docqa-formats-") as scratch:
        root = args.keep or Path(scratch)
        for fmt in formats:
            row = measure(fmt, examples, contexts, root)
            print(f"{fmt:9} F1 {row['f1']:6.2f}  HasAns F1 {row['has_answer_f1']:6.2f}  "
                  f"passages {row['passages']:4}  index {row['index_seconds']:6.1f} s")  # fmt: skip
            rows.append(row)
    rows = gate(rows)
    columns = ("F1", "vs txt", "HasAns", "R@1", "pass", "index s")
    print("\nformat   " + "".join(f"{name:>8}" for name in columns))
    for r in rows:
        ok = "-" if r["passes"] is None else ("yes" if r["passes"] else "NO")
        print(f"{r['format']:9}{r['f1']:8.2f}{r['f1_vs_txt']:+8.2f}{r['has_answer_f1']:8.2f}"
              f"{r['recall@1']:8.3f}{ok:>8}{r['index_seconds']:8.1f}")  # fmt: skip
    result = {
        "benchmark": "formats",
        "labels": str(DEV_LABELS.relative_to(REPO_ROOT)),
        "questions": len(examples),
        "answerable": sum(1 for ex in examples if ex.answers),
        "documents": len(contexts),
        "within": {"every format": WITHIN, "scan-300": WITHIN_OCR_300},
        "all_pass": all(r["passes"] is not False for r in rows),
        "rows": rows,
        "environment": environment(),
    }
    result["readme_rows"] = [readme_row(result)]
    write_result(args.out, result)


if __name__ == "__main__":
    main()
