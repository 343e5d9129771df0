"""The container image (Containerfile) and compose.yaml's services, built and run for real.

Podman rather than Docker: it needs no daemon, so the test runs wherever podman is installed
(``scripts/setup.sh --dev`` installs it on Debian). It gives podman a containers.conf of its own
(``CONTAINERS_CONF``) rather than depending on the machine's: the runtime runc, because crun
refuses hosts whose cgroups are in hybrid mode, and no default ulimits, because a sandbox that
may not raise RLIMIT_NOFILE refuses podman's. Where no registry serves the Debian base, it is
made with debootstrap and kept as localhost/debian:bookworm-slim for later runs. The build takes
torch's CPU wheel from /opt/wheels when it lies there, and the host's CA bundle (a proxy that
intercepts TLS); the image is rebuilt each run (the layer cache makes that quick) and kept.

What runs is what compose.yaml says: each service's command, environment, volumes and hardening
(read-only root, no capabilities, no new privileges) become podman run's arguments, and its
health check must be the image's, so that ``podman healthcheck run`` checks what compose would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
IMAGE = "localhost/docqa:test"
BASE = "localhost/debian:bookworm-slim"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
WHEELS = Path("/opt/wheels")
# The demo collection's Wi-Fi runbook says guest vouchers are valid for 8 hours.
QUESTION = "How long are the guest Wi-Fi vouchers printed by reception valid?"
CONTAINERS_CONF = """\
[containers]
# A sandbox that may not raise RLIMIT_NOFILE refuses podman's default ulimits.
default_ulimits = []

[engine]
# crun: "cgroups in hybrid mode not supported".
runtime = "runc"
"""

pytestmark = pytest.mark.slow


class Podman:
    """podman with the test's containers.conf; each call's output, checked unless told not."""

    def __init__(self, conf: Path) -> None:
        assert shutil.which("podman"), "podman is missing: bash scripts/setup.sh --dev"
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(
        self, *args: str, timeout: float = 300, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args], env=self.env, input=stdin, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check:
            assert result.returncode == 0, f"podman {args}: {result.stdout[-3000:]}{result.stderr}"
        return result

    def logs(self, name: str) -> str:
        result = self("logs", name, check=False)
        return result.stdout[-4000:] + result.stderr[-4000:]


def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))["services"]


def run_args(service: dict[str, Any], volume: str) -> list[str]:
    """podman run's arguments for a compose service's hardening, health check, environment and
    volumes, with the test's volume for the data volume and each ``${VAR:-default}`` at its
    default."""
    args = ["--read-only"] if service.get("read_only") else []
    if service.get("healthcheck", {}).get("disable"):
        args.append("--no-healthcheck")
    for path in service.get("tmpfs", []):
        args += ["--tmpfs", path]
    for capability in service.get("cap_drop", []):
        args += ["--cap-drop", capability]
    for option in service.get("security_opt", []):
        args += ["--security-opt", option]
    for name, value in (service.get("environment") or {}).items():
        args += ["-e", f"{name}={value}"]
    for spec in service["volumes"]:
        source, target, *mode = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", spec).split(":")
        if source == "docqa-data":
            source = volume
        elif not source.startswith("/"):
            source = str((REPO / source).resolve())  # relative to compose.yaml
        args += ["-v", ":".join([source, target, *mode])]
    return args


def published(service: dict[str, Any]) -> tuple[list[str], int]:
    """``-p`` for the service's one port on the address compose publishes it on (a free host
    port, so runs side by side do not collide) and the container's port."""
    (spec,) = service["ports"]
    address, _, port = spec.split(":")
    return ["-p", f"{address}::{port}"], int(port)


def ensure_base(podman: Podman, work: Path) -> None:
    """localhost/debian:bookworm-slim, made with debootstrap unless an earlier run kept it."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return
    rootfs, archive = work / "rootfs", work / "rootfs.tar"
    command = ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR]
    made = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
    podman("import", str(archive), BASE, timeout=600)
    shutil.rmtree(rootfs)
    archive.unlink()


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    return Podman(conf)


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    ensure_base(podman, tmp_path_factory.mktemp("base"))
    # The build's network is the host's (PyPI and Debian's mirror, through its proxy).
    build = ["build", "--format", "docker", "--network", "host", "-f", "Containerfile"]
    build += ["-t", IMAGE, "--build-arg", f"BASE={BASE}"]
    build += ["-v", f"{HOST_CA}:/run/host-ca.crt:ro", "--build-arg", "CA_BUNDLE=/run/host-ca.crt"]
    if any(WHEELS.glob("torch-*+cpu-*.whl")):
        build += ["-v", f"{WHEELS}:/wheels:ro", "--build-arg", "FIND_LINKS=/wheels"]
        build += ["--build-arg", "TORCH_INDEX_URL="]
    podman(*build, str(REPO), timeout=3600)
    return IMAGE


@pytest.fixture(scope="module")
def home(podman: Podman, image: str) -> Iterator[str]:
    """A volume with the demo collection indexed by compose's one-shot index service, run
    with no network at all."""
    volume = f"docqa-test-{uuid.uuid4().hex[:10]}"
    podman("volume", "create", volume)
    try:
        index = services()["index"]
        ran = podman(
            "run", "--rm", "--network", "none", *run_args(index, volume), image,
            *index["command"], timeout=1800,
        )  # fmt: skip
        files = sum(1 for f in (REPO / "data/demo/documents").rglob("*") if f.is_file())
        assert f"{files} added, 0 updated, 0 removed, 0 unchanged, 0 failed" in ran.stdout, ran
        yield volume
    finally:
        podman("volume", "rm", "-f", volume, check=False)


@pytest.fixture
def containers(podman: Podman) -> Iterator[list[str]]:
    """Names of the containers a test started: removed when it ends."""
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "-f", "-t", "5", name, check=False)


def start(podman: Podman, names: list[str], *args: str) -> str:
    name = f"docqa-test-{uuid.uuid4().hex[:10]}"
    names.append(name)
    podman("run", "-d", "--name", name, *args)
    return name


def url_of(podman: Podman, name: str, port: int) -> str:
    return "http://" + podman("port", name, f"{port}/tcp").stdout.split()[0]


def wait_for(podman: Podman, name: str, url: str, timeout: float) -> None:
    """Until ``url`` answers 200, failing at once (with the logs) if the container stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        assert running == "true", f"{name} stopped: {podman.logs(name)}"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"{url}: not 200 after {timeout} s: {podman.logs(name)}")


def healthy(podman: Podman, name: str) -> bool:
    """The image's HEALTHCHECK, run now (podman's own timer needs systemd)."""
    return podman("healthcheck", "run", name, check=False).returncode == 0


def test_image_runs_as_a_non_root_user_offline_with_compose_s_health_checks(
    podman: Podman, image: str
) -> None:
    (info,) = json.loads(podman("image", "inspect", image).stdout)
    assert info["Config"]["User"] == "docqa"
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    assert env["DOCQA_HOME"] == "/data" and "/data" in info["Config"]["Volumes"]
    for name, value in (("HF_HUB_OFFLINE", "1"), ("ORT_DISABLE_TELEMETRY", "1")):
        assert env[name] == value
    assert info["Config"]["Labels"]["org.opencontainers.image.title"] == "DocQA"
    assert info["Config"]["Entrypoint"] == ["tini", "--", "docqa"]
    for service in ("api", "page"):
        assert services()[service]["healthcheck"]["test"] == info["Healthcheck"]["Test"]

    # Not root, and unable to change the code or the shipped reader it runs.
    probe = "id; touch /opt/docqa/data/reader/x 2>&1 || echo read-only"
    ran = podman(
        "run", "--rm", "--network", "none", "--no-healthcheck", "--entrypoint", "sh", image,
        "-c", probe,
    )  # fmt: skip
    assert ran.stdout.startswith("uid=10001(docqa) gid=10001(docqa)"), ran.stdout
    assert ran.stdout.rstrip().endswith("read-only"), ran.stdout


def test_compose_serves_on_loopback_from_one_volume_after_indexing() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    found = compose["services"]
    assert set(found) == {"index", "api", "page"}
    assert set(compose["volumes"]) == {"docqa-data"}
    for name, service in found.items():
        assert "docqa-data:/data" in service["volumes"], name
        assert service["read_only"] and service["cap_drop"] == ["ALL"], name
    for name in ("api", "page"):
        assert all(port.startswith("127.0.0.1:") for port in found[name]["ports"]), name
        assert found[name]["depends_on"]["index"]["condition"] == "service_completed_successfully"
    assert found["api"]["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert found["page"]["command"][:3] == ["ui", "--host", "0.0.0.0"]


def test_api_container_answers_a_demo_question_with_a_citation_for_a_key_only(
    podman: Podman, image: str, home: str, containers: list[str]
) -> None:
    api = services()["api"]
    created = podman(
        "run", "--rm", "--network", "none", "--no-healthcheck", *run_args(api, home), image,
        "keys", "create", "container-test", "--role", "viewer",
    )  # fmt: skip
    key = created.stdout.split()[-1]
    ports, port = published(api)
    name = start(podman, containers, *run_args(api, home), *ports, image, *api["command"])
    url = url_of(podman, name, port)
    wait_for(podman, name, f"{url}/ready", timeout=600)
    health = httpx.get(f"{url}/health", timeout=10)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert healthy(podman, name)

    body = {"question": QUESTION, "n": 1}
    refused = httpx.post(f"{url}/ask", json=body, timeout=60)
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
    # The first question measures the reader's backends on this CPU: up to minutes.
    answered = httpx.post(
        f"{url}/ask", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=900
    )
    assert answered.status_code == 200, answered.text
    first = answered.json()["answers"][0]
    assert first["answer"] == "8 hours", first
    assert first["document"] == "documents/it/office-network-and-wifi.txt"
    start_at, end = first["context_offsets"]
    assert first["context"][start_at:end] == "8 hours"


def test_page_container_refuses_to_serve_without_a_login_and_serves_with_one(
    podman: Podman, image: str, home: str, containers: list[str]
) -> None:
    page = services()["page"]
    args = run_args(page, home)
    refused = podman("run", "--rm", "--no-healthcheck", *args, image, *page["command"], check=False)
    assert refused.returncode != 0
    assert "refusing to serve the page on 0.0.0.0 with no login configured" in refused.stderr

    ports, port = published(page)
    anonymous = start(podman, containers, *args, *ports, image, *page["command"], "--no-auth")
    wait_for(podman, anonymous, f"{url_of(podman, anonymous, port)}/_stcore/health", 300)
    assert healthy(podman, anonymous)

    # With a local account, compose's command as it is.
    podman(
        "run", "--rm", "-i", "--network", "none", "--no-healthcheck", *args, image,
        "users", "create", "alice", "--role", "admin", "--password-stdin",
        stdin="correct horse battery staple\n",
    )  # fmt: skip
    with_login = start(podman, containers, *args, *ports, image, *page["command"])
    wait_for(podman, with_login, f"{url_of(podman, with_login, port)}/_stcore/health", 300)
    assert healthy(podman, with_login)
