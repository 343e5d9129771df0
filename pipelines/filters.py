"""Haystack filters from a user's choices of folders, file types and dates, and folder lists.

The web page's sidebar (and any other caller) turns choices into one Haystack filter, which the
passage store runs inside the vector search.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from pipelines.store import SourceRecord


def folder_of(source: str) -> str:
    """The folder part of a displayed source path ("documents/hr/a.pdf" -> "documents/hr")."""
    return source.rpartition("/")[0]


def folders(sources: Iterable[str]) -> list[str]:
    """Every folder and parent folder of the given source paths, sorted."""
    found: set[str] = set()
    for source in sources:
        parts = source.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            found.add("/".join(parts[:depth]))
    return sorted(found)


def _day_start(day: dt.date) -> str:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).isoformat()


def build_filters(
    records: Sequence[SourceRecord],
    folder_choices: Sequence[str] = (),
    file_types: Sequence[str] = (),
    modified_from: dt.date | None = None,
    modified_to: dt.date | None = None,
) -> dict[str, Any] | None:
    """A Haystack filter for the chosen folders, file types and modification dates (UTC days).

    Haystack's filter syntax has no "starts with", so a folder becomes the list of documents
    under it (``meta.doc_id in [...]``); the store runs the filter inside the vector search.
    ``modified_to`` is inclusive. None when nothing is chosen.
    """
    conditions: list[dict[str, Any]] = []
    if folder_choices:
        prefixes = tuple(f"{folder.rstrip('/')}/" for folder in folder_choices)
        ids = sorted(r.doc_id for r in records if r.source.startswith(prefixes))
        conditions.append({"field": "meta.doc_id", "operator": "in", "value": ids})
    if file_types:
        conditions.append({"field": "meta.file_type", "operator": "in", "value": list(file_types)})
    if modified_from is not None:
        conditions.append(
            {"field": "meta.modified", "operator": ">=", "value": _day_start(modified_from)}
        )
    if modified_to is not None:
        end = modified_to + dt.timedelta(days=1)
        conditions.append({"field": "meta.modified", "operator": "<", "value": _day_start(end)})
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return {"operator": "AND", "conditions": conditions}
