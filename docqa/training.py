"""``docqa train`` (fine-tune the serving reader on labeled pairs, its options derived from
:class:`TrainConfig`) and ``docqa campaign`` (the reader campaign that trains the shipped
reader)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from docqa.options import HomeOption, fail, settings_from
from pipelines.settings import REPO_ROOT, Settings
from reader_training.train_config import TrainConfig, TrainConfigError


def _train_campaign(
    settings: Settings,
    shared: Path,
    name: str,
    budget: str | None,
    resume: bool,
    stage: str,
    ship: bool,
    after: str | None = None,
) -> None:
    from pipelines.settings import SHIPPED_READER
    from reader_training.campaign import run_chunk
    from reader_training.campaign_spec import parse_budget

    started = time.time()
    try:
        seconds = parse_budget(budget) if budget else float("inf")
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    if not (shared / "squad" / "dev-v2.0-half.json").is_file():
        raise fail(f"{shared}: not the shared data folder (no squad/dev-v2.0-half.json)", 2)
    if stage not in ("all", "chunk", "gate"):
        raise fail(f"--stage must be all, chunk or gate, not {stage!r}", 2)
    folder = settings.home / "campaign" / name
    if stage == "gate" and not (folder / "latest" / "config.json").is_file():
        raise fail(f"{folder}: no chunk to evaluate (train one first)", 2)
    if stage != "gate":
        phase = _cooldown_start(settings, folder, after) if after else {}
        try:
            state = run_chunk(
                folder,
                shared,
                seconds,
                resume,
                # A phase continues its parent campaign, never the shipped reader's schedule.
                warm_start_from=None if after else SHIPPED_READER,
                started=started,
                **phase,
            )
        except RuntimeError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"campaign {name}: {state.summary()}; chunk reader: {folder / 'latest'}")
    if stage == "chunk":
        return
    from reader_training.chunk_gate import finish_chunk

    report = finish_chunk(folder, shared, settings, ship_to=SHIPPED_READER if ship else None)
    typer.echo(report["verdict"])


def _cooldown_start(settings: Settings, folder: Path, after: str) -> dict[str, object]:
    """``run_chunk``'s spec and base model for a cool-down phase after campaign ``after``; the
    parent's pool is copied so both share their held-out articles."""
    import shutil

    from reader_training.campaign_spec import STATE_FILE, CampaignState, cooldown_spec

    parent = settings.home / "campaign" / after
    if parent == folder:
        raise fail("--after names the campaign itself: give the finished campaign to follow", 2)
    if not (parent / STATE_FILE).is_file() or not (parent / "latest" / "config.json").is_file():
        raise fail(f"{parent}: no campaign with a chunk reader to continue from", 2)
    parent_state = CampaignState.load(parent)
    if not parent_state.done:
        raise fail(
            f"campaign {after} is at step {parent_state.step} of {parent_state.total_steps}: "
            "finish its schedule (--resume) before a cool-down phase",
            2,
        )
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("pool.json", "pool_counts.json"):
        if (parent / name).is_file() and not (folder / name).is_file():
            shutil.copy2(parent / name, folder / name)
    return {"spec": cooldown_spec(parent_state.spec), "base_model": str(parent / "latest")}


def _option_name(config_field: dataclasses.Field[Any]) -> str:
    """The command-line option of a TrainConfig field: its own, else ``--field-name``."""
    return config_field.metadata.get("option", "--" + config_field.name.replace("_", "-"))


def with_config_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with an option for every :class:`TrainConfig` field the command line sets
    (its name, default and help from the field), passed to ``command`` as keyword arguments:
    one definition of each training setting instead of a copy per option."""
    hints = typing.get_type_hints(TrainConfig)
    params = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    for config_field in dataclasses.fields(TrainConfig):
        if not config_field.metadata.get("command_line", True):
            continue
        hint: Any = hints[config_field.name]
        default: Any = config_field.default
        if config_field.default_factory is not dataclasses.MISSING:
            hint, default = hint | None, None  # a list option: None when not given
        option = _option_name(config_field)
        annotation = Annotated[hint, typer.Option(option, help=config_field.metadata["help"])]
        params.append(
            inspect.Parameter(
                config_field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=annotation,
            )
        )

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        command(**kwargs)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


@with_config_options
def train(
    files: Annotated[list[Path] | None, typer.Argument(help="SQuAD v1.1/v2.0 JSON files.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model version name.")] = None,
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="Reader or encoder folder to start from (default: the serving reader).",
        ),
    ] = None,
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="Start from the bare sentence encoder with a new span head (no replay).",
        ),
    ] = False,
    home: HomeOption = None,
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            help="SQuAD files the reader already learned, mixed in so it does not forget "
            "(default when continuing a reader: the demo collection's training labels)."
        ),
    ] = None,
    replay_ratio: Annotated[
        float | None,
        typer.Option(help="Replayed pairs per new pair (default: 3 when replaying, else 0)."),
    ] = None,
    promote: Annotated[bool, typer.Option(help="Serve the new model if it is not worse.")] = False,
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="SQuAD file that decides promotion.")
    ] = None,
    **config_options: Any,
) -> None:
    """Fine-tune the serving reader on labeled pairs (the training settings below are
    TrainConfig's; the reader campaign is ``docqa campaign``)."""
    from evaluation.squad import SquadFormatError
    from reader_training.promote import PromotionError, promote_model
    from reader_training.train import train_reader

    settings = settings_from(home)
    if not files or not name:
        raise fail("give SQuAD files and --name (the reader campaign is `docqa campaign`)", 2)
    from pipelines.reader_registry import ReaderNotFoundError
    from reader_training.start import starting_point

    holdout = config_options.pop("holdout_files", None) or []
    try:
        config = TrainConfig(
            train_files=[str(f) for f in files],
            base_model="",  # set below, once the options are known to be sound
            output_dir=str(settings.models_dir / name),
            holdout_files=[str(h) for h in holdout],
            **config_options,
        )
    except TrainConfigError as exc:
        by_name = {f.name: f for f in dataclasses.fields(TrainConfig)}
        raise fail(f"{_option_name(by_name[exc.field])} {exc.problem}", 2) from exc
    try:
        start = starting_point(settings, base_model, from_scratch, replay, replay_ratio)
    except (ValueError, ReaderNotFoundError) as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(start.describe())
    config.base_model = start.base_model
    config.replay_files = start.replay_files
    config.replay_ratio = start.replay_ratio
    try:
        result = train_reader(config)
    except (SquadFormatError, ValueError) as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:  # a full disk or a quota while writing checkpoints or the model
        raise fail(
            f"could not write the model to {config.output_dir} ({exc}; is the disk full?); "
            "any earlier version of that name is unchanged"
        ) from exc
    typer.echo(result.report.summary())
    held = result.metrics["heldout"]
    typer.echo(f"held-out F1 {held['f1']:.2f} (EM {held['exact']:.2f}); model: {result.model_dir}")
    reason = result.metrics["threshold_choice"]["reason"]
    typer.echo(f"no-answer threshold {held['threshold']:.3f}: {reason}")
    if promote:
        try:
            typer.echo(promote_model(settings, name, eval_file))
        except PromotionError as exc:
            raise fail(str(exc)) from exc


def campaign(
    recipe: Annotated[
        str,
        typer.Option(
            help="'default': the reader campaign (budgeted chunks of one schedule); 'v0.2': "
            "the single-run recipe of reader v0.2.",
        ),
    ] = "default",
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The campaign's folder under <home>/campaign (default: 'default'); with "
            "--recipe v0.2, the model version's name.",
        ),
    ] = None,
    home: HomeOption = None,
    shared: Annotated[Path, typer.Option(help="Shared data folder.")] = (
        REPO_ROOT.parent / "shared" / "data"
    ),
    budget: Annotated[
        str | None,
        typer.Option(help="Train this long (150m, 2h), then stop with resume state."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the campaign (or the recipe's last checkpoint).")
    ] = False,
    ship: Annotated[
        bool, typer.Option(help="Copy the result into data/reader as fp16 if it passes the gate.")
    ] = False,
    stage: Annotated[
        str,
        typer.Option(
            help="'all' (a chunk, then the gate), 'chunk' (train only) or 'gate' (the domain "
            "stage, evaluation and gate for the last chunk, no training).",
        ),
    ] = "all",
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="Make the campaign a cool-down phase after this finished campaign: one epoch "
            "from its final reader at a fifth of its learning rate, no warm-up, shared "
            "normalization throughout, same pool and held-out articles.",
        ),
    ] = None,
) -> None:
    """Train the shipped reader: the reader campaign on the shared data, in budgeted chunks
    with a gate before it ships (docs/campaign.md)."""
    from evaluation.squad import SquadFormatError

    settings = settings_from(home)
    if recipe == "default":
        _train_campaign(settings, shared, name or "default", budget, resume, stage, ship, after)
        return
    from reader_training.recipes import run_recipe

    try:
        final_dir = run_recipe(recipe, shared, settings, out_name=name, resume=resume)
    except (SquadFormatError, ValueError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"model: {final_dir}")
    if ship:
        from pipelines.settings import SHIPPED_READER
        from reader_training.recipes import ship_reader

        typer.echo(f"shipped (fp16): {ship_reader(final_dir, SHIPPED_READER)}")
