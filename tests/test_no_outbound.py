"""No DocQA start reaches another machine, checked at the system-call level.

``docqa ui`` and ``docqa serve`` are started as a user would start them, in a fresh network
namespace that has only loopback, under ``strace -f`` recording every ``connect``/``sendto``/
``sendmsg`` of the process tree; once each answers on loopback (and a few seconds more, for
what a server does after it is up) it is stopped and every address it tried must be loopback,
a Unix socket or netlink. The namespace makes an outside connection fail at once, so the test
needs no network and cannot leak; strace sees the attempt all the same. Python's socket guard
(tests/offline) is left out of these processes on purpose: it would refuse an attempt before
the system call and hide it from the trace, and code may behave differently when it raises.

The harness is tested too: a one-line script that connects to 10.255.255.1:80 must be caught.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.keys import KeyStore
from pipelines.settings import REPO_ROOT, Settings

# Families that never leave the machine (AF_UNSPEC "connects" a UDP socket to nothing).
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}
SOCKADDR = re.compile(r"\{sa_family=(\w+)([^}]*)\}")
INET_ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
# Variables that make libraries stay offline on their own: left out, so that the product itself
# must not try (as in tests/test_offline.py); the socket guard's log goes too.
UNSET = {
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HAYSTACK_TELEMETRY_ENABLED",
    "DOCQA_NETWORK_LOG",
}

# Runs inside the namespace (as its root): loopback up, the command under strace in its own
# process group, loopback probed until it answers, then Ctrl+C for the command's processes.
INNER = r"""
import json, os, signal, subprocess, sys, time, urllib.request
cfg = json.loads(sys.argv[1])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open(cfg["log"], "wb") as log:
    tracer = subprocess.Popen(
        ["strace", "-f", "-qq", "-s", "64", "-e", "trace=connect,sendto,sendmsg,sendmmsg",
         "-o", cfg["trace"], "--", *cfg["command"]],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=cfg["env"],
        cwd=cfg["cwd"], start_new_session=True,
    )

def group():  # the traced processes: strace's process group, strace itself left out
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != tracer.pid:
            try:
                if os.getpgid(int(entry)) == tracer.pid:
                    found.append(int(entry))
            except OSError:
                pass
    return found

status, deadline = None, time.monotonic() + cfg["timeout"]
while cfg["url"] and time.monotonic() < deadline and tracer.poll() is None:
    try:
        with urllib.request.urlopen(cfg["url"], timeout=5) as response:
            status = response.status
            break
    except OSError:
        time.sleep(0.5)
asked = None
if status is not None and cfg["post"]:  # then a request that makes the server do its work
    post = cfg["post"]
    request = urllib.request.Request(
        post["url"], data=json.dumps(post["json"]).encode(),
        headers={"Content-Type": "application/json", **post["headers"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=cfg["timeout"]) as response:
            asked = response.status
    except OSError as exc:
        asked = getattr(exc, "code", repr(exc))
if cfg["wait"]:  # a command that ends by itself: its whole run
    try:
        tracer.wait(timeout=cfg["timeout"])
    except subprocess.TimeoutExpired:
        pass
if tracer.poll() is None:
    time.sleep(cfg["linger"])  # what a server does once it is up (Streamlit prints its URLs)
for pid in group():
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        pass
try:
    tracer.wait(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(tracer.pid, signal.SIGKILL)
    tracer.wait()
print(json.dumps({"status": status, "asked": asked, "returncode": tracer.returncode}))
"""


@dataclass
class Traced:
    status: int | None  # the HTTP status loopback answered, None if it never did
    asked: int | str | None  # the status of the POST request made then, if any
    trace: str
    log: str

    def outbound(self) -> list[str]:
        return outbound_attempts(self.trace)


def _outside(family: str, rest: str) -> bool:
    if family in LOCAL_FAMILIES:
        return False
    if family not in ("AF_INET", "AF_INET6"):
        return True  # packet sockets, Bluetooth, a family strace prints as a number: not local
    port = PORT.search(rest)
    if port and port.group(1) == "53":
        return True  # a DNS query asks about another machine, whichever resolver answers
    match = INET_ADDRESS.search(rest)
    if match is None:
        return True
    address = ipaddress.ip_address(match.group(1) or match.group(2))
    mapped = getattr(address, "ipv4_mapped", None)
    return not (address.is_loopback or (mapped is not None and mapped.is_loopback))


def outbound_attempts(trace: str) -> list[str]:
    """The trace's lines that address anything but loopback, a Unix socket or netlink (a
    ``connect`` whose address strace could not decode counts as outside)."""
    found = []
    for line in trace.splitlines():
        if "resumed>" in line and "connect(" not in line.split("resumed>", 1)[1]:
            continue  # the end of a call whose arguments an earlier line showed
        addresses = SOCKADDR.findall(line)
        undecoded = not addresses and re.search(r"\bconnect\(\d+, 0x", line)
        if undecoded or any(_outside(family, rest) for family, rest in addresses):
            found.append(line)
    return found


def run_traced(
    command: list[str],
    tmp_path: Path,
    url: str | None,
    post: dict[str, Any] | None = None,
    timeout: float = 240,
    linger: float = 4,
    wait: bool = False,
) -> Traced:
    """``command`` in a new network namespace under strace; see the module docstring. Once
    ``url`` answers, ``post`` (``url``, ``json``, ``headers``) is sent, if given; with ``wait``,
    the command runs until it exits (up to ``timeout``)."""
    user = tmp_path / "user"  # an empty HOME: no ~/.streamlit, no caches
    user.mkdir(exist_ok=True)
    offline = str(REPO_ROOT / "tests" / "offline")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != offline
    )
    env["HOME"] = str(user)
    config = {
        "command": command,
        "env": env,
        "cwd": str(REPO_ROOT),
        "url": url,
        "post": post,
        "timeout": timeout,
        "linger": linger,
        "wait": wait,
        "trace": str(tmp_path / "strace.txt"),
        "log": str(tmp_path / "output.txt"),
    }
    # As root a network namespace is enough; otherwise a user namespace makes us its root.
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "-r"]
    done = subprocess.run(
        [*unshare, sys.executable, "-c", INNER, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=timeout + 120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Traced(
        result["status"],
        result["asked"],
        Path(config["trace"]).read_text(errors="replace"),
        Path(config["log"]).read_text(errors="replace"),
    )


def _free_port() -> int:
    # Any port is free in the new namespace; one free here too keeps the runs apart in logs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _home(demo_home: Settings, tmp_path: Path) -> Path:
    home = tmp_path / "docqa"  # a copy: a server may write into its home (logs, locks)
    shutil.copytree(demo_home.home, home, symlinks=True)
    return home


def test_the_harness_catches_a_connection_to_another_machine(tmp_path: Path) -> None:
    script = "import socket\ntry:\n    socket.create_connection(('10.255.255.1', 80), 2)\n"
    script += "except OSError as exc:\n    print('refused:', exc)\n"
    traced = run_traced([sys.executable, "-c", script], tmp_path, url=None, timeout=30)
    assert "refused:" in traced.log  # the namespace has no route out: it failed at once
    caught = traced.outbound()
    assert len(caught) == 1 and '"10.255.255.1"' in caught[0] and "htons(80)" in caught[0], (
        traced.trace
    )
    # and loopback alone is not an attempt
    script = "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0)); s.listen()\n"
    script += "socket.create_connection(s.getsockname(), 2).close()\n"
    traced = run_traced([sys.executable, "-c", script], tmp_path, url=None, timeout=30)
    assert "127.0.0.1" in traced.trace and not traced.outbound(), traced.trace


def test_docqa_ui_starts_without_reaching_another_machine(
    demo_home: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    home = _home(demo_home, tmp_path)
    traced = run_traced(
        [sys.executable, "-m", "docqa", "ui", "--home", str(home), "--port", str(port)],
        tmp_path,
        url=f"http://127.0.0.1:{port}/_stcore/health",
    )
    assert traced.status == 200, traced.log[-3000:]
    assert not traced.outbound(), "\n".join(traced.outbound())


def test_docqa_serve_starts_and_answers_without_reaching_another_machine(
    demo_home: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    home = _home(demo_home, tmp_path)
    token = KeyStore.of(Settings(home=home)).create("probe", "ask")[1]
    url = f"http://127.0.0.1:{port}"
    traced = run_traced(
        [sys.executable, "-m", "docqa", "serve", "--home", str(home), "--port", str(port)],
        tmp_path,
        url=f"{url}/health",
        # A question too: loading the models and answering stay on this machine as well.
        post={
            "url": f"{url}/ask",
            "json": {"question": "How many days of annual leave do I get?"},
            "headers": {"Authorization": f"Bearer {token}"},
        },
    )
    assert traced.status == 200 and traced.asked == 200, traced.log[-3000:]
    assert not traced.outbound(), "\n".join(traced.outbound())


def test_docqa_ask_on_onnx_runtime_reaches_no_other_machine(
    demo_home: Settings, tmp_path: Path
) -> None:
    """A one-question ``docqa ask`` reads with ONNX Runtime (reader and question encoder,
    exported on first use), whose Linux build sends telemetry (a DNS query for
    mobile.events.data.microsoft.com as each session opens) unless it is turned off."""
    home = _home(demo_home, tmp_path)
    question = "How many days of annual leave do employees get?"
    traced = run_traced(
        [sys.executable, "-m", "docqa", "ask", question, "--home", str(home), "--json"],
        tmp_path,
        url=None,
        wait=True,
    )
    assert '"answer"' in traced.log, traced.log[-3000:]
    exported = sorted((home / "cache" / "onnx").glob("*.onnx"))
    assert exported, "it did not read with ONNX Runtime"
    assert not traced.outbound(), "\n".join(traced.outbound())
    # The telemetry goes out about 9 s after a session opens: a server (the page, the API on an
    # ONNX backend) holds its sessions that long. Through DocQA's own session helper.
    hold = "import sys, time\nfrom pathlib import Path\nfrom pipelines.reader_backends import "
    hold += "onnx_session\nonnx_session(Path(sys.argv[1]))\ntime.sleep(15)\nprint('held')\n"
    traced = run_traced(
        [sys.executable, "-c", hold, str(exported[0])], tmp_path, url=None, wait=True
    )
    assert "held" in traced.log, traced.log[-3000:]
    assert not traced.outbound(), "\n".join(traced.outbound())


@pytest.mark.parametrize(
    "line",
    [
        "7 connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2606:4700::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH',
        '7 connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}'
        ", 16) = 0",
        '7 sendto(5, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(1), '
        'sin_addr=inet_addr("8.8.8.8")}, 16) = -1 ENETUNREACH',
        "7 connect(5, {sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL)}, 20) = 0",
        "7 connect(5, 0x7ffd5c2a1b30, 16) = -1 EFAULT (Bad address)",
    ],
)
def test_outside_addresses_in_a_trace_are_found(line: str) -> None:
    assert outbound_attempts(line) == [line]


def test_local_addresses_in_a_trace_are_not_attempts() -> None:
    trace = "\n".join(
        [
            '7 connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT',
            '7 connect(5, {sa_family=AF_INET, sin_port=htons(8501), sin_addr=inet_addr("127.0.0.1")'
            "}, 16) = 0",
            "7 connect(5, {sa_family=AF_INET6, sin6_port=htons(8000), sin6_flowinfo=htonl(0), "
            'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
            '7 sendto(5, "x", 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12)'
            " = 20",
            '7 connect(5, {sa_family=AF_UNSPEC, sa_data="\\0\\0"}, 16) = 0',
            '7 sendto(5, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1',
        ]
    )
    assert outbound_attempts(trace) == []
