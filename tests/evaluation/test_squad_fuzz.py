"""Fuzzing the SQuAD loader: any file either loads or raises SquadFormatError naming the file.

Annotation tools export SQuAD JSON of every quality; a malformed file must never become a
traceback at the command line (``docqa train`` and ``docqa evaluate-reader`` catch only
``SquadFormatError``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation.squad import SquadExample, SquadFormatError, load_squad

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = ["version", "data", "title", "paragraphs", "context", "qas", "id", "question",
         "answers", "text", "answer_start", "is_impossible", "plausible_answers"]  # fmt: skip


def _valid() -> dict[str, Any]:
    context = "Lumenfield employees get 25 days of annual leave."
    return {
        "version": "v2.0",
        "data": [
            {
                "title": "Leave",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "How many days of annual leave?",
                                "answers": [{"text": "25 days", "answer_start": 25}],
                                "is_impossible": False,
                            }
                        ],
                    }
                ],
            }
        ],
    }


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON tree."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def _mutated_squad(draw: st.DrawFn) -> Any:
    """A valid file with a few values replaced, removed or renamed: near misses, as tools make."""
    tree = _valid()
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(_json)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(_KEYS))] = parent.pop(path[-1])
    return tree


def _check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.json"
        path.write_bytes(data)
        try:
            examples, report = load_squad(path)
        except SquadFormatError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
            assert "\n" not in str(exc)
            return
        for example in examples:
            assert isinstance(example, SquadExample)
            assert isinstance(example.question, str) and example.question.strip()
            for answer in example.answers:
                assert example.context[answer.start : answer.start + len(answer.text)] == (
                    answer.text
                )
        assert report.kept == len(examples)


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(tree=_mutated_squad())
def test_near_miss_squad_files_load_or_raise_our_error(tree: Any) -> None:
    _check(json.dumps(tree, allow_nan=True).encode("utf-8"))


@_FUZZ
@given(tree=_json)
def test_any_json_loads_or_raises_our_error(tree: Any) -> None:
    _check(json.dumps(tree, allow_nan=True).encode("utf-8"))


@_FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_load_or_raise_our_error(data: bytes) -> None:
    _check(data)


def test_pathological_json_raises_our_error(tmp_path: Path) -> None:
    cases = {
        "deep.json": b"[" * 200_000 + b"]" * 200_000,
        "deep-object.json": b'{"data":' * 50_000 + b"1" + b"}" * 50_000,
        "huge-number.json": b'{"data": [], "version": 1' + b"0" * 5000 + b"}",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        try:
            load_squad(path)
        except SquadFormatError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
        else:
            raise AssertionError(f"{name} loaded")
