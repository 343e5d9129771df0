"""E-books (``.epub``) as text: the chapters in reading order, each chapter a section.

An EPUB is a ZIP package: ``META-INF/container.xml`` names the OPF package document, whose
``spine`` lists the chapters (XHTML files of its ``manifest``) in reading order. Each chapter
goes through the project's HTML converter (:func:`indexer.convert.html_blocks`: lists, tables as
"header: value" rows, scripts and navigation dropped) and all its text is cited as one section:
the chapter's first heading, else "chapter N" (N its place in the spine). The title is the OPF's
``dc:title``.

Read with :mod:`zipfile` and lxml, not ebooklib (AGPL). Bounded like an Office file
(:func:`~indexer.formats.office_zip.check_office_zip` refuses ZIP bombs) and by
``max_chapters``; a DRM-encrypted book (``META-INF/encryption.xml`` naming a chapter) is refused
with that reason; font obfuscation, which EPUB also declares there, is not encryption of text.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag

from indexer.convert import html_blocks
from indexer.document import Block, ConversionError, ConvertedDocument, assemble
from indexer.formats.odt import xml_root
from indexer.formats.office_zip import check_office_zip

logger = logging.getLogger(__name__)

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_HTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
# Algorithms that only obfuscate embedded fonts (IDPF and Adobe); anything else is DRM.
_FONT_OBFUSCATION = {
    "http://www.idpf.org/2008/embedding",
    "http://ns.adobe.com/pdf/enc#RC",
}


@dataclass(frozen=True)
class EpubLimits:
    max_chapters: int = 5_000


def _read(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise ConversionError(path, f"not a readable EPUB (missing {name})") from None


def _encrypted(path: Path, archive: zipfile.ZipFile) -> set[str]:
    """The package paths encrypted with something other than font obfuscation."""
    if "META-INF/encryption.xml" not in archive.namelist():
        return set()
    root = xml_root(path, archive.read("META-INF/encryption.xml"), "EPUB")
    found: set[str] = set()
    for data in root.iter(f"{_ENC}EncryptedData"):
        method = data.find(f"{_ENC}EncryptionMethod")
        if method is not None and method.get("Algorithm") in _FONT_OBFUSCATION:
            continue
        for ref in data.iter(f"{_ENC}CipherReference"):
            found.add(posixpath.normpath(unquote(ref.get("URI", ""))))
    return found


def _spine(path: Path, archive: zipfile.ZipFile) -> tuple[list[str], str]:
    """The package paths of the spine's (X)HTML chapters in reading order, and the book's title."""
    container = xml_root(path, _read(path, archive, "META-INF/container.xml"), "EPUB")
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise ConversionError(path, "not a readable EPUB (container.xml names no package)")
    opf_path = unquote(rootfile.get("full-path", ""))
    opf = xml_root(path, _read(path, archive, opf_path), "EPUB")
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): item
        for item in opf.iter(f"{_OPF}item")
        if item.get("id") and item.get("href")
    }
    chapters: list[str] = []
    for ref in opf.iter(f"{_OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _HTML_TYPES:
            continue
        href = urldefrag(unquote(item.get("href", ""))).url
        chapters.append(posixpath.normpath(posixpath.join(base, href)))
    title_element = opf.find(f".//{_DC}title")
    title = (title_element.text or "") if title_element is not None else ""
    return chapters, title


def convert_epub(path: Path, data: bytes, limits: EpubLimits = EpubLimits()) -> ConvertedDocument:
    """An EPUB book: each spine chapter through the HTML converter, cited as its section."""
    check_office_zip(path, data, "EPUB")
    blocks: list[Block] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        chapters, title = _spine(path, archive)
        if not chapters:
            raise ConversionError(path, "not a readable EPUB (no chapters in its spine)")
        if len(chapters) > limits.max_chapters:
            raise ConversionError(
                path, f"{len(chapters)} chapters (limit {limits.max_chapters}): not indexed"
            )
        locked = _encrypted(path, archive) & set(chapters)
        if locked:
            raise ConversionError(path, "encrypted EPUB (DRM): its chapters cannot be read")
        for number, name in enumerate(chapters, start=1):
            try:
                markup = archive.read(name)
            except KeyError:
                logger.warning("%s: chapter %s missing from the package", path.name, name)
                continue
            chapter, _ = html_blocks(path, markup)
            label = next((b.section for b in chapter if b.section), None) or f"chapter {number}"
            blocks.extend(Block(b.text, section=label) for b in chapter)
    logger.debug("%s: %d chapters", path.name, len(chapters))
    return assemble(path, "epub", blocks, title or None)
