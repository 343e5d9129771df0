"""``docqa reader-backend``: what the reader backend "auto" reads with on this CPU, and why.

Prints the measured table (backend, windows/s, F1, within 0.5 F1 of fp32, chosen) cached in
the home; measures when nothing is cached, or again with ``--measure``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from docqa.options import HomeOption, ReaderOption, fail, settings_from


def reader_backend(
    home: HomeOption = None,
    reader: ReaderOption = None,
    measure: Annotated[
        bool, typer.Option("--measure", help="Measure again, even when a choice is cached.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Which backend "auto" reads with on this CPU (measured once per CPU and reader)."""
    from pipelines.backend_choice import choice_path, measured_choice
    from pipelines.reader_registry import ReaderNotFoundError, resolve_reader

    settings = settings_from(home, reader_model=reader)
    try:
        model = resolve_reader(settings)
    except ReaderNotFoundError as exc:
        raise fail(str(exc)) from exc
    cache = settings.home / "cache"
    choice = measured_choice(model, cache, remeasure=measure)
    if as_json:
        typer.echo(choice.to_json(), nl=False)
        return
    key = choice.key
    flags = ", ".join(key["cpu_flags"]) or "no AVX2"
    typer.echo(f"CPU: {key['cpu']} ({flags}), {key['threads']} threads; reader {model}")
    typer.echo(choice.table())
    typer.echo(f"auto reads with {choice.chosen}: {choice.reason}")
    typer.echo(f"cached in {choice_path(cache, key)}")
