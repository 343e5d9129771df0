"""HTML for the pages: everything from documents and users is escaped before markup is added.

The only markup DocQA itself adds is ``<mark>`` around answers, a few ``<div>``/``<span>`` with
classes, the ``<ul>`` of a case-dependent answer's cases, and the one script of the document view
(which scrolls to the mark). Text from documents and users is passed through
:func:`html.escape` first, so a document that contains ``<script>`` or ``<img onerror=...>`` is
shown as that text and never runs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import streamlit as st

STYLE = """
<style>
.docqa-passage { white-space: pre-wrap; line-height: 1.55; padding: .6rem .8rem;
  border-left: 3px solid #c9d3e0; background: #f7f9fc; border-radius: 4px; color: #1f2937;
  font-size: .95rem; overflow-wrap: anywhere; }
.docqa-passage mark, .docqa-doc mark { background: #ffe066; padding: 0 .1em; border-radius: 2px; }
.docqa-answer { font-size: 1.25rem; font-weight: 600; margin: 0 0 .2rem 0; color: #111827;
  overflow-wrap: anywhere; }
.docqa-meta { color: #4b5563; font-size: .88rem; margin: .35rem 0 .2rem 0; }
.docqa-score { display: inline-block; font-size: .8rem; font-weight: 600; padding: .05rem .45rem;
  border-radius: 1rem; background: #e0ecff; color: #1d4ed8; margin-left: .4rem;
  vertical-align: middle; }
.docqa-score.low { background: #fde8e8; color: #b91c1c; }
.docqa-cases { margin: .1rem 0 .4rem 0; padding-left: 1.2rem; color: #111827; }
.docqa-cases li { margin: .1rem 0; overflow-wrap: anywhere; }
.docqa-cases mark { background: #ffe066; padding: 0 .1em; border-radius: 2px; }
.docqa-title { font-size: 1.4rem; font-weight: 600; margin: 0; overflow-wrap: anywhere; }
.docqa-scrollbox { white-space: pre-wrap; max-height: 18rem; overflow-y: auto;
  border: 1px solid #e5e7eb; border-radius: 4px; padding: .6rem .8rem; font-size: .9rem;
  background: #fbfbfc; overflow-wrap: anywhere; }
</style>
"""

# The document view runs in its own iframe, so it carries its own style and script.
_DOCUMENT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
body {{ margin: 0; font-family: "Source Sans Pro", system-ui, sans-serif; color: #1f2937; }}
.docqa-doc {{ white-space: pre-wrap; line-height: 1.6; padding: .5rem 1rem 4rem 1rem;
  font-size: 15px; overflow-wrap: anywhere; }}
mark {{ background: #ffe066; padding: 0 .1em; border-radius: 2px; }}
</style></head><body>
<div class="docqa-doc">{body}</div>
<script>
// Scroll this frame only (scrollIntoView would scroll the page around the frame too).
window.addEventListener("load", function () {{
  var target = document.getElementById("docqa-answer");
  if (target) {{
    var top = target.getBoundingClientRect().top + window.scrollY;
    window.scrollTo(0, Math.max(0, top - window.innerHeight / 3));
  }}
}});
</script>
</body></html>
"""


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def md(text: object) -> str:
    """Text made literal inside Streamlit Markdown (alerts, button and radio labels).

    Markdown punctuation is backslash-escaped; a colon is followed by a zero-width space
    because Streamlit expands ``:material/icon:``, ``:red[...]`` and ``:emoji:`` even when
    escaped, and because it breaks bare-URL autolinks.
    """
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text))
    return escaped.replace(":", ":\u200b")


def esc(text: object) -> str:
    """Text made safe to put inside HTML (also inside attribute values)."""
    return html.escape(str(text), quote=True)


# The most characters of a passage or a document the page shows at once: a browser tab should
# never be handed megabytes (a log file or a dump indexed by mistake).
PASSAGE_VIEW_CHARS = 6_000
DOCUMENT_VIEW_CHARS = 200_000


def highlight(
    text: str,
    start: int | None,
    end: int | None,
    mark_id: str | None = None,
    max_chars: int = PASSAGE_VIEW_CHARS,
) -> str:
    """``text`` escaped, with ``text[start:end]`` in a ``<mark>`` (no mark if out of range).

    Text longer than ``max_chars`` is shown as the ``max_chars`` around the mark (the start
    without one), with "…" where it was cut.
    """
    marked = start is not None and end is not None and 0 <= start < end <= len(text)
    left, right = _view(len(text), start if marked else 0, end if marked else 0, max_chars)
    lead = "… " if left > 0 else ""
    tail = " …" if right < len(text) else ""
    if not marked:
        return esc(lead + text[left:right] + tail)
    assert start is not None and end is not None
    start, end = max(start, left), min(end, right)  # an answer longer than the view is cut too
    attr = f' id="{esc(mark_id)}"' if mark_id else ""
    return (
        f"{esc(lead + text[left:start])}<mark{attr}>{esc(text[start:end])}</mark>"
        f"{esc(text[end:right] + tail)}"
    )


def highlight_spans(
    text: str, spans: Sequence[tuple[int, int]], max_chars: int = PASSAGE_VIEW_CHARS
) -> str:
    """``text`` escaped, with each of ``spans`` (``(start, end)``, in order, not overlapping) in
    a ``<mark>``: the values of a case-dependent answer. Spans out of range are left unmarked;
    a long text is shown around them as :func:`highlight` does."""
    marked = [(s, e) for s, e in spans if 0 <= s < e <= len(text)]
    marked = [m for i, m in enumerate(marked) if i == 0 or m[0] >= marked[i - 1][1]]
    if not marked:
        return highlight(text, None, None, max_chars=max_chars)
    left, right = _view(len(text), marked[0][0], marked[-1][1], max_chars)
    parts, at = ["… " if left > 0 else ""], left
    for start, end in marked:
        start, end = max(start, at), min(end, right)  # spans wider than the view are cut
        if start < end:
            parts += [esc(text[at:start]), f"<mark>{esc(text[start:end])}</mark>"]
            at = end
    parts.append(esc(text[at:right] + (" …" if right < len(text) else "")))
    return "".join(parts)


def cases_list(cases: Sequence[Mapping[str, object]]) -> str:
    """The cases of an answer as an HTML list: "Netherlands: <mark>25 days</mark>" each (the
    text as the passage spells it, whitespace made single spaces)."""
    items = "".join(
        f"<li>{esc(' '.join(str(c['case']).split()))}: "
        f"<mark>{esc(' '.join(str(c['value']).split()))}</mark></li>"
        for c in cases
    )
    return f'<ul class="docqa-cases">{items}</ul>'


def _view(length: int, start: int, end: int, max_chars: int) -> tuple[int, int]:
    """The ``[left, right)`` of at most ``max_chars`` characters centred on ``[start, end)``."""
    if length <= max_chars:
        return 0, length
    left = max(0, min(start - (max_chars - (end - start)) // 2, length - max_chars))
    return left, min(length, left + max_chars)


def document_page(text: str, start: int | None, end: int | None) -> str:
    """A complete HTML page of a document's text that scrolls to the marked span."""
    body = highlight(text, start, end, mark_id="docqa-answer", max_chars=DOCUMENT_VIEW_CHARS)
    return _DOCUMENT_PAGE.format(body=body)


def percent(score: float) -> str:
    return f"{round(100 * max(0.0, min(1.0, score)))}%"


# Sections the converters name themselves ("slide 2", "sheet Sales, row 4", "attachment a.pdf,
# page 2", "chapter 3"): shown as they are; a heading's text is shown as section “...”.
_LABEL_SECTION = re.compile(r"(slide \d+|(sheet .+, )?row \d+|attachment .+|chapter \d+)")


def location(page: int | None, section: str | None) -> str:
    parts = []
    if page is not None:
        parts.append(f"page {page}")
    if section:
        labelled = _LABEL_SECTION.fullmatch(section)
        parts.append(section if labelled else f"section “{section}”")
    return ", ".join(parts)


def citation(title: str | None, source: str | None, page: int | None, section: str | None) -> str:
    """Plain text: "Travel policy — documents/travel-policy.docx, page 2"."""
    where = ", ".join(p for p in (source or "", location(page, section)) if p)
    if title and where:
        return f"{title} — {where}"
    return title or where


def snippet(text: str, start: int, end: int, radius: int = 40) -> str:
    """Plain text around ``text[start:end]`` with the span in brackets, for choosing one."""
    left = max(0, start - radius)
    right = min(len(text), end + radius)
    before = re.sub(r"\s+", " ", text[left:start]).lstrip()
    after = re.sub(r"\s+", " ", text[end:right]).rstrip()
    lead = "…" if left > 0 else ""
    tail = "…" if right < len(text) else ""
    return f"{lead}{before}[{text[start:end]}]{after}{tail}"


def inject_style() -> None:
    st.html(STYLE)


def html_text(inner: str) -> None:
    """Show already-escaped markup (st.html sanitizes it again, and applies no Markdown)."""
    st.html(inner)
