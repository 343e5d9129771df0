"""Haystack filters as SQL over the passages table, so that filters run inside the search.

The passage store runs a filter as SQL, and the matching FAISS ids become an ``IDSelector`` for
the vector search: a filter matching 1% of the collection still returns its full ``top_k``
(faiss-haystack filters after the search). Semantics follow Haystack's documented filters,
including ISO dates compared as points in time (SQL function ``docqa_epoch``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from haystack.errors import FilterError

# Meta fields that get their own (generated, indexed) column because DocQA filters on them.
# They are generated from the meta JSON, so they can never disagree with it.
COLUMN_FIELDS = ("doc_id", "file_type", "source", "page", "section", "modified")

_DOCUMENT_FIELDS = {"id", "content", "blob", "meta", "score", "embedding", "sparse_embedding"}
_COMPARISON_OPERATORS = {"==", "!=", ">", ">=", "<", "<=", "in", "not in"}
_LOGICAL_OPERATORS = {"AND", "OR", "NOT"}


@lru_cache(maxsize=65536)
def iso_epoch(value: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 string, else None (SQL function ``docqa_epoch``).

    Lets ``meta.modified >= "2024-01-01"`` compare points in time, not strings. Naive times are
    taken as UTC, which is what DocQA writes (Haystack instead borrows the other side's zone).
    """
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _epoch(parsed)


def _epoch(value: datetime | date) -> float:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _filter_date(value: str) -> float:
    """A string compared with >, >=, <, <= must be an ISO date, as Haystack documents."""
    try:
        return _epoch(datetime.fromisoformat(value))
    except ValueError as exc:
        raise FilterError(
            f"Can't compare strings using operators '>', '>=', '<', '<=': {value!r} is not a date. "
            "Strings are only comparable if they are ISO formatted dates."
        ) from exc


def _field_sql(field: str) -> str:
    """The SQL expression of a filter field: a column, or json_extract on the meta JSON."""
    if field in ("id", "content"):
        return field
    if field.startswith("meta."):
        parts = field[len("meta.") :].split(".")
    elif field in _DOCUMENT_FIELDS:
        raise FilterError(f"Can't filter on the Document field {field!r}")
    else:
        # Haystack reads a field without "meta." that is not a Document field as a meta field
        # (legacy filters); do the same.
        parts = field.split(".")
    if any(not part or '"' in part or "'" in part for part in parts):
        raise FilterError(f"Invalid filter field {field!r}")
    if len(parts) == 1 and parts[0] in COLUMN_FIELDS:
        return parts[0]
    path = "$" + "".join(f'."{part}"' for part in parts)
    return f"json_extract(meta, '{path}')"


def _equal_sql(expr: str, value: Any) -> tuple[str, list[Any]]:
    """SQL that is 1 where ``expr == value`` in Haystack's sense, else 0 (never NULL)."""
    if value is None:
        return f"({expr} IS NULL)", []
    if isinstance(value, (list, dict)):
        # json_extract gives arrays/objects back as minified JSON text; json() minifies ours.
        return f"COALESCE({expr} = json(?), 0)", [json.dumps(value)]
    if isinstance(value, datetime | date):
        return f"COALESCE(docqa_epoch({expr}) = ?, 0)", [_epoch(value)]
    if isinstance(value, str):
        epoch = iso_epoch(value)
        if epoch is not None:
            # Haystack treats two spellings of the same instant as equal.
            return f"COALESCE({expr} = ? OR docqa_epoch({expr}) = ?, 0)", [value, epoch]
        return f"COALESCE({expr} = ?, 0)", [value]
    if isinstance(value, (bool, int, float)):
        return f"COALESCE({expr} = ?, 0)", [value]
    raise FilterError(f"Unsupported filter value {value!r} of type {type(value).__name__}")


def _in_sql(expr: str, values: Any, operator: str) -> tuple[str, list[Any]]:
    if not isinstance(values, list):
        raise FilterError(
            f"Filter value must be a `list` when using operator '{operator}', "
            f"received type '{type(values).__name__}'"
        )
    scalars = [v for v in values if isinstance(v, (str, int, float))]
    others = [v for v in values if not isinstance(v, (str, int, float))]
    parts: list[str] = []
    params: list[Any] = []
    if scalars:
        parts.append(f"COALESCE({expr} IN ({', '.join('?' * len(scalars))}), 0)")
        params.extend(scalars)
    for value in others:
        sql, extra = _equal_sql(expr, value)
        parts.append(sql)
        params.extend(extra)
    return ("(" + " OR ".join(parts) + ")" if parts else "0"), params


def _ordering_sql(expr: str, operator: str, value: Any) -> tuple[str, list[Any]]:
    if value is None:
        return "0", []  # Haystack: nothing is ordered against None
    if isinstance(value, (list, tuple, dict, set)):
        raise FilterError(
            f"Filter value can't be of type {type(value).__name__} "
            "using operators '>', '>=', '<', '<='"
        )
    if isinstance(value, str):
        return f"COALESCE(docqa_epoch({expr}) {operator} ?, 0)", [_filter_date(value)]
    if isinstance(value, datetime | date):
        return f"COALESCE(docqa_epoch({expr}) {operator} ?, 0)", [_epoch(value)]
    if isinstance(value, (bool, int, float)):
        # Only numbers are ordered against numbers (SQLite would order any text above them).
        return (
            f"COALESCE(typeof({expr}) IN ('integer', 'real') AND {expr} {operator} ?, 0)",
            [value],
        )
    raise FilterError(f"Unsupported filter value {value!r} of type {type(value).__name__}")


def filter_to_sql(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """Translate a Haystack filter into an SQL condition over ``passages`` and its parameters.

    Every produced expression is 0 or 1, never NULL, so NOT / != / not in behave as in Haystack's
    Python implementation (a missing field is None: ``!=`` and ``not in`` match it).
    """
    if not isinstance(filters, dict):
        raise FilterError(f"A filter must be a dict, got {type(filters).__name__}")
    if "field" in filters:
        for key in ("operator", "value"):
            if key not in filters:
                raise FilterError(f"'{key}' key missing in {filters}")
        field, operator, value = filters["field"], filters["operator"], filters["value"]
        if not isinstance(field, str):
            raise FilterError(f"'field' must be a string in {filters}")
        op = operator.lower() if isinstance(operator, str) else operator
        if op not in _COMPARISON_OPERATORS:
            raise FilterError(
                f"Unknown comparison operator '{operator}'. "
                f"Valid operators are: {sorted(_COMPARISON_OPERATORS)}"
            )
        expr = _field_sql(field)
        if op == "==":
            return _equal_sql(expr, value)
        if op == "!=":
            sql, params = _equal_sql(expr, value)
            return f"(NOT {sql})", params
        if op == "in":
            return _in_sql(expr, value, op)
        if op == "not in":
            sql, params = _in_sql(expr, value, op)
            return f"(NOT {sql})", params
        return _ordering_sql(expr, op, value)

    if "operator" not in filters:
        raise FilterError(f"'operator' key missing in {filters}")
    if "conditions" not in filters:
        raise FilterError(f"'conditions' key missing in {filters}")
    operator, conditions = filters["operator"], filters["conditions"]
    op = operator.upper() if isinstance(operator, str) else operator
    if op not in _LOGICAL_OPERATORS:
        raise FilterError(
            f"Unknown logical operator '{operator}'. "
            f"Valid operators are: {sorted(_LOGICAL_OPERATORS)}"
        )
    if not isinstance(conditions, list):
        raise FilterError(f"'conditions' must be a list in {filters}")
    parts: list[str] = []
    params: list[Any] = []
    for condition in conditions:
        sql, extra = filter_to_sql(condition)
        parts.append(sql)
        params.extend(extra)
    if op == "OR":
        return ("(" + " OR ".join(parts) + ")" if parts else "0"), params
    conjunction = "(" + " AND ".join(parts) + ")" if parts else "1"
    return (f"(NOT {conjunction})" if op == "NOT" else conjunction), params


# -- helpers ------------------------------------------------------------------------------------
