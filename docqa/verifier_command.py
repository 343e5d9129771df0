"""``docqa train-verifier``: fit the answer verifier of a reader (pipelines/verifier.py) on
open-retrieval questions it never trained on, and save it beside the reader."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docqa.identity_commands import audited
from docqa.options import HomeOption, ReaderOption, fail, settings_from

# The verifier replaces the reader's own ranking only when it is this much better (F1 points,
# out of fold, on the questions it was trained on): one question of 200 is 0.5.
MIN_GAIN = 0.5


@audited("train_verifier", target="reader", details=("name",))
def train_verifier(
    shared: Annotated[
        Path | None,
        typer.Option(
            "--shared",
            help="The shared data folder (../shared/data): its training pool's held-out articles "
            "are read as an open collection. Without it only the demo train pairs are used.",
        ),
    ] = None,
    home: HomeOption = None,
    reader: ReaderOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Version to save as when the reader is not one of the home's own versions "
            "(default: <reader>-verified); the shipped reader is never changed.",
        ),
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="Your labeled pairs (SQuAD JSON) about documents indexed in the home: asked "
            "over the home's index, they train the verifier for your collection.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Save the verifier even when it does not beat the reader.")
    ] = False,
    work: Annotated[
        Path | None,
        typer.Option(help="Where the collections and reads are kept (reused by the next run)."),
    ] = None,
) -> None:
    """Fit the answer verifier: it ranks the answers of all passages read and decides when to
    say "no answer", from the reader's scores, retrieval scores and ranks, the kind of answer
    the question asks for and the candidate's sentence."""
    from evaluation.squad import SquadFormatError
    from pipelines.reader import ReaderConfig
    from pipelines.reader_registry import copy_as_version, is_own_version, resolve_reader
    from pipelines.verifier import ReaderScoring
    from reader_training.verifier_training import (
        READ_DEPTH,
        collect_training_reads,
        f1_at_ks,
        fit_verifier,
        reader_answer,
    )

    settings = settings_from(home)
    if reader:
        settings = settings.with_(reader_model=reader)
    if shared is not None and not (shared / "squad" / "dev-v1.1.json").is_file():
        raise fail(f"{shared}: not the shared data folder (no squad/dev-v1.1.json)", 2)
    model_dir = Path(resolve_reader(settings))
    settings = settings.with_(reader_model=str(model_dir))
    work = work or settings.home / "verifier" / model_dir.name
    try:
        reads = collect_training_reads(settings, shared, work, pairs=pairs)
    except (SquadFormatError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    config = ReaderConfig.load(model_dir)
    ranking = config.ranking
    scoring = ReaderScoring(ranking.retriever_weight, ranking.open_null_offset, config.temperature)
    try:
        verifier, report = fit_verifier(reads, scoring=scoring)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    reader_f1 = f1_at_ks(
        lambda r: reader_answer(ranking, config.temperature, r), reads, [READ_DEPTH]
    )[READ_DEPTH]["f1"]
    gain = report["out_of_fold_f1"] - reader_f1
    typer.echo(
        f"{report['questions']} questions ({report['unanswerable']} unanswerable), "
        f"{report['candidates']} candidates, {READ_DEPTH} passages read: verifier F1 "
        f"{report['out_of_fold_f1']} (out of fold) against the reader's own ranking "
        f"{reader_f1} ({gain:+.2f}); threshold {verifier.threshold:.3f}"
    )
    if gain < MIN_GAIN and not force:
        raise fail(
            f"the verifier is not {MIN_GAIN} F1 better than the reader's own ranking on these "
            "questions: not saved (--force saves it anyway)"
        )
    if not is_own_version(settings, model_dir):
        try:
            model_dir = copy_as_version(settings, model_dir, name or f"{model_dir.name}-verified")
        except (FileExistsError, ValueError) as exc:
            raise fail(f"{exc} (choose another --name)") from exc
        typer.echo(f"serve it with: docqa promote {model_dir.name}")
    typer.echo(f"saved {verifier.save(model_dir)}")
