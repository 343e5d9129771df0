"""``docqa train-verifier`` on the user's own labeled pairs over a real index, shipped reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from docqa.cli import app
from evaluation.squad import load_squad, write_squad
from pipelines.settings import REPO_ROOT, SHIPPED_READER, Settings
from pipelines.verifier import VERIFIER_FILE, AnswerVerifier


def test_train_verifier_on_own_pairs_compares_with_the_reader_and_saves_a_version(
    demo_home: Settings, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(demo_home.home, home, symlinks=True)
    examples, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "train.json")
    indexed = ("hr/leave-policy.pdf", "hr/remote-work-policy.md", "it/laptop-provisioning.html")
    pairs = tmp_path / "pairs.json"
    write_squad([ex for ex in examples if ex.title in indexed][:40], pairs)
    runner = CliRunner()
    args = ["train-verifier", "--home", str(home), "--reader", str(SHIPPED_READER)]
    result = runner.invoke(app, [*args, "--pairs", str(pairs), "--force"])
    assert result.exit_code == 0, result.output
    # It says how it compares with the reader's own ranking on the same questions.
    assert "against the reader's own ranking" in result.output
    saved = home / "models" / f"{Path(SHIPPED_READER).name}-verified"
    verifier = AnswerVerifier.load(saved)
    assert verifier is not None and verifier.trained_on["sources"] == ["pairs.json"]
    assert not (Path(SHIPPED_READER) / VERIFIER_FILE).exists()  # the shipped reader untouched
    data = json.loads((saved / VERIFIER_FILE).read_text())
    assert data["trained_on"]["questions"] == 40

    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"title": "x", "paragraphs": "not a list"}]}')
    result = runner.invoke(app, [*args, "--pairs", str(bad)])
    assert result.exit_code != 0 and "bad.json" in result.output
