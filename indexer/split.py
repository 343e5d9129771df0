"""Split a converted document into overlapping passages (Haystack ``Document``s) with exact offsets.

A passage is a range of whole words of the converted text: ``text[start:end] == content`` always
holds, because the content is cut out of the text by those offsets and never rebuilt from words.
Passages are filled with whole paragraphs up to about ``words`` words; a passage that has to end
inside a paragraph ends after a sentence where one is near, else after any word. Consecutive
passages share about ``overlap`` words so that an answer on a boundary is whole in one of them.

With ``sections=True`` a new section (a heading of the document) starts a new passage, without
overlap, once the passage holds ``words / 8`` words: a passage does not run on from one topic
into the next (a heading with a line or two under it still joins the next section).

Passages are bounded in characters as well (``max_chars``), and a run of text without spaces
counts as one word per ``MAX_WORD_CHARS`` characters: a 3 MB line with no space is many passages,
not one, so no answer or context shown can be megabytes long.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from haystack import Document

from indexer.document import ConvertedDocument, locate

# A passage is a Haystack Document; the alias names the role in signatures.
Passage = Document

# Longer runs of non-space characters are cut into words of this length (the reader's tokenizer
# gives up on longer words too: BERT's WordPiece makes one [UNK] of anything over 100 characters).
MAX_WORD_CHARS = 100
_WORD = re.compile(rf"\S{{1,{MAX_WORD_CHARS}}}")
_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")
# Ending at a paragraph or sentence boundary is preferred only when the passage still gets at
# least this fraction of ``words``; otherwise it is cut at ``words`` words.
_MIN_FILL = 0.5
# With sections=True, a section start ends a passage that has at least this fraction of ``words``.
_MIN_SECTION_FILL = 0.125


def doc_id_for(path: Path) -> str:
    """Stable id of a source document: sha1 of its resolved absolute path, first 16 hex chars."""
    return hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:16]


def source_for(path: Path, root: Path | None) -> str:
    """The path users see: relative to ``root`` and prefixed by the root folder's name."""
    path = Path(path).resolve()
    if root is None:
        return path.name
    root = Path(root).resolve()
    if root == path or root.is_file():
        return path.name
    return (Path(root.name) / path.relative_to(root)).as_posix()


def modified_iso(mtime: float) -> str:
    """ISO-8601 UTC date-time of a file modification time (seconds since the epoch)."""
    return dt.datetime.fromtimestamp(mtime, tz=dt.UTC).isoformat(timespec="seconds")


def word_ranges(
    text: str,
    words: int,
    overlap: int,
    max_chars: int | None = None,
    section_starts: Sequence[int] = (),
) -> list[tuple[int, int]]:
    """Passages as ``(first_word, end_word)`` index ranges over the words of ``text``.

    A passage has at most ``words`` words and, when ``max_chars`` is given, at most ``max_chars``
    characters (at least one word: words are at most ``MAX_WORD_CHARS`` long); a passage cut by
    characters shares proportionally fewer words with the next. ``section_starts``: character
    offsets where a section begins; a passage ends before the first one past its first
    ``words / 8`` words, and the next passage starts there.
    """
    if words < 1:
        raise ValueError(f"words must be at least 1, got {words}")
    if not 0 <= overlap < words:
        raise ValueError(f"overlap must be in [0, words), got {overlap} with words={words}")
    if max_chars is not None and max_chars < MAX_WORD_CHARS:
        raise ValueError(f"max_chars must be at least {MAX_WORD_CHARS}, got {max_chars}")
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    ends = [end for _, end in spans]
    n = len(spans)
    # paragraph_start[i]: a blank line separates word i from word i-1.
    paragraph_start = [i > 0 and "\n\n" in text[spans[i - 1][1] : spans[i][0]] for i in range(n)]
    sentence_end = [bool(_SENTENCE_END.search(text[s:e])) for s, e in spans]
    starts = [start for start, _ in spans]
    # Word indices where a section begins (the first word at or after each offset).
    section_words = sorted({bisect.bisect_left(starts, offset) for offset in section_starts})

    ranges: list[tuple[int, int]] = []
    first = 0
    while first < n:
        budget = words
        if max_chars is not None:
            fits = bisect.bisect_right(ends, spans[first][0] + max_chars, lo=first)
            budget = max(1, min(words, fits - first))
        min_fill = max(1, int(budget * _MIN_FILL))
        limit = first + budget
        section = next(
            (
                i
                for i in section_words[bisect.bisect_right(section_words, first) :]
                if i - first >= max(1, int(words * _MIN_SECTION_FILL))
            ),
            None,
        )
        if section is not None and section <= min(limit, n - 1):
            end = section
        elif limit >= n:
            end = n
        else:
            end = limit
            # The best break after at least min_fill words: a paragraph, else a sentence.
            paragraph = next(
                (i for i in range(limit, first + min_fill - 1, -1) if paragraph_start[i]), None
            )
            if paragraph is not None:
                end = paragraph
            else:
                sentence = next(
                    (i for i in range(limit, first + min_fill - 1, -1) if sentence_end[i - 1]),
                    None,
                )
                if sentence is not None:
                    end = sentence
        ranges.append((first, end))
        if end >= n:
            break
        shared = overlap if budget == words else overlap * budget // words
        if end == section:
            shared = 0  # the new section starts clean
        first = max(end - shared, first + 1)
    return ranges


def split_document(
    doc: ConvertedDocument,
    words: int = 200,
    overlap: int = 30,
    *,
    max_chars: int | None = 4000,
    root: Path | None = None,
    source: str | None = None,
    doc_id: str | None = None,
    modified: str | None = None,
    sections: bool = False,
) -> list[Passage]:
    """Passages of ``doc`` with the contract's meta; ``source`` is relative to ``root``.

    ``source`` (the name users see) defaults to :func:`source_for` the path and ``root``;
    ``doc_id`` defaults to :func:`doc_id_for` of the document's path and ``modified`` to the
    file's current mtime (both are passed by the indexer, which has already stat-ed the file).
    """
    path = Path(doc.path).resolve()
    doc_id = doc_id or doc_id_for(path)
    if modified is None:
        modified = modified_iso(path.stat().st_mtime)
    source = source if source is not None else source_for(path, root)
    spans = [(m.start(), m.end()) for m in _WORD.finditer(doc.text)]
    section_starts = (
        [
            span.start
            for before, span in zip(doc.spans, doc.spans[1:], strict=False)
            if span.section and span.section != before.section
        ]
        if sections
        else []
    )
    ranges = word_ranges(doc.text, words, overlap, max_chars, section_starts)
    passages: list[Passage] = []
    for index, (first, end) in enumerate(ranges):
        start_char, end_char = spans[first][0], spans[end - 1][1]
        where = locate(doc, start_char)
        passages.append(
            Document(
                id=f"{doc_id}-{index:05d}",
                content=doc.text[start_char:end_char],
                meta={
                    "doc_id": doc_id,
                    "source": source,
                    "path": str(path),
                    "title": doc.title,
                    "file_type": doc.file_type,
                    "page": where.page,
                    "section": where.section,
                    "start": start_char,
                    "end": end_char,
                    "passage_index": index,
                    "modified": modified,
                    # Pages/sections starting inside the passage: [offset in passage, page,
                    # section], so an answer is cited where it is, not where its passage starts.
                    "boundaries": [
                        [s.start - start_char, s.page, s.section]
                        for s in doc.spans
                        if start_char < s.start < end_char
                    ],
                },
            )
        )
    return passages
