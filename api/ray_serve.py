"""``docqa serve --engine ray``: the API as a Ray Serve application, in N replicas over a cluster.

Why: uvicorn's workers share one machine; Ray Serve spreads replicas over the machines of a
Ray cluster, so question throughput grows with machines. Each replica is a Ray actor holding
the same FastAPI app as uvicorn's workers (:func:`api.app.create_app` over the same settings)
with its own loaded index and reader; Ray Serve's HTTP proxy (on ``host:port``, on every node
that runs a replica) spreads requests over the replicas.

How: :class:`ApiReplica` is the deployment class, wrapped as ``serve.deployment(
serve.ingress()(ApiReplica), num_replicas=N)``. Its app is built in the replica's own process
(``__serve_build_asgi_app__``, Ray Serve's late-bound ingress), not passed as
``serve.ingress(create_app(settings))``: the app holds locks, an open index and loaded models,
which cannot be pickled, and each replica must load its own. Only the settings travel (as JSON),
and a replica loads the index and the reader before Serve sends it requests, so
``serve.run`` returns when every replica can answer.

Everything that guards the API is in that app, so it holds on Ray Serve as on uvicorn: each
replica checks the key before the body (:mod:`api.auth`), the role of every route, and the
caller's scope in every search, listing and count (:mod:`api.deps`); access rules and keys are
read from the shared home, so a change applies to every replica's next request.

The home must be reachable at the same path by every node that runs a replica (shared storage:
NFS, a cluster file system), as must the models the settings name: replicas read the index,
the API keys and the promoted reader there, and write uploads, feedback and the question log
there. A new index version or a promotion written through one replica is loaded by every other
replica before its next question, as with uvicorn's workers (:mod:`api.server`). DocQA must be
installed on every node (the replicas import it); the nodes never download models.

Metrics: every replica counts its own requests. All replicas write them to one
prometheus_client multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``: a fresh temporary folder,
or the operator's), so ``GET /metrics``, whichever replica answers, adds up the replicas of its
machine. Limitation on several machines: the folder is per machine, so each answer covers only
the replicas of the machine that served it; scrape the replicas of each node (or use Ray's own
``ray_serve_*`` metrics) for cluster totals. The temporary folder is removed on this machine when
the server stops (on other nodes, replicas create it and it stays, a few KB).

Ray is imported only inside these functions (``pip install 'docqa[ray]'``). Without an address
a local Ray instance is started for the server's lifetime and shut down after it; with one, the
server joins that cluster and on exit removes its application (and Ray Serve itself when no
other application runs on it). Replica logs are in Ray's session logs
(``/tmp/ray/session_latest/logs/serve/`` on each node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from api.metrics import MULTIPROC_ENV
from pipelines.operations import ray_cluster
from pipelines.settings import Settings, make_private

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

APP_NAME = "docqa"
DEPLOYMENT_NAME = "DocQAApi"


class ApiReplica:
    """One replica: the API over the settings' home, built and loaded in the replica's process.

    ``threads``: torch threads (one per CPU the replica reserves). ``metrics_dir``: the
    prometheus_client multiprocess folder (also in the replica's environment, set by Ray before
    anything imports prometheus_client); made here, since on another node it does not exist.
    """

    def __init__(self, settings_json: str, threads: int, metrics_dir: str | None) -> None:
        if metrics_dir:
            os.makedirs(metrics_dir, exist_ok=True)
        self.settings = Settings.from_json(settings_json)
        make_private(self.settings.home)  # every file this replica writes: 0600
        self.threads = threads

    async def __serve_build_asgi_app__(self) -> FastAPI:
        return await asyncio.to_thread(self._build)

    def _build(self) -> FastAPI:
        import torch

        from api.app import create_app
        from api.routes.system import load_models

        torch.set_num_threads(self.threads)
        app = create_app(self.settings)
        loaded = load_models(app.state.docqa)  # before requests: Serve routes to ready replicas
        logger.info(
            "replica %d: %s, %s (%d torch threads)",
            os.getpid(),
            self.settings.home,
            "index and reader loaded" if loaded else "nothing loaded (see /health)",
            self.threads,
        )
        return app


def replica_cpus(node_cpus: list[float], replicas: int) -> float:
    """The CPUs each replica reserves: the largest whole share that places all ``replicas`` on
    nodes with ``node_cpus`` CPUs (so the replicas use the cluster: a CPU is a torch thread),
    or a fraction of a CPU where the replicas outnumber the CPUs."""
    nodes = [cpus for cpus in node_cpus if cpus > 0] or [1.0]
    for share in range(int(max(nodes)), 0, -1):
        if sum(int(cpus // share) for cpus in nodes) >= replicas:
            return float(share)
    # Fewer CPUs than replicas: an equal number of replicas on every node, in the smallest.
    return ray_cluster.cpu_share(min(nodes) / math.ceil(replicas / len(nodes)))


def _http_address(host: str, port: int) -> tuple[str, int]:
    """Where Serve's proxy listens: ``host:port``, unless Serve already ran on the cluster with
    other HTTP options (Ray keeps those, and says so)."""
    try:
        from ray.serve.context import _get_global_client

        config = _get_global_client().http_config
        return str(config.host), int(config.port)
    except Exception:  # a private API of Ray: the asked address where it changed
        return host, port


def deploy(
    settings: Settings,
    replicas: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    metrics_dir: str | None = None,
    name: str = APP_NAME,
) -> str:
    """Deploy the API on the Ray cluster this process is connected to, as the Serve application
    ``name`` with ``replicas`` replicas behind Serve's HTTP proxy at ``host:port``; returns its
    URL once every replica has loaded (a redeploy under the same name replaces it)."""
    ray = ray_cluster.require_ray("ray.serve")
    from ray import serve

    nodes = [float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    cpus = replica_cpus(nodes, replicas)
    env = {**ray_cluster.OFFLINE_ENV, "DOCQA_HOME": str(settings.home)}
    if metrics_dir:
        env[MULTIPROC_ENV] = metrics_dir
    serve.start(http_options={"host": host, "port": port})
    listen_host, listen_port = _http_address(host, port)
    if (listen_host, listen_port) != (host, port):
        logger.warning(
            "Ray Serve already runs on this cluster with its HTTP proxy at %s:%d: the API is there",
            listen_host,
            listen_port,
        )
    deployment = serve.deployment(
        serve.ingress()(ApiReplica),
        name=DEPLOYMENT_NAME,
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus, "runtime_env": {"env_vars": env}},
    )
    logger.info(
        "deploying %d replica(s) of %s (%g CPU each) on Ray Serve", replicas, settings.home, cpus
    )
    threads = max(1, int(cpus))
    serve.run(
        deployment.bind(settings.to_json(), threads, metrics_dir),
        name=name,
        route_prefix="/",
    )
    return f"http://{listen_host}:{listen_port}"


def undeploy(name: str = APP_NAME) -> None:
    """Remove the application ``name``, and Ray Serve (its controller and proxies) when no
    other application is left on it."""
    from ray import serve

    if name in serve.status().applications:
        serve.delete(name)
    if not serve.status().applications:
        serve.shutdown()


@contextlib.contextmanager
def _metrics_folder() -> Iterator[str]:
    """The replicas' prometheus_client folder: the operator's ``PROMETHEUS_MULTIPROC_DIR``
    (kept), else a fresh temporary one (removed on exit)."""
    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        yield chosen
        return
    folder = tempfile.mkdtemp(prefix="docqa-metrics-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(stop: threading.Event) -> None:
    """Until ``stop`` is set, Ctrl+C or (in the main thread) SIGTERM."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        logger.info("interrupted")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def serve_on_ray(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 1,
    address: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the API on Ray Serve until interrupted (Ctrl+C, SIGTERM) or ``stop`` is set; then
    remove the application (and Serve, and the local Ray instance, as :func:`undeploy` and
    :func:`~pipelines.operations.ray_cluster.ray_connection` say)."""
    stop = stop or threading.Event()
    with (
        ray_cluster.ray_connection(address, parts=("ray.serve",)),
        _metrics_folder() as metrics_dir,
    ):
        try:
            url = deploy(settings, replicas, host, port, metrics_dir=metrics_dir)
            logger.info("DocQA API on Ray Serve at %s with %d replica(s)", url, replicas)
            _wait(stop)
        finally:
            undeploy()
