"""Damaged slides, sheets (XLSX, ODS, CSV) and e-mail either convert or raise ConversionError
naming the file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.indexer.formats.samples import (
    make_csv,
    make_deck,
    make_message,
    make_ods,
    make_workbook,
)
from tests.indexer.test_convert_fuzz import check_converts_or_names_the_file, damaged


def _samples() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        made = [
            make(Path(folder) / name)
            for make, name in [(make_deck, "review.pptx"), (make_workbook, "figures.xlsx"),
                               (make_csv, "offices.csv"), (make_message, "move.eml"),
                               (make_ods, "figures.ods")]
        ]  # fmt: skip
        return {path.name: path.read_bytes() for path in made}


SAMPLES = _samples()
_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(case=damaged(SAMPLES, max_edits=4))
def test_damaged_files_convert_or_raise_our_error(case: tuple[str, bytes]) -> None:
    check_converts_or_names_the_file(*case)


@_FUZZ
@given(
    suffix=st.sampled_from([".pptx", ".xlsx", ".csv", ".eml", ".ods"]), data=st.binary(max_size=400)
)
def test_any_bytes_convert_or_raise_our_error(suffix: str, data: bytes) -> None:
    check_converts_or_names_the_file(f"file{suffix}", data)
