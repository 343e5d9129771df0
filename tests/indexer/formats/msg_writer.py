"""A minimal writer of Outlook ``.msg`` files for the tests: real CFB (OLE) files, MS-OXMSG layout.

No permissive library writes ``.msg`` files (python-oxmsg and olefile only read them), so the
tests build them here: a Compound File Binary v3 container ([MS-CFB]: 512-byte sectors, streams
under 4096 bytes in the mini stream) holding the storages and property streams of [MS-OXMSG]
(the message's ``__properties_version1.0`` and ``__substg1.0_PPPPTTTT`` streams, one storage per
recipient and per attachment). Read back by olefile and python-oxmsg like any Outlook file.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

_SECTOR = 512
_MINI = 64
_CUTOFF = 4096
_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF

PTYP_INT32, PTYP_TIME, PTYP_STRING, PTYP_BINARY = 0x0003, 0x0040, 0x001F, 0x0102


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[_Entry] = field(default_factory=list)
    start: int = _END
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM


def _sort_key(entry: _Entry) -> tuple[int, str]:
    return (len(entry.name), entry.name.upper())  # [MS-CFB] 2.6.4: shorter names first


def _chain(fat: list[int], first: int, count: int) -> None:
    for index in range(first, first + count):
        fat[index] = index + 1 if index + 1 < first + count else _END


def write_cfb(root_children: list[_Entry]) -> bytes:
    """A CFB v3 file with these storages and streams under its root."""
    root = _Entry("Root Entry", 5, children=root_children)
    entries: list[_Entry] = []

    def number(entry: _Entry) -> None:
        entries.append(entry)
        for child in entry.children:
            number(child)

    number(root)
    ids = {id(entry): index for index, entry in enumerate(entries)}

    def tree(siblings: list[_Entry]) -> int:  # a balanced binary search tree of the siblings
        if not siblings:
            return _NOSTREAM
        middle = len(siblings) // 2
        node = siblings[middle]
        node.left, node.right = tree(siblings[:middle]), tree(siblings[middle + 1 :])
        return ids[id(node)]

    for entry in entries:
        entry.child = tree(sorted(entry.children, key=_sort_key))

    streams = [e for e in entries if e.kind == 2]
    mini_stream = bytearray()
    minifat: list[int] = []
    big: list[_Entry] = []
    for stream in streams:
        if len(stream.data) < _CUTOFF:
            count = -(-len(stream.data) // _MINI)
            stream.start = len(minifat) if count else _END
            minifat.extend([0] * count)
            if count:
                _chain(minifat, stream.start, count)
            mini_stream += stream.data.ljust(count * _MINI, b"\0")
        else:
            big.append(stream)
    root.data = bytes(mini_stream)

    sectors: list[bytes] = []
    fat: list[int] = []

    def place(data: bytes, marker: int | None = None) -> int:
        count = -(-len(data) // _SECTOR)
        if not count:
            return _END
        first = len(sectors)
        for index in range(count):
            sectors.append(data[index * _SECTOR : (index + 1) * _SECTOR].ljust(_SECTOR, b"\0"))
        fat.extend([0] * count)
        _chain(fat, first, count)
        return first

    root.start = place(root.data)
    for stream in big:
        stream.start = place(stream.data)
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat)
    minifat_start = place(minifat_bytes)
    directory = b"".join(_dir_entry(entry) for entry in entries)
    empty = _dir_entry(None)
    directory += empty * (-len(entries) % (_SECTOR // 128))
    dir_start = place(directory)
    fat_count = 1
    while (len(sectors) + fat_count) > fat_count * (_SECTOR // 4):
        fat_count += 1
    fat_start = len(sectors)
    fat.extend([_FATSECT] * fat_count)
    fat.extend([_FREE] * (fat_count * (_SECTOR // 4) - len(fat)))
    for index in range(fat_count):
        sectors.append(struct.pack("<128I", *fat[index * 128 : (index + 1) * 128]))
    assert fat_count <= 109, "a DIFAT beyond the header is not written"
    difat = [fat_start + i for i in range(fat_count)] + [_FREE] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
        0, fat_count, dir_start, 0, _CUTOFF,
        minifat_start if minifat else _END, -(-len(minifat_bytes) // _SECTOR), _END, 0,
    ) + struct.pack("<109I", *difat)  # fmt: skip
    return header + b"".join(sectors)


def _dir_entry(entry: _Entry | None) -> bytes:
    if entry is None:
        return struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, _NOSTREAM, _NOSTREAM, _NOSTREAM,
                           b"", 0, 0, 0, 0, 0)  # fmt: skip
    name = (entry.name + "\0").encode("utf-16-le")
    size = len(entry.data) if entry.kind in (2, 5) else 0
    start = entry.start if entry.kind in (2, 5) and size else (_END if entry.kind == 5 else 0)
    return struct.pack("<64sHBBIII16sIQQIQ", name, len(name), entry.kind, 1, entry.left,
                       entry.right, entry.child, b"", 0, 0, 0, start, size)  # fmt: skip


# -- MS-OXMSG ---------------------------------------------------------------------------------

Value = str | int | bytes | dt.datetime


def _properties(props: dict[int, tuple[int, Value]], header: bytes) -> list[_Entry]:
    """The ``__properties_version1.0`` stream and one ``__substg1.0_`` stream per variable value."""
    fixed = bytearray(header)
    streams: list[_Entry] = []
    for pid, (ptyp, value) in sorted(props.items()):
        if ptyp == PTYP_STRING:
            data = str(value).encode("utf-16-le")
        elif ptyp == PTYP_BINARY:
            data = bytes(value)  # type: ignore[arg-type]
        else:
            data = b""
        if ptyp in (PTYP_STRING, PTYP_BINARY):
            streams.append(_Entry(f"__substg1.0_{pid:04X}{ptyp:04X}", 2, data))
            payload = struct.pack("<II", len(data) + (2 if ptyp == PTYP_STRING else 0), 0)
        elif ptyp == PTYP_TIME:
            assert isinstance(value, dt.datetime)
            epoch = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
            payload = struct.pack("<Q", int((value - epoch).total_seconds()) * 10_000_000)
        else:
            payload = struct.pack("<iI", int(value), 0)  # type: ignore[arg-type]
        fixed += struct.pack("<HHI", ptyp, pid, 0x6) + payload
    return [_Entry("__properties_version1.0", 2, bytes(fixed)), *streams]


def make_msg(
    subject: str,
    sender: tuple[str, str],
    recipients: list[tuple[str, str, int]],
    body: str | None = None,
    html: bytes | None = None,
    sent: dt.datetime | None = None,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    internet_headers: str | None = None,
) -> bytes:
    """An IPM.Note: ``recipients`` as (name, address, 1 To / 2 Cc / 3 Bcc)."""
    props: dict[int, tuple[int, Value]] = {
        0x001A: (PTYP_STRING, "IPM.Note"),
        0x0037: (PTYP_STRING, subject),
        0x0C1A: (PTYP_STRING, sender[0]),
        0x0C1F: (PTYP_STRING, sender[1]),
        0x3FDE: (PTYP_INT32, 65001),  # the HTML body's code page: UTF-8
    }
    if body is not None:
        props[0x1000] = (PTYP_STRING, body)
    if html is not None:
        props[0x1013] = (PTYP_BINARY, html)
    if sent is not None:
        props[0x0039] = (PTYP_TIME, sent)
    if internet_headers is not None:
        props[0x007D] = (PTYP_STRING, internet_headers)
    counts = struct.pack("<8xIIII8x", len(recipients), len(attachments), len(recipients),
                         len(attachments))  # fmt: skip
    children = _properties(props, counts)
    for index, (name, address, kind) in enumerate(recipients):
        recipient = {0x3001: (PTYP_STRING, name), 0x39FE: (PTYP_STRING, address),
                     0x0C15: (PTYP_INT32, kind)}  # fmt: skip
        storage = _Entry(f"__recip_version1.0_#{index:08X}", 1)
        storage.children = _properties(recipient, b"\0" * 8)  # type: ignore[arg-type]
        children.append(storage)
    for index, (name, data) in enumerate(attachments):
        attachment = {0x3705: (PTYP_INT32, 1), 0x3707: (PTYP_STRING, name),
                      0x3701: (PTYP_BINARY, data)}  # fmt: skip
        storage = _Entry(f"__attach_version1.0_#{index:08X}", 1)
        storage.children = _properties(attachment, b"\0" * 8)  # type: ignore[arg-type]
        children.append(storage)
    return write_cfb(children)
