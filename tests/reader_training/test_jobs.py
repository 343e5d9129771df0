"""Retraining in the background: one job per home, progress, the gate, promote or discard."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pipelines.reader_registry import model_path, serving_name, set_serving
from pipelines.settings import Settings
from reader_training.feedback import FeedbackStore
from reader_training.jobs import (
    JobError,
    cancel_retrain,
    current_job,
    decide,
    progress,
    start_retrain,
)

DOCS = {
    "Leave policy": "Employees receive 25 days of paid annual leave per year. Unused days expire "
    "on 31 March of the following year.",
    "Travel policy": "Train travel is booked in second class. Flights need the approval of the "
    "head of department before booking.",
    "IT handbook": "Laptops are replaced every four years. The service desk is open from 8:00 "
    "to 18:00 on working days.",
}
PAIRS = [
    ("Leave policy", "How many days of paid annual leave do employees get?", "25 days"),
    ("Leave policy", "When do unused leave days expire?", "31 March of the following year"),
    ("Travel policy", "Which class is train travel booked in?", "second class"),
    ("Travel policy", "Who approves flights?", "the head of department"),
    ("IT handbook", "How often are laptops replaced?", "every four years"),
    ("IT handbook", "When does the service desk open?", "8:00"),
]


@pytest.fixture
def settings(tmp_path: Path, tiny_reader: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    shutil.copytree(tiny_reader, settings.models_dir / "tiny")
    set_serving(settings, "tiny")
    return settings


def add_pairs(settings: Settings) -> None:
    store = FeedbackStore(settings.feedback_file)
    for title, question, answer in PAIRS:
        context = DOCS[title]
        store.add(question, context, answer, context.index(answer), title, {"origin": "annotation"})


def wait_for(settings: Settings, seconds: float = 600) -> list[dict]:
    """Poll until the job is no longer active; the progress snapshots seen on the way."""
    seen = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = current_job(settings)
        assert job is not None
        seen.append(progress(settings, job))
        if not job.active:
            return seen
        time.sleep(0.5)
    raise AssertionError("the retraining did not finish in time")


def test_retrain_in_the_background_then_promote(settings: Settings) -> None:
    with pytest.raises(JobError, match="no labeled pairs"):
        start_retrain(settings)
    add_pairs(settings)
    job = start_retrain(settings, name="retrain-1")
    assert job.pairs == len(PAIRS) and job.active
    with pytest.raises(JobError, match="already running"):
        start_retrain(settings, name="retrain-2")
    seen = wait_for(settings)
    job = current_job(settings)
    assert job is not None
    log = (settings.home / "jobs" / "retrain-1.log").read_text()
    assert job.status == "finished", (job.error, log[-3000:])
    # The curve moved while it trained, and ended at the planned number of steps.
    last = seen[-1]
    assert last["max_steps"] > 0 and last["step"] == last["max_steps"]
    assert last["loss"] and last["heldout_f1"]
    verdict = job.verdict
    assert verdict is not None and verdict["heldout_pairs"] >= 1
    assert {"heldout_f1_before", "heldout_f1_after"} <= set(verdict)
    assert verdict["forgetting_set"] == "dev.json"
    assert isinstance(verdict["recommend_promotion"], bool) and verdict["summary"]
    assert serving_name(settings) == "tiny"  # nothing serves before someone decides

    decided = decide(settings, promote=True)
    assert decided.decided == "promoted" and serving_name(settings) == "retrain-1"
    with pytest.raises(JobError, match="no finished retraining"):
        decide(settings, promote=False)


def test_cancel_stops_the_run_and_leaves_no_model(settings: Settings) -> None:
    add_pairs(settings)
    job = start_retrain(settings, name="retrain-x")
    cancelled = cancel_retrain(settings)
    assert cancelled.status == "cancelled" and not cancelled.active
    time.sleep(1.0)
    assert current_job(settings).status == "cancelled"  # type: ignore[union-attr]
    assert not model_path(settings, "retrain-x").exists()
    with pytest.raises(JobError, match="no retraining is running"):
        cancel_retrain(settings)
    assert job.pid > 0
    again = start_retrain(settings, name="retrain-y")  # a new one may start
    cancel_retrain(settings)
    assert again.name == "retrain-y"
