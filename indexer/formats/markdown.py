"""Markdown (file type ``md``) to text for :func:`indexer.convert.convert_file`: the token walk of
markdown-it (headings become sections, lists keep their markers, tables their header labels,
embedded HTML its text).
"""

from __future__ import annotations

import re
from pathlib import Path

from indexer.convert import decode_text, html_fragment_text, table_text
from indexer.document import Block, ConvertedDocument, assemble, one_line


def _md_inline(token: object) -> str:
    parts: list[str] = []
    for child in getattr(token, "children", None) or []:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "image":
            parts.append(_md_inline(child))  # the alt text
    return "".join(parts)


def convert_md(path: Path, data: bytes) -> ConvertedDocument:
    """A Markdown file (CommonMark with tables) as text with its sections."""
    from markdown_it import MarkdownIt

    source = decode_text(path, data)
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    blocks: list[Block] = []
    section: str | None = None
    first_h1: str | None = None
    first_heading: str | None = None
    list_lines: list[str] = []  # lines of the outermost list being read
    list_stack: list[bool] = []  # ordered? per open list
    item_open = False  # the current list item already has a line to append paragraphs to
    table_rows: list[tuple[list[str], bool]] = []
    row_cells: list[str] | None = None
    in_head = False

    def emit(text: str) -> None:
        if list_stack:
            list_lines.append(text)
        else:
            blocks.append(Block(text, section=section))

    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            text = one_line(_md_inline(tokens[i + 1]))
            if text:
                if not list_stack:
                    section = text
                first_heading = first_heading or text
                if token.tag == "h1" and first_h1 is None:
                    first_h1 = text
                emit(text)
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            list_stack.append(kind == "ordered_list_open")
            item_open = False
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_stack.pop()
            item_open = False
            if not list_stack:
                # An item with nothing after its marker ("- ") leaves no line.
                lines = [line for line in list_lines if not re.fullmatch(r"(-|\d+\.) ?", line)]
                blocks.append(Block("\n".join(lines), section=section))
                list_lines = []
        elif kind == "list_item_open":
            marker = f"{token.info}." if list_stack and list_stack[-1] and token.info else "-"
            list_lines.append(f"{marker} ")
            item_open = True
        elif kind == "list_item_close":
            item_open = False
        elif kind == "inline" and row_cells is not None:
            row_cells.append(one_line(_md_inline(token)))
        elif kind == "inline":
            text = _md_inline(token)
            if list_stack and item_open:
                # Several paragraphs of one item stay on the item's line.
                sep = "" if list_lines[-1].endswith(" ") else " "
                list_lines[-1] += sep + one_line(text)
                item_open = True
            else:
                emit(text)
        elif kind in ("fence", "code_block"):
            emit(token.content)
        elif kind == "html_block":
            emit(html_fragment_text(token.content))
        elif kind in ("thead_open", "thead_close"):
            in_head = kind == "thead_open"
        elif kind == "tr_open":
            row_cells = []
        elif kind == "tr_close":
            table_rows.append((row_cells or [], in_head))
            row_cells = None
        elif kind == "table_close":
            emit(table_text(table_rows))
            table_rows = []
        i += 1
    return assemble(path, "md", blocks, first_h1 or first_heading)
