"""What the ``docqa`` commands share: option types, settings from options, and failing with one
line. Option defaults come from the settings objects, so a default is stated once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.settings import Settings, SettingsError, make_private

DEFAULTS = Settings()

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Data directory (index, models, feedback). Default: $DOCQA_HOME or ~/.docqa",
        show_default=False,
    ),
]
ReaderOption = Annotated[
    str | None, typer.Option("--reader", help="Reader model folder or version name.")
]
RetrievalOption = Annotated[
    str | None,
    typer.Option(
        "--retrieval",
        help="How passages are found: dense, bm25 (keywords) or hybrid (both, fused)."
        f" Default: {DEFAULTS.retrieval}",
        show_default=False,
    ),
]


BackendOption = Annotated[
    str | None,
    typer.Option(
        "--reader-backend",
        help="How the reader runs on CPU: auto (the fastest within 0.5 F1 of fp32, measured"
        " once per CPU: docqa reader-backend),"
        " torch (fp32), int8, onnx or onnx-int8"
        f" (benchmarks/bench_serving.py compares them). Default: {DEFAULTS.reader_backend}",
        show_default=False,
    ),
]


def settings_from(home: Path | None, *, migrate: bool = True, **overrides: object) -> Settings:
    """Settings of ``home`` (or $DOCQA_HOME) with the options given on the command line; the
    home is made private to its owner (0700, and this process writes files 0600) and, with
    ``migrate``, opened in this release's format (a home of an older release migrated once,
    backup first; a newer one refused: pipelines/operations/home_format.py) before any command reads
    or writes it."""
    from pipelines.operations.home_format import HomeFormatError, open_home

    try:
        settings = Settings.from_env(home, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:  # the options are named as the command line spells them
        raise fail(f"--{exc.field.replace('_', '-')} {exc.problem}", 2) from exc
    make_private(settings.home)
    if migrate:
        try:
            report = open_home(settings, progress=True)
        except HomeFormatError as exc:
            raise fail(str(exc)) from exc
        if report is not None:
            typer.echo(
                f"migrated {report.home} from home format {report.from_version} to "
                f"{report.to_version} (backup first: {report.backup})",
                err=True,
            )
            for line in report.changes:
                typer.echo(f"  {line}", err=True)
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned exit to stop with ``code``."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def query_settings(
    home: Path | None, reader: str | None, retrieval: str | None, backend: str | None
) -> Settings:
    """Settings for a command that answers questions (the options checked by Settings)."""
    return settings_from(home, reader_model=reader, retrieval=retrieval, reader_backend=backend)
