"""Choose the OCR engine by measurement: character error rate and pages/s on scans we make.

The project's own text PDFs (``data/demo/documents/**/*.pdf``) are rendered with pypdfium2 to
page images at 150 and 300 dpi, turned by a small angle (alternately ±0.6 to ±1.2 degrees) and
given Gaussian noise and a few specks, as a cheap office scanner would; each image is read by

- ``tesseract``: Debian's ``tesseract-ocr`` 5 (LSTM, ``eng``), plain text, called as a process
  (single-threaded as the indexer runs it; ``--tesseract-threads 0`` lets OpenMP choose);
- ``rapidocr``: the ``rapidocr`` wheel (PP-OCR det/rec ONNX models shipped in the wheel, on
  ONNX Runtime), lines in the order it returns them; not a dependency: ``pip install
  rapidocr==3.10.0`` to compare (left out when missing);
- ``shipped``: what the indexer runs (:func:`indexer.formats.ocr.ocr_image`: the chosen engine,
  words under the confidence floor dropped).

The reference is the page's own text layer (pypdf). Both sides are NFKC-normalized and their
whitespace collapsed to single spaces (line breaks are layout, not content); CER is the edit
distance over the reference length. Pages/s is wall time of the OCR call alone, one page at a
time, on this machine's CPUs. Prints a table and writes ``benchmarks/results/ocr.json``.

    python benchmarks/bench_ocr.py [--pages 6] [--out benchmarks/results/ocr.json]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import os
import platform
import random
import subprocess
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description

print = functools.partial(print, flush=True)  # progress shows as it comes

DOCUMENTS = REPO_ROOT / "data" / "demo" / "documents"
DPIS = (150, 300)
SEED = 29
# Tesseract's OpenMP threads: "1" as the indexer runs it (--tesseract-threads to compare).
OMP_THREADS = "1"


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2013", "-").replace("\u2014", "-")
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of ``a``."""
    if not a or not b:
        return max(len(a), len(b))
    codes_b = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    index = np.arange(len(b) + 1)
    row = index.copy()
    for i, ch in enumerate(a, start=1):
        cost = (codes_b != ord(ch)).astype(np.int64)
        tmp = np.empty_like(row)
        tmp[0] = i
        tmp[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)
        # Insertions within the row: d[j] = min_k (tmp[k] + j - k), a running minimum.
        row = np.minimum.accumulate(tmp - index) + index
    return int(row[-1])


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


def pages(count: int) -> list[tuple[str, int, str]]:
    """(pdf, page number, reference text): the first pages of the demo PDFs, then the next ones."""
    from pypdf import PdfReader

    pdfs = sorted(DOCUMENTS.rglob("*.pdf"))
    chosen: list[tuple[str, int, str]] = []
    page_index = 0
    while len(chosen) < count and page_index < 10:
        for pdf in pdfs:
            reader = PdfReader(pdf)
            if page_index < len(reader.pages) and len(chosen) < count:
                text = reader.pages[page_index].extract_text() or ""
                chosen.append((str(pdf.relative_to(REPO_ROOT)), page_index + 1, text))
        page_index += 1
    return chosen


def scan(pdf: str, page: int, dpi: int, rng: random.Random) -> Any:
    """The page as a grey "scan": rendered at ``dpi``, skewed, noisy."""
    import pypdfium2 as pdfium
    from PIL import Image

    document = pdfium.PdfDocument(str(REPO_ROOT / pdf))
    try:
        image = document[page - 1].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        document.close()
    angle = rng.choice((-1, 1)) * rng.uniform(0.6, 1.2)
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    pixels = np.asarray(image, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 18, pixels.shape)
    specks = np.random.default_rng(rng.randrange(2**32)).random(pixels.shape) < 0.0005
    pixels = np.clip(pixels + noise, 0, 255)
    pixels[specks] = 0
    return Image.fromarray(pixels.astype(np.uint8), mode="L")


def tesseract_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    return {**env, "OMP_THREAD_LIMIT": OMP_THREADS} if OMP_THREADS else env


def tesseract_text(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    result = subprocess.run(
        ["tesseract", "stdin", "stdout", "-l", "eng", "--psm", "3"],
        input=buffer.getvalue(),
        capture_output=True,
        check=True,
        env=tesseract_env(),
    )
    return result.stdout.decode("utf-8", "replace")


_RAPID: Any = None


def rapidocr_text(image: Any) -> str:
    global _RAPID
    if _RAPID is None:
        from rapidocr import RapidOCR

        _RAPID = RapidOCR(params={"Global.log_level": "warning"})
    result = _RAPID(np.asarray(image.convert("RGB")))
    return "\n".join(result.txts or ())


def shipped_text(image: Any) -> str:
    from indexer.formats.ocr import OcrSettings, ocr_image

    return ocr_image(image, OcrSettings()).text


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        found["tesseract"] = out.stdout.splitlines()[0] if out.stdout else out.stderr.split()[1]
    except (OSError, IndexError):
        found["tesseract"] = "missing"
    try:
        from importlib.metadata import version

        found["rapidocr"] = version("rapidocr")
        found["onnxruntime"] = version("onnxruntime")
    except Exception:
        found["rapidocr"] = "missing"
    return found


def readme_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The results table's row: character error rate and speed per engine at each dpi."""
    cells = [
        f"{r['engine']} {r['dpi']} dpi CER {100 * r['cer']:.2f}% ({r['pages_per_s']:.2f} pages/s)"
        for r in rows
    ]
    return [
        {
            "what": f"OCR of skewed, noisy scans of {rows[0]['pages']} demo PDF pages",
            "number": "; ".join(cells),
            "command": "python benchmarks/bench_ocr.py",
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6, help="pages per dpi (default 6)")
    parser.add_argument("--engines", default="tesseract,rapidocr,shipped")
    parser.add_argument("--tesseract-threads", default="1", help="OMP_THREAD_LIMIT; 0: OpenMP's")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/ocr.json")
    args = parser.parse_args()
    global OMP_THREADS
    OMP_THREADS = args.tesseract_threads if args.tesseract_threads != "0" else ""
    engines: dict[str, Callable[[Any], str]] = {
        "tesseract": tesseract_text,
        "rapidocr": rapidocr_text,
        "shipped": shipped_text,
    }
    chosen = [name for name in args.engines.split(",") if name]
    if "rapidocr" in chosen and importlib.util.find_spec("rapidocr") is None:
        print("rapidocr is not installed (not a DocQA dependency): pip install rapidocr==3.10.0")
        chosen.remove("rapidocr")
    load_at_start = os.getloadavg()
    sample = pages(args.pages)
    rng = random.Random(SEED)
    scans = {dpi: [scan(pdf, page, dpi, rng) for pdf, page, _ in sample] for dpi in DPIS}
    # One warm-up call each: model loading is not a page's cost (the child loads it once).
    for name in chosen:
        engines[name](scans[150][0])
    rows: list[dict[str, Any]] = []
    for dpi in DPIS:
        for name in chosen:
            errors: list[float] = []
            started = time.perf_counter()
            per_page: list[dict[str, Any]] = []
            for (pdf, page, reference), image in zip(sample, scans[dpi], strict=True):
                t0 = time.perf_counter()
                text = engines[name](image)
                seconds = time.perf_counter() - t0
                errors.append(cer(reference, text))
                per_page.append(
                    {"pdf": pdf, "page": page, "cer": round(errors[-1], 4), "s": round(seconds, 2)}
                )
            elapsed = time.perf_counter() - started
            rows.append(
                {
                    "engine": name,
                    "dpi": dpi,
                    "pages": len(sample),
                    "cer": round(sum(errors) / len(errors), 4),
                    "cer_max": round(max(errors), 4),
                    "pages_per_s": round(len(sample) / elapsed, 3),
                    "per_page": per_page,
                }
            )
            row = rows[-1]
            print(f"{name:10} {dpi:4} dpi  CER {row['cer']:.2%}  {row['pages_per_s']:.2f} p/s")
    print()
    print(f"{'engine':10} {'dpi':>4} {'pages':>5} {'CER':>7} {'CER max':>8} {'pages/s':>8}")
    for row in rows:
        print(
            f"{row['engine']:10} {row['dpi']:>4} {row['pages']:>5} {row['cer']:>7.2%}"
            f" {row['cer_max']:>8.2%} {row['pages_per_s']:>8.2f}"
        )
    result = {
        "benchmark": "ocr",
        "cpu": cpu_description(),
        "python": platform.python_version(),
        "versions": versions(),
        "tesseract_omp_thread_limit": OMP_THREADS or "OpenMP default",
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "scan": {"dpis": list(DPIS), "skew_degrees": "±0.6-1.2", "noise_sigma": 18, "seed": SEED},
        "rows": rows,
        "readme_rows": readme_rows(rows),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
