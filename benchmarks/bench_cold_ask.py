"""A cold ask: how long a new `docqa ask` process takes to answer, and where the time goes.

Each round starts fresh processes (the OS file cache stays warm, as on a machine that has
answered before), in two modes side by side: "one-shot", what ``docqa ask`` does by default (the
reader and the question encoder in ONNX Runtime, ``Settings.for_one_question``; their exports
are made before timing, as the first ask on a machine makes them), and "as the page" (the
page's and server's backends, ``DOCQA_ONE_SHOT_ONNX=0``). For each: ``docqa ask QUESTION --home
HOME --json`` timed from outside, and a probe that times the phases in-process: imports,
loading the index and both models (``QueryService`` refresh), and the first answer. Then
``docqa ask --server URL`` processes asking a ``docqa serve`` started on the same home (warmed up
before timing, as a running server is). The demo collection is indexed into ``--home`` first if
needed.
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
from bench_env import REPO_ROOT, write_result

from api.client import wait_until_healthy
from evaluation.environment import cpu_description, environment

QUESTION = "How many days of annual leave do I get?"
PHASES = ("imports", "load", "first_answer")
MODES = ("one-shot", "as the page")

# Runs in a fresh interpreter; prints the phases' seconds as JSON.
PROBE = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pipelines.query import QueryService
from pipelines.settings import Settings
t1 = time.perf_counter()
settings = Settings.from_env(Path(sys.argv[1]))
service = QueryService(settings.for_one_question() if sys.argv[3] == "one-shot" else settings)
service.refresh()
t2 = time.perf_counter()
answers = service.ask(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load": t2 - t1, "first_answer": t3 - t2,
                  "answer": answers[0].answer, "backend": service.reader_predictor.backend}))
"""


def _env(mode: str = "one-shot") -> dict[str, str]:
    one_shot = "1" if mode == "one-shot" else "0"
    return os.environ | {"PYTHONPATH": str(REPO_ROOT), "DOCQA_ONE_SHOT_ONNX": one_shot}


def cli_seconds(home: Path, question: str, mode: str) -> float:
    """Wall time of one `docqa ask` process in ``mode``, start to exit."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "docqa", "ask", question, "--home", str(home), "--json"],
        check=True,
        capture_output=True,
        env=_env(mode),
        cwd=REPO_ROOT,
    )
    return time.perf_counter() - started


def probe(home: Path, question: str, mode: str) -> dict[str, Any]:
    """The phases of a cold ask in ``mode``, timed inside a fresh process."""
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), question, mode],
        check=True,
        capture_output=True,
        text=True,
        env=_env(mode),
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
    for mode in MODES:  # fills the OS file cache and makes the ONNX exports, not counted
        cli_seconds(args.home, args.question, mode)
    cli: dict[str, list[float]] = {mode: [] for mode in MODES}
    probes: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:  # interleaved: a noisy minute hits both modes alike
            cli[mode].append(cli_seconds(args.home, args.question, mode))
            probes[mode].append(probe(args.home, args.question, mode))
    with running_server(args.home) as (url, key):
        via_server = [cli_server_seconds(url, key, args.question) for _ in range(args.rounds)]
    median_cli = {mode: statistics.median(cli[mode]) for mode in MODES}
    phases = {
        mode: {k: statistics.median(p[k] for p in probes[mode]) for k in (*PHASES, "process")}
        for mode in MODES
    }
    server_median = statistics.median(via_server)
    one_shot, page = median_cli["one-shot"], median_cli["as the page"]
    result = {
        "benchmark": "cold_ask",
        "cpu": cpu_description(),
        "environment": environment(),
        "question": args.question,
        "rounds": args.rounds,
        "modes": {
            mode: {
                "reader_backend": probes[mode][-1]["backend"],
                "docqa_ask_seconds": [round(x, 2) for x in cli[mode]],
                "docqa_ask_median_seconds": round(median_cli[mode], 2),
                "phases_median_seconds": {k: round(v, 2) for k, v in phases[mode].items()},
                "answer": probes[mode][-1]["answer"],
            }
            for mode in MODES
        },
        "one_shot_over_page": round(one_shot / page, 3),
        "docqa_ask_server_seconds": [round(x, 2) for x in via_server],
        "docqa_ask_server_median_seconds": round(server_median, 2),
    }
    p1, p2 = phases["one-shot"], phases["as the page"]
    result["readme_rows"] = [
        {
            "what": "cold `docqa ask` (new process, demo collection)",
            "number": f"median {one_shot:.2f} s over {args.rounds} processes (ONNX Runtime: "
            f"imports {p1['imports']:.2f} s, index and models {p1['load']:.2f} s, first answer "
            f"{p1['first_answer']:.2f} s); same run with the page's backend "
            f"({result['modes']['as the page']['reader_backend']}): {page:.2f} s (imports "
            f"{p2['imports']:.2f}, load {p2['load']:.2f}, answer {p2['first_answer']:.2f}); "
            f"{one_shot / page:.2f}x",
            "command": "python benchmarks/bench_cold_ask.py",
        },
        {
            "what": "cold `docqa ask --server` (new process asking a running `docqa serve`)",
            "number": f"median {server_median:.2f} s over {args.rounds} processes (same run: "
            f"{one_shot:.2f} s loading the models itself)",
            "command": "python benchmarks/bench_cold_ask.py",
        },
    ]
    print(f"CPU: {result['cpu']}")
    print(f"{'':22}" + "".join(f"{mode:>14}" for mode in MODES))
    print(f"{'docqa ask (median)':22}" + "".join(f"{median_cli[m]:13.2f}s" for m in MODES))
    for k in (*PHASES, "process"):
        print(f"{'  ' + k:22}" + "".join(f"{phases[m][k]:13.2f}s" for m in MODES))
    print(f"one-shot / as the page: {one_shot / page:.2f}x")
    print(f"docqa ask --server, new process: {', '.join(f'{x:.2f}' for x in via_server)} s")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
