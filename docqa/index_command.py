"""``docqa index``: index folders once, or keep them indexed with ``--watch``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from docqa.options import HomeOption, fail, settings_from

if TYPE_CHECKING:
    from indexer.run import IndexSummary


def index(
    paths: Annotated[list[Path], typer.Argument(help="Folders or files to index.")],
    home: HomeOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild these folders from scratch.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="List what would be added, updated and removed; change nothing."
        ),
    ] = False,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            "--checkpoint-every", min=1, help="Save the index after every N indexed files."
        ),
    ] = 50,
    index_type: Annotated[
        str | None,
        typer.Option(
            "--index-type",
            help="auto (exact below 50,000 passages, IVF above), flat, ivf or hnsw."
            " Default: what the index has (auto for a new one).",
            show_default=False,
        ),
    ] = None,
    compression: Annotated[
        str | None,
        typer.Option(
            "--compression",
            help="Codes of the IVF/HNSW index: none, sq8 or pq (IVF only)."
            " Default: what the index has (none for a new one).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where files are converted, split and embedded: local (this process) or ray"
            " (Ray Data stages, embedder actors on the cluster's GPUs or CPUs; needs the ray"
            " extra). Planning and writing the index are the same.",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="The Ray cluster to run on (with --engine ray): auto, HEAD:6379, ray://HEAD:10001."
            " Default: a local Ray instance started for the run.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Then keep watching: index again after files are added, changed or deleted"
            " (debounced); Ctrl+C stops and leaves the last saved index.",
        ),
    ] = False,
) -> None:
    """Index documents: new, changed and deleted files only (unless --full)."""
    from indexer.run import ENGINES, IndexingError, index_folder, plan_index
    from pipelines.faiss_index import IndexSpec
    from pipelines.store import StoreError

    if engine not in ENGINES:
        raise fail(f"--engine must be one of {', '.join(ENGINES)}", 2)
    if address is not None and engine != "ray":
        raise fail("--address needs --engine ray", 2)
    settings = settings_from(home, index_type=index_type, index_compression=compression)
    try:
        IndexSpec.from_settings(settings)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    if watch and dry_run:
        raise fail("--watch and --dry-run do not go together", 2)
    if dry_run:
        try:
            plan = plan_index(paths, settings, full=full)
        except (IndexingError, StoreError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            typer.echo(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
            return
        for action, path in plan.changes():
            typer.echo(f"{action}: {path}")
        for path, reason in plan.failed:
            typer.secho(f"failed: {path}: {reason}", err=True, fg=typer.colors.YELLOW)
        for path, reason in plan.skipped:
            typer.secho(f"skipped: {path}: {reason}", err=True)
        typer.echo(plan.describe())
        return

    def run(full: bool = full) -> IndexSummary:
        return index_folder(
            paths,
            settings,
            full=full,
            progress=progress and not as_json,
            checkpoint_every=checkpoint_every,
            engine=engine,
            address=address,
        )

    try:
        summary = run()
    except (IndexingError, StoreError) as exc:
        raise fail(str(exc)) from exc
    _print_summary(summary, as_json)
    if watch:
        _watch(paths, settings.home, lambda: run(full=False), as_json)
        return
    indexed = summary.added + summary.updated + summary.unchanged
    # Nothing from these paths is in the index (and no vanished file was removed): every file
    # failed, or there was no supported document at all. Scripts must see that as a failure.
    if indexed == 0 and summary.removed == 0:
        why = "every file failed" if summary.failed else "no supported documents found"
        raise fail(f"nothing was indexed: {why}")


def _print_summary(summary: IndexSummary, as_json: bool) -> None:
    if as_json:  # with --watch one JSON object a line, one line a run
        typer.echo(json.dumps(summary.to_dict(), indent=None))
        return
    for path, reason in summary.failed:
        typer.secho(f"failed: {path}: {reason}", err=True, fg=typer.colors.YELLOW)
    for path, reason in summary.skipped:
        typer.secho(f"skipped: {path}: {reason}", err=True)
    typer.echo(summary.describe())


def _watch(paths: list[Path], home: Path, run: Callable[[], IndexSummary], as_json: bool) -> None:
    """Index again after every batch of changes until Ctrl+C (:mod:`indexer.watch`)."""
    from indexer.watch import watch_and_index

    typer.echo(f"watching {', '.join(map(str, paths))} for changes (Ctrl+C stops)", err=True)
    try:
        for result in watch_and_index(paths, run, ignore=[home]):
            if isinstance(result, Exception):
                typer.secho(f"indexing failed: {result}", err=True, fg=typer.colors.RED)
            else:
                _print_summary(result, as_json)
    except KeyboardInterrupt:
        typer.echo("stopped watching; the index holds its last saved version", err=True)
