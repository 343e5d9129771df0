"""Outlook messages (``.msg``) as text: the headers, the body, the attachments, like ``.eml``.

Read with python-oxmsg (MIT; the one Haystack's ``MSGToDocument`` uses; not extract-msg, which
is GPL). The headers come from the message's stored Internet headers when it was received, else
from its properties (sender, recipients by To/Cc, submit time); the plain-text body is preferred
to the HTML one; attachments stored in the message are converted like an ``.eml``'s
(:func:`indexer.formats.email.message_document`). An Outlook item attached to the message
(a message or contact stored as a sub-storage) and a body kept only as RTF are not read.

Not Haystack's ``MSGToDocument``: it writes attachments out as separate byte streams without
converting them, and logs and skips a file it cannot read, where the indexer needs an error
naming the file.
"""

from __future__ import annotations

import io
import logging
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from indexer.document import ConversionError, ConvertedDocument, one_line
from indexer.formats.attachments import Attachment, safe_name
from indexer.formats.email import message_document

logger = logging.getLogger(__name__)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_RECIPIENT_HEADERS = {1: "To", 2: "Cc"}  # PidTagRecipientType; 3 (Bcc) is left out


def _headers(message: Any) -> dict[str, str]:
    from oxmsg.domain import constants as c

    # The Internet headers of a received message, if kept (names in any case).
    stored = {name.lower(): value for name, value in message.message_headers.items()}
    headers = {
        "From": message.sender or "",
        "Subject": message.subject,
        "To": stored.get("to") or "",
        "Cc": stored.get("cc") or "",
        "Date": stored.get("date") or "",
    }
    if not headers["To"] and not headers["Cc"]:
        by_type: dict[str, list[str]] = {"To": [], "Cc": []}
        for recipient in message.recipients:
            kind = _RECIPIENT_HEADERS.get(recipient.properties.int_prop_value(c.PID_RECIPIENT_TYPE))
            if kind is None:
                continue
            name, address = recipient.name, recipient.email_address
            by_type[kind].append(f"{name} <{address}>" if name and address else name or address)
        headers["To"] = ", ".join(by_type["To"])
        headers["Cc"] = ", ".join(by_type["Cc"])
    if not headers["Date"] and message.sent_date is not None:
        headers["Date"] = format_datetime(message.sent_date)
    return headers


def _attachments(path: Path, message: Any) -> list[Attachment]:
    from oxmsg.domain import constants as c

    found: list[Attachment] = []
    for number, attachment in enumerate(message.attachments, start=1):
        try:
            name = safe_name(
                attachment.file_name or attachment.properties.str_prop_value(c.PID_ATTACH_FILENAME)
            )
            found.append(Attachment(name or f"attachment {number}", attachment.file_bytes,
                                    "an Outlook item or a link, not a file"))  # fmt: skip
        except (KeyError, ValueError, UnicodeError) as exc:  # one damaged attachment
            logger.info("%s: attachment %d unreadable (%s)", path.name, number, exc)
            found.append(Attachment(f"attachment {number}", None, f"unreadable ({exc})"))
    return found


def convert_msg(path: Path, data: bytes) -> ConvertedDocument:
    """An Outlook message: its headers, its body (plain, else HTML as text), its attachments."""
    from oxmsg import Message

    if not data.startswith(_OLE_MAGIC):
        raise ConversionError(path, "not an Outlook message (not an OLE compound file)")
    try:
        message = Message.load(io.BytesIO(data))
        headers = _headers(message)
        body, html = message.body, message.html_body
        attachments = _attachments(path, message)
    except MemoryError:  # the caller reports it (and caps memory)
        raise
    except Exception as exc:  # olefile and property decoding errors from damaged files
        raise ConversionError(
            path, f"not a readable Outlook message ({type(exc).__name__}: {exc})"
        ) from None
    if not any(one_line(v) for v in headers.values()) and not body and not html:
        raise ConversionError(path, "not an Outlook message (no headers or body)")
    return message_document(path, "msg", headers, body, html, attachments)
