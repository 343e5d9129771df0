"""Index folders incrementally: find files, convert, split, embed, and store what changed.

One run (``docqa index FOLDER...``):

1. takes ``settings.home / "index.lock"`` so two indexers never write the same index;
2. walks the folders (hidden files and folders ignored, symbolic links that lead outside the
   folder refused, unsupported files reported as skipped);
3. compares the files with the store's records (:mod:`indexer.manifest`): new and changed files
   are converted, split and embedded, vanished files are removed, the rest is left alone;
4. saves the store atomically at the end, and every ``checkpoint_every`` files so an interrupted
   run keeps most of its work (the next run redoes only what was not saved).

Two engines do step 3's per-file work (:func:`indexer.prepare.prepare_file`, then the
``PassageEmbedder``):
``"local"`` in this process, ``"ray"`` as Ray Data stages (:mod:`indexer.ray_engine`). Either
way this process plans the run and is the one writer of the store, file by file in the plan's
order, so checkpoints, crash safety and failure reports are the same.

Crash safety rests on the store's save (a new version folder, then an atomic swap of
``CURRENT``): a run killed at any moment, even with ``kill -9`` in the middle of a save, leaves
the last saved version loadable and consistent, and since the manifest *is* the saved source
records, the next run sees exactly which files that version holds and indexes the rest.

:func:`plan_index` computes the same change plan without the lock, without converting or
embedding anything and without writing: ``docqa index --dry-run``.

A file that fails (corrupt, password-protected, scanned, binary, unreadable...) is logged with
its one-line reason and listed in :attr:`IndexSummary.failed`; the other files are indexed. A
changed file that now fails is removed from the index, so answers never cite content that no
longer exists in the folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from indexer.convert import ConversionError
from indexer.discovery import collect_files
from indexer.isolation import ConversionLimits
from indexer.manifest import FileState, plan_changes
from indexer.prepare import (
    IndexingError,
    Outcome,
    PreparedFile,
    passage_format,
    prepare_file,
)
from indexer.split import doc_id_for, modified_iso
from pipelines.settings import Settings
from pipelines.store.versions import WRITER_LOCK_FILE, IndexLockedError, writer_lock

if TYPE_CHECKING:
    from haystack import Document

    from pipelines.embedder import PassageEmbedder
    from pipelines.store import PassageStore, SourceRecord

logger = logging.getLogger(__name__)

LOCK_NAME = WRITER_LOCK_FILE  # in the data home: one writer of the index at a time
# Passages embedded together: larger batches keep the model busy across many small files.
_EMBED_GROUP_BATCHES = 8
ENGINES = ("local", "ray")


@dataclass
class IndexPlan:
    """What a run over the same folders would do, per file (``docqa index --dry-run``).

    ``added``/``updated``/``removed``: displayed source names; ``touched``: unchanged content
    under a new mtime or name (its record would be refreshed, nothing embedded). Files that
    only fail at conversion (corrupt, scanned...) cannot be known without converting them, so
    ``failed`` lists only the files that cannot be read at all.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    touched: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def changes(self) -> list[tuple[str, str]]:
        """(action, source) for every file that would change, in the order a run does them."""
        return [
            *(("removed", source) for source in self.removed),
            *(("added", source) for source in self.added),
            *(("updated", source) for source in self.updated),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            **_file_problems(self.failed, self.skipped),
            "changes": [{"action": action, "path": path} for action, path in self.changes()],
            "touched": list(self.touched),
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        """One line for the CLI."""
        return (
            f"dry run: would add {len(self.added)}, update {len(self.updated)}, "
            f"remove {len(self.removed)}; {self.unchanged} unchanged, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped; nothing was written"
        )


@dataclass
class IndexSummary:
    """What one run did. ``passages``: passages stored by this run, ``reused`` of them with the
    vector of the same text already in the index or embedded for another file of the run (a
    copy of a file, the unchanged paragraphs of an edited one); totals: the whole index."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    passages: int = 0
    reused: int = 0
    total_documents: int = 0
    total_passages: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(_file_problems(self.failed, self.skipped))
        data["seconds"] = round(self.seconds, 3)
        return data

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped; {self.passages} passages embedded"
            + (f" ({self.reused} of them reused, the same text)" if self.reused else "")
            + f" in {self.seconds:.1f} s; index: {self.total_documents} documents, "
            f"{self.total_passages} passages"
        )


def _file_problems(failed: list[tuple[str, str]], skipped: list[tuple[str, str]]) -> dict[str, Any]:
    """``index --json``'s schema for files left out: counts, and the files with why."""
    return {
        "failed": len(failed),
        "skipped": len(skipped),
        "failed_files": [{"path": path, "reason": reason} for path, reason in failed],
        "skipped_files": [{"path": path, "reason": reason} for path, reason in skipped],
    }


# -- indexing -----------------------------------------------------------------------------------


def index_folder(
    paths: list[Path],
    settings: Settings,
    full: bool = False,
    progress: bool = True,
    *,
    checkpoint_every: int = 50,
    engine: str = "local",
    address: str | None = None,
    actors: int | None = None,
) -> IndexSummary:
    """Bring the index in ``settings.index_dir`` up to date with the files under ``paths``.

    ``paths`` are folders (or single files). Documents indexed from other folders are kept;
    documents under ``paths`` whose file is gone are removed. ``full`` re-indexes every file.
    ``engine``: "local" or "ray" (:mod:`indexer.ray_engine`; ``address``: the Ray cluster to
    connect to, default a local instance; ``actors``: embedder actors, default one per GPU).
    Raises :class:`IndexLockedError` when another indexer runs, :class:`IndexingError` when a
    path does not exist (or Ray is not installed), and ``StoreError`` when the existing index
    cannot be loaded.
    """
    started = time.monotonic()
    if engine not in ENGINES:
        raise IndexingError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    if engine == "ray":
        from indexer.ray_engine import require_ray

        require_ray()  # before any work: a clear error when the extra is not installed
    roots = _resolve_roots(paths)
    with writer_lock(settings.home):
        run = _Run(roots, settings, full, progress, checkpoint_every)
        run.engine, run.address, run.actors = engine, address, actors
        summary = run.run()
    summary.seconds = time.monotonic() - started
    logger.info("indexing done: %s", summary.describe())
    return summary


def _resolve_roots(paths: list[Path]) -> list[Path]:
    if not paths:
        raise IndexingError("nothing to index: no folder given")
    roots: list[Path] = []
    for path in paths:
        root = Path(path).expanduser()
        if not root.exists():
            raise IndexingError(f"no such file or folder: {root}")
        roots.append(root.resolve())
    return roots


def plan_index(paths: list[Path], settings: Settings, full: bool = False) -> IndexPlan:
    """What ``index_folder(paths, settings, full)`` would add, update and remove.

    Reads the last saved index and stats the files; hashes only files whose size or mtime
    changed, like a run. Takes no lock, creates no folder, converts and embeds nothing, so it
    can run while an indexer works (it then describes the changes since that run's last save).
    """
    from pipelines.store import PassageStore

    started = time.monotonic()
    roots = _resolve_roots(paths)
    index_dir = settings.index_dir
    records: list[SourceRecord] = []
    if PassageStore.exists(index_dir):
        store = PassageStore.load(index_dir)
        records = store.sources()
        store.close()
    files, skipped, failed = collect_files(roots, exclude=[settings.home])
    changes = plan_changes(
        files, records, roots=roots, full=full, text_format=passage_format(settings)
    )
    by_path = {record.path: record for record in records}
    plan = IndexPlan(
        added=[state.source for state in changes.added],
        updated=[state.source for state in changes.changed],
        removed=[record.source for record in changes.removed],
        unchanged=len(changes.unchanged),
        touched=[state.source for state in changes.touched],
        failed=list(failed),
        skipped=list(skipped),
    )
    for state, reason in changes.unreadable:
        plan.failed.append((state.source, f"cannot read file ({reason})"))
        if str(state.path) in by_path:  # a run drops the old version of an unreadable file
            plan.removed.append(state.source)
    plan.seconds = time.monotonic() - started
    return plan


class _Run:
    """The state of one locked indexing run."""

    def __init__(
        self, roots: list[Path], settings: Settings, full: bool, progress: bool, every: int
    ) -> None:
        self.roots = roots
        self.settings = settings
        self.full = full
        self.progress = progress
        self.checkpoint_every = max(1, every)
        self.limits = ConversionLimits(
            settings.convert_timeout_s, settings.convert_memory_mb, settings.max_file_mb
        )
        self.engine = "local"  # index_folder sets the engine and, for Ray, its options
        self.address: str | None = None
        self.actors: int | None = None
        self.summary = IndexSummary()
        self.store: PassageStore | None = None
        self.embedder: PassageEmbedder | None = None
        self.dirty = False
        self.bar: tqdm[Any] | None = None
        self.group_done = 0  # passages of the current embedding group already on the bar
        # Told of each page OCR'd (source, pages done, pages to read): the page's uploads.
        self.on_ocr_page: Callable[[str, int, int], None] | None = None

    def run(self) -> IndexSummary:
        from pipelines.store import PassageStore

        index_dir = self.settings.index_dir
        exists = PassageStore.exists(index_dir)
        # A new store is created on the first embeddings, with their dimension.
        self.store = PassageStore.load(index_dir) if exists else None
        changed = self.store.apply_index_settings(self.settings) if self.store else None
        if changed is not None:
            # New index settings are a change too: save (and rebuild) even if no file changed.
            logger.info("index settings changed: %s", changed.to_dict())
            self.dirty = True
        records = self.store.sources() if self.store is not None else []

        files, skipped, failed = collect_files(self.roots, exclude=[self.settings.home])
        self.summary.skipped.extend(skipped)
        self.summary.failed.extend(failed)
        for source, reason in skipped:
            logger.info("skipped %s: %s", source, reason)
        for source, reason in failed:
            logger.warning("failed %s: %s", source, reason)

        plan = plan_changes(
            files, records, roots=self.roots, full=self.full,
            text_format=passage_format(self.settings),
        )  # fmt: skip
        if plan.reformatted:
            logger.info(
                "%d files were indexed by an older converter or with other split settings: "
                "converting and splitting them again",
                len(plan.reformatted),
            )
        self.summary.unchanged = len(plan.unchanged)
        for state, reason in plan.unreadable:
            self._fail(state, f"cannot read file ({reason})", drop=True)
        for record in plan.removed:
            assert self.store is not None
            self.store.remove_source(record.doc_id)
            self.summary.removed += 1
            self.dirty = True
            logger.info("removed %s (file gone)", record.source)
        for state in plan.touched:
            self._touch(state)

        todo = plan.to_index()
        added = {state.path for state in plan.added}
        logger.info(
            "to index: %d files (%d new, %d changed); %d removed, %d unchanged",
            len(todo), len(plan.added), len(plan.changed), len(plan.removed),
            len(plan.unchanged),
        )  # fmt: skip
        since_save = 0
        # The bar counts embedded passages, so its rate is the throughput that matters
        # (passages/s); the number of passages is only known file by file, hence no total.
        # "Indexing 3/46 files: 120 passages [00:10, 12.00 passages/s]": passages per second
        # even below one a second (tqdm would switch to seconds per passage).
        self.bar = tqdm(
            unit=" passages",
            desc="Indexing",
            bar_format="{desc}: {n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}{postfix}]",
            disable=not self.progress,
        )
        # Log lines printed through tqdm so they do not tear the progress bar apart.
        redirect = logging_redirect_tqdm() if self.progress else contextlib.nullcontext()
        outcomes = self._ray_outcomes(todo) if self.engine == "ray" else self._local_outcomes(todo)
        try:
            # The one writer, whichever engine prepared and embedded the files.
            with redirect, contextlib.closing(outcomes):
                for state, result in outcomes:
                    if isinstance(result, PreparedFile):
                        self._store(result, is_new=state.path in added)
                    else:
                        self._fail(state, result, drop=state.path not in added)
                    since_save += 1
                    if since_save >= self.checkpoint_every:
                        self._save()
                        since_save = 0
        except KeyboardInterrupt:
            # Keep what is fully stored; the files of the unflushed group are redone next run.
            logger.warning("interrupted: saving the files indexed so far")
            self._save()
            raise
        finally:
            self.bar.close()
        if self.dirty or not exists:
            self._save()
        if self.store is not None:
            self.summary.total_documents = len(self.store.sources())
            self.summary.total_passages = self.store.count_documents()
        return self.summary

    # -- steps ------------------------------------------------------------------------------

    def _fail(self, state: FileState, reason: str, drop: bool) -> None:
        """Report a failed file; ``drop``: remove its previously indexed version."""
        self.summary.failed.append((state.source, reason))
        logger.warning("failed %s: %s", state.source, reason)
        if drop and self.store is not None:
            doc_id = doc_id_for(state.path)
            if self.store.source(doc_id) is not None:
                self.store.remove_source(doc_id)
                self.summary.removed += 1
                self.dirty = True
                logger.warning("removed the previously indexed version of %s", state.source)

    def _local_outcomes(self, todo: list[FileState]) -> Iterator[Outcome]:
        """The local engine: files prepared one by one here (converted in the bounded child
        process), their passages embedded in groups; each group ends at a checkpoint, so that
        a checkpoint saves every file before it."""
        pending: list[Outcome] = []
        for done, state in enumerate(todo, 1):
            try:
                progress = functools.partial(self._ocr_progress, state.source)
                pending.append((state, prepare_file(state, self.settings, self.limits, progress)))
            except ConversionError as exc:
                pending.append((state, exc.reason))
            self.bar.set_postfix_str("", refresh=False)
            self.bar.set_description_str(f"Indexing {done}/{len(todo)} files", refresh=False)
            queued = sum(len(r.passages) for _, r in pending if isinstance(r, PreparedFile))
            if queued >= self._group_size() or done % self.checkpoint_every == 0:
                yield from self._embed(pending)
                pending = []
        yield from self._embed(pending)

    def _ray_outcomes(self, todo: list[FileState]) -> Iterator[Outcome]:
        """The Ray engine: the same per-file work as Ray Data stages (:mod:`indexer.ray_engine`);
        the bar advances as files come back."""
        from indexer.ray_engine import prepare_and_embed

        results = prepare_and_embed(
            todo, self.settings, self.limits, address=self.address, actors=self.actors
        )
        with contextlib.closing(results):
            for done, (state, result) in enumerate(results, 1):
                self.bar.set_description_str(f"Indexing {done}/{len(todo)} files", refresh=False)
                self.bar.update(len(result.passages) if isinstance(result, PreparedFile) else 0)
                yield state, result

    def _group_size(self) -> int:
        return max(1, self.settings.embed_batch_size) * _EMBED_GROUP_BATCHES

    def _embed(self, pending: list[Outcome]) -> Iterator[Outcome]:
        """Embed the passages of the prepared files in ``pending``; yield them all, in order."""
        from pipelines.embedder import PassageEmbedder

        documents = [doc for _, r in pending if isinstance(r, PreparedFile) for doc in r.passages]
        if not documents:
            yield from pending
            return
        if self.embedder is None:
            self.embedder = PassageEmbedder.from_settings(self.settings, progress=self._embedded)
            warm_up = getattr(self.embedder, "warm_up", None)
            if callable(warm_up):
                warm_up()
        embedded_text = self.embedder.text_to_embed
        # Vectors by the text embedded (title, section, content): the index's for the same text,
        # then one embedding per text new to it, shared by every passage with that text.
        vectors = self._stored_vectors(documents, embedded_text)
        new: dict[str, Document] = {}
        for doc in documents:
            if (text := embedded_text(doc)) not in vectors:
                new.setdefault(text, doc)
        for doc in self.embedder.run(documents=list(new.values()))["documents"]:
            vectors[embedded_text(doc)] = doc.embedding or []
        self.summary.reused += len(documents) - len(new)
        if self.bar is not None and len(new) < len(documents):
            self.bar.update(len(documents) - len(new))  # the rate counts them too
        for state, result in pending:
            if isinstance(result, PreparedFile):
                result.passages = [
                    dataclasses.replace(doc, embedding=vectors[embedded_text(doc)])
                    for doc in result.passages
                ]
            yield state, result

    def _stored_vectors(
        self, documents: list[Document], embedded_text: Callable[[Document], str]
    ) -> dict[str, list[float]]:
        """The index's vectors of passages with the same text as some of ``documents`` (none
        with --full: it embeds everything again, e.g. after a change of embedder)."""
        if self.store is None or self.full:
            return {}
        contents = sorted({doc.content or "" for doc in documents})
        vectors: dict[str, list[float]] = {}
        for start in range(0, len(contents), 500):  # bounded SQL parameter lists
            same = {"field": "content", "operator": "in", "value": contents[start : start + 500]}
            for doc in self.store.filter_documents(same):
                if doc.embedding:
                    vectors[embedded_text(doc)] = doc.embedding
        return vectors

    def _store(self, prepared: PreparedFile, is_new: bool) -> None:
        """Write one embedded file to the store (creating the store on the first one)."""
        from pipelines.faiss_index import IndexSpec
        from pipelines.store import PassageStore

        record, passages = prepared.record, prepared.passages
        if self.store is None:  # a new store gets the dimension of the first embeddings
            dim = len(passages[0].embedding or [])
            self.store = PassageStore(dim, IndexSpec.from_settings(self.settings))
        self.store.replace_source(record, prepared.text, passages)
        self.summary.passages += len(passages)
        if is_new:
            self.summary.added += 1
        else:
            self.summary.updated += 1
        self.dirty = True
        logger.debug("indexed %s: %d passages", record.source, len(passages))

    def _ocr_progress(self, source: str, done: int, total: int) -> None:
        """A long scan shows its pages on the bar (its passages come only once it is read)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{source}: OCR page {done}/{total}")
        if self.on_ocr_page is not None:
            self.on_ocr_page(source, done, total)

    def _embedded(self, done: int, total: int) -> None:
        """Embedder progress: ``done`` of the ``total`` passages of the group being embedded."""
        if self.bar is not None:
            self.bar.update(done - self.group_done)
        self.group_done = 0 if done >= total else done

    def _touch(self, state: FileState) -> None:
        """Same content, new mtime or name: refresh the record and passage meta, no embedding."""
        assert self.store is not None
        doc_id = doc_id_for(state.path)
        record = self.store.source(doc_id)
        if record is None:
            return
        passages = self.store.filter_documents(
            {"field": "meta.doc_id", "operator": "==", "value": doc_id}
        )
        modified = modified_iso(state.mtime)
        for passage in passages:
            passage.meta["modified"] = modified
            passage.meta["source"] = state.source
        passages.sort(key=lambda passage: passage.meta.get("passage_index", 0))
        updated = dataclasses.replace(
            record, source=state.source, size=state.size, mtime=state.mtime
        )
        self.store.replace_source(updated, self.store.source_text(doc_id), passages)
        self.dirty = True
        logger.debug("touched %s (same content)", state.source)

    def _save(self) -> None:
        from pipelines.faiss_index import IndexSpec
        from pipelines.store import PassageStore

        if self.store is None:
            # Nothing was ever embedded: save an empty index so that queries find one.
            self.store = PassageStore(index=IndexSpec.from_settings(self.settings))
        self.store.save(self.settings.index_dir)
        self.dirty = False
        logger.info(
            "saved the index: %d documents, %d passages",
            len(self.store.sources()), self.store.count_documents(),
        )  # fmt: skip


__all__ = [
    "IndexLockedError",
    "IndexPlan",
    "IndexSummary",
    "IndexingError",
    "collect_files",
    "index_folder",
    "plan_index",
]
