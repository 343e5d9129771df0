"""``docqa train``: fine-tune the serving reader on labeled pairs, or run the reader campaign."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from docqa.options import HomeOption, fail, settings_from
from pipelines.settings import REPO_ROOT, Settings
from reader_training.train_config import TrainConfig


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
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="'default': the reader campaign (budgeted chunks of one schedule); 'v0.2': "
            "the single-run recipe of reader v0.2.",
        ),
    ] = None,
    home: HomeOption = None,
    learning_rate: Annotated[float, typer.Option("--lr")] = TrainConfig.learning_rate,
    epochs: Annotated[float, typer.Option()] = TrainConfig.epochs,
    batch_size: Annotated[int, typer.Option()] = TrainConfig.batch_size,
    grad_accum: Annotated[
        int, typer.Option("--gradient-accumulation")
    ] = TrainConfig.gradient_accumulation,
    warmup: Annotated[
        float, typer.Option(help="Warm-up as a fraction of steps.")
    ] = TrainConfig.warmup,
    weight_decay: Annotated[float, typer.Option()] = TrainConfig.weight_decay,
    max_seq_length: Annotated[int, typer.Option()] = TrainConfig.max_seq_length,
    doc_stride: Annotated[int, typer.Option()] = TrainConfig.doc_stride,
    seed: Annotated[int, typer.Option()] = TrainConfig.seed,
    negatives: Annotated[
        float, typer.Option(help="Synthetic unanswerables per example.")
    ] = TrainConfig.synthetic_negatives,
    holdout: Annotated[
        list[Path] | None,
        typer.Option(help="Held-out SQuAD file(s) for early stopping and the threshold."),
    ] = None,
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
    lora: Annotated[bool, typer.Option(help="Train a LoRA adapter (merged on save).")] = False,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    promote: Annotated[bool, typer.Option(help="Serve the new model if it is not worse.")] = False,
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="SQuAD file that decides promotion.")
    ] = None,
    shared: Annotated[Path, typer.Option(help="Shared data folder (recipe only).")] = (
        REPO_ROOT.parent / "shared" / "data"
    ),
    ship: Annotated[
        bool, typer.Option(help="Recipe only: copy the result into data/reader as fp16.")
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option(help="Recipe only: train this long (150m, 2h), then stop with resume state."),
    ] = None,
    campaign: Annotated[
        str, typer.Option(help="Recipe only: the campaign folder's name under <home>/campaign.")
    ] = "default",
    stage: Annotated[
        str,
        typer.Option(
            help="Recipe only: 'all' (a chunk, then the gate), 'chunk' (train only) or 'gate' "
            "(the domain stage, evaluation and gate for the last chunk, no training).",
        ),
    ] = "all",
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="Recipe only: make --campaign a cool-down phase after this finished campaign: "
            "one epoch from its final reader at a fifth of its learning rate, no warm-up, "
            "shared normalization throughout, same pool and held-out articles.",
        ),
    ] = None,
) -> None:
    """Fine-tune the serving reader on labeled pairs (or run the reader campaign with --recipe)."""
    from evaluation.squad import SquadFormatError
    from reader_training.promote import PromotionError, promote_model
    from reader_training.train import train_reader

    settings = settings_from(home)
    if recipe == "default":
        _train_campaign(settings, shared, campaign, budget, resume, stage, ship, after)
        return
    if recipe:
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
        return
    if not files or not name:
        raise fail("give SQuAD files and --name (or --recipe default)", 2)
    from pipelines.reader_registry import ReaderNotFoundError
    from reader_training.start import starting_point

    try:
        start = starting_point(settings, base_model, from_scratch, replay, replay_ratio)
    except (ValueError, ReaderNotFoundError) as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(start.describe())
    config = TrainConfig(
        train_files=[str(f) for f in files],
        base_model=start.base_model,
        output_dir=str(settings.models_dir / name),
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        gradient_accumulation=grad_accum,
        warmup=warmup,
        weight_decay=weight_decay,
        max_seq_length=max_seq_length,
        doc_stride=doc_stride,
        seed=seed,
        synthetic_negatives=negatives,
        holdout_files=[str(h) for h in holdout or []],
        replay_files=start.replay_files,
        replay_ratio=start.replay_ratio,
        lora=lora,
        resume=resume,
    )
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
