"""E-mail messages (``.eml``, RFC 5322 / MIME) as text: the headers, the body, the attachments.

Read with the standard library's :mod:`email` (``policy.default``: headers decoded, the body in
its declared charset). The From, To, Cc, Date and Subject headers come first, one line each,
then the plain-text body; a message with only an HTML body goes through the HTML converter of
:mod:`indexer.convert` (its headings become sections). Attachments are listed by name on an
"Attachments:" line and those of a supported type follow as sections "attachment NAME"
(:mod:`indexer.formats.attachments`). :func:`message_document` is shared with Outlook ``.msg``
(:mod:`indexer.formats.msg`), so both kinds of message read the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path

from indexer.convert import html_blocks
from indexer.document import Block, ConversionError, ConvertedDocument, assemble, one_line
from indexer.formats.attachments import Attachment, attachment_blocks, safe_name

logger = logging.getLogger(__name__)

HEADERS = ("From", "To", "Cc", "Date", "Subject")


def message_document(
    path: Path,
    file_type: str,
    headers: Mapping[str, str],
    body: str | None,
    html: str | None,
    attachments: Iterable[Attachment],
) -> ConvertedDocument:
    """A message's document: the :data:`HEADERS` present, the plain body (else the HTML one as
    text), then its attachments; titled by its subject."""
    lines = [f"{name}: {value}" for name in HEADERS if (value := one_line(headers.get(name)))]
    blocks = [Block("\n".join(lines))]
    if body and body.strip():
        blocks.append(Block(body))
    elif html:
        blocks.extend(html_blocks(path, html)[0])
    more, report = attachment_blocks(path, attachments)
    doc = assemble(path, file_type, [*blocks, *more], one_line(headers.get("Subject")))
    if report:
        doc.meta["attachments"] = report
    return doc


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
        return one_line(", ".join(str(v) for v in values))
    except (ValueError, TypeError, IndexError) as exc:  # a malformed header costs that header
        logger.debug("%s header unreadable: %s", name, exc)
        return ""


def _attachment(part: Message) -> Attachment:
    """A MIME attachment's name and decoded bytes; an attached message as ``.eml`` bytes."""
    name = safe_name(part.get_filename())
    if part.get_content_maintype() == "message":
        inner = part.get_payload(0) if part.is_multipart() else None
        if not isinstance(inner, Message):
            return Attachment(name or "message.eml", None, "unreadable attached message")
        return Attachment(name or f"{safe_name(_header(inner, 'Subject')) or 'message'}.eml",
                          inner.as_bytes(policy=policy.default))  # fmt: skip
    payload = part.get_payload(decode=True)
    return Attachment(name, payload if isinstance(payload, bytes) else None)


def convert_eml(path: Path, data: bytes) -> ConvertedDocument:
    """An RFC 5322 message: its headers, its text body (or its HTML body as text), attachments."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ConversionError(path, "not an e-mail message (no headers)")
    headers = {name: _header(message, name) for name in HEADERS}
    plain = html = None
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _part_text(path, body)
        if body.get_content_subtype() == "html":
            html = text
        else:
            plain = text
    attachments = [_attachment(part) for part in message.iter_attachments()]
    return message_document(path, "eml", headers, plain, html, attachments)
