"""``docqa ask`` prints a case-dependent answer as each case with its value (and ``--json``
carries them), over the demo index with the shipped reader."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from docqa.cli import app
from pipelines.settings import SHIPPED_READER, Settings

QUESTION = "How many days of annual leave do I get?"
CASES = {
    "Netherlands": "25 vacation days per year",
    "United States": "20 days of paid time off",
    "India": "21 days of earned leave per year",
}


def test_ask_prints_each_case_with_its_value(demo_home: Settings) -> None:
    args = ["ask", QUESTION, "--home", str(demo_home.home), "--reader", str(SHIPPED_READER)]
    args += ["--reader-backend", "torch"]  # no ONNX export for one question
    runner = CliRunner()
    printed = runner.invoke(app, args, catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("1. It depends on the case  (score ")
    assert lines[1:4] == [f"   - {case}: {value}" for case, value in CASES.items()]
    assert lines[4].startswith("   source: documents/hr/leave-policy.pdf, page ")
    # The passage with every value in brackets.
    assert "- Netherlands: [25 vacation days per year], of which" in lines[5]
    assert "- India: [21 days of earned leave per year]" in lines[5]
    assert "2. [no answer in the documents]" in printed.stdout
    as_json = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0, as_json.output
    top = json.loads(as_json.stdout)[0]
    assert {c["case"]: " ".join(c["value"].split()) for c in top["cases"]} == CASES
    for case in top["cases"]:
        assert top["context"][case["start"] : case["end"]] == case["value"]
