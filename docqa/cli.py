"""The ``docqa`` command line: thin commands over the packages (no logic of its own)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from docqa.backend_command import reader_backend
from docqa.backup_command import backup, restore
from docqa.identity_commands import access_app, audit, audited, keys_app, users_app
from docqa.index_command import index
from docqa.options import (
    DEFAULTS,
    BackendOption,
    HomeOption,
    ReaderOption,
    RetrievalOption,
    fail,
    query_settings,
    settings_from,
)
from docqa.printed_answers import print_answers
from docqa.training import campaign, train
from docqa.verifier_command import train_verifier
from pipelines.settings import DEMO_COLLECTION, PRIVATE_UMASK

# Set before any Haystack import: no telemetry, no hub downloads, quiet tokenizer threads.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    help="DocQA: extractive question answering over your own documents, with cited spans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("docqa")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    # Files written before a command reaches its home (settings_from makes that 0700) are
    # private too: document text, questions, keys.
    os.umask(PRIVATE_UMASK)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "haystack", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


app.command()(
    audited("index", target="paths", details=("full", "engine"), unless=lambda kw: kw["dry_run"])(
        index
    )
)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    home: HomeOption = None,
    answers: Annotated[
        int, typer.Option("--answers", "-n", min=1, help="Answers to show.")
    ] = DEFAULTS.top_n_answers,
    passages: Annotated[
        int, typer.Option("--passages", "-k", min=1, help="Passages to retrieve and read.")
    ] = DEFAULTS.top_k_passages,
    as_json: Annotated[bool, typer.Option("--json", help="Print answers as JSON.")] = False,
    reader: ReaderOption = None,
    retrieval: RetrievalOption = None,
    reader_backend: BackendOption = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="DOCQA_SERVER",
            help="Ask a running `docqa serve` (e.g. http://127.0.0.1:8000) instead of loading"
            " the index and models in this process: answers in a fraction of a second.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="DOCQA_API_KEY",
            help="The key for --server (docqa keys create NAME --role viewer).",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Answer only from the documents this local account may see (to check access).",
            show_default=False,
        ),
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option(
            "--groups",
            help="Answer only from the documents these groups (G1,G2) may see; with --user,"
            " that account limited to these of its groups.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Answer a question over the indexed documents, with citations."""
    # The command line is the home's owner and sees every document; --user and --groups
    # narrow the answers to someone's view, for an operator checking the access rules.
    if server:
        if reader or retrieval or reader_backend:
            raise fail("--reader, --retrieval and --reader-backend are the server's own", 2)
        if user is not None or groups is not None:
            raise fail("with --server, the API key's role and groups decide what is seen", 2)
        from api.client import RemoteError, ask_remote

        try:
            body = ask_remote(server, api_key, question, passages, answers)
        except RemoteError as exc:
            raise fail(str(exc), 2 if exc.status and exc.status < 500 else 1) from exc
        print_answers(body["answers"], as_json)
        return
    from docqa.identity_commands import narrowed_caller, os_user
    from pipelines.answers import QuestionError, validate_question
    from pipelines.query import IndexMissingError, get_service
    from pipelines.reader_registry import ReaderNotFoundError

    # One question in a new process: read with ONNX Runtime, whose start costs seconds less.
    settings = query_settings(home, reader, retrieval, reader_backend).for_one_question()
    # identity (and its Argon2 set-up) is loaded only when someone's view is asked for.
    caller = narrowed_caller(settings, user, groups)
    try:
        checked = validate_question(question, settings.max_question_chars)  # before any model
        service = get_service(settings)
        scope = None
        if caller is not None:
            from identity import AccessRuleError, AccessRules, ScopeCache

            try:
                scope = ScopeCache(AccessRules.of(settings)).for_store(caller, service.store)
            except AccessRuleError as exc:  # unreadable rules never mean "all visible"
                raise fail(str(exc)) from exc
        # The operator asked, whoever's view it was: the question log names them.
        asked = service.answer(
            checked, passages, answers, channel="cli", scope=scope, asker=f"cli:{os_user()}"
        )
    except (QuestionError, IndexMissingError, ReaderNotFoundError) as exc:
        raise fail(str(exc), 2) from exc
    print_answers([r.to_dict() for r in asked.answers], as_json)


app.command()(audited("train", target="name", details=("files",))(train))
app.command()(audited("campaign", target="name", details=("recipe", "stage"))(campaign))
app.command("reader-backend")(reader_backend)


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
    from pipelines.reader_registry import resolve_reader

    settings = settings_from(home, reader_model=model)
    try:
        examples, report = load_squad(file, drop_duplicates=False)
    except SquadFormatError as exc:
        raise fail(str(exc)) from exc
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
    ] = DEFAULTS.top_k_passages,
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
    from pipelines.query import IndexMissingError
    from pipelines.reader_registry import ReaderNotFoundError

    settings = query_settings(home, reader, retrieval, reader_backend)
    try:
        examples, _ = load_squad(labels, drop_duplicates=False)
        others = [load_squad(f)[0] for f in distractors or []]
    except SquadFormatError as exc:
        raise fail(str(exc)) from exc
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
        raise fail(str(exc), 2) from exc
    report |= {"labels": str(labels), "sample": {"questions": questions, "seed": seed}}
    report["command"] = shlex.join(["docqa", *sys.argv[1:]])
    if plots:
        from evaluation.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(report, plots)]
    typer.echo(json.dumps(report, indent=2) if as_json else e2e.format_report(report))


@app.command("tune-weight")
@audited("tune_weight", target="reader", details=("name",), unless=lambda kw: not kw["save"])
def tune_weight(
    labels: Annotated[Path, typer.Argument(help="Held-out SQuAD file over the indexed documents.")],
    home: HomeOption = None,
    reader: ReaderOption = None,
    passages: Annotated[int, typer.Option("--passages", "-k")] = DEFAULTS.top_k_passages,
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
    much more sure of a span the reader must be than of "no answer" (open_null_offset),
    whether "no answer" is judged per passage or once per question (null_scope), and how much
    more evidence a span from a lower-ranked passage needs (rank_prior)."""

    from evaluation.end_to_end import tune_answer_ranking
    from evaluation.squad import load_squad
    from pipelines.reader_registry import resolve_reader

    settings = settings_from(home, reader_model=reader)
    examples, _ = load_squad(labels)
    best = tune_answer_ranking(examples, settings, top_k=passages)
    for tried, f1 in best.heldout_f1.items():
        typer.echo(
            f"{'*' if tried == best.plain() else ' '} null {tried.null_scope:8} weight "
            f"{tried.retriever_weight:.1f} offset {tried.open_null_offset:.1f} rank prior "
            f"{tried.rank_prior:.1f}: F1 {f1:.2f}"
        )
    if save:
        from pipelines.reader_config import save_ranking
        from pipelines.reader_registry import copy_as_version, is_own_version

        model_dir = Path(resolve_reader(settings))
        copied = not is_own_version(settings, model_dir)
        if copied:
            # The shipped reader is part of the checkout, and other folders are not the
            # home's to change: tune a copy, saved as a version of the home.
            try:
                model_dir = copy_as_version(settings, model_dir, name or f"{model_dir.name}-tuned")
            except (FileExistsError, ValueError) as exc:
                raise fail(f"{exc} (choose another --name)") from exc
        save_ranking(model_dir, best)
        typer.echo(
            f"saved retriever_weight {best.retriever_weight}, open_null_offset "
            f"{best.open_null_offset}, null_scope {best.null_scope}, rank_prior "
            f"{best.rank_prior} in {model_dir}"
        )
        if copied:
            typer.echo(f"serve it with: docqa promote {model_dir.name}")


@app.command()
def models(home: HomeOption = None) -> None:
    """List reader versions with their held-out metrics; * marks the serving one."""
    from pipelines.reader_registry import list_models

    settings = settings_from(home)
    for info in list_models(settings):
        f1 = info.heldout_f1
        typer.echo(
            f"{'*' if info.serving else ' '} {info.name:24} {info.created:26} held-out F1 {f1:.2f}"
            if f1 is not None
            else f"{'*' if info.serving else ' '} {info.name:24} {info.created:26}"
        )


@app.command("promote")
@audited("promote", target="name", details=("force",))
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
        typer.echo(promote_model(settings_from(home), name, eval_file, force=force))
    except PromotionError as exc:
        raise fail(str(exc)) from exc


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
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on (0.0.0.0: all). Any but loopback needs a login"
            " configured (local accounts or single sign-on), or --no-auth."
        ),
    ] = "127.0.0.1",
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No login: on loopback the page acts as you (admin); on another address every"
            " visitor is an anonymous viewer of the documents no access rule restricts.",
        ),
    ] = False,
) -> None:
    """Open the web page (indexing the demo collection first if nothing is indexed)."""
    from pipelines.store import PassageStore
    from ui.launch import page_host, preflight

    settings = settings_from(home)
    check = preflight(settings, host, no_auth)
    if check.refusal:
        raise fail(check.refusal, 2)
    if demo and not PassageStore.exists(settings.index_dir):
        from indexer.run import index_folder

        typer.echo(f"indexing the demo collection into {settings.home} (first run only)")
        typer.echo(index_folder([DEMO_COLLECTION], settings).describe())
    from ui.launch import serve, sign_in_url

    if headless is None:
        headless = not sys.stdin.isatty()
    for note in check.notes:
        typer.echo(note)
    typer.echo(f"DocQA serves the page at http://{page_host(host)}:{port} (Ctrl+C stops it)")
    link = sign_in_url(settings, host, port, no_auth)
    if link:
        typer.echo(f"sign in as this home's owner: {link}")
    code = serve(settings, port, open_browser=not headless, host=host, no_auth=no_auth, url=link)
    raise typer.Exit(code)


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Worker processes, sharing the index on disk (uvicorn engine). [default: 1]"
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="uvicorn (worker processes on this machine) or ray (Ray Serve replicas over a"
            " Ray cluster; needs the ray extra and the home on storage every node reaches).",
        ),
    ] = "uvicorn",
    replicas: Annotated[
        int | None,
        typer.Option(min=1, help="Ray Serve replicas (with --engine ray). [default: 1]"),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="The Ray cluster to serve on (with --engine ray): auto, HEAD:6379."
            " Default: a local Ray instance started for the server.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the REST API (ask, documents, feedback, labels, models, /metrics; docs at /docs)."""
    from api.server import ENGINES, check_engine
    from api.server import serve as serve_api
    from pipelines.operations.ray_cluster import RayError

    if engine not in ENGINES:
        raise fail(f"--engine must be one of {', '.join(ENGINES)}", 2)
    if engine != "ray":
        for given, option in ((replicas, "--replicas"), (address, "--address")):
            if given is not None:
                raise fail(f"{option} needs --engine ray", 2)
    elif workers is not None:
        raise fail("--workers is for --engine uvicorn: Ray Serve scales with --replicas", 2)
    try:
        check_engine(engine)
    except RayError as exc:
        raise fail(str(exc)) from exc
    settings = settings_from(home)
    where = f"http://{host}:{port}"
    if engine == "ray":
        where += f" on Ray Serve, {replicas or 1} replica(s)"
    typer.echo(f"DocQA API at {where} (docs: /docs; Ctrl+C stops it)")
    try:
        serve_api(
            settings,
            host=host,
            port=port,
            workers=workers,
            engine=engine,
            replicas=replicas,
            address=address,
        )
    except RayError as exc:
        raise fail(str(exc)) from exc


app.add_typer(users_app, name="users")
app.add_typer(access_app, name="access")
app.add_typer(keys_app, name="keys")
app.command("audit")(audit)
app.command("train-verifier")(train_verifier)
app.command()(backup)
app.command()(restore)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
