"""Indexing on Ray (``--engine ray``) against the local indexer, on a real local Ray cluster.

One small cluster (2 CPUs, the smallest object store) serves the module. The Ray engine must
write what the local engine writes: the same sources, texts, passages in the same order and
embeddings to 1e-4, on ten demo files (two of each format) and after a re-run with files
changed, added and deleted; failing files are reported by name while the rest is indexed; the
CLI runs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import pipelines.operations.ray_cluster
from docqa.cli import app
from indexer.ray_engine import EmbedderPool, plan_pool, ray_connection
from indexer.run import IndexSummary, PreparedFile, index_folder
from pipelines.embedder import resolve_embed_precision
from pipelines.settings import REPO_ROOT, Settings
from pipelines.store import PassageStore
from tests.conftest import copy_demo_files
from tests.ray_support import local_ray_cluster

FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray cluster for the module (2 CPUs, 100 MB object store); its GCS address."""
    with local_ray_cluster(tmp_path_factory, num_cpus=2) as address:
        yield address


def run(folder: Path, settings: Settings, engine: str = "local") -> IndexSummary:
    return index_folder([folder], settings, progress=False, engine=engine)


@dataclasses.dataclass
class Snapshot:
    records: dict[str, tuple[Any, str]]  # source: (record without indexed_at, text)
    passages: list[Any]


def snapshot(settings: Settings) -> Snapshot:
    store = PassageStore.load(settings.index_dir)
    records = {
        r.source: (dataclasses.replace(r, indexed_at=""), store.source_text(r.doc_id))
        for r in store.sources()
    }
    passages = store.filter_documents()  # in the order they were written
    store.close()
    return Snapshot(records, passages)


def assert_same_index(ray_index: Snapshot, local_index: Snapshot) -> None:
    assert ray_index.records == local_index.records  # sources, hashes, texts, passage counts
    assert [p.id for p in ray_index.passages] == [p.id for p in local_index.passages]
    for got, want in zip(ray_index.passages, local_index.passages, strict=True):
        assert (got.content, got.meta) == (want.content, want.meta)  # offsets, pages, sources
    got_vectors = np.asarray([p.embedding for p in ray_index.passages], dtype=np.float32)
    want_vectors = np.asarray([p.embedding for p in local_index.passages], dtype=np.float32)
    if resolve_embed_precision(Settings().embed_precision, "cpu") == "fp32":
        np.testing.assert_allclose(got_vectors, want_vectors, atol=1e-4, rtol=0)
    else:  # bf16: a passage's vector moves by ~1e-3 with the padding of the batch it was in
        assert np.min(np.sum(got_vectors * want_vectors, axis=1)) >= 0.9995


def counts(summary: IndexSummary) -> tuple[int, int, int, int]:
    return summary.added, summary.updated, summary.removed, summary.unchanged


@dataclasses.dataclass
class Demo:
    folder: Path
    local: Settings
    ray: Settings
    local_first: IndexSummary
    ray_first: IndexSummary
    first: tuple[Snapshot, Snapshot]  # (ray, local) after the first runs


# Two demo files of each format (the re-run changes the FAQ and deletes the Wi-Fi runbook): what
# the engines must agree on is per file and per batch, not the collection's size.
DEMO_FILES = (
    "faq/new-joiner-faq.md",
    "hr/remote-work-policy.md",
    "it/office-network-and-wifi.txt",
    "finance/corporate-card-guidelines.txt",
    "it/laptop-provisioning.html",
    "security/incident-reporting.html",
    "hr/leave-policy.pdf",
    "products/beacon-g3-manual.pdf",
    "it/backup-restore-runbook-v1.docx",
    "hr/travel-policy-2025.docx",
)


@pytest.fixture(scope="module")
def demo(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Ten demo files indexed once by each engine (each into its own home)."""
    root = tmp_path_factory.mktemp("demo")
    folder = copy_demo_files(DEMO_FILES, root / "documents")
    # Small embedding batches: the ten files' passages still reach the actors in several calls.
    local = Settings(home=root / "local", embed_batch_size=8)
    ray_settings = local.with_(home=root / "ray")
    local_first = run(folder, local)
    ray_first = run(folder, ray_settings, "ray")
    first = (snapshot(ray_settings), snapshot(local))
    return Demo(folder, local, ray_settings, local_first, ray_first, first)


@pytest.mark.slow
def test_demo_files_indexed_on_ray_equal_the_local_index(demo: Demo) -> None:
    files = len([path for path in demo.folder.rglob("*") if path.is_file()])
    assert counts(demo.ray_first) == counts(demo.local_first) == (files, 0, 0, 0)
    assert not demo.ray_first.failed and not demo.ray_first.skipped
    assert demo.ray_first.passages == demo.local_first.passages == len(demo.first[1].passages)
    assert_same_index(*demo.first)


@pytest.mark.slow
def test_a_rerun_on_ray_updates_only_the_changed_added_and_deleted_files(demo: Demo) -> None:
    changed = demo.folder / "faq" / "new-joiner-faq.md"
    with changed.open("a", encoding="utf-8") as handle:
        handle.write("\n\nNew joiners have lunch with their team on the first Friday.\n")
    (demo.folder / "hr" / "parking.txt").write_text(
        "Parking spaces are assigned by the facilities team.\n", encoding="utf-8"
    )
    (demo.folder / "it" / "office-network-and-wifi.txt").unlink()
    unchanged = len(demo.first[1].records) - 2

    ray_summary = run(demo.folder, demo.ray, "ray")
    local_summary = run(demo.folder, demo.local)

    assert counts(ray_summary) == counts(local_summary) == (1, 1, 1, unchanged)
    after = snapshot(demo.ray), snapshot(demo.local)
    records = after[0].records
    assert ray_summary.passages == (
        records["documents/faq/new-joiner-faq.md"][0].passages
        + records["documents/hr/parking.txt"][0].passages
    )
    assert "documents/it/office-network-and-wifi.txt" not in records
    assert "first Friday" in records["documents/faq/new-joiner-faq.md"][1]
    assert_same_index(*after)
    assert counts(run(demo.folder, demo.ray, "ray")) == (0, 0, 0, len(records))


def test_failing_files_are_reported_by_name_and_the_rest_is_indexed(
    ray_cluster: str, tmp_path: Path
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    for name in ("corrupt.pdf", "onboarding.md", "opening-hours.txt"):
        shutil.copy2(FIXTURES / name, folder / name)
    (folder / "empty.txt").write_bytes(b"")
    local, on_ray = Settings(home=tmp_path / "local"), Settings(home=tmp_path / "ray")

    summary = run(folder, on_ray, "ray")
    local_summary = run(folder, local)

    assert [source for source, _ in summary.failed] == [
        "documents/corrupt.pdf",
        "documents/empty.txt",
    ]
    assert summary.failed == local_summary.failed  # the same reasons, word for word
    assert dict(summary.failed)["documents/corrupt.pdf"].startswith("not a readable PDF (")
    assert counts(summary) == (2, 0, 0, 0)
    assert_same_index(snapshot(on_ray), snapshot(local))


def test_docqa_index_engine_ray_on_a_cluster_address(ray_cluster: str, tmp_path: Path) -> None:
    """The CLI in its own process, connected to the module's cluster with --address."""
    folder = tmp_path / "documents"
    folder.mkdir()
    for name in ("onboarding.md", "opening-hours.txt"):
        shutil.copy2(FIXTURES / name, folder / name)
    home = tmp_path / "home"
    command = [sys.executable, "-m", "docqa", "index", str(folder), "--home", str(home)]
    result = subprocess.run(
        [*command, "--engine", "ray", "--address", ray_cluster, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["failed"]) == (2, 0)
    assert len(PassageStore.load(home / "index").sources()) == 2
    import ray

    assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2  # left running


def test_cli_options_are_checked_and_a_missing_ray_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    shutil.copy2(FIXTURES / "onboarding.md", folder / "onboarding.md")
    runner = CliRunner()
    base = ["index", str(folder), "--home", str(tmp_path / "home")]

    wrong = runner.invoke(app, [*base, "--engine", "spark"])
    assert wrong.exit_code == 2 and "--engine must be one of local, ray" in wrong.output
    alone = runner.invoke(app, [*base, "--address", "auto"])
    assert alone.exit_code == 2 and "--address needs --engine ray" in alone.output

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does without the extra
    missing = runner.invoke(app, [*base, "--engine", "ray"])
    assert missing.exit_code == 1
    assert "install the ray extra: pip install 'docqa[ray]'" in missing.output
    assert not (tmp_path / "home").exists()  # nothing started, nothing written


def test_ray_is_imported_only_by_the_ray_engine() -> None:
    code = (
        "import sys, docqa.cli, indexer.run, indexer.ray_engine; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


class FakeRay(types.ModuleType):
    """Records how :func:`ray_connection` starts, joins and leaves Ray."""

    def __init__(self, initialized: bool = False) -> None:
        super().__init__("ray")
        self.data = types.ModuleType("ray.data")
        self.initialized = initialized
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs: Any) -> None:
        self.calls.append(("init", kwargs))
        self.initialized = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", {}))
        self.initialized = False


def test_a_local_instance_is_started_for_the_run_and_shut_down_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    monkeypatch.setattr(pipelines.operations.ray_cluster, "available_cpus", lambda: 3)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)  # restored afterwards

    with ray_connection() as ray:
        assert ray is fake and [name for name, _ in fake.calls] == ["init"]
    (_, started), (stopped, _) = fake.calls
    assert stopped == "shutdown"
    assert (started["num_cpus"], started["include_dashboard"], started["log_to_driver"]) == (
        3,
        False,
        False,
    )
    assert started["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"  # never downloads
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"  # no usage statistics sent

    fake.calls.clear()
    with ray_connection("head:6379"):
        pass
    assert [(name, kwargs.get("address")) for name, kwargs in fake.calls] == [
        ("init", "head:6379"),
        ("shutdown", None),
    ]

    connected = FakeRay(initialized=True)  # e.g. a notebook that called ray.init() itself
    monkeypatch.setitem(sys.modules, "ray", connected)
    with ray_connection():
        pass
    assert connected.calls == [] and connected.initialized


def test_embedder_actors_take_gpus_when_there_are_some_and_leave_cpus_to_conversion() -> None:
    assert plan_pool({"CPU": 2.0}) == EmbedderPool(1, 0.0, 1.0, 2, "cpu", 1.0)
    assert plan_pool({"CPU": 2.0}, actors=2) == EmbedderPool(2, 0.0, 0.5, 1, "cpu", 1.0)
    assert plan_pool({"CPU": 16.0}) == EmbedderPool(4, 0.0, 3.0, 4, "cpu", 1.0)
    assert plan_pool({"CPU": 16.0, "GPU": 2.0}) == EmbedderPool(2, 1.0, 1.0, 4, "cuda", 1.0)
    assert plan_pool({"CPU": 16.0, "GPU": 2.0}, actors=8).actors == 2  # one GPU each at most
    assert plan_pool({"CPU": 1.0}) == EmbedderPool(1, 0.0, 0.5, 1, "cpu", 0.5)


def test_passages_are_regrouped_into_files_whatever_order_they_come_back_in(
    tmp_path: Path,
) -> None:
    import pickle

    from haystack import Document

    from indexer.manifest import FileState
    from indexer.ray_engine import regroup
    from pipelines.store import SourceRecord

    todo = []
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (tmp_path / name).write_text(name, encoding="utf-8")
        todo.append(FileState.from_path(tmp_path / name, name))

    def head(file: int) -> bytes:
        record = SourceRecord(f"id{file}", todo[file].source, "", "", "txt", "", 1, 0.0, "")
        return pickle.dumps((record, f"text {file}"))

    def passage(file: int, index: int) -> bytes:
        return pickle.dumps(Document(id=f"{file}-{index}", meta={"passage_index": index}))

    def row(file: int, count: int, **values: Any) -> dict[str, Any]:
        return {"file": file, "count": count, "head": b"", "passage": b"", "error": ""} | values

    rows = [
        row(1, 2, passage=passage(1, 1)),
        row(0, 1, head=head(0), passage=passage(0, 0)),
        row(2, 0, error="empty file"),
        row(3, 0, head=head(3)),  # converted, no passage
        row(1, 2, head=head(1), passage=passage(1, 0)),
    ]
    outcomes = dict((state.source, result) for state, result in regroup(rows, todo))
    assert list(outcomes) == ["a.txt", "c.txt", "d.txt", "b.txt"]  # each file once complete
    b, d = outcomes["b.txt"], outcomes["d.txt"]
    assert outcomes["c.txt"] == "empty file"
    assert isinstance(b, PreparedFile) and isinstance(d, PreparedFile)
    assert (b.text, [doc.id for doc in b.passages], d.passages) == ("text 1", ["1-0", "1-1"], [])
    with pytest.raises(RuntimeError, match=r"only some passages of: b\.txt"):
        list(regroup(rows[:1], todo))
