"""Synthetic unanswerable questions for training "no answer".

The permissive training pool has no unanswerable questions, so we make two kinds:

* **same-context, answer removed**: the question's own paragraph with the sentence(s) holding the
  answer cut out. The context stays on topic, which is what SQuAD 2.0's unanswerables look like
  (a plausible paragraph that lacks the fact), so it teaches more than a random paragraph does.
* **another passage of the same article** (as Clark & Gardner's shared-normalization negatives):
  the reader must learn that a topical passage without the answer gets a low score.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence

from evaluation.squad import SquadExample

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if e > s]


def remove_answer_sentences(example: SquadExample, min_chars: int = 150) -> str | None:
    """The context without every sentence that overlaps an answer, or None if too little is left."""
    cut = [
        (s, e)
        for s, e in _sentences(example.context)
        if any(s < a.start + len(a.text) and a.start < e for a in example.answers)
    ]
    kept, pos = [], 0
    for s, e in cut:
        kept.append(example.context[pos:s])
        pos = e
    kept.append(example.context[pos:])
    text = re.sub(r"\s{2,}", " ", " ".join(k.strip() for k in kept if k.strip())).strip()
    if len(text) < min_chars or any(a.text in text for a in example.answers):
        return None
    return text


def synthetic_negatives(
    examples: Sequence[SquadExample], ratio: float, seed: int = 13, removed_share: float = 0.5
) -> list[SquadExample]:
    """About ``ratio * len(examples)`` unanswerable examples made from answerable ones."""
    rng = random.Random(seed)
    by_title: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        if not by_title[ex.title] or by_title[ex.title][-1] != ex.context:
            by_title[ex.title].append(ex.context)
    answerable = [ex for ex in examples if ex.answers]
    chosen = rng.sample(answerable, min(len(answerable), round(ratio * len(examples))))
    negatives = []
    for i, ex in enumerate(chosen):
        context: str | None = None
        if rng.random() < removed_share:
            context = remove_answer_sentences(ex)
        if context is None:
            others = [
                c
                for c in set(by_title[ex.title])
                if c != ex.context and not any(a.text.lower() in c.lower() for a in ex.answers)
            ]
            if not others:
                continue
            context = rng.choice(sorted(others))
        negatives.append(
            SquadExample(
                id=f"{ex.id}-neg{i}",
                title=ex.title,
                context=context,
                question=ex.question,
                answers=(),
                source="synthetic",
            )
        )
    return negatives
