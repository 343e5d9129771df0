"""``docqa backup DEST`` and ``docqa restore ARCHIVE --home DIR``: one verified archive of a data
home, made while it serves, and restored all or nothing (pipelines/operations/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docqa.identity_commands import audited
from docqa.options import HomeOption, fail, settings_from

GzipOption = Annotated[
    bool | None,
    typer.Option(
        "--gzip/--no-gzip",
        help="Compress the archive (default: when DEST ends in .gz or .tgz).",
        show_default=False,
    ),
]


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


@audited("backup", target="dest")
def backup(
    dest: Annotated[Path, typer.Argument(help="The archive to write (.tar, or .tar.gz).")],
    home: HomeOption = None,
    gzip: GzipOption = None,
    progress: Annotated[bool, typer.Option(help="Progress bar on stderr.")] = True,
) -> None:
    """Back up the data home into one archive: the serving index version, uploads, labels, keys,
    users, access rules, the question and audit logs, reader versions and settings, each with
    its SHA-256. Safe while the page, the API and an indexer run."""
    from pipelines.operations.backup import BackupError, backup_home

    settings = settings_from(home, migrate=False)  # backed up as it is, an older format included
    try:
        done = backup_home(settings.home, dest, gzip=gzip, progress=progress)
    except (BackupError, OSError) as exc:
        raise fail(str(exc)) from exc
    m = done.manifest
    typer.echo(
        f"{done.archive}: {len(m.files)} files ({_size(m.total_bytes)}), archive "
        f"{_size(done.archive_bytes)}, index {m.index_version or 'none'}, reader "
        f"{m.serving_reader or 'none promoted'}, in {done.seconds:.1f} s"
    )


@audited("restore", target="archive", details=("replace",), unless=lambda kw: kw["dry_run"])
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by docqa backup.")],
    home: Annotated[
        Path,
        typer.Option("--home", help="The data home to restore into (missing or empty)."),
    ],
    replace: Annotated[
        bool,
        typer.Option(
            help="Restore over a non-empty home: it is moved to <home>.before-restore-<time> first."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the archive and list it; write nothing.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
) -> None:
    """Restore a home from a backup: every checksum is checked before anything is written, and
    the new home replaces the old one with one rename."""
    from pipelines.operations.backup import BackupError, restore_home

    try:
        done = restore_home(archive, home, replace=replace, dry_run=dry_run, progress=progress)
    except (BackupError, OSError) as exc:
        raise fail(str(exc)) from exc
    m = done.manifest
    if dry_run:
        for entry in m.files:
            typer.echo(f"{entry.size:>12,}  {entry.path}")
        typer.echo(
            f"would restore {len(m.files)} files ({_size(m.total_bytes)}) from DocQA "
            f"{m.docqa_version}, {m.created}, into {done.home}; nothing was written"
        )
        return
    aside = f"; the previous home is in {done.moved_aside}" if done.moved_aside else ""
    typer.echo(
        f"restored {len(m.files)} files ({_size(m.total_bytes)}) into {done.home}: index "
        f"{m.index_version or 'none'}, reader {m.serving_reader or 'none promoted'}, "
        f"in {done.seconds:.1f} s{aside}"
    )
