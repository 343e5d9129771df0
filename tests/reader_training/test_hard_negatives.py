"""Rule-made hard unanswerables: each kind edits what it should, rejects what stays answerable."""

from __future__ import annotations

import random
from collections import Counter

from evaluation.squad import Answer, SquadExample
from reader_training.hard_negatives import (
    KINDS,
    flip_negation,
    hard_negatives,
    swap_antonym,
    swap_entity,
    swap_number,
)

CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France. Rollo led the Vikings who settled there in 911. "
    "In 1066 William the Conqueror crossed the channel with 7,000 men and won at Hastings. "
    "Harold Godwinson was the last Anglo-Saxon king."
)


def example(question: str, answer: str, title: str = "Normans", context: str = CONTEXT):
    return SquadExample(
        f"q{abs(hash(question))}",
        title,
        context,
        question,
        (Answer(answer, context.index(answer)),),
    )


def test_entity_swap_uses_another_name_of_the_paragraph() -> None:
    ex = example("In what year did William the Conqueror cross the channel?", "1066")
    edited = swap_entity(ex, random.Random(0))
    assert edited is not None and "William the Conqueror" not in edited
    # The new name is from the paragraph but not from the answer's sentence (which could still
    # answer the question about it).
    new = edited.replace("In what year did ", "").replace(" cross the channel?", "")
    assert new in CONTEXT and new not in "In 1066 William the Conqueror crossed the channel"


def test_number_swap_keeps_the_shape_and_avoids_the_answer_sentence() -> None:
    ex = example("Who crossed the channel in 1066?", "William the Conqueror")
    edited = swap_number(ex, random.Random(0))
    assert edited is not None and "1066" not in edited
    year = edited.split(" in ")[-1].rstrip("?")
    assert len(year) == 4 and year.isdigit()
    assert year != "911"  # 911 is no year-shaped number; counts are never swapped for years
    assert swap_number(example("How many men crossed?", "7,000"), random.Random(0)) is None


def test_antonym_and_negation_edits() -> None:
    ex = example("Who was the last Anglo-Saxon king?", "Harold Godwinson")
    assert swap_antonym(ex, random.Random(0)) == "Who was the first Anglo-Saxon king?"
    both = "Alfred was the first king and Harold the last king."
    ex = example("Who was the last king?", "Harold", context=both)
    assert swap_antonym(ex, random.Random(0)) is None  # that sentence answers "first" too
    ex2 = example("Who was the first leader of the Vikings there?", "Rollo")
    assert swap_antonym(ex2, random.Random(0)) == "Who was the last leader of the Vikings there?"
    assert (
        flip_negation(ex2, random.Random(0)) == "Who wasn't the first leader of the Vikings there?"
    )
    negated = SquadExample(
        "n", "t", "Smith did not attend the meeting.", "Who did not attend?", (Answer("Smith", 0),)
    )
    assert flip_negation(negated, random.Random(0)) is None  # the sentence itself is negated


def test_hard_negatives_make_every_kind_and_never_contain_the_answer_context() -> None:
    contexts = [
        CONTEXT,
        "Normandy lies in the north of France. Its capital is Rouen, a city on the Seine. "
        "The region is known for cider and for the Bayeux Tapestry made around 1070.",
        "The Vikings raided the coast of France in the 9th century. In 911 the king gave them "
        "land. Their leader Rollo became the first ruler of Normandy.",
    ]
    examples = [
        example("Who crossed the channel in 1066?", "William the Conqueror"),
        example("Who was the last Anglo-Saxon king?", "Harold Godwinson"),
        example("Who led the Vikings who settled in Normandy?", "Rollo"),
        example("What is the capital of Normandy?", "Rouen", context=contexts[1]),
        example("What was made around 1070?", "the Bayeux Tapestry", context=contexts[1]),
        example("Who became the first ruler of Normandy?", "Rollo", context=contexts[2]),
        example("When did the king give the Vikings land?", "911", context=contexts[2]),
    ]
    negatives = hard_negatives(examples, 7, seed=1)
    assert 5 <= len(negatives) <= 7
    kinds = Counter(n.kind for n in negatives)
    assert set(kinds) <= set(KINDS) and len(kinds) >= 3
    by_id = {ex.id: ex for ex in examples}
    for n in negatives:
        source = by_id[n.example.id.rsplit("-", 1)[0]]
        assert not n.example.answers
        if n.kind in ("cut", "mismatch"):
            assert n.example.question == source.question
            assert source.answers[0].text not in n.example.context
        else:
            assert n.example.question != source.question
            assert n.example.context == source.context
    # The same seed gives the same negatives (each epoch draws its own with its own seed).
    again = hard_negatives(examples, 7, seed=1)
    assert [n.example for n in again] == [n.example for n in negatives]
