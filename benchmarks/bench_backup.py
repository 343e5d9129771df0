"""How long ``docqa backup`` and ``docqa restore`` take, how large the archive is, and how much
memory they need, on the demo home and on a 100,000-passage home.

An operator sizing a backup window, or the disk that holds the archives, needs these numbers
at the size they run, so two homes are measured:

- ``demo``: ``docqa index data/demo/documents --home H`` (46 documents, 331 passages, real
  MiniLM embeddings), then what a used home holds, written through the same stores the page,
  the API and the CLI use: 5 local accounts, 5 API keys, 3 access rules, 150 labeled pairs
  (demo train questions, each on a passage-sized window of its document), 500 logged questions
  (demo dev and train questions, 3 answers each, a verdict on every fourth) and 300 audit
  events. No uploads (the documents are indexed from the repository's folder).
- ``passages-N`` (default N = 100,000): the same accounts, keys, rules, labels and logs, and an
  index too slow to embed for real here (MiniLM embeds about 100 passages/s on 2 cores), so it
  is made with the real store: :class:`pipelines.store.PassageStore`, ``replace_source`` one
  document at a time as the indexer writes, then ``save`` into ``index/`` (a real index
  version: ``CURRENT``, ``passages.sqlite``, ``vectors.faiss`` and, above 50,000 passages, the
  IVF index the default settings build). Documents of 10 passages of 200 words with 30 words
  of overlap (the indexer's ``words200;overlap30``), their text stitched from random
  stretches of the demo collection's converted text (so the text compresses as real text
  does), passage metadata as the indexer writes it (sections and boundaries borrowed from demo
  passages), and random unit 384-d float32 vectors (random vectors barely compress, as real
  embeddings do not). Built once and kept under ``--work`` (default
  ``/tmp/docqa-bench-backup``): reruns reuse both homes.

Each step is a new process that runs the ``docqa`` CLI's app as the ``docqa`` script does,
after importing it and ``pipelines.operations.backup`` (the command's own lazy import): its wall
time is taken from outside, and inside, the seconds of those imports and of the command itself; its
peak RSS, and what the command added above the RSS it had after the imports (VmHWM, reset
after the imports through ``/proc/self/clear_refs``). Steps: ``docqa backup DEST
--home H`` to a plain ``.tar`` and to a ``.tar.gz``; ``docqa restore ARCHIVE --home NEW
--dry-run`` (verify only: every checksum, nothing written); ``docqa restore ARCHIVE --home NEW``
(verify, then write and fsync every file, then rename into place), from each archive. Three
rounds, each step once per round; the median is reported. The home's files are in the page
cache (a home that serves is read often), archives and restored homes are on the same disk.
Before the first round each home is opened once, untimed (``docqa keys list``), as any command
opens it: a home this code wrote is then stamped with the current home format. Every ``docqa
backup`` appends one audit event to the home it backs up, as it would in use. ``--passages
5000`` makes a quick check.
Prints a table and writes ``benchmarks/results/backup.json``.

    python benchmarks/bench_backup.py [--passages 100000] [--work DIR] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from bench_env import REPO_ROOT, write_result

from evaluation.environment import cpu_description, environment

print = functools.partial(print, flush=True)  # progress shows as it comes

DOCUMENTS = REPO_ROOT / "data" / "demo" / "documents"
LABELS = REPO_ROOT / "data" / "demo" / "labels"
SEED = 31
DIM = 384
PER_DOC, WORDS, OVERLAP = 10, 200, 30  # the indexer's passages: words200;overlap30
STEPS = ("backup", "dry-run", "restore")
FORMATS = {"tar": ".tar", "gzip": ".tar.gz"}


def docqa_command() -> str:
    """The ``docqa`` script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "docqa"
    return str(beside) if beside.exists() else shutil.which("docqa") or "docqa"


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``, every file counted."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


# -- homes ------------------------------------------------------------------------------------


def _squad_pairs(name: str) -> list[tuple[str, str, str | None, int | None, str]]:
    """(question, context, answer, answer_start, title) of a demo label file."""
    data = json.loads((LABELS / name).read_text(encoding="utf-8"))
    pairs = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = qa.get("answers") or []
                first = answers[0] if answers else None
                text = first["text"] if first else None
                start = first["answer_start"] if first else None
                pairs.append((qa["question"], para["context"], text, start, article["title"]))
    return pairs


def add_extras(home: Path) -> None:
    """Accounts, keys, rules, labeled pairs, logged questions and audit events, written through
    the stores the page, the API and the CLI use."""
    from api.keys import KeyStore
    from identity import AccessRules, AuditLog, Caller, Role, UserStore
    from pipelines.learning_loop.question_log import VERDICTS, QuestionLog
    from pipelines.query import AnswerResult
    from pipelines.settings import Settings
    from reader_training.feedback import FeedbackStore

    settings = Settings(home=home)
    rng = random.Random(SEED)
    for n, (role, groups) in enumerate([("admin", None), ("editor", "hr"), ("viewer", "it")] * 2):
        if n < 5:
            UserStore.of(settings).create(f"user{n}", role, groups, f"a long password {n}")
            KeyStore.of(settings).create(f"bot{n}", role, groups)
    rules = AccessRules.of(settings)
    for pattern, groups in (("hr/**", "hr"), ("it/**", "it"), ("finance/**", "finance,hr")):
        rules.allow(pattern, groups)
    train = _squad_pairs("train.json")
    rng.shuffle(train)
    labels = FeedbackStore(settings.feedback_file)
    added = 0
    for question, context, answer, start, title in train:
        # A pair is labeled on a passage: a window of about 1,500 characters around the answer.
        at = start if start is not None else rng.randrange(max(1, len(context) - 1500))
        lo = max(0, at - 700)
        window = context[lo : lo + 1500]
        if answer is not None and start is not None and start + len(answer) > lo + len(window):
            continue
        offset = start - lo if start is not None else None
        labels.add(question, window, answer, offset, title, meta={"author": "user1"})
        added += 1
        if added == 150:
            break
    log = QuestionLog(settings.question_log_file)
    asked = (_squad_pairs("dev.json") + train)[:500]
    for number, (question, context, answer, start, title) in enumerate(asked):
        at = start or 0
        results = [
            AnswerResult(
                answer=answer if rank == 0 else context[at + 40 * rank : at + 40 * rank + 20],
                score=round(0.9 - 0.2 * rank, 3),
                document=title,
                title=title,
                context=context[max(0, at - 600) : at + 600],
                doc_id=hashlib.sha256(title.encode()).hexdigest()[:16],
            )
            for rank in range(3)
        ]
        qid = log.record(question, results, channel="page", latency_ms=420, reader="v-1", top_k=10)
        if number % 4 == 0:
            log.add_feedback(qid, VERDICTS[number % len(VERDICTS)])
    audit = AuditLog.of(settings)
    admin = Caller(name="user0", role=Role.ADMIN, groups=frozenset())
    for n in range(300):
        action = ("login", "upload", "label", "key_create", "ask")[n % 5]
        audit.record(admin, action, target=f"target-{n}", detail=f"event {n}")


def build_demo_home(home: Path) -> None:
    subprocess.run(
        [docqa_command(), "index", str(DOCUMENTS), "--home", str(home)],
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
    )
    add_extras(home)


def _demo_text(demo_home: Path) -> tuple[list[str], list[dict[str, Any]], str]:
    """The demo collection's converted text as whitespace-keeping tokens, its passages' meta,
    and the indexer's text format."""
    from pipelines.store import PassageStore

    store = PassageStore.load(demo_home / "index")
    try:
        sources = store.sources()
        tokens = [
            t for s in sources for t in re.findall(r"\S+\s*", store.source_text(s.doc_id) + " ")
        ]
        metas = [p.meta for p in store.filter_documents()]
        return tokens, metas, sources[0].text_format
    finally:
        store.close()


def build_passage_home(home: Path, passages: int, demo_home: Path) -> None:
    """``passages`` passages in documents of 10, saved as an index version of ``home``."""
    from haystack import Document

    from pipelines.faiss_index import IndexSpec
    from pipelines.settings import Settings
    from pipelines.store import PassageStore
    from pipelines.store.files import SourceRecord

    tokens, metas, text_format = _demo_text(demo_home)
    rng = np.random.default_rng(SEED)
    settings = Settings(home=home)
    store = PassageStore(DIM, IndexSpec.from_settings(settings))
    stride = WORDS - OVERLAP
    for number, first in enumerate(range(0, passages, PER_DOC)):
        count = min(PER_DOC, passages - first)
        needed = stride * (count - 1) + WORDS
        words: list[str] = []
        while len(words) < needed:  # random stretches of 150 to 600 words
            at, length = int(rng.integers(len(tokens))), int(rng.integers(150, 600))
            words += tokens[at : at + length]
        words = words[:needed]
        ends = np.cumsum([0, *map(len, words)])
        text = "".join(words)
        source = f"documents/archive/f{number % 100:03d}/doc{number:06d}.md"
        doc_id = hashlib.sha256(source.encode()).hexdigest()[:16]
        modified = f"2026-0{1 + number % 9}-{1 + number % 28:02d}T09:00:00+00:00"
        record = SourceRecord(
            doc_id=doc_id, source=source, path=f"/srv/{source}", title=f"Archive note {number}",
            file_type="md", sha256=hashlib.sha256(text.encode()).hexdigest(),
            size=len(text.encode()), mtime=1.77e9 + number, indexed_at=modified,
            passages=count, text_format=text_format,
        )  # fmt: skip
        vectors = rng.standard_normal((count, DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = []
        for i in range(count):
            lo, hi = i * stride, i * stride + WORDS
            borrowed = metas[int(rng.integers(len(metas)))]
            meta = {
                "doc_id": doc_id, "source": source, "path": record.path, "title": record.title,
                "file_type": "md", "page": None, "section": borrowed.get("section"),
                "start": int(ends[lo]), "end": int(ends[hi]), "passage_index": i,
                "modified": modified, "boundaries": borrowed.get("boundaries", []),
            }  # fmt: skip
            content = text[meta["start"] : meta["end"]].strip()
            docs.append(
                Document(
                    id=f"{doc_id}-{i:05d}",
                    content=content,
                    meta=meta,
                    embedding=vectors[i].tolist(),
                )
            )
        store.replace_source(record, text, docs)
        if (number + 1) % 1000 == 0:
            print(f"  {first + count:,} passages stored")
    store.save(settings.index_dir)
    store.close()
    add_extras(home)


def ensure_home(work: Path, name: str, build: Any) -> Path:
    """``work/homes/name``, built by ``build(home)`` unless a finished build is there."""
    home, done = work / "homes" / name, work / "homes" / f"{name}.done"
    if done.is_file() and home.is_dir():
        print(f"{name}: reusing {home}")
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    print(f"{name}: building {home}")
    started = time.perf_counter()
    build(home)
    done.write_text(json.dumps({"build_s": round(time.perf_counter() - started, 1)}) + "\n")
    print(f"{name}: built in {time.perf_counter() - started:.0f} s")
    return home


# -- measuring --------------------------------------------------------------------------------


# Runs the ``docqa`` CLI's app in a new process as the ``docqa`` script does, with the command's
# own lazy import done first, and writes its timings and memory to the file BENCH_TIMINGS names.
RUNNER = """
import json, os, sys, time
from pathlib import Path
started = time.perf_counter()
from docqa.cli import app
import pipelines.operations.backup
imported = time.perf_counter()
def kib(field):
    status = Path("/proc/self/status").read_text()
    return int(status.split(field + ":")[1].split()[0])
import_peak, rss = kib("VmHWM"), kib("VmRSS")  # not ru_maxrss: it keeps the parent's at fork
Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here: the command's own peak
sys.argv = ["docqa", *sys.argv[1:]]
code = 0
try:
    app()
except SystemExit as exc:
    code = exc.code or 0
finished = time.perf_counter()
Path(os.environ["BENCH_TIMINGS"]).write_text(json.dumps({
    "imports_s": imported - started, "command_s": finished - imported,
    "import_peak_kib": import_peak, "rss_after_imports_kib": rss,
    "command_peak_kib": kib("VmHWM"),
}))
sys.exit(code)
"""


def timed(args: list[str], work: Path) -> dict[str, Any]:
    """``docqa ARGS`` in a new process: its wall seconds (start to exit), the seconds of the
    imports and of the command, its peak RSS, and the peak RSS above the imports' that the
    command itself added."""
    timings = work / "timings.json"
    timings.unlink(missing_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENCH_TIMINGS": str(timings)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, *args], stdout=out, stderr=err, env=env
        )
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"docqa {' '.join(args)} failed: {stderr[-2000:]}")
    t = json.loads(timings.read_text(encoding="utf-8"))
    mib = 1024
    return {
        "wall_s": round(wall, 3),
        "imports_s": round(t["imports_s"], 3),
        "command_s": round(t["command_s"], 3),
        "peak_rss_mib": round(max(t["import_peak_kib"], t["command_peak_kib"]) / mib, 1),
        "command_added_mib": round((t["command_peak_kib"] - t["rss_after_imports_kib"]) / mib, 1),
    }


def archive_contents(archive: Path) -> tuple[int, int]:
    """(files, bytes) the archive's manifest lists."""
    with tarfile.open(archive, mode="r:*") as tar:
        first = tar.next()
        assert first is not None
        handle = tar.extractfile(first)
        assert handle is not None
        files = json.loads(handle.read())["files"]
    return len(files), sum(f["size"] for f in files)


def measure(name: str, home: Path, work: Path, rounds: int) -> tuple[dict[str, Any], list[dict]]:
    """The home's sizes, and one row per (step, format) with the medians of ``rounds`` runs."""
    archives = {fmt: work / "archives" / f"{name}{suffix}" for fmt, suffix in FORMATS.items()}
    target = work / "restored" / name
    shutil.rmtree(target, ignore_errors=True)
    # Open the home once untimed, as any command does: a home this code wrote is stamped with
    # the current home format then (an older one would be migrated, backup first).
    timed(["keys", "list", "--home", str(home)], work)
    home_files, home_bytes = tree_size(home)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_number in range(rounds):
        for fmt, archive in archives.items():
            gzip = "--gzip" if fmt == "gzip" else "--no-gzip"
            step = ["backup", str(archive), "--home", str(home), gzip, "--no-progress"]
            runs.setdefault(("backup", fmt), []).append(timed(step, work))
        for fmt, archive in archives.items():
            restore = ["restore", str(archive), "--home", str(target), "--no-progress"]
            runs.setdefault(("dry-run", fmt), []).append(timed([*restore, "--dry-run"], work))
            runs.setdefault(("restore", fmt), []).append(timed(restore, work))
            shutil.rmtree(target)
        print(f"{name}: round {round_number + 1}/{rounds} done")
    files, backed_up = archive_contents(archives["tar"])
    sizes = {
        "home": name,
        "home_files": home_files,
        "home_bytes": home_bytes,
        "backed_up_files": files,
        "backed_up_bytes": backed_up,
        "archive_bytes": {fmt: path.stat().st_size for fmt, path in archives.items()},
    }
    rows = []
    for step in STEPS:
        for fmt in FORMATS:
            done = runs[(step, fmt)]
            command_s = statistics.median(r["command_s"] for r in done)
            rows.append(
                {
                    "home": name,
                    "step": step,
                    "format": fmt,
                    "archive_bytes": sizes["archive_bytes"][fmt],
                    "median_wall_s": round(statistics.median(r["wall_s"] for r in done), 3),
                    "median_imports_s": round(statistics.median(r["imports_s"] for r in done), 3),
                    "median_command_s": round(command_s, 3),
                    "mib_per_s": round(backed_up / 2**20 / command_s, 1),
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in done),
                    "command_added_mib": max(r["command_added_mib"] for r in done),
                    "runs": done,
                }
            )
    return sizes, rows


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _row(rows: list[dict[str, Any]], home: str, step: str, fmt: str) -> dict[str, Any]:
    [row] = [r for r in rows if (r["home"], r["step"], r["format"]) == (home, step, fmt)]
    return row


def readme_rows(homes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row: per home, the archive sizes and each step's own seconds; then the start."""
    parts = []
    for h in homes:
        name, arch = h["home"], h["archive_bytes"]

        def s(step: str, fmt: str, name: str = name) -> str:
            seconds = _row(rows, name, step, fmt)["median_command_s"]
            return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"

        added = max(r["command_added_mib"] for r in rows if r["home"] == name)
        parts.append(
            f"{h['passages']:,} passages ({'demo' if name == 'demo' else 'synthetic'}): "
            f"{_mb(h['backed_up_bytes'])} backed up, archive {_mb(arch['tar'])} "
            f"(gzip {_mb(arch['gzip'])}); backup {s('backup', 'tar')} (gzip "
            f"{s('backup', 'gzip')}), verify {s('dry-run', 'tar')}, restore "
            f"{s('restore', 'tar')} (gzip {s('restore', 'gzip')}), +{added:.0f} MiB"
        )
    imports = statistics.median(r["median_imports_s"] for r in rows)
    peak = max(r["peak_rss_mib"] for r in rows)
    parts.append(f"each command also starts in {imports:.1f} s (imports; peak RSS {peak:.0f} MiB)")
    big = [h for h in homes if h["home"] != "demo"]
    command = "python benchmarks/bench_backup.py"
    if big and big[0]["passages"] != 100_000:
        command += f" --passages {big[0]['passages']}"
    return [
        {
            "what": "`docqa backup` and `docqa restore` of a data home (median of 3 processes; "
            "the command's own seconds and memory above its imports)",
            "number": "; ".join(parts),
            "command": command,
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000, help="the big home's passages")
    parser.add_argument("--work", type=Path, default=Path("/tmp/docqa-bench-backup"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/backup.json")
    args = parser.parse_args()
    env = environment()
    load_at_start = os.getloadavg()
    work = args.work.resolve()
    demo = ensure_home(work, "demo", build_demo_home)
    big_name = f"passages-{args.passages}"
    big = ensure_home(work, big_name, lambda h: build_passage_home(h, args.passages, demo))
    homes, rows = [], []
    for name, home in (("demo", demo), (big_name, big)):
        sizes, found = measure(name, home, work, args.rounds)
        passages = json.loads(sorted((home / "index").glob("v-*/manifest.json"))[-1].read_text())
        homes.append({**sizes, "passages": passages["passages"], "sources": passages["sources"]})
        rows += found
    print()
    print(
        f"{'home':16} {'step':8} {'format':6} {'archive':>10} {'wall s':>7} {'imports':>7}"
        f" {'cmd s':>7} {'MiB/s':>6} {'RSS MiB':>8} {'+MiB':>6}"
    )
    for r in rows:
        print(
            f"{r['home']:16} {r['step']:8} {r['format']:6} {_mb(r['archive_bytes']):>10}"
            f" {r['median_wall_s']:>7.2f} {r['median_imports_s']:>7.2f}"
            f" {r['median_command_s']:>7.2f} {r['mib_per_s']:>6.1f} {r['peak_rss_mib']:>8.0f}"
            f" {r['command_added_mib']:>6.1f}"
        )
    for h in homes:
        print(
            f"{h['home']}: {h['passages']:,} passages; home {_mb(h['home_bytes'])} in "
            f"{h['home_files']} files, backed up {_mb(h['backed_up_bytes'])} in "
            f"{h['backed_up_files']} files"
        )
    load_at_end = os.getloadavg()
    env["load_average_at_end"] = [round(x, 2) for x in load_at_end]
    from importlib.metadata import version

    result = {
        "benchmark": "backup",
        "cpu": cpu_description(),
        "python": platform.python_version(),
        "versions": {
            "docqa": version("docqa"),
            "numpy": np.__version__,
            "sqlite": sqlite3.sqlite_version,
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        },
        "load_average": {"start": load_at_start, "end": load_at_end},
        "environment": env,
        "rounds": args.rounds,
        "homes": homes,
        "rows": rows,
        "readme_rows": readme_rows(homes, rows),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
