"""Case-dependent answers: parallel values around an answer span, each with the phrase naming its
case, on real demo documents (as the indexer converts them) and on small written examples."""

from __future__ import annotations

from pipelines.cases import Case, find_cases, has_parallel_values, question_names_a_case
from pipelines.settings import DEMO_COLLECTION


def converted(relative: str) -> str:
    from indexer.convert import convert_file

    return convert_file(DEMO_COLLECTION / relative).text


def cases_at(text: str, span: str, occurrence: int = 0) -> list[Case]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(span, start + 1)
    cases = find_cases(text, start, start + len(span))
    for case in cases:  # citations stay exact spans of the text
        assert text[case.value_start : case.value_end] == case.value
        assert text[case.case_start : case.case_end] == case.case
    return cases


def pairs(cases: list[Case]) -> list[tuple[str, str]]:
    return [(" ".join(c.case.split()), " ".join(c.value.split())) for c in cases]


HR_FAQ_CASES = [
    ("Full-time employees in the Netherlands", "25 days"),
    ("colleagues in the United States", "20 days of PTO"),
    ("colleagues in India", "21 days of earned leave"),
]


def test_the_hr_faq_leave_sentence_gives_each_country_its_days() -> None:
    text = converted("faq/hr-faq.html")
    assert "It depends on your country of employment. Full-time employees" in text
    assert pairs(cases_at(text, "25 days")) == HR_FAQ_CASES
    # Whichever value the reader picked, the same cases, in text order.
    assert pairs(cases_at(text, "21 days of earned leave")) == HR_FAQ_CASES
    # "(25 days after five years of service)" qualifies the United States: no case of its own.
    assert pairs(cases_at(text, "25 days", occurrence=1)) == HR_FAQ_CASES
    # The next sentence holds one value of its own: no cases.
    assert cases_at(text, "Part-timers get a pro-rated number") == []


def test_the_leave_policy_list_wrapped_over_pdf_lines() -> None:
    text = converted("hr/leave-policy.pdf")
    assert "- Netherlands: 25 vacation days per year" in text
    assert pairs(cases_at(text, "21 days of earned leave per year")) == [
        ("Netherlands", "25 vacation days per year"),
        ("United States", "20 days of paid time off"),
        ("India", "21 days of earned leave per year"),
    ]
    # A single value in its sentence ("buy up to 5 additional vacation days per year").
    assert cases_at(text, "up to 5 additional vacation days per year") == []


def test_a_table_gives_the_anchor_column_per_row() -> None:
    text = converted("hr/remote-work-policy.md")
    assert pairs(cases_at(text, "450 USD")) == [
        ("Netherlands", "400 EUR"),
        ("United States", "450 USD"),
        ("India", "25,000 INR"),
    ]
    assert cases_at(text, "Country: India") == []  # the case column itself is no value


def test_a_price_list_and_a_price_sentence() -> None:
    listed = (
        "Prices per user:\n- Starter: €4 per month\n- Team: €9 per month\n"
        "- Enterprise: €19 per month, billed yearly\nAll prices exclude VAT."
    )
    assert pairs(cases_at(listed, "€9 per month")) == [
        ("Starter", "€4 per month"),
        ("Team", "€9 per month"),
        ("Enterprise", "€19 per month"),
    ]
    sentence = "The Basic plan costs €10 per month and the Pro plan costs €25 per month."
    assert pairs(cases_at(sentence, "€25")) == [
        ("The Basic plan", "€10 per month"),
        ("the Pro plan", "€25 per month"),
    ]
    # "- Plan: amount unit" lines: the same unit only (TB is not GB).
    storage = "Storage:\n- Starter: 10 GB\n- Team: 100 GB\n- Enterprise: 1 TB"
    assert pairs(cases_at(storage, "10 GB")) == [("Starter", "10 GB"), ("Team", "100 GB")]


def test_a_version_list() -> None:
    text = (
        "Beacon G2 runs firmware 4.1, Beacon G3 runs firmware 4.3 and Beacon Edge runs firmware"
        " 2.0."
    )
    assert pairs(cases_at(text, "firmware 4.3")) == [
        ("Beacon G2", "firmware 4.1"),
        ("Beacon G3", "firmware 4.3"),
        ("Beacon Edge", "firmware 2.0"),
    ]
    lines = "Minimum app versions:\nAndroid: v2.4.1\niOS: v2.5.0\n"
    assert pairs(cases_at(lines, "v2.5.0")) == [("Android", "v2.4.1"), ("iOS", "v2.5.0")]


def test_a_single_value_a_range_or_unlike_values_give_no_cases() -> None:
    assert cases_at("Full-time employees get 25 days of annual leave.", "25 days") == []
    assert cases_at("Requests between 20 and 25 days need approval.", "25 days") == []
    assert cases_at("The allowance rose from 20 days in 2024 to 25 days in 2025.", "25 days") == []
    # Two quantities of different things, joined by another verb (a real demo sentence).
    vpn = converted("it/vpn-and-remote-access.md")
    assert cases_at(vpn, "400 concurrent users") == []
    assert cases_at("No numbers here at all.", "numbers") == []
    # A span over two list items holds two values: which one the reader meant is unknown.
    retention = converted("security/data-classification-standard.txt")
    assert cases_at(retention, "at least 12 months\n- Emails: 3 years") == []
    assert find_cases("25 days", 0, 99) == []  # a span outside the text


def test_parallel_values_and_a_question_that_names_its_case() -> None:
    text = converted("faq/hr-faq.html")
    assert has_parallel_values(text)
    assert not has_parallel_values("Full-time employees get 25 days of annual leave.")
    cases = cases_at(text, "25 days")
    assert not question_names_a_case("How many days of annual leave do I get?", cases)
    assert question_names_a_case("How many days do I get in India?", cases)
    assert question_names_a_case("Leave days for full-time staff in the Netherlands?", cases)
