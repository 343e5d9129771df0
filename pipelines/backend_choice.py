"""The reader backend "auto" means on this CPU, measured once and cached.

Fixed rules guessed wrong: on an AMD EPYC Zen 4 (AVX-512 BF16, no AMX) ONNX Runtime int8 beat
the bf16 model, on an AMX Xeon bf16 is fastest, and on AVX2-only CPUs bf16 is 28 times slower
(benchmarks/results/serving*.json). So on first use each candidate backend reads the reader's
calibration set (``data/reader/calibration.json``: 48 demo pairs the shipped reader never
trained on, scripts/build_reader_calibration.py), decoded as
``evaluation.reader_metrics.evaluate_reader`` decodes (the reader's own threshold, official
SQuAD F1); those within ``MAX_F1_DROP`` F1 of fp32 stay and the fastest of them is chosen.

The choice is cached as JSON in ``<cache_dir>/reader_backend/`` under a key of everything it
depends on: the CPU model and its bf16/int8 features, torch's thread count, the reader's
fingerprint (the one that names its ONNX export), the torch and onnxruntime versions and the
calibration set. A new reader version, CPU or library measures again; a corrupt file is
measured again with a warning. ``DOCQA_MEASURE_READER_BACKEND=0`` turns measuring off ("auto"
keeps the fixed rules). bf16 candidates are measured only on CPUs with native bf16: elsewhere
one read would take minutes.

A server does not wait for it: on a miss "auto" serves with the fixed rules at once and measures
in a background thread (:func:`measure_in_background`, one per reader and cache in a process);
the reader component (:class:`pipelines.reader.ExtractiveReader`) reads with the measured
backend from the first question after it is written. The first questions are slower while the
measurement shares the CPU, but none waits half a minute for it.

One read of the 48 pairs (66 windows) per backend: at benchmarks/results/serving*.json's
speeds about 30 s on 2 cores with loading and the one-time ONNX export (40 s on a 2-core EPYC
that another process kept busy). With 48 pairs one flipped answer moves F1 by about 2 points,
so "within 0.5" keeps the backends that give fp32's answers, near enough; int8 backends'
answers also move with how windows are batched (one activation scale per batch).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipelines.answer_scores import compute_f1, normalize_answer
from pipelines.reader_backends import BF16_WEIGHTS, _fingerprint, cpu_supports_bf16
from pipelines.settings import SHIPPED_READER
from pipelines.store.versions import write_atomic

logger = logging.getLogger(__name__)

CALIBRATION_FILE = SHIPPED_READER / "calibration.json"
MAX_F1_DROP = 0.5
CACHE_FOLDER = "reader_backend"
MEASURE_ENV = "DOCQA_MEASURE_READER_BACKEND"
# Bumped when what is measured changes, so old choices are measured again.
MEASUREMENT_VERSION = 1
BASELINE = "fp32"
# Candidate name -> (reader backend, CPU precision): what SpanPredictor takes.
CANDIDATES: dict[str, tuple[str, str]] = {
    BASELINE: ("torch", "fp32"),
    BF16_WEIGHTS: ("torch", BF16_WEIGHTS),
    "int8": ("int8", "fp32"),
    "onnx": ("onnx", "fp32"),
    "onnx-int8": ("onnx-int8", "fp32"),
}
_CPU_FLAGS = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


class MeasurementStopped(RuntimeError):
    """A measurement stopped before its end (the process is exiting); nothing was cached."""


@dataclass(frozen=True)
class CalibrationPair:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # gold texts; empty: unanswerable


def load_calibration(path: str | Path = CALIBRATION_FILE) -> list[CalibrationPair]:
    """The pairs of a SQuAD v2.0 file (calibration sets are written clean, so no repairs)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        CalibrationPair(
            str(qa["id"]),
            qa["question"],
            paragraph["context"],
            tuple(a["text"] for a in qa.get("answers", []) if not qa.get("is_impossible")),
        )
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def answer_f1(golds: Sequence[str], prediction: str) -> float:
    """The best token F1 (0-1) of ``prediction`` against any gold text ("" when unanswerable),
    as ``evaluation.reader_metrics`` scores a question (``gold_texts``)."""
    texts = [g for g in golds if normalize_answer(g)] or [""]
    return max(compute_f1(gold, prediction) for gold in texts)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One candidate's read of the calibration set."""

    candidate: str
    f1: float  # percent
    seconds: float  # the timed read (after a warm-up)
    windows: int
    load_seconds: float

    @property
    def windows_per_second(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else 0.0


def select(rows: Sequence[Measurement], max_f1_drop: float = MAX_F1_DROP) -> Measurement:
    """The fastest row whose F1 is at most ``max_f1_drop`` below the fp32 row's."""
    base = next((r for r in rows if r.candidate == BASELINE), None)
    if base is None:
        raise ValueError(f"no {BASELINE} row to compare with")
    eligible = [r for r in rows if r.f1 >= base.f1 - max_f1_drop]
    return max(eligible, key=lambda r: r.windows_per_second)


def default_candidates() -> list[str]:
    """Every candidate, less bf16 on CPUs without native bf16 (a read would take minutes)."""
    return [c for c in CANDIDATES if cpu_supports_bf16() or CANDIDATES[c][1] != BF16_WEIGHTS]


def measure_backends(
    model_dir: str | Path,
    calibration: Sequence[CalibrationPair],
    candidates: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
    warmup_pairs: int = 4,
    rounds: int = 3,
    stop: threading.Event | None = None,
) -> list[Measurement]:
    """Read ``calibration`` with the reader at ``model_dir`` on CPU with each candidate
    (fp32 always, first): F1 against the gold answers and the seconds of one read after a
    warm-up of ``warmup_pairs``. ONNX exports are cached in ``cache_dir/onnx`` as served.

    The read is cut in ``rounds`` parts read by each backend in turn, so a busy spell of a
    shared machine is spread over all backends (as benchmarks/bench_serving.py does) at no cost.
    With ``stop`` set, it raises :class:`MeasurementStopped` at the next load or read.
    """

    def check() -> None:
        if stop is not None and stop.is_set():
            raise MeasurementStopped("the reader backend measurement was stopped")

    from pipelines.span_predictor import SpanPredictor
    from pipelines.spans import tokenize_pairs

    names = list(candidates) if candidates is not None else default_candidates()
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown backend candidates {unknown}; choose from {list(CANDIDATES)}")
    if not cpu_supports_bf16():
        skipped = [c for c in names if CANDIDATES[c][1] == BF16_WEIGHTS]
        if skipped:
            logger.info("not measuring %s: this CPU has no native bf16", ", ".join(skipped))
        names = [c for c in names if c not in skipped]
    names = [BASELINE] + [c for c in names if c != BASELINE]
    questions = [p.question for p in calibration]
    contexts = [p.context for p in calibration]
    predictors, loads = {}, {}
    for i, name in enumerate(names, 1):
        backend, precision = CANDIDATES[name]
        check()
        logger.info("loading reader backend %s (%d of %d)", name, i, len(names))
        started = time.perf_counter()
        predictors[name] = SpanPredictor(
            model_dir, "cpu", batch_size, precision, backend=backend, cache_dir=cache_dir
        )
        loads[name] = time.perf_counter() - started
        predictors[name].predict(questions[:warmup_pairs], contexts[:warmup_pairs], n_best=1)
    base = predictors[BASELINE]
    cfg = base.config
    windows = len(
        tokenize_pairs(
            base.tokenizer, questions, contexts, cfg.max_seq_length, cfg.doc_stride
        ).pair_index
    )
    seconds = dict.fromkeys(names, 0.0)
    answers: dict[str, list[str]] = {name: [] for name in names}
    step = -(-len(calibration) // max(1, rounds))
    for lo in range(0, len(calibration), step):
        logger.info("reading calibration pairs %d-%d of %d", lo + 1, lo + step, len(calibration))
        for name in names:
            check()
            started = time.perf_counter()
            read = predictors[name].predict(
                questions[lo : lo + step], contexts[lo : lo + step], n_best=1
            )
            seconds[name] += time.perf_counter() - started
            answers[name] += [
                contexts[lo + k][cs[0].start_char : cs[0].end_char]
                if cs and cs[0].margin > 0
                else ""
                for k, cs in enumerate(read)
            ]
    rows = []
    for name in names:
        f1 = sum(
            answer_f1(pair.answers, answer)
            for pair, answer in zip(calibration, answers[name], strict=True)
        )
        row = Measurement(
            name, 100.0 * f1 / max(1, len(calibration)), seconds[name], windows, loads[name]
        )
        logger.info(
            "  %s: %.1f windows/s, F1 %.2f (loaded in %.1f s)",
            name,
            row.windows_per_second,
            row.f1,
            row.load_seconds,
        )
        rows.append(row)
    return rows


# -- the cached choice ---------------------------------------------------------------------------


@dataclass
class BackendChoice:
    """What "auto" reads with on this CPU, and the measurement it was chosen by."""

    chosen: str  # a key of CANDIDATES
    reason: str
    rows: list[Measurement]
    key: dict[str, Any]
    measured_at: float = field(default_factory=time.time)

    @property
    def backend(self) -> tuple[str, str]:
        """(reader backend, CPU precision) for SpanPredictor."""
        return CANDIDATES[self.chosen]

    def to_json(self) -> str:
        data = asdict(self)
        for row, measured in zip(data["rows"], self.rows, strict=True):
            row["windows_per_second"] = round(measured.windows_per_second, 2)
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackendChoice:
        data = json.loads(text)
        choice = cls(
            chosen=data["chosen"],
            reason=data["reason"],
            rows=[
                Measurement(**{k: v for k, v in row.items() if k != "windows_per_second"})
                for row in data["rows"]
            ],
            key=data["key"],
            measured_at=float(data["measured_at"]),
        )
        if choice.chosen not in CANDIDATES:
            raise ValueError(f"unknown backend {choice.chosen!r}")
        return choice

    def table(self, max_f1_drop: float = MAX_F1_DROP) -> str:
        """backend, windows/s, F1, within the drop of fp32, chosen: one line each."""
        base = next(r.f1 for r in self.rows if r.candidate == BASELINE)
        within = f"within {max_f1_drop}"
        lines = [f"{'backend':13} {'windows/s':>9} {'F1':>6} {'dF1':>6} {within:>10} chosen"]
        for r in self.rows:
            within = "yes" if r.f1 >= base - max_f1_drop else "no"
            lines.append(
                f"{r.candidate:13} {r.windows_per_second:9.1f} {r.f1:6.2f} {r.f1 - base:+6.2f} "
                f"{within:>10} {'*' if r.candidate == self.chosen else ''}"
            )
        return "\n".join(lines)


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and which of the features that decide the choice it has."""
    name, flags = "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name") and name == "unknown":
            name = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    if name == "unknown":
        import platform

        name = platform.processor() or platform.machine()
    return name, [f for f in _CPU_FLAGS if f in flags]


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def choice_key(
    model_dir: str | Path, calibration_file: str | Path = CALIBRATION_FILE
) -> dict[str, Any]:
    """Everything a measured choice depends on."""
    cpu, flags = cpu_model()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "threads": torch.get_num_threads(),
        "reader": _fingerprint(str(model_dir), "backend-choice"),
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "calibration": hashlib.sha256(Path(calibration_file).read_bytes()).hexdigest()[:16],
        "max_f1_drop": MAX_F1_DROP,
        "version": MEASUREMENT_VERSION,
    }


def choice_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / CACHE_FOLDER / f"reader-{digest}.json"


def _read_cached(path: Path, key: dict[str, Any]) -> BackendChoice | None:
    """The choice cached at ``path``; None when absent, or corrupt (with a warning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read the reader backend choice %s (%s): measuring again", path, exc)
        return None
    try:
        choice = BackendChoice.from_json(text)
        if choice.key != key:
            raise ValueError("it was measured for something else")
        select(choice.rows)  # has an fp32 row
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("corrupt reader backend choice %s (%s): measuring again", path, exc)
        return None
    return choice


def measured_choice(
    model_dir: str | Path,
    cache_dir: str | Path,
    calibration_file: str | Path = CALIBRATION_FILE,
    candidates: Sequence[str] | None = None,
    remeasure: bool = False,
    stop: threading.Event | None = None,
) -> BackendChoice:
    """The cached choice for this reader on this CPU, measured (once, under a file lock, so
    concurrent workers wait for one measurement) when there is none or ``remeasure``."""
    from filelock import FileLock

    key = choice_key(model_dir, calibration_file)
    path = choice_path(cache_dir, key)
    if not remeasure and (cached := _read_cached(path, key)) is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if not remeasure and (cached := _read_cached(path, key)) is not None:
            return cached  # another process measured while this one waited
        logger.info(
            "measuring the reader's backends on %s (%s), once: %s", key["cpu"], model_dir, path
        )
        started = time.perf_counter()
        pairs = load_calibration(calibration_file)
        rows = measure_backends(model_dir, pairs, candidates, cache_dir, stop=stop)
        best, base = select(rows), rows[0]
        reason = (
            f"fastest within {MAX_F1_DROP} F1 of fp32 on {len(pairs)}"
            f" calibration pairs on {key['cpu']} ({key['threads']} threads): "
            f"{best.windows_per_second:.1f} windows/s, F1 {best.f1:.2f} "
            f"(fp32 {base.windows_per_second:.1f} windows/s, F1 {base.f1:.2f})"
        )
        choice = BackendChoice(best.candidate, reason, rows, key)
        write_atomic(path, choice.to_json())
        logger.info(
            "reader backends measured in %.1f s: %s", time.perf_counter() - started, choice.chosen
        )
    return choice


def measuring_enabled() -> bool:
    """False where ``DOCQA_MEASURE_READER_BACKEND`` is 0 (or false, off, no): "auto" then keeps
    the fixed rules, e.g. for machines that cannot spare the first load's half minute, and in
    the test suite, whose every temporary home would measure again."""
    value = os.environ.get(MEASURE_ENV, "").strip().lower()
    return value not in ("0", "false", "off", "no")


# Running measurements by (reader folder, cache folder): looked up on every reader load, so
# keyed by paths, not by choice_key (which hashes the model's weights).
_background: dict[tuple[str, str], threading.Thread] = {}
_background_lock = threading.Lock()
# Set at interpreter exit: a measurement still running stops at its next step instead of being
# killed inside ONNX Runtime or torch ("terminate called without an active exception", SIGABRT).
_stop_background = threading.Event()
_EXIT_WAIT_SECONDS = 30.0


@atexit.register
def _stop_measurements() -> None:
    _stop_background.set()
    with _background_lock:
        running = [thread for thread in _background.values() if thread.is_alive()]
    deadline = time.monotonic() + _EXIT_WAIT_SECONDS
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))


def _background_key(model_dir: str | Path, cache_dir: str | Path) -> tuple[str, str]:
    return str(Path(model_dir).resolve()), str(Path(cache_dir).resolve())


def measure_in_background(model_dir: str | Path, cache_dir: str | Path) -> threading.Thread:
    """Measure this reader's backends into ``cache_dir`` in a daemon thread, once per process:
    a second call while one runs returns the running thread. A failure is logged as a warning
    (the fixed rules keep serving); a process that exits first leaves no file (atomic write)."""
    key = _background_key(model_dir, cache_dir)

    def measure() -> None:
        try:
            measured_choice(model_dir, cache_dir, stop=_stop_background)
        except MeasurementStopped:
            logger.info("reader backend measurement stopped: the process is exiting")
        except Exception as exc:  # a choice never stops the reader from serving
            logger.warning("reader backend not measured (%s): using the fixed rules", exc)

    with _background_lock:
        running = _background.get(key)
        if running is None or not running.is_alive():
            running = threading.Thread(target=measure, name="measure-reader-backend", daemon=True)
            _background[key] = running
            running.start()
    return running


def pending_measurement(model_dir: str | Path, cache_dir: str | Path) -> threading.Thread | None:
    """The background measurement of this reader's backends still running, if any."""
    with _background_lock:
        running = _background.get(_background_key(model_dir, cache_dir))
    return running if running is not None and running.is_alive() else None


def auto_backend(model_dir: str | Path, cache_dir: str | Path) -> tuple[str, str] | None:
    """(backend, CPU precision) that "auto" reads with on this CPU, from the cached measured
    choice; None when measuring is off, fails (logged as a warning) or has not finished: the
    caller then keeps its fixed rules. On a miss the measurement starts in the background
    (:func:`measure_in_background`; :func:`measured_choice` measures in the foreground)."""
    if not measuring_enabled():
        return None
    try:
        key = choice_key(model_dir)
        choice = _read_cached(choice_path(cache_dir, key), key)
        if choice is None:
            measure_in_background(model_dir, cache_dir)
            logger.info(
                "reader backend auto: the fixed rules until this CPU's measurement ends (%s)",
                key["cpu"],
            )
            return None
    except Exception as exc:  # a choice never stops the reader from loading
        logger.warning("reader backend not measured (%s): using the fixed rules", exc)
        return None
    logger.info("reader backend auto: %s, %s", choice.chosen, choice.reason)
    return choice.backend


__all__ = [
    "CALIBRATION_FILE",
    "CANDIDATES",
    "MAX_F1_DROP",
    "BackendChoice",
    "CalibrationPair",
    "Measurement",
    "MeasurementStopped",
    "answer_f1",
    "auto_backend",
    "choice_key",
    "choice_path",
    "cpu_model",
    "load_calibration",
    "measure_backends",
    "measure_in_background",
    "measured_choice",
    "measuring_enabled",
    "pending_measurement",
    "select",
]
