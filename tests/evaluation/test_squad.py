"""Loading, validating, repairing and writing SQuAD files, on hand-made and real files."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from evaluation.squad import (
    Answer,
    SquadExample,
    SquadFormatError,
    load_many,
    load_squad,
    write_squad,
)
from pipelines.settings import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"
CONTEXT = (
    "Lumenfield employees get 25 days of annual leave. Unused days can be carried over until "
    "March 31 of the next year. Parental leave is 16 weeks at full pay."
)


def squad_file(
    path: Path, qas: list[dict[str, Any]], context: str = CONTEXT, version: str = "v2.0"
) -> Path:
    data = {
        "version": version,
        "data": [{"title": "Leave", "paragraphs": [{"context": context, "qas": qas}]}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def qa(
    qid: str,
    question: str = "How many days of annual leave?",
    text: str = "25 days",
    start: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    start = CONTEXT.index(text) if start is None else start
    return {
        "id": qid,
        "question": question,
        "answers": [{"text": text, "answer_start": start}],
        "is_impossible": False,
        **extra,
    }


def skipped_reasons(path: Path) -> dict[str, str]:
    _, report = load_squad(path)
    return {qid: reason for _, qid, reason in report.skipped}


# -- files that are not SQuAD at all ------------------------------------------------------------


def test_invalid_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"version": "v2.0",\n "data": [\n  {"title": "x",, }\n]}', encoding="utf-8")
    with pytest.raises(SquadFormatError) as err:
        load_squad(path)
    message = str(err.value)
    assert "broken.json" in message
    assert "invalid JSON at line 3 column" in message


def test_json_that_is_not_squad_is_refused(tmp_path: Path) -> None:
    for name, payload in (("list.json", [1, 2]), ("object.json", {"questions": []})):
        path = tmp_path / name
        path.write_text(json.dumps(payload), encoding="utf-8")
        with pytest.raises(SquadFormatError, match=rf"{name}: not SQuAD JSON"):
            load_squad(path)
    path = tmp_path / "articles.json"
    path.write_text(json.dumps({"data": [{"title": "no paragraphs"}]}), encoding="utf-8")
    with pytest.raises(SquadFormatError, match=r"articles.json: data\[0\] has no 'paragraphs'"):
        load_squad(path)


def test_non_utf8_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"data": [{"title": "Caf\u00e9", "paragraphs": []}]}'.encode("latin-1"))
    with pytest.raises(SquadFormatError, match=r"latin1.json: not UTF-8 text \(byte 24\)"):
        load_squad(path)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(SquadFormatError, match=r"nothing\.json: cannot read"):
        load_squad(tmp_path / "nothing.json")


# -- bad questions are skipped with a reason, the rest is kept ----------------------------------


def test_malformed_questions_are_skipped_with_their_reason(tmp_path: Path) -> None:
    good = qa("good")
    no_question = {k: v for k, v in qa("no-question").items() if k != "question"}
    empty_question = qa("empty-question", question="   ")
    answers_not_list = qa("answers-dict") | {"answers": {"text": "25 days", "answer_start": 25}}
    start_not_int = qa("start-str", question="Carry over until?", text="March 31", start="87")
    no_answers = qa("no-answers", question="Parental leave?") | {"answers": []}
    bad_flag = qa("flag", question="Flag?") | {"is_impossible": "no"}
    path = squad_file(
        tmp_path / "labels.json",
        [
            good,
            no_question,
            empty_question,
            answers_not_list,
            start_not_int,
            no_answers,
            bad_flag,
        ],
    )
    examples, report = load_squad(path)
    assert [ex.id for ex in examples] == ["good"]
    assert report.kept == 1
    reasons = skipped_reasons(path)
    assert reasons == {
        "no-question": "missing or empty 'question'",
        "empty-question": "missing or empty 'question'",
        "answers-dict": "'answers' is not a list",
        "start-str": "answer_start '87' is not an integer",
        "no-answers": "no answers and not marked is_impossible",
        "flag": "'is_impossible' is 'no', not true/false",
    }
    assert all(file == str(path) for file, _, _ in report.skipped)
    assert "skipped 6" in report.summary()


def test_skipped_questions_are_logged_with_file_and_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = squad_file(tmp_path / "labels.json", [qa("q-without-answers") | {"answers": []}])
    with caplog.at_level(logging.WARNING, logger="evaluation.squad"):
        load_squad(path)
    assert f"{path}: question q-without-answers skipped: no answers" in caplog.text


def test_empty_context_is_skipped(tmp_path: Path) -> None:
    path = squad_file(tmp_path / "labels.json", [qa("q")], context="  ")
    examples, report = load_squad(path)
    assert examples == []
    assert report.skipped == [(str(path), "data[0].paragraphs[0]", "missing or empty 'context'")]


# -- answer_start repair ------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [-7, -1, 3, 40])
def test_misplaced_answer_start_is_repaired_when_the_text_occurs_once_nearby(
    tmp_path: Path, shift: int
) -> None:
    true_start = CONTEXT.index("March 31")
    path = squad_file(
        tmp_path / "labels.json", [qa("carry", "Until when?", "March 31", start=true_start + shift)]
    )
    examples, report = load_squad(path)
    assert report.repaired == 1 and report.kept == 1 and not report.skipped
    assert examples[0].answers == (Answer("March 31", true_start),)


def test_correct_answer_start_is_not_counted_as_repaired(tmp_path: Path) -> None:
    _, report = load_squad(squad_file(tmp_path / "labels.json", [qa("ok")]))
    assert (report.kept, report.repaired) == (1, 0)


def test_ambiguous_answer_text_is_skipped_naming_the_question(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = "The VPN gateway is vpn-a. Use vpn-a from home; the backup gateway is vpn-b."
    first = context.index("vpn-a")
    path = squad_file(
        tmp_path / "labels.json",
        [qa("ambiguous-1", "Which gateway?", "vpn-a", start=first + 3)],
        context=context,
    )
    with caplog.at_level(logging.WARNING, logger="evaluation.squad"):
        examples, report = load_squad(path)
    assert examples == []
    [(file, qid, reason)] = report.skipped
    assert (file, qid) == (str(path), "ambiguous-1")
    assert reason == f"answer text 'vpn-a' occurs more than once near answer_start {first + 3}"
    assert "question ambiguous-1 skipped: answer text 'vpn-a' occurs more than once" in caplog.text


def test_answer_text_absent_from_the_context_is_skipped(tmp_path: Path) -> None:
    path = squad_file(tmp_path / "labels.json", [qa("absent", "How long?", "30 days", start=25)])
    assert skipped_reasons(path) == {
        "absent": "answer text '30 days' does not occur in the context"
    }


def test_answer_text_far_from_answer_start_is_skipped(tmp_path: Path) -> None:
    context = "Our office opens at 9. " + "Filler sentence here. " * 100 + "It closes at 17."
    path = squad_file(
        tmp_path / "labels.json", [qa("far", "When?", "at 9", start=2100)], context=context
    )
    assert skipped_reasons(path) == {"far": "answer text 'at 9' is not near answer_start 2100"}


def test_one_good_answer_of_several_keeps_the_question(tmp_path: Path) -> None:
    entry = qa("multi") | {
        "answers": [
            {"text": "25 days", "answer_start": CONTEXT.index("25 days")},
            {"text": "nowhere", "answer_start": 0},
            {"text": "25 days", "answer_start": CONTEXT.index("25 days")},  # a repeated gold answer
        ]
    }
    examples, report = load_squad(squad_file(tmp_path / "labels.json", [entry]))
    assert examples[0].answers == (Answer("25 days", CONTEXT.index("25 days")),)
    assert not report.skipped


# -- duplicates ---------------------------------------------------------------------------------


def test_duplicates_are_dropped(tmp_path: Path) -> None:
    path = squad_file(
        tmp_path / "labels.json",
        [
            qa("a"),
            qa("a", question="A different question, same id?"),  # same id
            qa("b", question="  how many days of ANNUAL leave? "),  # same question, other id
            qa("c", question="When must days be used?", text="March 31"),
        ],
    )
    examples, report = load_squad(path)
    assert [ex.id for ex in examples] == ["a", "c"]
    assert (report.kept, report.duplicates) == (2, 2)


def test_duplicates_across_files_are_dropped(tmp_path: Path) -> None:
    one = squad_file(tmp_path / "one.json", [qa("a"), qa("b", "Until when?", "March 31")])
    two = squad_file(
        tmp_path / "two.json",
        [qa("b", "Until when?", "March 31"), qa("c", "Parental leave?", "16 weeks")],
    )
    examples, report = load_many([one, two])
    assert [ex.id for ex in examples] == ["a", "b", "c"]
    assert (report.kept, report.duplicates) == (3, 1)
    assert report.files == [str(one), str(two)]


# -- versions and writing -----------------------------------------------------------------------


def test_v11_and_v20_files_both_load(tmp_path: Path) -> None:
    v11 = [
        {
            "id": "v11",
            "question": "Parental leave?",
            "answers": [{"text": "16 weeks", "answer_start": CONTEXT.index("16 weeks")}],
        }
    ]
    v20 = [
        qa("v20"),
        {
            "id": "impossible",
            "question": "What is the pension age?",
            "answers": [],
            "plausible_answers": [{"text": "25", "answer_start": 25}],
            "is_impossible": True,
        },
    ]
    ex11, _ = load_squad(squad_file(tmp_path / "v11.json", v11, version="1.1"))
    ex20, rep20 = load_squad(squad_file(tmp_path / "v20.json", v20))
    assert [(ex.id, ex.is_impossible) for ex in ex11] == [("v11", False)]
    assert [(ex.id, ex.is_impossible) for ex in ex20] == [("v20", False), ("impossible", True)]
    assert ex20[1].answers == ()
    assert rep20.kept == 2 and not rep20.skipped


def test_questions_without_ids_get_stable_ids(tmp_path: Path) -> None:
    entry = {k: v for k, v in qa("x").items() if k != "id"}
    first, _ = load_squad(squad_file(tmp_path / "a.json", [entry]))
    second, _ = load_squad(squad_file(tmp_path / "b.json", [entry]))
    assert first[0].id == second[0].id and first[0].id.startswith("q-")


def test_write_squad_round_trip(tmp_path: Path) -> None:
    examples = [
        SquadExample("1", "Leave", CONTEXT, "How many days?", (Answer("25 days", 25),), "x"),
        SquadExample("2", "Leave", CONTEXT, "Pension age?", ()),
        SquadExample(
            "3",
            "Other",
            "Wi-Fi is called Lumen-Guest.",
            "Guest Wi-Fi name?",
            (Answer("Lumen-Guest", 16),),
        ),
    ]
    path = tmp_path / "out" / "round.json"
    write_squad(examples, path)
    loaded, report = load_squad(path)
    assert [(e.id, e.title, e.context, e.question, e.answers) for e in loaded] == [
        (e.id, e.title, e.context, e.question, e.answers) for e in examples
    ]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == "v2.0"
    assert [a["title"] for a in data["data"]] == ["Leave", "Other"]
    assert len(data["data"][0]["paragraphs"]) == 1  # questions grouped by context
    assert report.repaired == 0 and not report.skipped
    assert not [p for p in path.parent.iterdir() if p.name != "round.json"]  # no temp files


# -- real files ---------------------------------------------------------------------------------


def test_covid_qa_offsets_are_repaired() -> None:
    examples, report = load_squad(SHARED / "covid-qa" / "covid-qa-200423.json")
    assert report.repaired > 200
    assert report.kept == len(examples) > 1000
    for ex in examples:
        for a in ex.answers:
            assert ex.context[a.start : a.start + len(a.text)] == a.text, ex.id
    # What could not be repaired is named, with its question id.
    assert all(qid and "answer text" in reason for _, qid, reason in report.skipped)


def test_official_squad_dev_files_load_cleanly() -> None:
    ex11, rep11 = load_squad(SHARED / "squad" / "dev-v1.1.json")
    ex20, rep20 = load_squad(SHARED / "squad" / "dev-v2.0-half.json")
    assert rep11.kept == len(ex11) > 10_000 and not rep11.skipped and rep11.repaired == 0
    assert not rep20.skipped and rep20.repaired == 0
    assert any(ex.is_impossible for ex in ex20) and any(not ex.is_impossible for ex in ex20)
    assert not any(ex.is_impossible for ex in ex11)
