"""Starting or joining Ray, for the engines that run on it: indexing on Ray Data
(:mod:`indexer.ray_engine`, ``docqa index --engine ray``) and serving on Ray Serve
(:mod:`api.ray_serve`, ``docqa serve --engine ray``).

Why one module: both engines must start Ray the same way. DocQA never uses the network, so a
local instance started here sends no usage statistics (``RAY_USAGE_STATS_ENABLED=0``) and every
Ray worker gets the offline environment (:data:`OFFLINE_ENV`: models are local folders, never
downloaded). Ray is imported only inside these functions, so DocQA works without it installed;
:func:`require_ray` says how to install it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the ray extra: pip install 'docqa[ray]'"
# The workers never reach the network (the models are local folders); nor do the libraries try.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "ORT_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class RayError(RuntimeError):
    """Ray cannot be used: not installed, or the cluster cannot be reached."""


class RayUnavailableError(RayError):
    """An engine on Ray was asked for where Ray (or the part of it needed) is not installed."""


class RayConnectionError(RayError):
    """The Ray cluster at the given address cannot be reached."""


def require_ray(*parts: str) -> ModuleType:
    """The ``ray`` module, with ``parts`` (e.g. ``"ray.data"``, ``"ray.serve"``) importable; else
    :class:`RayUnavailableError` saying what to install."""
    try:
        ray = importlib.import_module("ray")
        for part in parts:
            importlib.import_module(part)
    except ImportError as exc:
        raise RayUnavailableError(
            f"this engine needs Ray, which is not installed ({exc}): {INSTALL_HINT}"
        ) from exc
    return ray


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cpu_share(cpus: float) -> float:
    """A Ray resource amount: whole above 1, at most 4 decimals below."""
    return float(int(cpus)) if cpus >= 1 else max(0.0001, int(cpus * 10_000) / 10_000)


@contextlib.contextmanager
def ray_connection(address: str | None = None, parts: tuple[str, ...] = ()) -> Iterator[ModuleType]:
    """Ray, connected to ``address`` or to a local instance started here; disconnected (the
    local instance shut down) on exit. A process already connected keeps its connection (and
    stays connected). ``parts``: the Ray libraries the caller needs (see :func:`require_ray`)."""
    ray = require_ray(*parts)
    if ray.is_initialized():
        if address:
            logger.warning("already connected to Ray: --address %s is not used", address)
        yield ray
        return
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": dict(OFFLINE_ENV)},
        "log_to_driver": False,
        "logging_level": logging.INFO if logger.isEnabledFor(logging.INFO) else logging.WARNING,
    }
    if address:
        logger.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise RayConnectionError(
                f"cannot connect to the Ray cluster at {address}: {exc}"
            ) from exc
    else:
        # The instance started here sends no usage statistics: DocQA does not use the network.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=available_cpus(), include_dashboard=False, **options)
    try:
        yield ray
    finally:
        ray.shutdown()
