"""Conversion under per-file time, memory and size limits, in a child process."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from indexer.convert import ConversionError
from indexer.isolation import ConversionLimits, ConversionWorker
from indexer.run import index_folder
from pipelines.settings import Settings
from pipelines.store import PassageStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def worker() -> ConversionWorker:
    worker = ConversionWorker(ConversionLimits(seconds=20, memory_mb=1024, file_mb=1))
    yield worker
    worker.close()


def test_a_good_file_converts_as_in_process(worker: ConversionWorker) -> None:
    from indexer.convert import convert_file

    for name in ("handbook.pdf", "travel-policy.docx", "onboarding.md"):
        assert worker.convert(FIXTURES / name) == convert_file(FIXTURES / name)
    with pytest.raises(ConversionError, match=r"^corrupt.pdf: not a readable PDF"):
        worker.convert(FIXTURES / "corrupt.pdf")
    assert worker.convert(FIXTURES / "opening-hours.txt").title == "opening-hours"


def test_a_file_over_the_size_limit_is_refused_unread(
    worker: ConversionWorker, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 300_000)  # 1.5 MB
    with pytest.raises(ConversionError) as info:
        worker.convert(big)
    assert str(info.value) == "big.txt: larger than the 1 MB limit for one file"


def test_a_decompression_bomb_is_stopped_by_the_memory_limit(tmp_path: Path) -> None:
    # A real DOCX whose document.xml inflates from about 1 MB to 1 GB of one paragraph.
    bomb = tmp_path / "bomb.docx"
    with (
        zipfile.ZipFile(FIXTURES / "travel-policy.docx") as good,
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for item in good.infolist():
            if item.filename != "word/document.xml":
                archive.writestr(item, good.read(item))
        xml = good.read("word/document.xml")
        head = xml[: xml.index(b"<w:body>")]
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head + b"<w:body><w:p><w:r><w:t>")
            for _ in range(1024):
                member.write(b"A" * (1 << 20))
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    assert bomb.stat().st_size < 5 * 1024 * 1024
    worker = ConversionWorker(ConversionLimits(seconds=60, memory_mb=600, file_mb=50))
    try:
        with pytest.raises(ConversionError) as info:
            worker.convert(bomb)
        assert str(info.value) in {
            "bomb.docx: needs more than 600 MB to convert",
            "bomb.docx: too large to convert in memory",
        }
        # The worker is usable again for the next file.
        assert worker.convert(FIXTURES / "onboarding.md").title == "Onboarding Guide"
    finally:
        worker.close()


def test_a_file_that_takes_too_long_is_stopped_and_the_run_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "opening-hours.txt").write_bytes((FIXTURES / "opening-hours.txt").read_bytes())
    # 400,000 paragraphs (8 MB): seconds to parse, far past a 0.2 s limit on any machine.
    (folder / "slow.html").write_bytes(b"<p>a few words</p>\n" * 400_000)
    settings = Settings(home=tmp_path / "home", convert_timeout_s=0.2)
    summary = index_folder([folder], settings, progress=False)
    assert summary.failed == [("docs/slow.html", "took longer than 0.2 s to convert (stopped)")]
    assert summary.added == 1
    assert [r.source for r in PassageStore.load(settings.index_dir).sources()] == [
        "docs/opening-hours.txt"
    ]
