"""Check an Office Open XML file (PPTX, XLSX) before python-pptx or openpyxl opens it.

Both libraries read the file with :mod:`zipfile` and load some parts whole (openpyxl the shared
strings, python-pptx every slide's XML), so a ZIP bomb named ``.xlsx`` would take all memory
before the child's memory limit stops it with a vague error. :mod:`zipfile` never inflates a
member past the size its header declares, so checking the declared sizes bounds what can be
inflated. A password-protected Office file is not a ZIP but an OLE compound file holding an
``EncryptedPackage`` stream; it is named as such rather than "not a zip file".
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from indexer.document import ConversionError

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on an Office file's container; a member is suspicious when both ratio and size are."""

    max_uncompressed_mb: int = 1024
    max_members: int = 10_000
    max_ratio: float = 200.0  # real sheet XML compresses 5-30x; a bomb of zeros about 1000x
    ratio_above_mb: int = 16


def check_office_zip(path: Path, data: bytes, kind: str, limits: ZipLimits = ZipLimits()) -> None:
    """Raise :class:`ConversionError` for an encrypted, non-ZIP or bomb-like ``kind`` file."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_STREAM in data:
            raise ConversionError(
                path, f"password-protected {kind}: remove the password to index it"
            )
        raise ConversionError(
            path,
            f"not a {kind} (an OLE file: an old binary Office format saved as .{kind.lower()}?)",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ConversionError(path, f"not a readable {kind} (not a ZIP package: {exc})") from None
    if len(members) > limits.max_members:
        raise ConversionError(path, f"not a readable {kind} ({len(members)} parts in its package)")
    total = 0
    for member in members:
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > limits.ratio_above_mb * 2**20 and ratio > limits.max_ratio:
            raise ConversionError(
                path,
                f"refused as a possible ZIP bomb: part {member.filename!r} inflates "
                f"{ratio:.0f}x to {member.file_size / 2**20:.0f} MB",
            )
    if total > limits.max_uncompressed_mb * 2**20:
        raise ConversionError(
            path,
            f"refused as a possible ZIP bomb: {total / 2**20:.0f} MB uncompressed "
            f"(limit {limits.max_uncompressed_mb} MB)",
        )
