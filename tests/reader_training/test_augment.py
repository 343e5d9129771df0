"""Synthetic unanswerable questions: answer sentences removed, or another passage of the article."""

from __future__ import annotations

from collections import Counter

import pytest

from evaluation.squad import Answer, SquadExample, load_squad
from pipelines.settings import REPO_ROOT
from reader_training.augment import remove_answer_sentences, synthetic_negatives

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"

LEAVE = (
    "Annual leave is 25 days for every employee. Requests go through the HR portal at least two "
    "weeks ahead. Unused days can be carried over until March 31 of the next year. Parental "
    "leave is 16 weeks at full pay! Questions? Ask the People team on the #hr-help channel."
)


def example(
    qid: str, context: str, question: str, *texts: str, title: str = "Leave"
) -> SquadExample:
    return SquadExample(
        qid, title, context, question, tuple(Answer(t, context.index(t)) for t in texts)
    )


@pytest.fixture(scope="module")
def demo_examples() -> list[SquadExample]:
    return load_squad(DEMO_TRAIN)[0]


def test_remove_answer_sentences_cuts_exactly_the_answer_sentence() -> None:
    ex = example("q1", LEAVE, "Until when can days be carried over?", "March 31")
    text = remove_answer_sentences(ex, min_chars=50)
    assert text is not None
    assert "March 31" not in text and "carried over" not in text
    assert text == (
        "Annual leave is 25 days for every employee. Requests go through the HR portal at least "
        "two weeks ahead. Parental leave is 16 weeks at full pay! Questions? Ask the People team "
        "on the #hr-help channel."
    )


def test_remove_answer_sentences_removes_every_answer() -> None:
    ex = example("q2", LEAVE, "How long?", "25 days", "16 weeks")
    text = remove_answer_sentences(ex, min_chars=20)
    assert text is not None
    assert "25 days" not in text and "16 weeks" not in text
    assert text.startswith("Requests go through the HR portal")


def test_remove_answer_sentences_gives_none_when_too_little_is_left() -> None:
    ex = example("q3", LEAVE, "How many days?", "25 days")
    assert remove_answer_sentences(ex, min_chars=len(LEAVE)) is None
    one_sentence = example("q4", "Leave is 25 days.", "How many days?", "25 days")
    assert remove_answer_sentences(one_sentence, min_chars=1) is None


def test_remove_answer_sentences_on_demo_pairs(demo_examples: list[SquadExample]) -> None:
    kept = 0
    for ex in demo_examples:
        if not ex.answers:
            continue
        text = remove_answer_sentences(ex)
        if text is None:
            continue
        kept += 1
        assert len(text) >= 150
        assert not any(a.text in text for a in ex.answers), ex.id
    assert kept > 300


@pytest.mark.parametrize("removed_share", [0.0, 0.5, 1.0])
def test_synthetic_negatives_never_contain_their_answer(removed_share: float) -> None:
    # Two articles of several paragraphs, so that "another passage" negatives exist too.
    paras = {
        "Leave": [
            LEAVE,
            "Sick leave needs a doctor's note after three days. Report it to your manager "
            "before 10 am on the first day. The note goes to HR within a week of return.",
            "Public holidays follow the office's country. The 2025 calendar lists 9 days in "
            "the UK office and 11 in the Berlin office; both are on the intranet.",
        ],
        "Wi-Fi": [
            "The staff network is Lumen-Staff and uses your directory login. Guests use "
            "Lumen-Guest, which has a daily password shown at reception desks.",
            "The Wi-Fi in meeting rooms is limited to 50 devices. Large events must book "
            "the event network two weeks ahead through the service desk portal.",
        ],
    }
    examples = [
        example("l1", paras["Leave"][0], "How many days of annual leave?", "25 days"),
        example("l2", paras["Leave"][0], "How long is parental leave?", "16 weeks"),
        example("l3", paras["Leave"][1], "When is a doctor's note needed?", "after three days"),
        example("l4", paras["Leave"][2], "How many holidays in Berlin?", "11"),
        example(
            "w1", paras["Wi-Fi"][0], "What is the guest network?", "Lumen-Guest", title="Wi-Fi"
        ),
        example(
            "w2", paras["Wi-Fi"][1], "Device limit in meeting rooms?", "50 devices", title="Wi-Fi"
        ),
        SquadExample("u1", "Wi-Fi", paras["Wi-Fi"][1], "Who pays for Wi-Fi?", ()),
    ]
    negatives = synthetic_negatives(examples, ratio=1.0, seed=4, removed_share=removed_share)
    assert negatives
    by_id = {ex.id: ex for ex in examples}
    for neg in negatives:
        original = by_id[neg.id.rsplit("-neg", 1)[0]]
        assert neg.answers == () and neg.is_impossible
        assert neg.question == original.question and neg.title == original.title
        assert neg.source == "synthetic"
        assert neg.context != original.context
        assert not any(a.text in neg.context for a in original.answers), neg.id
    assert len({n.id for n in negatives}) == len(negatives)
    # Deterministic for a seed.
    again = synthetic_negatives(examples, ratio=1.0, seed=4, removed_share=removed_share)
    assert [(n.id, n.context) for n in again] == [(n.id, n.context) for n in negatives]


def test_synthetic_negatives_on_demo_pairs(demo_examples: list[SquadExample]) -> None:
    negatives = synthetic_negatives(demo_examples, ratio=0.25, seed=2, removed_share=1.0)
    # At most ratio * examples; some answer sentences cannot be removed (too little left).
    assert 0.5 * 0.25 * len(demo_examples) < len(negatives) <= round(0.25 * len(demo_examples))
    by_id = {ex.id: ex for ex in demo_examples}
    originals = Counter(n.id.rsplit("-neg", 1)[0] for n in negatives)
    assert max(originals.values()) == 1 and all(by_id[q].answers for q in originals)
    for neg in negatives:
        assert not neg.answers
        assert not any(a.text in neg.context for a in by_id[neg.id.rsplit("-neg", 1)[0]].answers)
