"""Indexing on Ray (``docqa index --engine ray``): convert, split and embed as Ray Data stages.

What runs on Ray: the files a run has to (re)index become a dataset with one row per file.

1. A ``flat_map`` stage prepares each file in a Ray task with the local engine's own function,
   :func:`indexer.prepare.prepare_file` (hash, conversion in a bounded child process, split), and
   turns it into one row per passage, or one row saying why the file failed.
2. A ``map_batches`` stage embeds the passages on a pool of embedder actors
   (:class:`EmbedPassages` on an ``ActorPoolStrategy``): each loads the model the settings
   name, once, from its local folder (never downloading), with one GPU per actor when the
   cluster has GPUs and torch threads on CPUs otherwise, and runs the same
   :class:`~pipelines.embedder.PassageEmbedder` as the local engine.
3. The embedded passages stream back to this process in the files' order and are regrouped
   into files, which :mod:`indexer.run` writes as they complete.

Why: embedding is most of an indexing run's time. Ray spreads it over the GPUs (or cores) of a
machine or a cluster while other workers convert the next files, where the local engine does
one thing at a time. Everything else stays in :mod:`indexer.run` for both engines: the plan
(the manifest: new, changed and deleted files only) and the one writer of the store (atomic
versions, checkpoints, crash safety, per-file failure reports). Both engines run the same
per-file code, so they index the same passages with the same embeddings (to float precision:
batches are padded differently).

Ray is imported only when this engine runs, so DocQA works without it (:func:`require_ray`
says how to install it). Without an address a local Ray instance is started for the run and
shut down after it; a process already connected to Ray keeps using that connection. Starting
and joining Ray is shared with the Ray Serve engine of the API
(:mod:`pipelines.operations.ray_cluster`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.convert import ConversionError
from indexer.prepare import IndexingError, Outcome, PreparedFile, prepare_file
from pipelines.operations import ray_cluster

if TYPE_CHECKING:
    from indexer.isolation import ConversionLimits
    from indexer.manifest import FileState
    from pipelines.settings import Settings

logger = logging.getLogger(__name__)

# Passages per call of an embedder actor, in model batches: calls small enough to spread over
# the actors and to bring files back while others are embedded, large enough to sort by length.
_BATCHES_PER_CALL = 4
# Conversion tasks: one block of files each, one file per block up to this many files.
_MAX_BLOCKS = 1000


class RayUnavailableError(IndexingError):
    """``--engine ray`` where Ray is not installed."""


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or :class:`RayUnavailableError` saying what to install."""
    try:
        return ray_cluster.require_ray("ray.data")
    except ray_cluster.RayUnavailableError as exc:
        raise RayUnavailableError(str(exc)) from exc


@contextlib.contextmanager
def ray_connection(address: str | None = None) -> Iterator[ModuleType]:
    """Ray with Ray Data, connected as :func:`pipelines.operations.ray_cluster.ray_connection`
    connects; its errors as :class:`~indexer.run.IndexingError` (the CLI reports them)."""
    require_ray()
    try:
        with ray_cluster.ray_connection(address, parts=("ray.data",)) as ray:
            yield ray
    except ray_cluster.RayConnectionError as exc:
        raise IndexingError(str(exc)) from exc


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Ray Data's console lines (execution plans, "progress bars disabled") would tear the run's
    bar: only its errors reach the console unless this module logs at INFO (``docqa -v``); its
    log file in the Ray session keeps everything."""
    handlers = [h for h in logging.getLogger("ray.data").handlers if h.name == "console"]
    if logger.isEnabledFor(logging.INFO) or not handlers:
        yield
        return
    levels = [handler.level for handler in handlers]
    for handler in handlers:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


@dataclass(frozen=True)
class EmbedderPool:
    """How the stages use the cluster: ``actors`` embedder actors, each reserving ``num_gpus``
    and ``num_cpus`` and embedding on ``device`` with ``threads`` torch threads; each
    conversion task reserves ``convert_cpus``."""

    actors: int
    num_gpus: float
    num_cpus: float
    threads: int
    device: str
    convert_cpus: float


def plan_pool(resources: dict[str, float], actors: int | None = None) -> EmbedderPool:
    """The embedder pool for a cluster's ``resources`` (``ray.cluster_resources()``).

    GPUs: one actor per GPU (``actors`` at most that many). CPUs only: ``actors`` or one per
    four CPUs. A quarter of the CPUs (at least one conversion) stays free for the conversion
    tasks: reserving every CPU for actors would leave conversion waiting forever.
    """
    cpus = float(resources.get("CPU", 1.0))
    gpus = int(resources.get("GPU", 0))
    convert_cpus = 1.0 if cpus >= 2 else 0.5
    for_actors = cpus - max(convert_cpus, cpus // 4)
    if gpus:
        count = actors or gpus
        if count > gpus:
            logger.warning("%d embedder actors asked for, %d GPUs: using %d", count, gpus, gpus)
            count = gpus
        threads = max(1, min(4, int(for_actors // count)))
        share = ray_cluster.cpu_share(min(1.0, for_actors / count))
        return EmbedderPool(count, 1.0, share, threads, "cuda", convert_cpus)
    count = max(1, actors or int(cpus // 4))
    threads = max(1, int(cpus // count))
    share = ray_cluster.cpu_share(for_actors / count)
    return EmbedderPool(count, 0.0, share, threads, "cpu", convert_cpus)


def _row(
    file: int, count: int, *, head: bytes = b"", passage: bytes = b"", error: str = ""
) -> dict[str, Any]:
    return {"file": file, "count": count, "head": head, "passage": passage, "error": error}


def prepare_rows(
    row: dict[str, Any], settings: Settings, limits: ConversionLimits
) -> list[dict[str, Any]]:
    """Conversion stage: one file's row becomes a row per passage (the first also carrying the
    file's record and text), or one row with the reason it failed."""
    file = int(row["file"])
    try:
        prepared = prepare_file(pickle.loads(row["state"]), settings, limits)
    except ConversionError as exc:
        return [_row(file, 0, error=exc.reason)]
    head = pickle.dumps((prepared.record, prepared.text), protocol=5)
    if not prepared.passages:
        return [_row(file, 0, head=head)]
    count = len(prepared.passages)
    return [
        _row(file, count, head=head if i == 0 else b"", passage=pickle.dumps(doc, protocol=5))
        for i, doc in enumerate(prepared.passages)
    ]


class EmbedPassages:
    """Embedding stage: one actor of the pool, holding the settings' embedding model."""

    def __init__(self, settings: Settings, device: str, threads: int) -> None:
        import torch

        from pipelines.embedder import PassageEmbedder

        torch.set_num_threads(max(1, min(threads, os.cpu_count() or threads)))
        if device == "cuda" and not torch.cuda.is_available():  # e.g. a CPU-only torch build
            logger.warning("this actor got a GPU but torch cannot use it: embedding on CPU")
            device = "cpu"
        self.embedder = PassageEmbedder.from_settings(settings, device=device)
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs = list(batch["passage"])
        rows = [i for i, blob in enumerate(blobs) if blob]
        documents = [pickle.loads(blobs[i]) for i in rows]
        embedded = self.embedder.run(documents=documents)["documents"]
        for i, doc in zip(rows, embedded, strict=True):
            blobs[i] = pickle.dumps(doc, protocol=5)
        out = np.empty(len(blobs), dtype=object)
        out[:] = blobs
        return {**batch, "passage": out}


def regroup(rows: Iterable[dict[str, Any]], todo: list[FileState]) -> Iterator[Outcome]:
    """Passage rows back into files: each file as soon as all its passages are in."""
    partial: dict[int, tuple[list[bytes], list[Any]]] = {}
    for row in rows:
        index = int(row["file"])
        if row["error"]:
            yield todo[index], str(row["error"])
            continue
        heads, passages = partial.setdefault(index, ([], []))
        if row["head"]:
            heads.append(row["head"])
        if row["passage"]:
            passages.append(pickle.loads(row["passage"]))
        if heads and len(passages) == int(row["count"]):
            del partial[index]
            record, text = pickle.loads(heads[0])
            passages.sort(key=lambda doc: doc.meta["passage_index"])
            yield todo[index], PreparedFile(record, text, passages)
    if partial:
        missing = ", ".join(todo[index].source for index in sorted(partial))
        raise RuntimeError(f"Ray returned only some passages of: {missing}")


def prepare_and_embed(
    todo: list[FileState],
    settings: Settings,
    limits: ConversionLimits,
    *,
    address: str | None = None,
    actors: int | None = None,
) -> Iterator[Outcome]:
    """Prepare and embed ``todo`` on Ray; yield each file (embedded, or why it failed) in
    ``todo``'s order as it completes. Connects to Ray only when there is a file to index."""
    if not todo:
        return
    with ray_connection(address) as ray, _quiet_ray_data():
        pool = plan_pool(ray.cluster_resources(), actors)
        logger.info(
            "Ray: %d files; %d embedder actor(s) on %s (%g GPU, %g CPU, %d threads each)",
            len(todo), pool.actors, pool.device, pool.num_gpus, pool.num_cpus, pool.threads,
        )  # fmt: skip
        items = [{"file": i, "state": pickle.dumps(state)} for i, state in enumerate(todo)]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), _MAX_BLOCKS))
        ds = ds.flat_map(
            prepare_rows,
            fn_kwargs={"settings": settings, "limits": limits},
            num_cpus=pool.convert_cpus,
        )
        ds = ds.map_batches(
            EmbedPassages,
            batch_size=max(1, settings.embed_batch_size) * _BATCHES_PER_CALL,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.actors),
            fn_constructor_kwargs={
                "settings": settings, "device": pool.device, "threads": pool.threads,
            },
            num_cpus=pool.num_cpus,
            num_gpus=pool.num_gpus,
        )  # fmt: skip
        # Files come back in the plan's order, so the index is written in the same order as
        # by the local engine; Ray's own progress bars would tear the run's.
        ds.context.execution_options.preserve_order = True
        ds.context.enable_progress_bars = False
        yield from regroup(ds.iter_rows(), todo)
