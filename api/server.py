"""``docqa serve``: the API on uvicorn, in one or several worker processes, or on Ray Serve.

Workers are separate processes (uvicorn spawns them and shares the listening socket), each with
its own loaded index and reader, all over the one index on disk. An upload or a deletion
through one worker writes a new index version; every other worker's
:class:`~pipelines.query.QueryService` compares the version on disk (``CURRENT``) before each
question and loads the new one first, so the next question anywhere sees it. Promotions work
the same way through ``serving.json``.

Settings reach the workers through the environment: ``DOCQA_API_SETTINGS`` holds the whole
:class:`~pipelines.settings.Settings` as JSON (``DOCQA_HOME`` the home, for anything that
reads only that), and uvicorn builds each worker's app with the factory
:func:`app_from_env` (``factory=True``; uvicorn needs an import string for several workers).

Metrics with several workers: ``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh temporary folder
before the workers start (unless the operator set one, which is then used and kept), and the
folder is removed when the server stops; see :mod:`api.metrics`.

Engines (:data:`ENGINES`): ``uvicorn`` (above: worker processes on this machine) and ``ray``
(``docqa serve --engine ray --replicas N [--address ADDR]``): the same app, one per replica of a
Ray Serve deployment, spread over the machines of a Ray cluster behind Ray Serve's HTTP proxy;
see :mod:`api.ray_serve` (Ray is imported only there, and only for that engine).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from api.metrics import MULTIPROC_ENV
from pipelines.settings import Settings, make_private

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

ENGINES = ("uvicorn", "ray")
SETTINGS_ENV = "DOCQA_API_SETTINGS"
# prometheus_client's switch to multiprocess mode (read when it is first imported: not
# imported here, so that this process's choice never depends on import order).
APP_FACTORY = "api.server:app_from_env"


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a worker process these settings."""
    return {SETTINGS_ENV: settings.to_json(), "DOCQA_HOME": str(settings.home)}


def settings_from_env() -> Settings:
    """The settings :func:`serve` passed on, else those of ``$DOCQA_HOME``."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        return Settings.from_env()
    return Settings.from_json(raw)


def app_from_env() -> FastAPI:
    """uvicorn's factory: each worker builds its app from the environment."""
    from api.app import create_app

    settings = settings_from_env()
    make_private(settings.home)  # every file this worker writes: 0600
    return create_app(settings)


def check_engine(engine: str) -> None:
    """Refuse an unknown engine (ValueError), or ``ray`` where Ray Serve is not installed
    (:class:`~pipelines.operations.ray_cluster.RayUnavailableError`, saying what to install): before
    anything starts."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray":
        from pipelines.operations.ray_cluster import require_ray

        require_ray("ray.serve")


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    engine: str = "uvicorn",
    log_level: str = "info",
    replicas: int | None = None,
    address: str | None = None,
) -> None:
    """Serve the API until interrupted (Ctrl+C, SIGTERM).

    ``workers`` (default 1) are uvicorn's; ``replicas`` (default 1) and ``address`` (the Ray
    cluster; default: a local Ray instance for the server's lifetime) are the ray engine's.
    """
    check_engine(engine)
    if engine == "ray":
        if workers is not None:
            raise ValueError("workers are uvicorn's: the ray engine scales with replicas")
    elif replicas is not None or address is not None:
        raise ValueError("replicas and address are the ray engine's (engine='ray')")
    count = replicas if engine == "ray" else workers
    if count is not None and count < 1:
        raise ValueError(f"{'replicas' if engine == 'ray' else 'workers'} must be at least 1")
    from api.keys import KeyStore

    if not KeyStore.of(settings).list():
        logger.warning(
            "no API keys in %s: every request but /health and /docs gets 401 until one is made"
            " (docqa keys create NAME --role viewer|editor|admin --groups G1,G2)",
            settings.home,
        )
    if engine == "ray":
        from api.ray_serve import serve_on_ray

        serve_on_ray(settings, host=host, port=port, replicas=replicas or 1, address=address)
        return
    workers = workers or 1
    import uvicorn

    env = settings_to_env(settings)
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        metrics_dir = tempfile.mkdtemp(prefix="docqa-metrics-")
        env[MULTIPROC_ENV] = metrics_dir
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    logger.info("serving %s on %s:%d with %d worker(s)", settings.home, host, port, workers)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
