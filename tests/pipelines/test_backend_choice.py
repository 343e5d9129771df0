"""The reader backend "auto" measured per CPU and reader (pipelines/backend_choice.py): cached and
reused, measured again for another reader or a corrupt cache, never overriding an explicit
backend, never choosing one that reads more than 0.5 F1 below fp32."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from haystack import Document
from typer.testing import CliRunner

from docqa.cli import app
from evaluation.reader_metrics import compute_f1, gold_texts
from evaluation.squad import load_squad
from pipelines.backend_choice import (
    CALIBRATION_FILE,
    CANDIDATES,
    MEASURE_ENV,
    BackendChoice,
    answer_f1,
    choice_key,
    choice_path,
    load_calibration,
    measured_choice,
    pending_measurement,
    select,
)
from pipelines.reader import (
    BF16_WEIGHTS,
    ExtractiveReader,
    choose_backend,
    cpu_supports_bf16,
    get_predictor,
)
from tests.conftest import DEMO_LABELS, REPO_ROOT

CPU = torch.device("cpu")
QUICK = ("fp32", "int8")  # candidates where a test needs a measurement, not every backend


@pytest.fixture(autouse=True)
def _measuring_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py turns measuring off for the rest of the suite."""
    monkeypatch.delenv(MEASURE_ENV, raising=False)


def _measurement_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any("measuring the reader's backends" in r.getMessage() for r in caplog.records)


@dataclasses.dataclass
class FirstServed:
    """A server's reader component ("auto", a home's cache) from its first load on a CPU
    not measured yet: the backend it loaded, and whether its measurement was still running
    when the load returned."""

    reader: ExtractiveReader
    backend: str
    measuring: bool


@pytest.fixture(scope="module")
def first_served(
    tiny_reader: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, FirstServed]:
    """A home whose cache holds the tiny reader's choice, measured with every candidate on the
    shipped calibration set as a server measures it: in the background of the reader
    component's first load (its home, and that component after the measurement ended)."""
    home = tmp_path_factory.mktemp("measured")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(MEASURE_ENV, raising=False)
        reader = ExtractiveReader(tiny_reader, backend="auto", cache_dir=str(home / "cache"))
        reader.warm_up()
        first = reader.predictor.backend
        running = pending_measurement(tiny_reader, home / "cache")
        if running is not None:
            running.join(timeout=600)
    return home, FirstServed(reader, first, running is not None)


@pytest.fixture(scope="module")
def measured(first_served: tuple[Path, FirstServed], tiny_reader: Path) -> tuple[Path, Path]:
    """(home, cache file) of that measurement."""
    home = first_served[0]
    return home, choice_path(home / "cache", choice_key(tiny_reader))


def test_a_server_answers_at_once_and_reads_with_the_measured_backend_once_measured(
    first_served: tuple[Path, FirstServed], measured: tuple[Path, Path], tiny_reader: Path
) -> None:
    """The first load does not wait for the measurement (half a minute on the shipped reader):
    it reads with the fixed rule; the next question after the measurement is written reads
    with the measured backend."""
    _, served = first_served
    assert served.measuring
    assert served.backend == ("torch" if cpu_supports_bf16() else "int8")
    choice = BackendChoice.from_json(measured[1].read_text(encoding="utf-8"))
    document = Document(content=load_calibration()[0].context, score=1.0)
    answers = served.reader.run("What is this about?", [document])["answers"]
    assert answers  # it still answers, now with the measured backend
    assert (served.reader.predictor.backend, served.reader.predictor.cpu_precision) == (
        CANDIDATES[choice.chosen]
    )
    assert pending_measurement(tiny_reader, measured[0] / "cache") is None


def test_the_calibration_set_ships_with_the_reader_and_is_no_test_data() -> None:
    pairs = load_calibration()
    assert CALIBRATION_FILE.is_file() and len(pairs) == 48
    assert sum(1 for p in pairs if not p.answers) == 10
    assert all(a in p.context for p in pairs for a in p.answers)
    assert max(len(p.context) for p in pairs) < 4000  # one indexed passage each
    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    assert not {p.question for p in pairs} & {ex.question for ex in dev}


def test_f1_is_the_evaluation_f1() -> None:
    """pipelines may not import evaluation, so the F1 is written twice: they must agree."""
    examples, _ = load_squad(CALIBRATION_FILE)
    predictions = ["", "the", "a 2 days", *(a.text for ex in examples for a in ex.answers)]
    predictions += [a.text[: len(a.text) // 2] for ex in examples for a in ex.answers]
    for ex in examples:
        golds = [a.text for a in ex.answers]
        for pred in predictions[:: max(1, len(predictions) // 25)] + golds:
            expected = max(compute_f1(g, pred) for g in gold_texts(ex))
            assert answer_f1(golds, pred) == pytest.approx(expected)


def test_the_choice_is_measured_once_then_read_from_the_cache(
    tiny_reader: Path, measured: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    home, path = measured
    first = BackendChoice.from_json(path.read_text(encoding="utf-8"))
    expected = {"fp32", "int8", "onnx", "onnx-int8"} | (
        {BF16_WEIGHTS} if cpu_supports_bf16() else set()
    )
    assert {r.candidate for r in first.rows} == expected
    assert first.chosen in expected and first.reason
    stamp = path.stat().st_mtime_ns, path.stat().st_ino

    caplog.set_level(logging.INFO)
    again = measured_choice(tiny_reader, home / "cache")
    predictor = get_predictor(tiny_reader, "cpu", backend="auto", cache_dir=home / "cache")
    assert not _measurement_logged(caplog)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    assert again.measured_at == first.measured_at and again.chosen == first.chosen
    backend, precision = CANDIDATES[first.chosen]
    assert (predictor.backend, predictor.cpu_precision) == (backend, precision)
    assert any(first.chosen in r.getMessage() and "auto" in r.getMessage() for r in caplog.records)


def test_another_reader_gets_its_own_choice(tiny_reader: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_reader, copy)
    cache = tmp_path / "cache"
    assert choice_path(cache, choice_key(copy)) == choice_path(cache, choice_key(tiny_reader))
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    (copy / "config.json").write_text(json.dumps({**config, "note": "retrained"}), "utf-8")
    changed = choice_key(copy)
    assert changed["reader"] != choice_key(tiny_reader)["reader"]
    assert choice_path(cache, changed) != choice_path(cache, choice_key(tiny_reader))


def test_a_corrupt_cache_is_measured_again(
    tiny_reader: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    path = choice_path(cache, choice_key(tiny_reader))
    path.parent.mkdir(parents=True)
    path.write_text('{"chosen": "onnx-int8", "rows": [', encoding="utf-8")
    caplog.set_level(logging.INFO)
    choice = measured_choice(tiny_reader, cache, candidates=QUICK)
    assert any(r.levelno == logging.WARNING and "corrupt" in r.getMessage() for r in caplog.records)
    assert _measurement_logged(caplog)
    assert BackendChoice.from_json(path.read_text(encoding="utf-8")).chosen == choice.chosen
    assert {r.candidate for r in choice.rows} == set(QUICK)


def test_an_explicit_backend_is_never_overridden(tiny_reader: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for backend in ("torch", "int8", "onnx-int8"):
        assert choose_backend(backend, CPU) == (backend, None)
    assert get_predictor(tiny_reader, backend="int8", cache_dir=cache).backend == "int8"
    # A GPU reads with torch (fp16); nothing is measured for it.
    assert choose_backend("auto", torch.device("cuda")) == ("torch", None)
    assert not (cache / "reader_backend").exists()


def test_without_a_cache_dir_or_with_measuring_off_auto_keeps_the_fixed_rules(
    tiny_reader: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = ("torch", BF16_WEIGHTS) if cpu_supports_bf16() else ("int8", None)
    assert choose_backend("auto", CPU) == fixed
    assert get_predictor(tiny_reader, backend="auto", cache_dir=None).backend == fixed[0]
    monkeypatch.setenv(MEASURE_ENV, "0")
    assert (
        get_predictor(tiny_reader, backend="auto", cache_dir=tmp_path / "cache").backend
        == (fixed[0])
    )
    assert not (tmp_path / "cache" / "reader_backend").exists()


def test_a_backend_more_than_half_a_point_below_fp32_is_never_chosen(
    measured: tuple[Path, Path],
) -> None:
    """On the tiny reader's measured rows: the fastest row, its F1 put 0.6 below fp32's, loses
    to the next fastest; 0.4 below, it wins."""
    rows = BackendChoice.from_json(measured[1].read_text(encoding="utf-8")).rows
    base = next(r for r in rows if r.candidate == "fp32")
    # fp32 slowest of all, so that some other row is the fastest.
    rows = [
        dataclasses.replace(r, seconds=max(x.seconds for x in rows) * 2) if r is base else r
        for r in rows
    ]
    base = next(r for r in rows if r.candidate == "fp32")
    fastest = max(rows, key=lambda r: r.windows_per_second)
    others = [r for r in rows if r is not fastest]
    for drop, wins in ((0.6, False), (0.4, True)):
        changed = [*others, dataclasses.replace(fastest, f1=base.f1 - drop)]
        for r in others:  # the others read as well as fp32
            changed[changed.index(r)] = dataclasses.replace(r, f1=base.f1)
        assert (select(changed).candidate == fastest.candidate) is wins
    assert (
        select([dataclasses.replace(r, f1=base.f1 - 5) if r is not base else r for r in rows])
        == base
    )


def test_the_cli_prints_the_table_and_measures_again_when_asked(
    tiny_reader: Path, measured: tuple[Path, Path]
) -> None:
    home, path = measured
    runner = CliRunner()
    shown = runner.invoke(
        app, ["reader-backend", "--home", str(home), "--reader", str(tiny_reader)]
    )
    assert shown.exit_code == 0, shown.output
    cached = BackendChoice.from_json(path.read_text(encoding="utf-8"))
    assert "windows/s" in shown.output and "within 0.5" in shown.output
    assert f"auto reads with {cached.chosen}" in shown.output
    again = runner.invoke(
        app,
        [
            "reader-backend",
            "--home",
            str(home),
            "--reader",
            str(tiny_reader),
            "--measure",
            "--json",
        ],
    )
    assert again.exit_code == 0, again.output
    remeasured = BackendChoice.from_json(again.stdout)
    assert remeasured.measured_at > cached.measured_at
    assert (
        BackendChoice.from_json(path.read_text(encoding="utf-8")).measured_at
        == remeasured.measured_at
    )


# A process that starts the background measurement and exits once ONNX Runtime has loaded the
# export (what a server stopped in its first minute does): the measurement must stop at its next
# step, not be killed inside ONNX Runtime or torch at interpreter exit.
_EXIT_WHILE_MEASURING = """
import sys, time
from pathlib import Path
from pipelines.backend_choice import measure_in_background, pending_measurement
reader, cache = sys.argv[1], Path(sys.argv[2])
measure_in_background(reader, cache)
deadline = time.monotonic() + 300
while not any((cache / "onnx").rglob("*.onnx")) and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
if pending_measurement(reader, cache) is None:
    sys.exit("the measurement ended before the process exited")
"""


def test_a_process_exiting_while_measuring_exits_cleanly_and_caches_nothing(
    tiny_reader: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, MEASURE_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_WHILE_MEASURING, str(tiny_reader), str(cache)],
        capture_output=True, text=True, timeout=400, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "terminate called" not in done.stderr
    assert choice_path(cache, choice_key(tiny_reader)).exists() is False  # a cut measurement
