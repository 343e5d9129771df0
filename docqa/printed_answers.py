"""How ``docqa ask`` prints answers: as text for people, or as ``--json`` for programs.

Kept apart from :mod:`docqa.cli` so the command module stays a list of thin commands; the
answers are the dicts of :meth:`pipelines.query.AnswerResult.to_dict` (from this process) or of
``POST /ask`` (from a server), which have the same keys.
"""

from __future__ import annotations

import json

import typer


def print_answers(results: list[dict], as_json: bool) -> None:
    """Answers as ``ask --json``'s objects (from this process or a server), printed; never the
    absolute path of a file (``document`` is its path relative to the collection)."""
    if as_json:
        shown = [{k: v for k, v in r.items() if k != "path"} for r in results]
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for rank, r in enumerate(results, 1):
        if r["answer"] is None:
            typer.echo(f"{rank}. [no answer in the documents]  score {r['score']:.2f}")
            continue
        page, section, doc_offsets = r.get("page"), r.get("section"), r.get("document_offsets")
        where = f"page {page}" if page else (f"section {section!r}" if section else "")
        offsets = f"chars {doc_offsets[0]}-{doc_offsets[1]}" if doc_offsets else ""
        cases = r.get("cases") or []
        shown = "It depends on the case" if cases else r["answer"]
        typer.echo(f"{rank}. {shown}  (score {r['score']:.2f})")
        for case in cases:
            typer.echo(f"   - {' '.join(case['case'].split())}: {' '.join(case['value'].split())}")
        typer.echo(f"   source: {r['document']}" + (f", {where}" if where else "") + f", {offsets}")
        for copy in r.get("also_in") or []:
            page = f", page {copy['page']}" if copy.get("page") else ""
            typer.echo(f"   also in: {copy['document']}{page}")
        context, context_offsets = r.get("context"), r.get("context_offsets")
        if context and context_offsets:
            spans = [(c["start"], c["end"]) for c in cases] or [tuple(context_offsets)]
            typer.echo("   " + " ".join(_bracketed(context, spans).split()))


def _bracketed(context: str, spans: list[tuple[int, int]]) -> str:
    """The passage around ``spans`` (offsets into it, in order), each in brackets."""
    left, right = max(0, spans[0][0] - 120), spans[-1][1] + 120
    out, at = [], left
    for s, e in spans:
        out += [context[at:s], "[", context[s:e], "]"]
        at = e
    return "".join(out) + context[at:right]
