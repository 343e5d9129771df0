"""The labels of the real-collection benchmark (``data/realdocs/sqlite-doc.jsonl``).

The documentation they are about is a Debian package the benchmark installs, so whether every
answer occurs in its page is checked by ``python benchmarks/bench_realdocs.py --check-labels``;
here: what makes the labels a fair benchmark at all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

LABELS = Path(__file__).resolve().parents[2] / "data" / "realdocs" / "sqlite-doc.jsonl"
KINDS = {"prose", "list", "table", "code", "unanswerable"}


def _labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line]


def test_labels_are_many_spread_and_well_formed() -> None:
    labels = _labels()
    assert len(labels) >= 150
    assert len({r["id"] for r in labels}) == len(labels)
    assert len({r["question"].strip().lower() for r in labels}) == len(labels)
    answerable = [r for r in labels if r["page"] is not None]
    assert len({r["page"] for r in answerable}) >= 60
    assert 0.15 <= 1 - len(answerable) / len(labels) <= 0.25  # about a fifth unanswerable
    kinds = Counter(r["kind"] for r in labels)
    assert set(kinds) == KINDS and min(kinds.values()) >= 10
    for r in labels:
        assert r["question"].strip().endswith("?"), r
        if r["page"] is None:
            assert r["answer"] is None and r["kind"] == "unanswerable", r
        else:
            assert r["page"].endswith(".html") and ".." not in r["page"], r
            assert isinstance(r["answer"], str) and 0 < len(r["answer"]) <= 200, r
            assert r["kind"] != "unanswerable", r
