"""An answer card's HTML: a case-dependent answer shows its cases, values marked, all escaped."""

from __future__ import annotations

from pipelines.answers import AnswerResult
from pipelines.query import case_dicts
from pipelines.settings import DEMO_COLLECTION
from ui.cards import answer_html


def faq_answer(passage: str, span: str) -> AnswerResult:
    start = passage.index(span)
    question = "How many days of annual leave do I get?"
    return AnswerResult(
        answer=span,
        score=0.45,
        document="documents/faq/hr-faq.html",
        title="HR Frequently Asked Questions",
        section="Leave and time off",
        document_offsets=(start, start + len(span)),
        context=passage,
        context_offsets=(start, start + len(span)),
        doc_id="faq",
        cases=case_dicts(passage, start, start + len(span), 0, question),
    )


def test_a_case_dependent_answer_shows_each_case_and_marks_each_value() -> None:
    from indexer.convert import convert_file

    text = convert_file(DEMO_COLLECTION / "faq" / "hr-faq.html").text
    start = text.index("It depends on your country")
    passage = "<script>x</script> " + text[start : text.index("\n", start)]
    html = answer_html(faq_answer(passage, "25 days"))
    assert "Depends on the case" in html and "45% confidence" in html
    assert "<li>Full-time employees in the Netherlands: <mark>25 days</mark></li>" in html
    assert "<li>colleagues in the United States: <mark>20 days of PTO</mark></li>" in html
    assert "<li>colleagues in India: <mark>21 days of earned leave</mark></li>" in html
    passage_html = html[html.index('class="docqa-passage"') :]
    assert passage_html.count("<mark>") == 3  # the values, not the qualifier "(25 days after"
    assert "in the Netherlands get <mark>25 days</mark>, colleagues" in passage_html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_an_answer_without_cases_is_shown_as_before() -> None:
    passage = "Part-timers get a pro-rated number of days."
    result = faq_answer(passage, "a pro-rated number of days")
    assert result.cases == []
    html = answer_html(result, low=True)
    assert html.startswith('<div class="docqa-answer">a pro-rated number of days<span')
    assert "docqa-score low" in html and "Depends on the case" not in html
    assert "get <mark>a pro-rated number of days</mark>." in html
