"""E-mail messages (``.eml``, RFC 5322 / MIME) as text: the headers, then the body.

Read with the standard library's :mod:`email` (``policy.default``: headers decoded, the body in
its declared charset). The From, To, Cc, Date and Subject headers come first, one line each,
then the plain-text body; a message with only an HTML body goes through the HTML converter of
:mod:`indexer.convert` (its headings become sections). Attachments are listed by name on an
"Attachments:" line; their content is not indexed yet (a later slice indexes them as documents
of their own that cite the message).
"""

from __future__ import annotations

import logging
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

from indexer.convert import (
    ConversionError,
    ConvertedDocument,
    _assemble,
    _Block,
    _one_line,
    html_blocks,
)

logger = logging.getLogger(__name__)

HEADERS = ("From", "To", "Cc", "Date", "Subject")


def _part_text(path: Path, part: Message) -> str:
    """A text part's content; an unknown or wrong charset costs characters, not the message."""
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, KeyError, ValueError) as exc:
        logger.info("%s: body charset unreadable (%s); decoded as UTF-8 with replacements",
                    path.name, exc)  # fmt: skip
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _header(message: Message, name: str) -> str:
    try:
        values = message.get_all(name) or []
        return _one_line(", ".join(str(v) for v in values))
    except (ValueError, TypeError, IndexError) as exc:  # a malformed header costs that header
        logger.debug("%s header unreadable: %s", name, exc)
        return ""


def convert_eml(path: Path, data: bytes) -> ConvertedDocument:
    """An RFC 5322 message: its headers, then its text body (or its HTML body as text)."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ConversionError(path, "not an e-mail message (no headers)")
    lines = [f"{name}: {value}" for name in HEADERS if (value := _header(message, name))]
    blocks = [_Block("\n".join(lines))]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _part_text(path, body)
        if body.get_content_subtype() == "html":
            html, _ = html_blocks(path, text)
            blocks.extend(html)
        else:
            blocks.append(_Block(text))
    names = [_one_line(part.get_filename()) for part in message.iter_attachments()]
    if any(names):
        blocks.append(_Block("Attachments: " + ", ".join(n for n in names if n)))
    return _assemble(path, "eml", blocks, _header(message, "Subject"))
