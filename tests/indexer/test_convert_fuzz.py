"""Fuzzing the converters: any file either converts or raises ConversionError naming the file.

Real folders hold damaged, truncated and mislabeled files; each must end as a one-line reason in
the run's report, never as a traceback that stops the run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.convert import ConversionError, convert_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOOD = ["handbook.pdf", "travel-policy.docx", "security.html", "onboarding.md", "opening-hours.txt"]
SAMPLES = {name: (FIXTURES / name).read_bytes() for name in GOOD}
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_converts_or_names_the_file(name: str, data: bytes) -> None:
    """``data`` saved as ``name`` converts to clean text or raises our one-line error."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            doc = convert_file(path)
        except ConversionError as exc:
            assert str(exc).startswith(f"{name}: ") and "\n" not in str(exc), str(exc)
            return
        assert doc.text and doc.text == doc.text.strip()
        assert doc.spans[0].start == 0 and doc.spans[-1].end == len(doc.text)


def damaged(samples: dict[str, bytes], max_edits: int) -> st.SearchStrategy[tuple[str, bytes]]:
    """A good file of ``samples``, truncated, with bytes overwritten or inserted (at most
    ``max_edits`` times): what disks and mail do."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> tuple[str, bytes]:
        name = draw(st.sampled_from(sorted(samples)))
        data = bytearray(samples[name])
        for _ in range(draw(st.integers(1, max_edits))):
            kind = draw(st.sampled_from(["truncate", "flip", "insert"]))
            at = draw(st.integers(0, max(0, len(data) - 1)))
            if kind == "truncate":
                del data[at:]
            elif kind == "flip" and data:
                data[at] = draw(st.integers(0, 255))
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
        return name, bytes(data)

    return draw_one()


@_FUZZ
@given(case=damaged(SAMPLES, max_edits=6))
def test_damaged_files_convert_or_raise_our_error(case: tuple[str, bytes]) -> None:
    check_converts_or_names_the_file(*case)


@_FUZZ
@given(
    suffix=st.sampled_from([".pdf", ".docx", ".html", ".md", ".txt"]),
    data=st.binary(max_size=400),
)
def test_any_bytes_convert_or_raise_our_error(suffix: str, data: bytes) -> None:
    check_converts_or_names_the_file(f"file{suffix}", data)


def test_deeply_nested_markup_converts_or_raises_our_error() -> None:
    for name, data in {
        "deep.html": b"<div>" * 100_000 + b"Deep text." + b"</div>" * 100_000,
        "deep-list.html": b"<ul><li>" * 20_000 + b"item" + b"</li></ul>" * 20_000,
        "deep.md": b"> " * 50_000 + b"quoted\n",
        "deep-list.md": b"".join(b"  " * i + b"- item\n" for i in range(3000)),
    }.items():
        check_converts_or_names_the_file(name, data)
