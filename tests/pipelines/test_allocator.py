"""glibc malloc keeps freed memory for the next batch (pipelines/allocator.py), unless told not to.

Each case runs in a fresh Python process: the setting is made once per process. A 256 MiB block
made and freed stands for a batch's activations; its pages stay resident when freed memory is
kept and go back to the OS with glibc's defaults.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

from pipelines.allocator import operator_chose_allocator
from pipelines.settings import REPO_ROOT

PROBE = """
import json, os
from pipelines.allocator import keep_freed_memory

def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

kept = keep_freed_memory()
again = keep_freed_memory()
block = bytearray(256 * 2**20)  # zero-filled: every page touched
with_block = resident_mib()
del block
print(json.dumps({"kept": kept, "again": again, "with": with_block, "after": resident_mib()}))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    clean.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_freed_batch_stays_in_the_process_for_the_next() -> None:
    assert platform.libc_ver()[0] == "glibc"  # DocQA's platform (setup.sh, the container)
    result = probe()
    assert result["kept"] and result["again"]
    assert result["with"] - result["after"] < 16, result  # the 256 MiB stayed resident


def test_docqa_keep_freed_memory_0_keeps_glibcs_defaults() -> None:
    result = probe(DOCQA_KEEP_FREED_MEMORY="0")
    assert not result["kept"]
    assert result["with"] - result["after"] > 200, result  # unmapped as soon as it was freed


def test_an_allocator_the_operator_chose_is_left_alone() -> None:
    assert not operator_chose_allocator({"PATH": "/usr/bin", "DOCQA_KEEP_FREED_MEMORY": "1"})
    assert operator_chose_allocator({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert operator_chose_allocator({"MALLOC_ARENA_MAX": "2"})
    assert operator_chose_allocator({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert operator_chose_allocator({"DOCQA_KEEP_FREED_MEMORY": "0"})
