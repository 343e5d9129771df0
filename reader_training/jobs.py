"""Retraining from the page: one background run of ``docqa train`` on the labeled pairs.

The Models page starts it; it runs as its own process (``python -m reader_training.jobs``, in a
new session), so it survives a page reload or a browser closing, and the page keeps serving the
current reader meanwhile. It trains exactly as ``docqa train FEEDBACK_FILE --name N`` does
(continuing from the serving reader with replay, :mod:`reader_training.start`), then runs the
promotion gate: F1 before and after on the held-out part of the labeled pairs, and on the demo
collection's dev pairs (shipped with DocQA: what the reader must not forget). The new version
is only served when someone promotes it.

State lives in ``<home>/jobs``: ``retrain.json`` (the job: status, pid, verdict), the run's log,
and a progress file the trainer rewrites every few steps; the loss and held-out F1 curves are the
trainer's own ``train_log.jsonl``. One job at a time per home (a lock guards starting one).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from transformers import TrainerCallback

from evaluation.squad import write_json_atomic
from pipelines.settings import Settings
from reader_training.promote import MAX_FORGETTING

logger = logging.getLogger(__name__)

JOB_FILE = "retrain.json"
ACTIVE = ("starting", "running", "evaluating")
# The most the forgetting set's F1 may fall for the gate to recommend promotion.


class JobError(RuntimeError):
    """A job cannot be started, cancelled or decided; the message says why."""


@dataclass
class RetrainJob:
    """One retraining run and what became of it."""

    name: str
    status: str  # starting, running, evaluating, finished, failed, cancelled
    pid: int
    started_at: float
    pairs: int
    serving_before: str
    finished_at: float | None = None
    error: str | None = None
    verdict: dict[str, Any] | None = None
    decided: str | None = None  # promoted or discarded

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def jobs_dir(settings: Settings) -> Path:
    return settings.home / "jobs"


def _lock(settings: Settings) -> FileLock:
    jobs_dir(settings).mkdir(parents=True, exist_ok=True)
    return FileLock(str(jobs_dir(settings) / "retrain.lock"), timeout=30)


def log_file(settings: Settings, name: str) -> Path:
    return jobs_dir(settings) / f"{name}.log"


def progress_file(settings: Settings, name: str) -> Path:
    return jobs_dir(settings) / f"{name}.progress.json"


def work_dir(settings: Settings, name: str) -> Path:
    """Where the trainer keeps checkpoints and its log (``reader_training.train``)."""
    return settings.models_dir / f".{name}.work"


def _read(settings: Settings) -> RetrainJob | None:
    try:
        data = json.loads((jobs_dir(settings) / JOB_FILE).read_text(encoding="utf-8"))
        return RetrainJob(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write(settings: Settings, job: RetrainJob) -> None:
    write_json_atomic(dataclasses.asdict(job), jobs_dir(settings) / JOB_FILE)


def _update(settings: Settings, name: str, **changes: Any) -> RetrainJob | None:
    """Change the recorded job (if it is still ``name``) under the lock."""
    with _lock(settings):
        job = _read(settings)
        if job is None or job.name != name:
            return None
        if job.status == "cancelled" and changes.get("status") not in (None, "cancelled"):
            return job  # a cancelled run that has not stopped yet must not overwrite it
        job = dataclasses.replace(job, **changes)
        _write(settings, job)
        return job


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_job(settings: Settings) -> RetrainJob | None:
    """The last job of this home; an active one whose process is gone is marked failed."""
    with _lock(settings):
        return _current_job_locked(settings)


def _current_job_locked(settings: Settings) -> RetrainJob | None:
    job = _read(settings)
    if job is not None and job.active and not _alive(job.pid):
        job = dataclasses.replace(
            job,
            status="failed",
            finished_at=time.time(),
            error=f"the training process ended unexpectedly (see {log_file(settings, job.name)})",
        )
        _write(settings, job)
    return job


def labeled_pair_count(settings: Settings) -> int:
    from reader_training.feedback import FeedbackStore

    return len(FeedbackStore(settings.feedback_file).list())


def start_retrain(settings: Settings, name: str | None = None) -> RetrainJob:
    """Start training a new reader version on the home's labeled pairs, in the background."""
    from pipelines.reader_registry import model_path, resolve_reader

    with _lock(settings):
        job = _current_job_locked(settings)
        if job is not None and job.active:
            raise JobError(f"a retraining ({job.name}) is already running; wait or cancel it")
        pairs = labeled_pair_count(settings)
        if pairs == 0:
            raise JobError("no labeled pairs yet: give feedback on answers or annotate first")
        name = name or datetime.now(UTC).strftime("retrain-%Y%m%d-%H%M%S")
        if model_path(settings, name).exists():
            raise JobError(f"a model version named {name} exists already")
        log = log_file(settings, name)
        progress_file(settings, name).unlink(missing_ok=True)
        command = [sys.executable, "-m", "reader_training.jobs", "--home", str(settings.home)]
        command += ["--name", name]
        if settings.reader_model:
            command += ["--reader", settings.reader_model]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: survives the page, cancellable
                cwd=str(Path(__file__).resolve().parent.parent),
            )
        job = RetrainJob(
            name=name,
            status="starting",
            pid=process.pid,
            started_at=time.time(),
            pairs=pairs,
            serving_before=resolve_reader(settings),
        )
        _write(settings, job)
    logger.info("started retraining %s (pid %d) on %d pairs", name, process.pid, pairs)
    return job


def cancel_retrain(settings: Settings) -> RetrainJob:
    """Stop the running job and remove what it had written."""
    job = current_job(settings)
    if job is None or not job.active:
        raise JobError("no retraining is running")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(job.pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(job.pid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGKILL)
    shutil.rmtree(work_dir(settings, job.name), ignore_errors=True)
    cancelled = _update(settings, job.name, status="cancelled", finished_at=time.time())
    assert cancelled is not None
    return cancelled


def decide(settings: Settings, promote: bool) -> RetrainJob:
    """Promote the finished job's reader (it serves from the next question) or discard it."""
    from pipelines.reader_registry import model_path, set_serving

    job = current_job(settings)
    if job is None or job.status != "finished" or job.decided:
        raise JobError("no finished retraining is waiting for a decision")
    if promote:
        set_serving(settings, job.name)
    else:
        shutil.rmtree(model_path(settings, job.name), ignore_errors=True)
    decided = _update(settings, job.name, decided="promoted" if promote else "discarded")
    assert decided is not None
    return decided


def progress(settings: Settings, job: RetrainJob) -> dict[str, Any]:
    """Steps done and planned, an ETA, and the loss and held-out F1 curves so far."""
    try:
        state = json.loads(progress_file(settings, job.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    loss: list[tuple[int, float]] = []
    f1: list[tuple[int, float]] = []
    with contextlib.suppress(OSError):
        lines = (work_dir(settings, job.name) / "train_log.jsonl").read_text("utf-8").splitlines()
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if "loss" in record:
                    loss.append((int(record["step"]), float(record["loss"])))
                if "eval_f1" in record:
                    f1.append((int(record["step"]), float(record["eval_f1"])))
    step, total = int(state.get("step", 0)), int(state.get("max_steps", 0))
    eta = None
    if 0 < step < total and state.get("train_seconds"):
        eta = state["train_seconds"] / step * (total - step)
    return {"step": step, "max_steps": total, "eta_seconds": eta, "loss": loss, "heldout_f1": f1}


# -- the background process -------------------------------------------------------------------


class _ProgressFile(TrainerCallback):
    """Rewrites the job's progress file (step, planned steps, seconds) at most once a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.last = 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        now = time.time()
        if now - self.last >= 1.0 or state.global_step >= state.max_steps:
            self.last = now
            write_json_atomic(
                {
                    "step": state.global_step,
                    "max_steps": state.max_steps,
                    "train_seconds": now - self.started,
                },
                self.path,
            )


def gate(
    serving: str, candidate: Path, heldout: list[Any], forgetting_file: Path
) -> dict[str, Any]:
    """F1 before and after on the held-out labeled pairs and on the forgetting set, each reader
    at the no-answer threshold it serves with."""
    from evaluation.reader_metrics import evaluate_reader
    from evaluation.squad import load_squad

    def f1(reader: str | Path, examples: list[Any]) -> float:
        return round(float(evaluate_reader(reader, examples, progress=False)[0]["f1"]), 2)

    verdict: dict[str, Any] = {"heldout_pairs": len(heldout)}
    if heldout:
        verdict["heldout_f1_before"] = f1(serving, heldout)
        verdict["heldout_f1_after"] = f1(candidate, heldout)
    general, _ = load_squad(forgetting_file)
    verdict["forgetting_set"] = forgetting_file.name
    verdict["forgetting_f1_before"] = f1(serving, general)
    verdict["forgetting_f1_after"] = f1(candidate, general)
    forgot = verdict["forgetting_f1_before"] - verdict["forgetting_f1_after"]
    better = not heldout or verdict["heldout_f1_after"] >= verdict["heldout_f1_before"]
    verdict["recommend_promotion"] = bool(better and forgot <= MAX_FORGETTING)
    reasons = []
    if heldout:
        reasons.append(
            f"held-out pairs F1 {verdict['heldout_f1_before']:.1f} -> "
            f"{verdict['heldout_f1_after']:.1f}"
        )
    reasons.append(
        f"{forgetting_file.name} F1 {verdict['forgetting_f1_before']:.1f} -> "
        f"{verdict['forgetting_f1_after']:.1f} (may fall at most {MAX_FORGETTING:g})"
    )
    verdict["summary"] = (
        ("promote" if verdict["recommend_promotion"] else "keep the current reader")
        + ": "
        + "; ".join(reasons)
    )
    return verdict


def run_job(settings: Settings, name: str) -> None:
    """Train ``name`` on the labeled pairs and gate it; records the outcome in the job file."""
    from reader_training.promote import DEFAULT_EVAL_FILE
    from reader_training.start import starting_point
    from reader_training.train import train_reader
    from reader_training.train_config import TrainConfig

    job = _update(settings, name, status="running")
    if job is None:
        raise JobError(f"{name}: no such retraining job in {jobs_dir(settings)}")
    # Continue from, and gate against, the reader that served when the job was started.
    serving = job.serving_before
    start = starting_point(settings, serving)
    config = TrainConfig(
        train_files=[str(settings.feedback_file)],
        base_model=start.base_model,
        output_dir=str(settings.models_dir / name),
        replay_files=start.replay_files,
        replay_ratio=start.replay_ratio,
    )
    logger.info("%s; training %s", start.describe(), name)
    callback = _ProgressFile(progress_file(settings, name))
    result = train_reader(config, progress=False, callbacks=[callback])
    _update(settings, name, status="evaluating")
    verdict = gate(serving, result.model_dir, result.heldout, DEFAULT_EVAL_FILE)
    logger.info("%s: %s", name, verdict["summary"])
    _update(settings, name, status="finished", finished_at=time.time(), verdict=verdict)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one retraining job (the Models page).")
    parser.add_argument("--home", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--reader", default=None, help="the reader the page serves (fixed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env(args.home, reader_model=args.reader)
    try:
        run_job(settings, args.name)
    except Exception as exc:  # recorded for the page, then re-raised into the log
        _update(settings, args.name, status="failed", finished_at=time.time(), error=str(exc))
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
