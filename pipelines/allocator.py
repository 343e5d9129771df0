"""Keep freed tensor memory in the process instead of handing it back to the OS at every batch.

glibc's malloc serves large blocks (above a threshold that grows only to the largest block freed
so far, at most 32 MiB) with ``mmap`` and returns them with ``munmap`` when they are freed, and
trims free memory at the top of the heap beyond 128 KiB. A transformer's activations are such
blocks, made and freed at every layer of every batch, so each batch maps fresh pages that the
kernel must zero and fault in: on a 2-core AMD EPYC (Zen 4) four steps of reader training spent
10.4 s in the kernel and took 23.2 s; with freed memory kept, 2.0 s and 16.3 s (0.70x), the
reader's evaluation 0.88x and embedding 0.91x the time, the same numbers, a peak resident size
2-15% higher (``benchmarks/bench_allocator.py``, benchmarks/results/allocator.json).

PyTorch's own advice is to preload jemalloc or tcmalloc (``LD_PRELOAD``), which an entry point
cannot do for its own process; ``mallopt`` can, through :mod:`ctypes`, at any time. The settings
apply to glibc only, and are left alone when the operator chose already: a ``MALLOC_*``
environment variable of glibc's tunables, or an ``LD_PRELOAD``ed allocator; and
``DOCQA_KEEP_FREED_MEMORY=0`` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
from collections.abc import Mapping

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

# Blocks under 1 GiB come from the heap; up to 2 GiB of free memory stays at its top, and the heap
# grows 256 MiB at a time (fewer brk calls while a batch's activations are made).
SETTINGS = {M_MMAP_THRESHOLD: 1 << 30, M_TRIM_THRESHOLD: (1 << 31) - 1, M_TOP_PAD: 1 << 28}


def operator_chose_allocator(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment sets the allocator already (glibc tunables, a preloaded one, or
    ``DOCQA_KEEP_FREED_MEMORY=0``)."""
    return (
        bool(environ.get("LD_PRELOAD"))
        or environ.get("DOCQA_KEEP_FREED_MEMORY") == "0"
        or any(name.startswith("MALLOC_") or name == "GLIBC_TUNABLES" for name in environ)
    )


@functools.cache  # once per process (a second mallopt from a racing thread is harmless)
def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks for the next batch (once per process); True when
    the settings are in force. Called where DocQA loads a model to compute with."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if operator_chose_allocator():
        logger.info("allocator settings left as the environment sets them")
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    applied = all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())
    logger.debug("glibc malloc keeps freed memory: %s", applied)
    return applied
