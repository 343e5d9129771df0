"""The REST API under load: N clients asking at once on loopback, with 1 and with 2 workers
(uvicorn), or 1 and 2 replicas (Ray Serve).

Starts ``docqa serve --workers W`` (``--engine uvicorn``, the default) or ``docqa serve
--engine ray --replicas R`` (``--engine ray``: a local Ray instance started by the server, its
session files in the run's temporary folder) over an index of the demo collection (indexed into
a temporary home unless ``--home`` names one), with an ``ask`` key made for the run, and waits
until every worker or replica has its index and reader loaded. Then ``--clients`` asyncio
clients (httpx, one keep-alive connection each: handed to the workers by the kernel, or to Ray
Serve's proxy, which spreads requests over the replicas) ask the demo dev questions in turn for
``--seconds``. Reported per worker or replica count: questions answered, errors (non-200
answers, timeouts, refused connections), latency p50/p95/max, questions answered per second,
how the questions spread over the workers, and errors in the server's log (and, on Ray, in the
replicas' logs). Prints a table and writes JSON with README rows (default
benchmarks/results/api_load.json; api_load_ray.json when Ray Serve is among the engines).

    python benchmarks/bench_api_load.py [--clients 20] [--seconds 60] [--workers 1 2] [--home DIR]
    python benchmarks/bench_api_load.py --engine ray --replicas 1,2 [...]
    python benchmarks/bench_api_load.py --engine uvicorn ray [...]   # both, in one table

Bounded: every ask has a timeout, and the server is stopped after each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from math import nan
from pathlib import Path
from typing import Any

import httpx
from bench_env import write_result

from api.keys import KeyStore
from evaluation.end_to_end import latency_summary
from evaluation.environment import cpu_description, environment
from evaluation.squad import load_squad
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings

DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
WORKER_HEADER = "X-DocQA-Worker"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    home: Path, workers: int, log: Path, timeout_s: float, engine: str = "uvicorn"
) -> tuple[subprocess.Popen[bytes], str]:
    """``docqa serve`` on a free port; returns once every worker (uvicorn) or replica (ray)
    answers /health with 200. On Ray, Ray's temporary files go next to ``log``."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    scale = ["--workers", str(workers)]
    if engine == "ray":
        scale = ["--engine", "ray", "--replicas", str(workers)]
        env["RAY_TMPDIR"] = str(log.parent)
    process = subprocess.Popen(
        [sys.executable, "-m", "docqa", "serve", "--home", str(home), "--port", str(port),
         *scale],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    ready: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(ready) < workers and time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            # A new connection each time, so every worker gets asked.
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200:
                ready.add(response.headers[WORKER_HEADER])
        time.sleep(0.2)
    if len(ready) < workers:
        stop_server(process)
        raise RuntimeError(f"{len(ready)} of {workers} workers ready:\n{log.read_text()}")
    return process, url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=120)  # Ray Serve: the application, Serve and Ray shut down
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def client(
    url: str, key: str, questions: list[str], offset: int, until: float, timeout_s: float
) -> tuple[list[float], list[str], Counter[str]]:
    """One client asking in turn until ``until``: latencies (s), errors, answers per worker."""
    latencies: list[float] = []
    errors: list[str] = []
    workers: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s) as http:
        i = offset
        while time.monotonic() < until:
            question = questions[i % len(questions)]
            i += 1
            started = time.monotonic()
            try:
                response = await http.post("/ask", json={"question": question})
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__} for {question!r}")
                continue
            if response.status_code != 200:
                errors.append(f"{response.status_code} for {question!r}: {response.text[:120]}")
                continue
            latencies.append(time.monotonic() - started)
            workers[response.headers.get(WORKER_HEADER, "?")] += 1
    return latencies, errors, workers


async def run_load(
    url: str, key: str, questions: list[str], clients: int, seconds: float, timeout_s: float
) -> dict[str, Any]:
    started = time.monotonic()
    until = started + seconds
    results = await asyncio.gather(
        *(client(url, key, questions, k * 7, until, timeout_s) for k in range(clients))
    )
    wall = time.monotonic() - started
    latencies = [x for lat, _, _ in results for x in lat]
    errors = [e for _, err, _ in results for e in err]
    by_worker: Counter[str] = sum((w for _, _, w in results), Counter())
    summary = latency_summary(latencies) if latencies else dict.fromkeys(("p50", "p95", "max"), nan)
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "asks": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "p50_s": round(summary["p50"], 3),
        "p95_s": round(summary["p95"], 3),
        "max_s": round(summary["max"], 3),
        "questions_per_second": round(len(latencies) / wall, 3),
        "asks_by_worker": sorted(by_worker.values(), reverse=True),
    }


def _server_errors(log: Path, ray_logs: Path | None = None) -> int:
    """Tracebacks and ERROR lines in the server's log, and in the Ray Serve logs under
    ``ray_logs`` (the replicas log there, not to the server's console)."""
    logs = [log, *(sorted(ray_logs.glob("ray/session_*/logs/serve/*.log")) if ray_logs else [])]
    return sum(
        "Traceback" in line or line.startswith("ERROR")
        for path in logs
        for line in path.read_text(errors="replace").splitlines()
    )


def _counts(values: list[str]) -> list[int]:
    """``--workers 1 2`` or ``--replicas 1,2``: the counts."""
    return [int(part) for value in values for part in value.split(",") if part.strip()]


def _server(run: dict[str, Any]) -> str:
    """How a run served: "2 workers" (uvicorn) or "Ray Serve, 2 replicas"."""
    if run["engine"] == "ray":
        return f"Ray Serve, {run['replicas']} replica" + ("s" if run["replicas"] > 1 else "")
    return f"{run['workers']} worker" + ("s" if run["workers"] > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", nargs="+", default=["1", "2"], help="uvicorn's workers.")
    parser.add_argument(
        "--engine", nargs="+", choices=["uvicorn", "ray"], default=["uvicorn"], help="Servers."
    )
    parser.add_argument("--replicas", nargs="+", default=["1", "2"], help="Ray Serve replicas.")
    parser.add_argument("--timeout", type=float, default=120, help="Seconds one ask may take.")
    parser.add_argument("--start-timeout", type=float, default=600, help="Seconds to load.")
    parser.add_argument("--home", type=Path, help="A DocQA home with an index (default: demo).")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/api_load[_ray].json")
    args = parser.parse_args()
    args.workers, args.replicas = _counts(args.workers), _counts(args.replicas)
    if args.out is None:
        name = "api_load_ray.json" if "ray" in args.engine else "api_load.json"
        args.out = REPO_ROOT / "benchmarks" / "results" / name
    plan = [
        (engine, count)
        for engine in args.engine
        for count in (args.replicas if engine == "ray" else args.workers)
    ]

    work = Path(tempfile.mkdtemp(prefix="docqa-api-load-"))
    try:
        home = args.home
        if home is None:
            from indexer.run import index_folder

            home = work / "home"
            print("indexing the demo collection into", home)
            index_folder([DEMO_COLLECTION], Settings(home=home), progress=False)
        keys = KeyStore.of(Settings.from_env(home))
        name = f"bench-api-load-{os.getpid()}"
        _, key = keys.create(name, "ask")
        questions = sorted({ex.question for ex in load_squad(DEV)[0]})
        runs = []
        try:
            for engine, count in plan:
                run_dir = work / f"{engine}-{count}"
                run_dir.mkdir()
                log = run_dir / "serve.log"
                process, url = start_server(home, count, log, args.start_timeout, engine)
                try:
                    run = asyncio.run(
                        run_load(url, key, questions, args.clients, args.seconds, args.timeout)
                    )
                finally:
                    stop_server(process)
                scale = {"replicas": count} if engine == "ray" else {"workers": count}
                errors = _server_errors(log, run_dir if engine == "ray" else None)
                run = {"engine": engine, **scale, **run, "server_errors": errors}
                runs.append(run)
                print(f"{_server(run)}: {run['asks']} answers, {run['errors']} errors")
        finally:
            keys.revoke(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = cpu_description()
    command = (
        f"python benchmarks/bench_api_load.py --clients {args.clients} --seconds {args.seconds:g}"
        f" --engine {' '.join(args.engine)}"
    )
    if "uvicorn" in args.engine:
        command += f" --workers {' '.join(map(str, args.workers))}"
    if "ray" in args.engine:
        command += f" --replicas {','.join(map(str, args.replicas))}"
    result = {
        "benchmark": "api_load",
        "environment": environment(),
        "cpu": cpu,
        "home": "demo collection" if args.home is None else str(args.home),
        "runs": runs,
        "readme_rows": [
            {
                "what": f"REST API under load: {r['clients']} clients asking demo questions at "
                f"once for {r['seconds']:.0f} s, {_server(r)}",
                "number": f"{r['asks']} answers, {r['errors']} errors, {r['server_errors']} "
                f"server errors; p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s, "
                f"{r['questions_per_second']:.2f} questions/s",
                "command": command,
            }
            for r in runs
        ],
    }
    write_result(args.out, result)
    print(f"CPU: {cpu}")
    heads = ("clients", "asks", "errors", "p50 s", "p95 s", "max s", "q/s")
    print(f"{'server':<22} " + " ".join(f"{h:>7}" for h in heads) + "  by worker")
    for r in runs:
        print(
            f"{_server(r):<22} {r['clients']:>7} {r['asks']:>7} {r['errors']:>7} "
            f"{r['p50_s']:>7.2f} {r['p95_s']:>7.2f} {r['max_s']:>7.2f} "
            f"{r['questions_per_second']:>7.2f}  {r['asks_by_worker']}"
        )


if __name__ == "__main__":
    main()
