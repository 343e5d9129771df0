"""What every reported number was measured on: CPU (and its bf16/VNNI features), cores, GPU,
Python and package versions, and the machine's load at the time."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from pipelines.reader import cpu_supports_bf16

_PACKAGES = (
    "haystack-ai",
    "torch",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "faiss-gpu",
    "numpy",
)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def environment() -> dict[str, Any]:
    """Hardware and package versions, recorded beside every number."""
    import torch

    cpu = cpu_name()
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_supports_bf16(),
        "gpu": gpu,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "packages": versions,
        # Other work on the machine slows every number down: 1, 5 and 15 minute load averages.
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def cpu_description() -> str:
    """The CPU model and the features that decide training speed, for every reported figure."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8").split()
    except OSError:
        flags = []
    features = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx2") if f in flags]
    return f"{cpu_name()}, {os.cpu_count()} cores, {'/'.join(features) or 'no AVX2'}"
