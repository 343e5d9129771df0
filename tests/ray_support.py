"""A real local Ray cluster for the tests of the engines on Ray (indexing, serving).

The tests refuse every connection to another machine (tests/offline), and Ray would bind to
this machine's network address: the cluster stays on loopback, in this process and in the
processes Ray starts. No usage statistics, no token written to the home folder, the smallest
object store, and Ray's temp and log folder under the test's temporary folder (or a short one
of its own: Ray's Unix socket paths must stay under 107 bytes), removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def local_ray_cluster(tmp_path_factory: pytest.TempPathFactory, num_cpus: int = 2) -> Iterator[str]:
    """Ray started in this process on a ``num_cpus`` local cluster; yields its GCS address and
    shuts it down on exit."""
    import ray
    import ray._private.ray_constants as ray_constants

    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    patch.setenv("RAY_AUTH_MODE", "disabled")
    temp = tmp_path_factory.mktemp("ray")
    own_temp = len(str(temp)) > 40
    if own_temp:
        temp = Path(tempfile.mkdtemp(prefix="docqa-ray-"))
    ray.init(
        num_cpus=num_cpus,
        object_store_memory=100 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(temp),
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        patch.undo()
        if own_temp:
            shutil.rmtree(temp, ignore_errors=True)
