"""Write the reader's calibration set, ``data/reader/calibration.json`` (SQuAD v2.0).

The pairs on which ``pipelines/backend_choice.py`` checks each serving backend's F1 against fp32
on a user's CPU before picking the fastest. They ship with the reader: users have neither
``../shared`` nor a reason to read the demo dev pairs, which are a test set and stay one.

Drawn from the demo train pairs of the documents the shipped reader's domain stage held out
(``split_holdout`` with its fraction and seed): the reader never trained on them, only its
no-answer threshold and answer ranking were tuned there, so its answers are as unsure as on a
user's documents and a backend that moves margins flips some of them. On pairs it trained on
every backend agrees and the check would pass anything. Each question's context is one passage
of its document as the indexer splits it (200 words): the one holding the answer, or for an
unanswerable question the passage sharing the most words with it (what retrieval would hand the
reader). A fixed seed picks ``ANSWERABLE`` + ``UNANSWERABLE`` pairs (about the held-out ratio).

    python scripts/build_reader_calibration.py [--out data/reader/calibration.json]
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from evaluation.squad import Answer, SquadExample, load_squad, write_squad
from indexer.split import MAX_WORD_CHARS, word_ranges
from pipelines.backend_choice import CALIBRATION_FILE
from pipelines.settings import REPO_ROOT, Settings
from reader_training.recipes import DomainRecipe
from reader_training.train import split_holdout

TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"
DOMAIN_SEED = 42  # reader_training.recipes.domain_train_config's seed for the shipped reader
ANSWERABLE, UNANSWERABLE = 38, 10
SEED = 28
_WORD = re.compile(r"\w+")


def passages(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of ``text``'s passages, split as the indexer splits."""
    defaults = Settings()
    spans = [(m.start(), m.end()) for m in re.finditer(rf"\S{{1,{MAX_WORD_CHARS}}}", text)]
    ranges = word_ranges(
        text, defaults.split_words, defaults.split_overlap, defaults.split_max_chars
    )
    return [(spans[first][0], spans[end - 1][1]) for first, end in ranges]


def calibration_pair(ex: SquadExample) -> SquadExample | None:
    spans = passages(ex.context)
    if ex.answers:
        a = ex.answers[0]
        inside = [(s, e) for s, e in spans if s <= a.start and a.start + len(a.text) <= e]
        if not inside:
            return None
        s, e = inside[0]
        answers: tuple[Answer, ...] = (Answer(a.text, a.start - s),)
    else:
        words = {w.lower() for w in _WORD.findall(ex.question)}
        s, e = max(
            spans,
            key=lambda p: len(words & {w.lower() for w in _WORD.findall(ex.context[p[0] : p[1]])}),
        )
        answers = ()
    return SquadExample(ex.id, ex.title, ex.context[s:e], ex.question, answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = parser.parse_args()
    examples, _ = load_squad(TRAIN)
    _, heldout = split_holdout(examples, DomainRecipe().holdout_fraction, DOMAIN_SEED)
    pairs = [p for ex in heldout if (p := calibration_pair(ex)) is not None]
    rng = random.Random(SEED)
    chosen = rng.sample([p for p in pairs if p.answers], ANSWERABLE)
    chosen += rng.sample([p for p in pairs if not p.answers], UNANSWERABLE)
    chosen.sort(key=lambda p: (p.title, p.id))
    write_squad(chosen, args.out)
    args.out.chmod(0o644)  # shipped: readable by everyone (the atomic write makes it 0600)
    titles = len({p.title for p in chosen})
    print(f"{len(chosen)} pairs from {titles} held-out documents written to {args.out}")


if __name__ == "__main__":
    main()
