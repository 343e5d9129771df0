"""Damaged slides, sheets and e-mail either convert or raise ConversionError naming the file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.convert import ConversionError, convert_file
from tests.indexer.formats.samples import make_csv, make_deck, make_message, make_workbook


def _samples() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        made = [
            make(Path(folder) / name)
            for make, name in [(make_deck, "review.pptx"), (make_workbook, "figures.xlsx"),
                               (make_csv, "offices.csv"), (make_message, "move.eml")]
        ]  # fmt: skip
        return {path.name: path.read_bytes() for path in made}


SAMPLES = _samples()
_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(name: str, data: bytes) -> None:
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


@st.composite
def _damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    """A good sample, truncated, with bytes overwritten or inserted."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    data = bytearray(SAMPLES[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return name, bytes(data)


@_FUZZ
@given(case=_damaged())
def test_damaged_files_convert_or_raise_our_error(case: tuple[str, bytes]) -> None:
    _check(*case)


@_FUZZ
@given(suffix=st.sampled_from([".pptx", ".xlsx", ".csv", ".eml"]), data=st.binary(max_size=400))
def test_any_bytes_convert_or_raise_our_error(suffix: str, data: bytes) -> None:
    _check(f"file{suffix}", data)
