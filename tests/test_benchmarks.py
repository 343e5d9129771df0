"""Every benchmark starts the same way (benchmarks/bench_env.py): the offline environment and the
import path are set before a model library or a DocQA module is imported, which read them once
at import (a benchmark that imported ``transformers`` first could try the hub)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from pipelines.settings import REPO_ROOT
from tests.test_architecture import PACKAGES

BENCHMARKS = REPO_ROOT / "benchmarks"
# Read the offline environment when imported, or import DocQA's packages (which import them);
# torch, numpy and the like read none of it.
ENVIRONMENT_READERS = {
    "huggingface_hub",
    "transformers",
    "sentence_transformers",
    "haystack",
    "tokenizers",
    *PACKAGES,
    "tests",
}
# Runs in the Haystack reference's own virtual environment, with nothing of DocQA's.
OWN_ENVIRONMENT = {"reference_worker.py", "bench_env.py"}


def module_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of each import at module level, in order."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_every_benchmark_starts_with_bench_env_and_writes_through_it() -> None:
    scripts = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in OWN_ENVIRONMENT)
    assert len(scripts) >= 20
    for script in scripts:
        imports = module_imports(script)
        first_env = next((line for line, mod in imports if mod == "bench_env"), None)
        assert first_env is not None, f"{script.name} does not import bench_env"
        early = [(line, mod) for line, mod in imports if mod in ENVIRONMENT_READERS]
        assert all(line > first_env for line, _ in early), (script.name, early[:1])
        text = script.read_text(encoding="utf-8")
        assert 'os.environ.setdefault("HF_HUB_OFFLINE"' not in text, script.name
        # Results are written through bench_env.write_result (atomically), not by hand.
        assert not re.search(r"write_text\(json\.dumps\(\w+, indent=", text), script.name


def test_a_benchmark_run_from_another_folder_is_offline_and_finds_docqa(tmp_path: Path) -> None:
    """From any folder, with none of the offline variables set: after bench_env, DocQA imports
    from this checkout and the offline environment is set."""
    unset = {"HF_HUB_OFFLINE", "HAYSTACK_TELEMETRY_ENABLED", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    probe = (
        f"import os, sys; sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "import bench_env, evaluation.environment\n"
        "print(os.environ['HF_HUB_OFFLINE'], os.environ['HAYSTACK_TELEMETRY_ENABLED'],"
        " evaluation.environment.__file__.startswith(str(bench_env.REPO_ROOT)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "False", "True"]
