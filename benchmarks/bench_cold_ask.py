"""A cold ask: how long a new `docqa ask` process takes to answer, and where the time goes.

Each round starts fresh processes (the OS file cache stays warm, as on a machine that has
answered before): ``docqa ask QUESTION --home HOME --json`` timed from outside, and a probe that
times the phases in-process: imports, loading the index and both models (``QueryService``
refresh), and the first answer; then, side by side, ``docqa ask --server URL`` processes asking a
``docqa serve`` started on the same home (warmed up before timing, as a running server is).
The demo collection is indexed into ``--home`` first if needed.
Prints a table and writes JSON with README rows; compare rows of one run only.

    python benchmarks/bench_cold_ask.py [--home DIR] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from api.client import wait_until_healthy  # noqa: E402
from evaluation.environment import cpu_description, environment  # noqa: E402

QUESTION = "How many days of annual leave do I get?"
PHASES = ("imports", "load", "first_answer")

# Runs in a fresh interpreter; prints the phases' seconds as JSON.
PROBE = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pipelines.query import QueryService
from pipelines.settings import Settings
t1 = time.perf_counter()
service = QueryService(Settings(home=Path(sys.argv[1])))
service.refresh()
t2 = time.perf_counter()
answers = service.ask(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load": t2 - t1, "first_answer": t3 - t2,
                  "answer": answers[0].answer}))
"""


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO_ROOT)}


def cli_seconds(home: Path, question: str) -> float:
    """Wall time of one `docqa ask` process, start to exit."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "docqa", "ask", question, "--home", str(home), "--json"],
        check=True,
        capture_output=True,
        env=_env(),
        cwd=REPO_ROOT,
    )
    return time.perf_counter() - started


def probe(home: Path, question: str) -> dict[str, Any]:
    """The phases of a cold ask, timed inside a fresh process."""
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), question],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO_ROOT,
    )
    phases = json.loads(run.stdout.strip().splitlines()[-1])
    phases["process"] = time.perf_counter() - started
    return phases


@contextlib.contextmanager
def running_server(home: Path) -> Iterator[tuple[str, str]]:
    """``docqa serve`` on ``home`` (one worker, a free loopback port) with a new ask key, ready
    and warmed up by one question; yields (url, key)."""
    from api.keys import KeyStore
    from pipelines.settings import Settings

    store = KeyStore.of(Settings(home=home))
    name = f"bench-cold-{os.getpid()}"
    key = store.create(name, "ask")[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "docqa", "serve", "--home", str(home), "--port", str(port)],
        env=_env(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_until_healthy(url, 300, alive=lambda: server.poll() is None):
            raise RuntimeError("docqa serve did not become healthy")
        httpx.post(f"{url}/ask", json={"question": QUESTION}, timeout=120,
                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        yield url, key
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        store.revoke(name)


def cli_server_seconds(url: str, key: str, question: str) -> float:
    """Wall time of one `docqa ask --server` process, start to exit."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "docqa", "ask", question, "--server", url, "--api-key", key,
         "--json"],
        check=True, capture_output=True, env=_env(), cwd=REPO_ROOT,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "docqa-cold")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "cold_ask.json"
    )
    args = parser.parse_args()

    from evaluation.end_to_end import index_collection
    from pipelines.settings import DEMO_COLLECTION, Settings

    index_collection([DEMO_COLLECTION], Settings(home=args.home), progress=True)
    cli_seconds(args.home, args.question)  # fills the OS file cache once, not counted
    cli, probes = [], []
    for _ in range(args.rounds):
        cli.append(cli_seconds(args.home, args.question))
        probes.append(probe(args.home, args.question))
    median = {k: statistics.median(p[k] for p in probes) for k in (*PHASES, "process")}
    with running_server(args.home) as (url, key):
        via_server = [cli_server_seconds(url, key, args.question) for _ in range(args.rounds)]
    result = {
        "benchmark": "cold_ask",
        "cpu": cpu_description(),
        "environment": environment(),
        "question": args.question,
        "rounds": args.rounds,
        "docqa_ask_seconds": [round(x, 2) for x in cli],
        "docqa_ask_median_seconds": round(statistics.median(cli), 2),
        "phases_median_seconds": {k: round(v, 2) for k, v in median.items()},
        "docqa_ask_server_seconds": [round(x, 2) for x in via_server],
        "docqa_ask_server_median_seconds": round(statistics.median(via_server), 2),
        "answer": probes[-1]["answer"],
    }
    result["readme_rows"] = [
        {
            "what": "cold `docqa ask` (new process, demo collection)",
            "number": f"median {result['docqa_ask_median_seconds']:.2f} s over {args.rounds} "
            f"processes; of which imports {median['imports']:.2f} s, index and models "
            f"{median['load']:.2f} s, first answer {median['first_answer']:.2f} s",
            "command": "python benchmarks/bench_cold_ask.py",
        },
        {
            "what": "cold `docqa ask --server` (new process asking a running `docqa serve`)",
            "number": f"median {result['docqa_ask_server_median_seconds']:.2f} s over "
            f"{args.rounds} processes (same run: {result['docqa_ask_median_seconds']:.2f} s "
            "loading the models itself)",
            "command": "python benchmarks/bench_cold_ask.py",
        },
    ]
    print(f"CPU: {result['cpu']}")
    print(f"docqa ask, new process: {', '.join(f'{x:.2f}' for x in cli)} s")
    for k in (*PHASES, "process"):
        print(f"  {k:14} {median[k]:6.2f} s (median)")
    print(f"docqa ask --server, new process: {', '.join(f'{x:.2f}' for x in via_server)} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
