"""The query pipeline end to end over a small indexed demo collection, with the tiny reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from indexer.run import index_folder
from pipelines.query import (
    AnswerResult,
    IndexMissingError,
    QueryService,
    QuestionError,
    ask,
    build_query_pipeline,
    get_service,
)
from pipelines.settings import SHIPPED_READER, Settings
from pipelines.store import PassageStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
QUESTIONS = [
    "How many vacation days does a full-time employee in the Netherlands get each year?",
    "Which days are the company-wide anchor days?",
    "What was the nightly backup window in version 1?",
    "Which laptop model do office staff receive?",
    "How long are guest Wi-Fi vouchers from reception valid?",
]


@pytest.fixture(scope="module")
def results(demo_home: Settings) -> dict[str, list[AnswerResult]]:
    return {q: ask(q, demo_home, top_k_passages=5, top_n_answers=3) for q in QUESTIONS}


def test_answer_offsets_slice_the_source_text_exactly(
    demo_home: Settings, results: dict[str, list[AnswerResult]]
) -> None:
    store = get_service(demo_home).store
    checked = 0
    for question, answers in results.items():
        assert 1 <= len(answers) <= 4, question  # up to 3 answers and one "no answer"
        assert [a.answer for a in answers].count(None) == 1
        # By score, but for an answer with cases that replaced "no answer" (ranked after it).
        ranked = answers[1:] if answers[0].cases and answers[1].answer is None else answers
        assert [a.score for a in ranked] == sorted((a.score for a in ranked), reverse=True)
        for a in answers:
            assert 0.0 <= a.score <= 1.0
            if a.answer is None:
                assert a.document is None and a.document_offsets is None and not a.cases
                continue
            start, end = a.document_offsets
            assert store.source_text(a.doc_id)[start:end] == a.answer, (question, a)
            s, e = a.context_offsets
            assert a.context[s:e] == a.answer
            for case in a.cases:  # the values of a case-dependent answer are exact spans too
                assert a.context[case["start"] : case["end"]] == case["value"]
                document = store.source_text(a.doc_id)
                assert document[case["document_start"] : case["document_end"]] == case["value"]
            checked += 1
    assert checked >= len(QUESTIONS)


def test_citations_carry_source_title_and_page_or_section(
    demo_home: Settings, results: dict[str, list[AnswerResult]]
) -> None:
    store = get_service(demo_home).store
    sources = {r.doc_id: r for r in store.sources()}
    cited_types = set()
    for answers in results.values():
        for a in answers:
            if a.answer is None:
                continue
            record = sources[a.doc_id]
            assert a.document == record.source and a.document.startswith("documents/")
            assert a.path == record.path and Path(a.path).is_file()
            assert a.title and a.title == record.title
            cited_types.add(record.file_type)
            if record.file_type == "pdf":
                assert isinstance(a.page, int) and a.page >= 1
                assert a.section is None
            else:
                assert a.page is None
                if record.file_type in ("md", "html", "docx"):
                    assert a.section is None or a.section.strip()
            data = a.to_dict()
            assert json.loads(json.dumps(data)) == data
            assert data["document_offsets"] == list(a.document_offsets)
    assert len(cited_types) >= 2


def test_filters_restrict_the_cited_documents(demo_home: Settings) -> None:
    pdf_only = {"field": "meta.file_type", "operator": "==", "value": "pdf"}
    answers = ask(
        "Which laptop model do office staff receive?", demo_home, top_k_passages=3, filters=pdf_only
    )
    cited = [a for a in answers if a.answer is not None]
    assert cited and all(a.document == "documents/hr/leave-policy.pdf" for a in cited)


def test_empty_question_is_refused(demo_home: Settings) -> None:
    for question in ("", "   \n\t "):
        with pytest.raises(QuestionError, match="the question is empty"):
            ask(question, demo_home)


def test_too_long_question_is_refused(demo_home: Settings) -> None:
    with pytest.raises(QuestionError) as err:
        ask("why " * 2500, demo_home)  # 10,000 characters
    message = str(err.value)
    assert "9,999 characters long; the limit is 1,000" in message


def test_zero_answers_or_passages_are_refused(demo_home: Settings) -> None:
    service = get_service(demo_home)
    with pytest.raises(QuestionError, match="must be positive"):
        service.ask("Which days are anchor days?", top_k_passages=-1)


def test_no_index_raises_index_missing(tmp_path: Path, tiny_reader: Path) -> None:
    settings = Settings(home=tmp_path / "empty-home", reader_model=str(tiny_reader))
    with pytest.raises(IndexMissingError, match="run `docqa index FOLDER` first"):
        ask("Where is the office?", settings)


def test_service_reloads_when_another_run_writes_a_new_index(
    tmp_path: Path, tiny_reader: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    settings = Settings(home=tmp_path / "home", reader_model=str(tiny_reader))
    index_folder([docs], settings, progress=False)

    service = QueryService(settings)
    first = service.ask("Where do I collect my laptop?")
    assert {a.document for a in first if a.answer} == {"docs/onboarding.md"}
    assert service.refresh() is False  # nothing changed
    before = service.store.count_documents()

    # Another index run (as `docqa index` in another process) adds a document.
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    index_folder([docs], settings, progress=False)
    assert service.refresh() is True
    assert service.store.count_documents() > before
    assert {r.source for r in service.store.sources()} == {
        "docs/onboarding.md",
        "docs/opening-hours.txt",
    }
    passages = service.retrieve("When is the office open?", top_k=1)
    assert passages[0].meta["source"] == "docs/opening-hours.txt"
    answers = service.ask("When does Café Müller serve lunch?", top_k_passages=2)
    store = service.store
    for a in answers:
        if a.answer is not None:
            assert store.source_text(a.doc_id)[slice(*a.document_offsets)] == a.answer
    assert "docs/opening-hours.txt" in {a.document for a in answers}


def test_query_pipeline_is_embedder_retriever_reader(demo_home: Settings) -> None:
    store = PassageStore.load(demo_home.index_dir)
    # The default is hybrid retrieval (tests/pipelines/test_bm25.py covers every mode).
    dense = demo_home.with_(retrieval="dense")
    pipe = build_query_pipeline(dense, store, str(demo_home.reader_model))
    assert list(pipe.to_dict()["components"]) == ["embedder", "retriever", "reader"]
    reader = pipe.get_component("reader")
    assert reader.top_k == demo_home.top_n_answers
    assert reader.model == str(demo_home.reader_model)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_one_run_gives_the_answers_and_the_passages_read(demo_home: Settings, mode: str) -> None:
    """The page shows the passages read when there is no answer, from the same pipeline run."""
    service = get_service(demo_home.with_(retrieval=mode))
    question = "Which VPN client do laptops use?"
    answers, passages = service.ask_with_passages(question, top_k_passages=4, top_n_answers=2)
    assert [a.answer for a in answers] == [
        a.answer for a in service.ask(question, top_k_passages=4, top_n_answers=2)
    ]
    assert [p.id for p in passages] == [p.id for p in service.retrieve(question, top_k=4)]
    cited = {a.doc_id for a in answers if a.answer is not None}
    assert cited <= {p.meta["doc_id"] for p in passages}


def test_a_case_dependent_answer_replaces_no_answer(demo_home: Settings) -> None:
    """The shipped reader abstains on "How many days of annual leave do I get?" (the leave
    policy gives one number per country); the answer is then each country with its days."""
    service = get_service(demo_home.with_(reader_model=str(SHIPPED_READER)))
    question = "How many days of annual leave do I get?"
    answers = service.answer(question).answers
    top = answers[0]
    assert top.answer is not None and top.document == "documents/hr/leave-policy.pdf"
    by_case = {c["case"]: " ".join(c["value"].split()) for c in top.cases}
    assert by_case == {
        "Netherlands": "25 vacation days per year",
        "United States": "20 days of paid time off",
        "India": "21 days of earned leave per year",
    }
    document = service.store.source_text(top.doc_id)
    for case in top.cases:
        assert top.context[case["start"] : case["end"]] == case["value"]
        assert document[case["document_start"] : case["document_end"]] == case["value"]
        assert top.context[case["case_start"] : case["case_end"]] == case["case"]
    # The reader's abstention is still there, ranked after the answer that replaced it.
    assert answers[1].answer is None and answers[1].score > top.score
    assert len(answers) <= service.settings.top_n_answers
    assert top.to_dict()["cases"] == top.cases
    # A question that names its case gets that case's value, not "it depends".
    named = service.answer("How many vacation days do I get in the Netherlands?").answers
    assert named[0].answer is not None and not named[0].cases
