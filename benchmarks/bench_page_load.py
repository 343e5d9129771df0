"""The web page under load: N people asking at once, in real browser tabs, on loopback.

Starts ``streamlit run ui/app.py`` over an index of the demo collection and opens ``--askers``
Chromium tabs (Playwright, one browser). Each tab asks the demo dev questions in turn (the page
answers a question given in its URL, ``/?q=...``) until ``--seconds`` have passed, and the time
from navigation to the first answer card (or the "no answer" notice) is recorded. Reported: asks
completed, errors (timeouts, a Streamlit exception on the page, an error logged by the server),
latency p50/p95/max, and questions answered per second, beside one asker alone in the same run
(the ratio is what load costs). Prints a table and writes JSON with README rows.

    python benchmarks/bench_page_load.py [--askers 20] [--seconds 120] [--home DIR]

Needs Chromium (``apt-get install -y chromium`` or ``playwright install chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from math import nan
from pathlib import Path
from typing import Any

from bench_env import write_result

from evaluation.end_to_end import latency_summary
from evaluation.environment import cpu_description, environment
from evaluation.squad import load_squad
from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings

APP = REPO_ROOT / "ui" / "app.py"
DEV = REPO_ROOT / "data" / "demo" / "labels" / "dev.json"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# An answer card, or (when the documents hold no answer) the passages shown instead.
ANSWERED = ".docqa-answer, .docqa-passage"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_page(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--", "--home", str(home)],
        cwd=REPO_ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "DOCQA_HOME": str(home)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("streamlit did not start:\n" + log.read_text())


async def asker(
    browser: Any, url: str, questions: list[str], offset: int, until: float, timeout_ms: int
) -> tuple[list[float], list[str]]:
    """One tab asking questions until ``until``; latencies (s) and errors."""
    page = await browser.new_page()
    latencies: list[float] = []
    errors: list[str] = []
    i = offset
    while time.monotonic() < until:
        question = questions[i % len(questions)]
        i += 1
        started = time.monotonic()
        try:
            await page.goto(f"{url}/?q={urllib.parse.quote(question)}")
            await page.locator(ANSWERED).first.wait_for(timeout=timeout_ms)
            latencies.append(time.monotonic() - started)
            if await page.get_by_test_id("stException").count():
                errors.append(f"exception on the page for {question!r}")
        except Exception as exc:  # a timeout or a closed page is an error of this ask
            errors.append(f"{type(exc).__name__} for {question!r}: {str(exc)[:120]}")
    await page.close()
    return latencies, errors


async def run_load(
    url: str, questions: list[str], askers: int, seconds: float, timeout_ms: int
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    chromium = os.environ.get("DOCQA_CHROMIUM") or shutil.which("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        # Warm the page and the models once, so the first asker does not pay for loading.
        await asker(browser, url, questions[:1], 0, time.monotonic() + 0.001, timeout_ms)
        started = time.monotonic()
        until = started + seconds
        results = await asyncio.gather(
            *(asker(browser, url, questions, k * 7, until, timeout_ms) for k in range(askers))
        )
        wall = time.monotonic() - started
        await browser.close()
    latencies = [x for lat, _ in results for x in lat]
    errors = [e for _, err in results for e in err]
    summary = latency_summary(latencies) if latencies else dict.fromkeys(("p50", "p95", "max"), nan)
    return {
        "askers": askers,
        "seconds": round(wall, 1),
        "asks": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "p50_s": round(summary["p50"], 3),
        "p95_s": round(summary["p95"], 3),
        "max_s": round(summary["max"], 3),
        "answers_per_second": round(len(latencies) / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--askers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--timeout", type=float, default=120, help="Seconds one ask may take.")
    parser.add_argument("--home", type=Path, help="A DocQA home with an index (default: demo).")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks/results/page_load.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="docqa-load-"))
    home = args.home
    if home is None:
        from indexer.run import index_folder

        home = work / "home"
        index_folder([DEMO_COLLECTION], Settings(home=home), progress=False)
    questions = sorted({ex.question for ex in load_squad(DEV)[0]})
    process, url = start_page(home, work / "streamlit.log")
    try:
        timeout_ms = int(args.timeout * 1000)
        alone = asyncio.run(run_load(url, questions, 1, min(args.seconds, 60), timeout_ms))
        loaded = asyncio.run(run_load(url, questions, args.askers, args.seconds, timeout_ms))
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = (work / "streamlit.log").read_text(errors="replace")
    server_errors = [line for line in log.splitlines() if "Traceback" in line or " ERROR " in line]
    loaded["server_errors"] = len(server_errors)
    cpu = cpu_description()
    command = (
        f"python benchmarks/bench_page_load.py --askers {args.askers} --seconds {args.seconds:g}"
    )
    result = {
        "benchmark": "page_load",
        "environment": environment(),
        "cpu": cpu,
        "alone": alone,
        "loaded": loaded,
        "readme_rows": [
            {
                "what": f"web page under load: {args.askers} browser tabs asking demo questions "
                f"at once for {loaded['seconds']:.0f} s",
                "number": f"{loaded['asks']} answers, {loaded['errors']} errors, "
                f"{loaded['server_errors']} server errors; p50 {loaded['p50_s']:.2f} s, "
                f"p95 {loaded['p95_s']:.2f} s, {loaded['answers_per_second']:.2f} answers/s "
                f"(one tab alone: p50 {alone['p50_s']:.2f} s, "
                f"{alone['answers_per_second']:.2f} answers/s)",
                "command": command,
            }
        ],
    }
    write_result(args.out, result)
    print(f"CPU: {cpu}")
    heads = ("askers", "asks", "errors", "p50 s", "p95 s", "max s", "ans/s")
    print(f"{'run':<8} " + " ".join(f"{h:>7}" for h in heads))
    for name, row in (("alone", alone), ("loaded", loaded)):
        print(
            f"{name:<8} {row['askers']:>7} {row['asks']:>7} {row['errors']:>7} {row['p50_s']:>7.2f}"
            f" {row['p95_s']:>7.2f} {row['max_s']:>7.2f} {row['answers_per_second']:>7.2f}"
        )
    print(f"server errors: {loaded['server_errors']}; wrote {args.out}")


if __name__ == "__main__":
    main()
