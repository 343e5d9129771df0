"""The ``docqa`` command line, run in-process with typer's CliRunner on real folders and models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docqa.cli import app
from evaluation.squad import load_squad, write_squad
from pipelines.reader_registry import set_serving
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore

FIXTURES = REPO_ROOT / "tests" / "fixtures"
OFFICIAL = REPO_ROOT.parent / "shared" / "data" / "squad" / "evaluate-v2.0.py"
DEMO_DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
ANSWER_KEYS = {"answer", "score", "document", "page", "section", "document_offsets", "context"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# -- index --------------------------------------------------------------------------------------


def test_index_reports_a_corrupt_file_and_indexes_the_rest(
    runner: CliRunner, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    shutil.copy2(FIXTURES / "corrupt.pdf", docs / "corrupt.pdf")
    home = tmp_path / "home"
    result = run(runner, "index", docs, "--home", home, "--no-progress")
    assert result.exit_code == 0, result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1
    assert failed[0].startswith("failed: docs/corrupt.pdf: not a readable PDF (")
    assert "1 added" in result.stdout and "1 failed" in result.stdout
    assert Settings(home=home).index_dir.is_dir()

    as_json = run(runner, "index", docs, "--home", home, "--json")
    assert as_json.exit_code == 0
    summary = json.loads(as_json.stdout)
    assert summary["unchanged"] == 1
    assert summary["failed"] == 1  # counts, as the README says, and the files with why
    assert summary["failed_files"] == [
        {"path": "docs/corrupt.pdf", "reason": failed[0].split(": ", 2)[2]}
    ]

    # A run that only removes a vanished file updated the index: not a failure.
    (docs / "opening-hours.txt").unlink()
    removed = run(runner, "index", docs, "--home", home, "--no-progress")
    assert removed.exit_code == 0, removed.output
    assert "1 removed" in removed.stdout


def test_index_exits_non_zero_when_nothing_could_be_indexed(
    runner: CliRunner, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "corrupt.pdf", docs / "corrupt.pdf")
    shutil.copy2(FIXTURES / "scanned.pdf", docs / "scanned.pdf")
    result = run(runner, "index", docs, "--home", tmp_path / "home", "--no-progress")
    assert result.exit_code != 0
    assert "failed: docs/corrupt.pdf: " in result.stderr
    assert "failed: docs/scanned.pdf: " in result.stderr
    assert "error: nothing was indexed: every file failed" in result.stderr

    for name in ("corrupt.pdf", "scanned.pdf"):
        (docs / name).unlink()
    shutil.copy2(FIXTURES / "data.xyz", docs / "data.xyz")
    unsupported = run(runner, "index", docs, "--home", tmp_path / "home2", "--no-progress")
    assert unsupported.exit_code != 0
    assert "skipped: docs/data.xyz: unsupported file type '.xyz'" in unsupported.stderr
    assert "error: nothing was indexed: no supported documents found" in unsupported.stderr

    missing = run(runner, "index", tmp_path / "nowhere", "--home", tmp_path / "home")
    assert missing.exit_code != 0
    assert "error: no such file or folder:" in missing.stderr


def test_index_dry_run_lists_changes_and_changes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    shutil.copy2(FIXTURES / "onboarding.md", docs / "onboarding.md")
    home = tmp_path / "home"
    first = run(runner, "index", docs, "--home", home, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert set(summary) >= {"added", "updated", "removed", "unchanged", "failed", "passages",
                            "seconds"}  # fmt: skip
    assert (summary["added"], summary["passages"]) == (2, summary["total_passages"])

    (docs / "opening-hours.txt").unlink()
    (docs / "onboarding.md").write_text("# Onboarding\n\nLunch is at noon.\n", encoding="utf-8")
    (docs / "parking.txt").write_text("Parking is in the basement.", encoding="utf-8")
    index_dir = Settings(home=home).index_dir
    current = (index_dir / "CURRENT").read_text()

    dry = run(runner, "index", docs, "--home", home, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [
        "removed: docs/opening-hours.txt",
        "added: docs/parking.txt",
        "updated: docs/onboarding.md",
        "dry run: would add 1, update 1, remove 1; 0 unchanged, 0 failed, 0 skipped; "
        "nothing was written",
    ]
    as_json = json.loads(run(runner, "index", docs, "--home", home, "--dry-run", "--json").stdout)
    assert (as_json["added"], as_json["updated"], as_json["removed"]) == (1, 1, 1)
    assert as_json["dry_run"] is True
    assert (as_json["failed"], as_json["failed_files"], as_json["skipped_files"]) == (0, [], [])
    assert {"action": "updated", "path": "docs/onboarding.md"} in as_json["changes"]
    assert (index_dir / "CURRENT").read_text() == current  # nothing was indexed

    real = json.loads(run(runner, "index", docs, "--home", home, "--json").stdout)
    assert (real["added"], real["updated"], real["removed"], real["unchanged"]) == (1, 1, 1, 0)


def test_second_indexer_is_refused_while_one_holds_the_lock(
    runner: CliRunner, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    home = tmp_path / "home"
    home.mkdir()
    lock = home / "index.lock"
    # Another process holds the indexer's lock (as a running `docqa index` does).
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from filelock import FileLock; held = FileLock(sys.argv[1]); "
         "held.acquire(); print('locked', flush=True); time.sleep(120)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = run(runner, "index", docs, "--home", home, "--no-progress")
    finally:
        holder.kill()
        holder.wait(30)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: another indexer is running (lock: {lock})"
    assert not (home / "index").exists()

    after = run(runner, "index", docs, "--home", home, "--no-progress")  # lock freed on exit
    assert after.exit_code == 0, after.output


def test_index_type_option_is_saved_and_checked(runner: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    home = tmp_path / "home"
    args = ["index", docs, "--home", home, "--no-progress"]
    result = run(runner, *args, "--index-type", "hnsw", "--compression", "sq8")
    assert result.exit_code == 0, result.output
    spec = PassageStore.load(home / "index").index_info()["spec"]
    assert (spec["index_type"], spec["compression"]) == ("hnsw", "sq8")
    bad = run(runner, *args, "--index-type", "hnsw", "--compression", "pq")
    assert bad.exit_code == 2
    assert "pq" in bad.stderr and "hnsw" in bad.stderr
    assert PassageStore.load(home / "index").index_info()["spec"]["compression"] == "sq8"


def test_index_reports_an_unreadable_index(runner: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    index_dir = Settings(home=tmp_path / "home").index_dir
    (index_dir / "v-000001").mkdir(parents=True)
    (index_dir / "v-000001" / "manifest.json").write_text("{", encoding="utf-8")
    (index_dir / "CURRENT").write_text("v-000001\n", encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        result = run(runner, "index", docs, "--home", tmp_path / "home", "--no-progress", *extra)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {index_dir / 'v-000001'}: unreadable manifest")


# -- ask ----------------------------------------------------------------------------------------


def test_ask_json_prints_answers_with_citations(runner: CliRunner, demo_home: Settings) -> None:
    result = run(
        runner,
        "ask",
        "Which days are the company-wide anchor days?",
        "--json",
        "--home",
        demo_home.home,
        "--reader",
        demo_home.reader_model,
        "-n",
        "2",
    )
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert isinstance(answers, list) and 2 <= len(answers) <= 3
    for a in answers:
        assert set(a) >= ANSWER_KEYS
        assert 0.0 <= a["score"] <= 1.0
    cited = [a for a in answers if a["answer"] is not None]
    assert cited
    for a in cited:
        assert a["document"].startswith("documents/")
        start, end = a["document_offsets"]
        assert end - start == len(a["answer"])
        assert a["answer"] in a["context"]


def test_ask_prints_readable_answers(runner: CliRunner, demo_home: Settings) -> None:
    result = run(
        runner,
        "ask",
        "Which laptop model do office staff receive?",
        "--home",
        demo_home.home,
        "--reader",
        demo_home.reader_model,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1. ")
    assert "   source: documents/" in result.stdout
    assert "[no answer in the documents]" in result.stdout


def test_ask_reader_backend_option(runner: CliRunner, demo_home: Settings) -> None:
    """--reader-backend picks how the reader runs; the answer offsets stay exact either way."""
    args = ["ask", "Which laptop model do office staff receive?", "--json"]
    args += ["--home", demo_home.home, "--reader", demo_home.reader_model]
    answers = {}
    for backend in ("torch", "int8"):
        result = run(runner, *args, "--reader-backend", backend)
        assert result.exit_code == 0, result.output
        answers[backend] = json.loads(result.stdout)
        for a in answers[backend]:
            if a["answer"] is not None:
                start, end = a["document_offsets"]
                assert (
                    a["context"][a["context_offsets"][0] : a["context_offsets"][1]] == a["answer"]
                )
                assert end - start == len(a["answer"])
    # Both read the same passages: the cited documents agree.
    assert {a["document"] for a in answers["torch"]} & {a["document"] for a in answers["int8"]}
    bad = run(runner, *args, "--reader-backend", "tensorrt")
    assert bad.exit_code == 2
    assert "--reader-backend must be one of auto, torch, int8, onnx, onnx-int8" in bad.stderr


def test_a_file_without_spaces_never_gives_megabyte_answers(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "dump.txt").write_text("".join(f"{i:07d}" for i in range(60_000)), encoding="utf-8")
    shutil.copy2(FIXTURES / "opening-hours.txt", docs / "opening-hours.txt")
    home = tmp_path / "home"
    indexed = run(runner, "index", docs, "--home", home, "--json")
    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.stdout)["total_passages"] > 420_000 // 4000
    args = ["ask", "What is in the dump?", "--json", "--home", home, "--reader", tiny_reader]
    result = run(runner, *args, "-n", "5")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert answers
    for answer in answers:
        assert answer["context"] is None or len(answer["context"]) <= 4000
        assert answer["answer"] is None or len(answer["answer"]) <= 300


def test_ask_refuses_an_empty_question(runner: CliRunner, demo_home: Settings) -> None:
    result = run(runner, "ask", "  ", "--home", demo_home.home, "--reader", demo_home.reader_model)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: the question is empty: type a question"
    assert result.stdout == ""


def test_ask_without_an_index_says_what_to_do(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    result = run(
        runner, "ask", "Where is the office?", "--home", tmp_path / "home", "--reader", tiny_reader
    )
    assert result.exit_code == 2
    assert "run `docqa index FOLDER` first" in result.stderr


# -- models, evaluate-reader, train -------------------------------------------------------------


def test_models_lists_versions_and_marks_the_serving_one(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(tiny_reader, settings.models_dir / "tiny-v1")
    shutil.copytree(tiny_reader, settings.models_dir / "tiny-v2")
    set_serving(settings, "tiny-v2")
    result = run(runner, "models", "--home", settings.home)
    assert result.exit_code == 0, result.output
    lines = {line[2:].split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert {"tiny-v1", "tiny-v2"} <= set(lines)
    assert lines["tiny-v2"].startswith("* ") and lines["tiny-v1"].startswith("  ")
    assert "held-out F1 " in lines["tiny-v1"]


def test_evaluate_reader_predictions_match_the_official_script(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    examples, _ = load_squad(DEMO_DEV)
    small = tmp_path / "dev-small.json"
    write_squad(
        [ex for ex in examples if ex.answers][:8] + [ex for ex in examples if not ex.answers][:4],
        small,
    )
    predictions = tmp_path / "out" / "predictions.json"
    result = run(
        runner,
        "evaluate-reader",
        small,
        "--model",
        tiny_reader,
        "--predictions",
        predictions,
        "--json",
        "--home",
        tmp_path / "home",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["total"] == 12 and metrics["HasAns_total"] == 8
    preds = json.loads(predictions.read_text(encoding="utf-8"))
    assert set(preds) == {ex.id for ex in load_squad(small)[0]}
    assert all(isinstance(text, str) for text in preds.values())

    official = subprocess.run(
        [sys.executable, str(OFFICIAL), str(small), str(predictions)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    theirs = json.loads(official.stdout)
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1"):
        assert metrics[key] == pytest.approx(theirs[key], abs=1e-6), key

    table = run(
        runner, "evaluate-reader", small, "--model", tiny_reader, "--home", tmp_path / "home"
    )
    assert table.exit_code == 0
    assert "kept 12 questions" in table.stdout and "overall" in table.stdout


def test_evaluate_reader_refuses_a_file_that_is_not_squad(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"questions": []}', encoding="utf-8")
    result = run(runner, "evaluate-reader", bad, "--model", tiny_reader)
    assert result.exit_code == 1
    assert "notes.json: not SQuAD JSON" in result.stderr


def test_train_reports_bad_input(runner: CliRunner, tmp_path: Path, tiny_base: str) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text("[1, 2", encoding="utf-8")
    home = tmp_path / "home"
    result = run(runner, "train", bad, "--name", "v1", "--base-model", tiny_base, "--home", home)
    assert result.exit_code == 1
    assert "labels.json: invalid JSON at line 1 column" in result.stderr
    assert not (home / "models" / "v1").exists()

    no_name = run(runner, "train", bad, "--home", home)
    assert no_name.exit_code == 2 and "--name" in no_name.stderr

    # The training settings are TrainConfig's, checked as it checks them, named as options.
    stride = run(runner, "train", bad, "--name", "v1", "--doc-stride", "300", "--home", home)
    assert stride.exit_code == 2
    assert "--doc-stride must be above 0 and below max_seq_length (256), not 300" in stride.stderr
    negatives = run(runner, "train", bad, "--name", "v1", "--negatives", "-1", "--home", home)
    assert negatives.exit_code == 2 and "--negatives must be 0 or more" in negatives.stderr
    precision = run(runner, "train", bad, "--name", "v1", "--precision", "fp8", "--home", home)
    assert precision.exit_code == 2 and "--precision must be one of auto" in precision.stderr
    assert not (home / "models" / "v1").exists()

    recipe = run(runner, "campaign", "--recipe", "nope", "--home", home)
    assert recipe.exit_code == 1
    assert "error: unknown recipe 'nope' (known: default, v0.2)" in recipe.stderr

    # The campaign: bad options are refused before anything is read or trained.
    budget = run(runner, "campaign", "--budget", "2x", "--home", home)
    assert budget.exit_code == 2 and "use e.g. 150m" in budget.stderr
    stage = run(runner, "campaign", "--stage", "nope", "--home", home)
    assert stage.exit_code == 2 and "--stage must be all, chunk or gate" in stage.stderr
    gate = run(runner, "campaign", "--stage", "gate", "--home", home)
    assert gate.exit_code == 2 and "no chunk to evaluate" in gate.stderr
    assert not (home / "campaign" / "default" / "campaign.json").exists()


def _split_by_article(source: Path, out: Path, train_questions: int) -> tuple[Path, Path]:
    """The first half of ``source``'s articles (at most ``train_questions``) and the rest."""
    data = json.loads(source.read_text(encoding="utf-8"))
    half = len(data["data"]) // 2
    train_articles, kept = [], 0
    for article in data["data"][:half]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][: max(0, train_questions - kept)]
            kept += len(qas)
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            train_articles.append({**article, "paragraphs": paragraphs})
    few, held = out / "few.json", out / "held.json"
    few.write_text(json.dumps({"version": "v2.0", "data": train_articles}), encoding="utf-8")
    held.write_text(json.dumps({"version": "v2.0", "data": data["data"][half:]}), "utf-8")
    return few, held


def test_train_continues_a_reader_with_held_out_articles_of_ones_own(
    runner: CliRunner, tmp_path: Path, tiny_reader: Path
) -> None:
    """``docqa train`` from a reader, on a few pairs, with ``--holdout``: the options reach the
    run, the reader's pairs are replayed and its ranking settings carry over. (The promise that
    this keeps the shipped reader's F1 is tests/reader_training/test_small_runs.py's.)"""
    import dataclasses

    from pipelines.reader import ReaderConfig

    start = tmp_path / "start"
    shutil.copytree(tiny_reader, start)
    config = ReaderConfig.load(start)
    dataclasses.replace(config, ranking=config.ranking.with_weight(0.7)).save(start)
    few, held = _split_by_article(DEMO_DEV, tmp_path, train_questions=12)
    home = tmp_path / "home"
    trained = run(
        runner, "train", few, "--name", "mine", "--base-model", start, "--holdout", held,
        "--epochs", "1", "--max-seq-length", "128", "--doc-stride", "64",
        "--precision", "fp32", "--home", home,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert f"continuing from the reader {start} (loaded in fp32)" in trained.stdout
    assert "replaying up to 3 pairs per new pair from " in trained.stdout
    held_questions = len(load_squad(held)[0])
    assert f"chosen on the {held_questions} held-out questions" in trained.stdout
    model = Settings(home=home).models_dir / "mine"
    card = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    assert card["config"]["base_model"] == str(start)
    assert card["config"]["epochs"] == 1.0 and card["config"]["holdout_files"] == [str(held)]
    assert card["config"]["max_seq_length"] == 128 and card["config"]["doc_stride"] == 64
    assert card["metrics"]["heldout_questions"] == held_questions
    assert card["metrics"]["train_examples"] == 12 * 4  # each new pair and 3 replayed ones
    assert ReaderConfig.load(model).ranking.retriever_weight == 0.7
    # evaluate-reader scores the new reader on the held-out articles as the run did.
    scored = run(runner, "evaluate-reader", held, "--model", model, "--home", home, "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["f1"] == pytest.approx(card["metrics"]["heldout"]["f1"])


def test_train_starting_points(tmp_path: Path, tiny_base: str, tiny_reader: Path) -> None:
    from pipelines.settings import SHIPPED_READER
    from reader_training.start import DEMO_TRAIN_LABELS, bare_encoder, starting_point

    settings = Settings(home=tmp_path / "home")
    default = starting_point(settings)
    assert (default.base_model, default.continues_reader) == (str(SHIPPED_READER), True)
    assert (default.replay_files, default.replay_ratio) == ([str(DEMO_TRAIN_LABELS)], 3.0)
    set_serving_home = settings.models_dir / "mine"
    shutil.copytree(tiny_reader, set_serving_home)
    set_serving(settings, "mine")
    assert starting_point(settings).base_model == str(set_serving_home)  # the serving one
    scratch = starting_point(settings, from_scratch=True)
    assert scratch.base_model == bare_encoder() and not scratch.continues_reader
    assert (scratch.replay_files, scratch.replay_ratio) == ([], 0.0)
    encoder = starting_point(settings, base_model=tiny_base, replay=[DEMO_DEV], replay_ratio=0.5)
    assert (encoder.replay_files, encoder.replay_ratio) == ([str(DEMO_DEV)], 0.5)
    with pytest.raises(ValueError, match="--base-model or --from-scratch, not both"):
        starting_point(settings, base_model=tiny_base, from_scratch=True)


def test_tune_weight_never_changes_a_reader_outside_the_home(
    runner: CliRunner, tmp_path: Path, demo_home: Settings, tiny_reader: Path
) -> None:
    import hashlib

    from pipelines.reader import ReaderConfig

    def fingerprint(folder: Path) -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())
            if p.is_file()
        }

    home = tmp_path / "home"
    shutil.copytree(demo_home.home, home)
    labels = tmp_path / "held.json"
    examples, _ = load_squad(DEMO_DEV)
    write_squad(examples[:30], labels)
    before = fingerprint(tiny_reader)
    args = ["tune-weight", labels, "--home", home, "--reader", tiny_reader, "-k", "3"]
    result = run(runner, *args)
    assert result.exit_code == 0, result.output
    assert fingerprint(tiny_reader) == before  # the reader it was given is left alone
    tuned = Settings(home=home).models_dir / f"{tiny_reader.name}-tuned"
    assert "saved retriever_weight " in result.stdout and str(tuned) in result.stdout
    assert f"serve it with: docqa promote {tuned.name}" in result.stdout
    chosen = next(line for line in result.stdout.splitlines() if line.startswith("*"))
    ranking = ReaderConfig.load(tuned).ranking
    assert f"null {ranking.null_scope:8} weight {ranking.retriever_weight:.1f}" in chosen
    assert f"rank prior {ranking.rank_prior:.1f}: F1" in chosen
    again = run(runner, *args)
    assert again.exit_code == 1
    assert "a version of that name exists" in again.stderr


def test_promote_unknown_version_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "promote", "nope", "--home", tmp_path / "home")
    assert result.exit_code == 1
    assert "error: nope: no complete model folder" in result.stderr


def test_python_m_docqa_shows_the_commands(tmp_path: Path) -> None:
    env = os.environ | {"DOCQA_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "docqa", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    for command in (
        "index",
        "ask",
        "train",
        "evaluate-reader",
        "evaluate",
        "models",
        "promote",
        "ui",
    ):
        assert command in out.stdout


def test_ask_is_logged_unless_the_log_is_off(
    runner: CliRunner, demo_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from pipelines.learning_loop.question_log import QuestionLog

    home = tmp_path / "home"
    shutil.copytree(demo_home.index_dir, home / "index")
    args = ["ask", "Which laptop model do office staff receive?", "--home", home]
    args += ["--reader", demo_home.reader_model]
    assert run(runner, *args).exit_code == 0
    logged = QuestionLog(home / "questions.sqlite").questions()
    assert [(q.channel, q.question) for q in logged] == [
        ("cli", "Which laptop model do office staff receive?")
    ]
    monkeypatch.setenv("DOCQA_QUESTION_LOG", "0")
    assert run(runner, *args).exit_code == 0
    assert len(QuestionLog(home / "questions.sqlite")) == 1


ONE_QUESTION_PROBE = """
import json, sys
from docqa.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    loaded = sorted(m for m in ("transformers", "sentence_transformers") if m in sys.modules)
    print(json.dumps({"imported": loaded}), file=sys.stderr)
"""


def test_ask_in_a_new_process_reads_with_onnx_without_transformers(
    runner: CliRunner, demo_home: Settings
) -> None:
    """One question in a new process (`docqa ask`): the reader and question encoder run in ONNX
    Runtime and transformers is never imported (seconds of start), with the answers of the
    fp32 torch reader the page would use; DOCQA_ONE_SHOT_ONNX=0 keeps the page's backend."""
    args = ["ask", "Which laptop model do office staff receive?", "--json"]
    args += ["--home", str(demo_home.home), "--reader", str(demo_home.reader_model)]

    def new_process(**env: str) -> tuple[list[dict], list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", ONE_QUESTION_PROBE, *args],
            capture_output=True, text=True, cwd=REPO_ROOT, env=os.environ | env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        # A library's debug chatter (bm25s sets itself to DEBUG) never reaches the user.
        assert not [line for line in done.stderr.splitlines() if line.startswith("DEBUG")]
        return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])["imported"]

    # The first ask of a reader version exports it to ONNX (that one process needs torch's
    # exporter and transformers); every later one reads the export.
    new_process()
    answers, imported = new_process()
    assert imported == []
    assert list((demo_home.home / "cache" / "onnx").glob("reader-*.onnx"))
    assert list((demo_home.home / "cache" / "onnx").glob("encoder-*.onnx"))
    fp32 = json.loads(run(runner, *args, "--reader-backend", "torch").stdout)
    assert [(a["answer"], a["document"], a["document_offsets"]) for a in answers] == [
        (a["answer"], a["document"], a["document_offsets"]) for a in fp32
    ]
    for got, want in zip(answers, fp32, strict=True):
        assert got["score"] == pytest.approx(want["score"], abs=1e-3)
    _, imported = new_process(DOCQA_ONE_SHOT_ONNX="0")
    assert "transformers" in imported
