"""The ``docqa`` command line: thin commands over the packages (no logic of its own)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from pipelines.settings import DEMO_COLLECTION, REPO_ROOT, Settings
from reader_training.train_config import TrainConfig

# Option defaults come from the settings objects, so a default is stated once.
_DEFAULTS = Settings()

# Set before any Haystack import: no telemetry, no hub downloads, quiet tokenizer threads.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    help="DocQA: extractive question answering over your own documents, with cited spans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("docqa")

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
        f" Default: {_DEFAULTS.retrieval}",
        show_default=False,
    ),
]


BackendOption = Annotated[
    str | None,
    typer.Option(
        "--reader-backend",
        help="How the reader runs on CPU: auto (bf16 where the CPU has AMX, else int8),"
        " torch (fp32), int8, onnx or onnx-int8"
        f" (benchmarks/bench_serving.py compares them). Default: {_DEFAULTS.reader_backend}",
        show_default=False,
    ),
]


def _check_backend(backend: str | None) -> None:
    from pipelines.reader import READER_BACKENDS

    if backend is not None and backend not in READER_BACKENDS:
        raise _fail(f"--reader-backend must be one of {', '.join(READER_BACKENDS)}", 2)


def _check_retrieval(retrieval: str | None) -> None:
    from pipelines.settings import RETRIEVAL_MODES

    if retrieval is not None and retrieval not in RETRIEVAL_MODES:
        raise _fail(f"--retrieval must be one of {', '.join(RETRIEVAL_MODES)}", 2)


def _query_settings(
    home: Path | None, reader: str | None, retrieval: str | None, backend: str | None
) -> Settings:
    """Settings for a command that answers questions, its options checked."""
    _check_retrieval(retrieval)
    _check_backend(backend)
    return _settings(home, reader_model=reader, retrieval=retrieval, reader_backend=backend)


def _settings(home: Path | None, **overrides: object) -> Settings:
    return Settings.from_env(home, **{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "haystack", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
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
) -> None:
    """Index documents: new, changed and deleted files only (unless --full)."""
    from indexer.run import IndexingError, index_folder, plan_index
    from pipelines.faiss_index import IndexSpec
    from pipelines.store import StoreError

    settings = _settings(home, index_type=index_type, index_compression=compression)
    try:
        IndexSpec.from_settings(settings)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    if dry_run:
        try:
            plan = plan_index(paths, settings, full=full)
        except (IndexingError, StoreError) as exc:
            raise _fail(str(exc)) from exc
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
    try:
        summary = index_folder(
            paths,
            settings,
            full=full,
            progress=progress and not as_json,
            checkpoint_every=checkpoint_every,
        )
    except (IndexingError, StoreError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for path, reason in summary.failed:
            typer.secho(f"failed: {path}: {reason}", err=True, fg=typer.colors.YELLOW)
        for path, reason in getattr(summary, "skipped", []):
            typer.secho(f"skipped: {path}: {reason}", err=True)
        typer.echo(summary.describe())
    indexed = summary.added + summary.updated + summary.unchanged
    # Nothing from these paths is in the index (and no vanished file was removed): every file
    # failed, or there was no supported document at all. Scripts must see that as a failure.
    if indexed == 0 and summary.removed == 0:
        why = "every file failed" if summary.failed else "no supported documents found"
        raise _fail(f"nothing was indexed: {why}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    home: HomeOption = None,
    answers: Annotated[
        int, typer.Option("--answers", "-n", min=1, help="Answers to show.")
    ] = _DEFAULTS.top_n_answers,
    passages: Annotated[
        int, typer.Option("--passages", "-k", min=1, help="Passages to retrieve and read.")
    ] = _DEFAULTS.top_k_passages,
    as_json: Annotated[bool, typer.Option("--json", help="Print answers as JSON.")] = False,
    reader: ReaderOption = None,
    retrieval: RetrievalOption = None,
    reader_backend: BackendOption = None,
) -> None:
    """Answer a question over the indexed documents, with citations."""
    from pipelines.models import ReaderNotFoundError
    from pipelines.query import IndexMissingError, QuestionError
    from pipelines.query import ask as ask_question

    settings = _query_settings(home, reader, retrieval, reader_backend)
    try:
        results = ask_question(question, settings, top_k_passages=passages, top_n_answers=answers)
    except (QuestionError, IndexMissingError, ReaderNotFoundError) as exc:
        raise _fail(str(exc), 2) from exc
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    for rank, r in enumerate(results, 1):
        if r.answer is None:
            typer.echo(f"{rank}. [no answer in the documents]  score {r.score:.2f}")
            continue
        where = f"page {r.page}" if r.page else (f"section {r.section!r}" if r.section else "")
        offsets = (
            f"chars {r.document_offsets[0]}-{r.document_offsets[1]}" if r.document_offsets else ""
        )
        typer.echo(f"{rank}. {r.answer}  (score {r.score:.2f})")
        typer.echo(f"   source: {r.document}" + (f", {where}" if where else "") + f", {offsets}")
        if r.context and r.context_offsets:
            s, e = r.context_offsets
            snippet = (
                r.context[max(0, s - 120) : s] + "[" + r.context[s:e] + "]" + r.context[e : e + 120]
            )
            typer.echo("   " + " ".join(snippet.split()))


def _train_campaign(
    settings: Settings,
    shared: Path,
    name: str,
    budget: str | None,
    resume: bool,
    stage: str,
    ship: bool,
) -> None:
    from pipelines.settings import SHIPPED_READER
    from reader_training.campaign import parse_budget, run_chunk

    started = time.time()
    try:
        seconds = parse_budget(budget) if budget else float("inf")
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    if not (shared / "squad" / "dev-v2.0-half.json").is_file():
        raise _fail(f"{shared}: not the shared data folder (no squad/dev-v2.0-half.json)", 2)
    if stage not in ("all", "chunk", "gate"):
        raise _fail(f"--stage must be all, chunk or gate, not {stage!r}", 2)
    folder = settings.home / "campaign" / name
    if stage == "gate" and not (folder / "latest" / "config.json").is_file():
        raise _fail(f"{folder}: no chunk to evaluate (train one first)", 2)
    if stage != "gate":
        try:
            state = run_chunk(
                folder, shared, seconds, resume, warm_start_from=SHIPPED_READER, started=started
            )
        except RuntimeError as exc:
            raise _fail(str(exc)) from exc
        typer.echo(f"campaign {name}: {state.summary()}; chunk reader: {folder / 'latest'}")
    if stage == "chunk":
        return
    from reader_training.chunk_gate import finish_chunk

    report = finish_chunk(folder, shared, settings, ship_to=SHIPPED_READER if ship else None)
    typer.echo(report["verdict"])


@app.command()
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
) -> None:
    """Fine-tune a reader on labeled pairs (or reproduce the default reader with --recipe)."""
    from evaluation.squad import SquadFormatError
    from reader_training.promote import PromotionError, promote_model
    from reader_training.train import train_reader

    settings = _settings(home)
    if recipe == "default":
        _train_campaign(settings, shared, campaign, budget, resume, stage, ship)
        return
    if recipe:
        from reader_training.recipes import run_recipe

        try:
            final_dir = run_recipe(recipe, shared, settings, out_name=name, resume=resume)
        except (SquadFormatError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        typer.echo(f"model: {final_dir}")
        if ship:
            from pipelines.settings import SHIPPED_READER
            from reader_training.recipes import ship_reader

            typer.echo(f"shipped (fp16): {ship_reader(final_dir, SHIPPED_READER)}")
        return
    if not files or not name:
        raise _fail("give SQuAD files and --name (or --recipe default)", 2)
    from pipelines.models import ReaderNotFoundError
    from reader_training.start import starting_point

    try:
        start = starting_point(settings, base_model, from_scratch, replay, replay_ratio)
    except (ValueError, ReaderNotFoundError) as exc:
        raise _fail(str(exc), 2) from exc
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
        raise _fail(str(exc)) from exc
    except OSError as exc:  # a full disk or a quota while writing checkpoints or the model
        raise _fail(
            f"could not write the model to {config.output_dir} ({exc}; is the disk full?); "
            "any earlier version of that name is unchanged"
        ) from exc
    typer.echo(result.report.summary())
    held = result.metrics["heldout"]
    typer.echo(f"held-out F1 {held['f1']:.2f} (EM {held['exact']:.2f}); model: {result.model_dir}")
    if promote:
        try:
            typer.echo(promote_model(settings, name, eval_file))
        except PromotionError as exc:
            raise _fail(str(exc)) from exc


@app.command("evaluate-reader")
def evaluate_reader_cmd(
    file: Annotated[Path, typer.Argument(help="SQuAD v1.1/v2.0 file with gold answers.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Version name or folder (default: the serving reader)."),
    ] = None,
    predictions: Annotated[
        Path | None, typer.Option(help="Write official-format predictions here.")
    ] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reader EM/F1 on gold passages, with the official SQuAD v2.0 semantics."""
    from evaluation.reader_metrics import evaluate_reader, format_table
    from evaluation.squad import SquadFormatError, load_squad, write_json_atomic
    from pipelines.models import resolve_reader

    settings = _settings(home, reader_model=model)
    try:
        examples, report = load_squad(file, drop_duplicates=False)
    except SquadFormatError as exc:
        raise _fail(str(exc)) from exc
    metrics, answers = evaluate_reader(resolve_reader(settings), examples, progress=not as_json)
    if predictions:
        write_json_atomic(answers, predictions)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        typer.echo(report.summary())
        typer.echo(format_table(metrics))


@app.command()
def evaluate(
    labels: Annotated[Path, typer.Argument(help="SQuAD file whose questions to ask.")],
    home: HomeOption = None,
    reader: ReaderOption = None,
    passages: Annotated[
        int, typer.Option("--passages", "-k", min=1, help="Passages retrieved and read.")
    ] = _DEFAULTS.top_k_passages,
    own_contexts: Annotated[
        bool,
        typer.Option(
            "--own-contexts",
            help="Index the file's contexts (one text document each) in a separate folder and"
            " ask over them, instead of over the indexed collection in --home.",
        ),
    ] = False,
    distractors: Annotated[
        list[Path] | None,
        typer.Option(
            "--distractors",
            help="SQuAD file whose contexts join the collection (implies --own-contexts).",
        ),
    ] = None,
    contexts_home: Annotated[
        Path | None,
        typer.Option(help="Keep the contexts' index here and reuse it (default: temporary)."),
    ] = None,
    recall_depth: Annotated[
        int | None,
        typer.Option(min=1, help="Retrieve this many passages for recall@k; read the first -k."),
    ] = None,
    questions: Annotated[
        int | None, typer.Option(min=1, help="Ask a fixed random sample of N questions.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --questions sample.")] = 0,
    closed: Annotated[
        bool, typer.Option(help="Also read each question's own context (reader alone).")
    ] = True,
    plots: Annotated[
        Path | None, typer.Option(help="Write EM/F1-vs-k and latency PNG plots here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    retrieval: RetrievalOption = None,
    reader_backend: BackendOption = None,
) -> None:
    """End to end: retrieval recall@k/MRR, reader EM/F1 on gold and retrieved passages, latency."""
    import shlex

    from evaluation import end_to_end as e2e
    from evaluation.squad import SquadFormatError, load_squad
    from pipelines.models import ReaderNotFoundError
    from pipelines.query import IndexMissingError

    settings = _query_settings(home, reader, retrieval, reader_backend)
    try:
        examples, _ = load_squad(labels, drop_duplicates=False)
        others = [load_squad(f)[0] for f in distractors or []]
    except SquadFormatError as exc:
        raise _fail(str(exc)) from exc
    asked = e2e.sample_examples(examples, questions, seed)
    options = {
        "top_k": passages,
        "progress": not as_json,
        "closed": closed,
        "recall_depth": recall_depth,
    }
    try:
        if own_contexts or distractors:
            contexts = e2e.contexts_of(examples) + [c for o in others for c in e2e.contexts_of(o)]
            report = e2e.evaluate_over_contexts(asked, settings, contexts, contexts_home, **options)
        else:
            report = e2e.evaluate_end_to_end(asked, settings, **options)
    except (IndexMissingError, ReaderNotFoundError) as exc:
        raise _fail(str(exc), 2) from exc
    report |= {"labels": str(labels), "sample": {"questions": questions, "seed": seed}}
    report["command"] = shlex.join(["docqa", *sys.argv[1:]])
    if plots:
        from evaluation.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(report, plots)]
    typer.echo(json.dumps(report, indent=2) if as_json else e2e.format_report(report))


@app.command("tune-weight")
def tune_weight(
    labels: Annotated[Path, typer.Argument(help="Held-out SQuAD file over the indexed documents.")],
    home: HomeOption = None,
    reader: ReaderOption = None,
    passages: Annotated[int, typer.Option("--passages", "-k")] = _DEFAULTS.top_k_passages,
    save: Annotated[bool, typer.Option(help="Save the best weight with the reader.")] = True,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Version to save as when the reader is not one of the home's own versions "
            "(default: <reader>-tuned); the shipped reader and other folders are never changed.",
        ),
    ] = None,
) -> None:
    """Tune how answers are ranked across passages: the retriever's share of the score, how
    much more sure of a span the reader must be than of "no answer" (open_null_offset), and
    whether "no answer" is judged per passage or once per question (null_scope)."""

    from evaluation.end_to_end import tune_answer_ranking
    from evaluation.squad import load_squad
    from pipelines.models import resolve_reader

    settings = _settings(home, reader_model=reader)
    examples, _ = load_squad(labels)
    best = tune_answer_ranking(examples, settings, top_k=passages)
    for key, f1 in best.heldout_f1.items():
        scope, w, o = key.split(",")
        chosen = (scope, float(w), float(o)) == (
            best.null_scope,
            best.retriever_weight,
            best.open_null_offset,
        )
        typer.echo(
            f"{'*' if chosen else ' '} null {scope:8} weight {float(w):.1f} "
            f"offset {float(o):.1f}: F1 {f1:.2f}"
        )
    if save:
        from pipelines.models import copy_as_version, is_own_version

        model_dir = Path(resolve_reader(settings))
        copied = not is_own_version(settings, model_dir)
        if copied:
            # The shipped reader is part of the checkout, and other folders are not the
            # home's to change: tune a copy, saved as a version of the home.
            try:
                model_dir = copy_as_version(settings, model_dir, name or f"{model_dir.name}-tuned")
            except (FileExistsError, ValueError) as exc:
                raise _fail(f"{exc} (choose another --name)") from exc
        best.save(model_dir)
        typer.echo(
            f"saved retriever_weight {best.retriever_weight}, open_null_offset "
            f"{best.open_null_offset}, null_scope {best.null_scope} in {model_dir}"
        )
        if copied:
            typer.echo(f"serve it with: docqa promote {model_dir.name}")


@app.command()
def models(home: HomeOption = None) -> None:
    """List reader versions with their held-out metrics; * marks the serving one."""
    from pipelines.models import list_models

    settings = _settings(home)
    for info in list_models(settings):
        f1 = info.heldout_f1
        typer.echo(
            f"{'*' if info.serving else ' '} {info.name:24} {info.created:26} held-out F1 {f1:.2f}"
            if f1 is not None
            else f"{'*' if info.serving else ' '} {info.name:24} {info.created:26}"
        )


@app.command("promote")
def promote_cmd(
    name: Annotated[str, typer.Argument(help="Model version to serve.")],
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="SQuAD file to compare on.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Serve it even if it scores lower.")] = False,
    home: HomeOption = None,
) -> None:
    """Serve a reader version, refusing one that scores lower than the serving reader."""
    from reader_training.promote import PromotionError, promote_model

    try:
        typer.echo(promote_model(_settings(home), name, eval_file, force=force))
    except PromotionError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def ui(
    home: HomeOption = None,
    port: Annotated[int, typer.Option()] = 8501,
    demo: Annotated[
        bool, typer.Option(help="Index the bundled demo collection if the index is empty.")
    ] = True,
    headless: Annotated[
        bool | None,
        typer.Option(
            "--headless/--browser",
            help="Serve without opening a browser (default: headless when there is no terminal).",
        ),
    ] = None,
) -> None:
    """Open the web page (indexing the demo collection first if nothing is indexed)."""
    from pipelines.store import PassageStore

    settings = _settings(home)
    if demo and not PassageStore.exists(settings.index_dir):
        from indexer.run import index_folder

        typer.echo(f"indexing the demo collection into {settings.home} (first run only)")
        typer.echo(index_folder([DEMO_COLLECTION], settings).describe())
    from ui.launch import serve

    if headless is None:
        headless = not sys.stdin.isatty()
    typer.echo(f"DocQA serves the page at http://localhost:{port} (Ctrl+C stops it)")
    raise typer.Exit(serve(settings, port, open_browser=not headless))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
