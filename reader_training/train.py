"""Fine-tune an extractive reader on SQuAD-format pairs with transformers' ``Trainer``.

One call of :func:`train_reader` validates the files, holds out whole articles for early stopping
and for choosing the no-answer threshold, tokenizes (cached), trains (bf16 autocast on CPUs that
support it, fp16/bf16 on GPU), and writes a complete model folder atomically: safetensors,
tokenizer, ``docqa_reader.json`` (threshold and window sizes), ``metrics.json`` and a model card.
Checkpoints live in a work folder beside it so that ``resume=True`` continues a stopped run.

The no-answer threshold is chosen on the held-out pairs only when they hold enough questions of
both kinds (:func:`threshold_choice`); otherwise the run keeps the threshold of the reader it
started from, and every evaluation (early stopping, the best checkpoint, the reported held-out
F1) scores the weights at that threshold: the one they will serve with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint

from evaluation.reader_metrics import best_threshold, metric_rows, predict, squad_metrics
from evaluation.squad import SquadExample, ValidationReport, load_many
from pipelines.allocator import keep_freed_memory
from pipelines.reader import ReaderConfig, SpanPredictor, cpu_supports_bf16
from pipelines.reader_registry import recover_model_folder
from pipelines.verifier import VERIFIER_FILE
from reader_training.augment import synthetic_negatives
from reader_training.dropout import use_cpu_dropout
from reader_training.features import (
    FeatureDataset,
    FeatureParams,
    cached_train_features,
    collate_trimmed,
)
from reader_training.train_config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict[str, Any]
    report: ValidationReport
    heldout: list[SquadExample] = field(default_factory=list)  # the pairs it was measured on


def _title_hash(title: str, seed: int) -> float:
    return int(hashlib.sha1(f"{seed}:{title}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_holdout(
    examples: Sequence[SquadExample], fraction: float, seed: int
) -> tuple[list[SquadExample], list[SquadExample]]:
    """Hold out whole articles (titles) so held-out questions never share a context with training.

    With a single article, questions are held out instead (still deterministic).
    """
    titles = {ex.title for ex in examples}
    if len(titles) >= 2:
        held = {t for t in titles if _title_hash(t, seed) < fraction}
        if not held:  # a small set: hold out the one article closest to the cut
            held = {min(titles, key=lambda t: _title_hash(t, seed))}
        key = [ex.title in held for ex in examples]
    else:
        key = [_title_hash(ex.id, seed) < fraction for ex in examples]
    train = [ex for ex, h in zip(examples, key, strict=True) if not h]
    held_out = [ex for ex, h in zip(examples, key, strict=True) if h]
    return train, held_out


# A threshold is chosen on held-out pairs only when they hold at least this many answerable and
# this many unanswerable questions. The F1-best cut sits where the two kinds' margins overlap, in
# the gap between two held-out margins; with n questions of a kind, one of them moves that kind's
# F1 by 100/n points, so with a handful the cut is set by one or two questions (issue 28: two
# held-out questions, both answerable, put it at -12.25 and halved HasAns F1 on 60 others). At 20
# of each, one question is 5 points of its kind and 2.5 of both, and the share of a kind on the
# wrong side of the cut has a standard error of about 9 points (at a 20% share): the coarsest
# estimate worth trading the starting reader's threshold for, chosen on a larger set. Every
# recipe's held-out set clears it (the domain stage holds out 95 answerable and 25 unanswerable
# demo pairs; the campaign 800 SQuAD questions); a user's few dozen new pairs do not.
MIN_THRESHOLD_QUESTIONS = 20


@dataclass(frozen=True)
class ThresholdChoice:
    """Whether a run chooses its no-answer threshold on its held-out pairs, and why."""

    choose: bool
    start: float  # the starting reader's threshold, served when ``choose`` is False
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen_on_heldout": self.choose,
            "starting_reader_threshold": self.start,
            "reason": self.reason,
        }


def threshold_choice(
    heldout: Sequence[SquadExample], start_threshold: float, minimum: int = MIN_THRESHOLD_QUESTIONS
) -> ThresholdChoice:
    """Choose on ``heldout`` if it holds ``minimum`` questions of each kind, else keep
    ``start_threshold`` (the starting reader's; 0.0 for a bare encoder, whose span head then
    answers when its best span outscores "no answer", the rule it was trained with).

    Why keep rather than choose on held-out pairs pooled with held-out replayed pairs: replayed
    pairs are, by definition, pairs the starting reader learned (:mod:`reader_training.start`),
    so their margins sit far from the cut and would place it by questions the weights were
    trained on; the part of the demo pairs the shipped reader did not train on is the set its
    own threshold was chosen on, which keeping reuses at no cost. A short continued run moves the
    weights little, so their margins keep the starting reader's scale.
    """
    has = sum(1 for ex in heldout if ex.answers)
    no = len(heldout) - has
    counts = f"{len(heldout)} held-out questions ({has} answerable, {no} unanswerable)"
    if has >= minimum and no >= minimum:
        return ThresholdChoice(True, start_threshold, f"chosen on the {counts}")
    return ThresholdChoice(
        False,
        start_threshold,
        f"kept from the starting reader: the {counts} are too few to choose one (at least "
        f"{minimum} of each kind)",
    )


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # AMX / AVX-512 bf16 make bf16 autocast faster than fp32 on CPU; on AVX2-only CPUs it is
    # about 25x slower (measured on an AMD EPYC here), so it must not be the default there.
    return "bf16" if cpu_supports_bf16() else "fp32"


class _JsonLinesLog(TrainerCallback):
    """Writes every Trainer log record as one JSON line (loss, learning rate, eval metrics)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
    ) -> None:
        if not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


class _QATrainer(Trainer):
    """A Trainer whose evaluation decodes spans and scores held-out F1 like the official script."""

    def __init__(
        self,
        *args: Any,
        heldout: list[SquadExample],
        reader_config: ReaderConfig,
        precision: str,
        serving_threshold: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.heldout = heldout
        self.reader_config = reader_config
        self.precision = precision
        # None: choose the threshold on the held-out pairs; else score at this one (kept).
        self.serving_threshold = serving_threshold
        self.last_eval: dict[str, Any] = {}

    @classmethod
    def over_windows(
        cls,
        model: Any,
        args: TrainingArguments,
        dataset: Any,
        tokenizer: Any,
        heldout: list[SquadExample],
        reader_config: ReaderConfig,
        precision: str,
        callbacks: Sequence[TrainerCallback],
        serving_threshold: float | None = None,
        cpu_dropout: bool = False,
    ) -> Any:
        """A trainer over tokenized windows (trimmed batches), evaluated on held-out pairs at the
        threshold chosen on them, or at ``serving_threshold`` when one is kept. With
        ``cpu_dropout`` (for a model that trains on a CPU) the model draws
        :mod:`reader_training.dropout`'s cheaper dropout masks."""
        if cpu_dropout:
            use_cpu_dropout(model)
        return cls(
            model=model,
            args=args,
            train_dataset=dataset,
            eval_dataset=dataset,  # unused: evaluate() reads the held-out pairs
            data_collator=collate_trimmed,
            processing_class=tokenizer,
            heldout=heldout,
            reader_config=reader_config,
            precision=precision,
            callbacks=list(callbacks),
            serving_threshold=serving_threshold,
        )

    def qa_evaluate(self) -> dict[str, Any]:
        model = self.model
        model.eval()
        predictor = SpanPredictor.from_objects(
            model,
            self.processing_class,
            self.reader_config,
            cpu_precision="bf16" if self.precision == "bf16" else "fp32",
        )
        preds = predict(predictor, self.heldout, progress=False)
        # Margins here exclude the threshold: answer where margin > cut, i.e. cut = -threshold.
        best_cut, best_f1 = best_threshold(self.heldout, preds.best_spans, preds.margins)
        cut = best_cut if self.serving_threshold is None else -self.serving_threshold
        metrics = squad_metrics(self.heldout, preds.answers(cut))
        metrics["threshold"] = -cut
        metrics["best_f1"] = best_f1  # for information: chosen on these very pairs
        metrics["best_threshold"] = -best_cut
        has = [ex for ex in self.heldout if ex.answers]
        if has:
            metrics["HasAns_f1_best_span"] = squad_metrics(has, preds.best_spans)["f1"]
        model.train()
        self.last_eval = metrics
        return metrics

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        # Batches of similar length, so collate_trimmed can cut most of the padding. Trainer's
        # own group_by_length would measure the stored (padded) windows, all of one length.
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not isinstance(dataset, FeatureDataset):
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator()
        generator.manual_seed(self.args.seed)
        return LengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=dataset.lengths(),
            generator=generator,
        )

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        metrics = {
            f"{metric_key_prefix}_{k}": float(v)
            for k, v in self.qa_evaluate().items()
            if isinstance(v, int | float)
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics


def training_arguments(
    output_dir: Path,
    *,
    precision: str,
    learning_rate: float,
    batch_size: int,
    weight_decay: float,
    eval_steps: int,
    save_steps: int,
    logging_steps: int,
    seed: int,
    progress: bool,
    **schedule: Any,
) -> TrainingArguments:
    """The one place DocQA's trainings (``train_reader`` and the campaign) configure Trainer:
    evaluation and checkpoints by steps (two kept), ``precision`` from
    :func:`resolve_precision`, the CPU unless CUDA is there, no reporting, data loaded in the
    training process. ``schedule`` holds what differs between them (epochs or max steps,
    warm-up, gradient accumulation, the metric for the best checkpoint)."""
    return TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        weight_decay=weight_decay,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        # The best checkpoint is reloaded with from_pretrained, which maps legacy weight names
        # (LayerNorm gamma/beta) that Trainer's own state-dict reload would drop.
        load_best_model_at_end=False,
        logging_steps=logging_steps,
        report_to="none",
        seed=seed,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        **schedule,
    )


def _load_training_examples(
    config: TrainConfig,
) -> tuple[list[SquadExample], list[SquadExample], ValidationReport]:
    examples, report = load_many(config.train_files)
    logger.info("training data: %s", report.summary())
    if not examples:
        raise ValueError("no usable training questions in " + ", ".join(config.train_files))
    if config.holdout_files:
        heldout, rep = load_many(config.holdout_files)
        report.merge(rep)
        train = examples
    else:
        train, heldout = split_holdout(examples, config.holdout_fraction, config.seed)
    rng = random.Random(config.seed)
    if config.max_train_examples and len(train) > config.max_train_examples:
        train = rng.sample(train, config.max_train_examples)
    if config.replay_files and config.replay_ratio > 0:
        replay, rep = load_many(config.replay_files)
        report.merge(rep)
        # A replayed pair asking a question of this run (trained or held out) would train twice
        # on it, or leak a held-out answer into training.
        asked = {_question_key(ex) for ex in (*examples, *heldout)}
        replay = [ex for ex in replay if _question_key(ex) not in asked]
        n = min(len(replay), round(config.replay_ratio * len(train)))
        train = train + rng.sample(replay, n)
        logger.info("replaying %d base examples", n)
    if config.synthetic_negatives > 0:
        train = train + synthetic_negatives(train, config.synthetic_negatives, config.seed)
        if not any(not ex.answers for ex in heldout):
            heldout = heldout + synthetic_negatives(heldout, 0.5, config.seed + 1)
    if len(heldout) > config.max_holdout_questions:
        heldout = rng.sample(heldout, config.max_holdout_questions)
    rng.shuffle(train)
    return train, heldout, report


def _question_key(example: SquadExample) -> str:
    return " ".join(example.question.lower().split())


def train_reader(
    config: TrainConfig, progress: bool = True, callbacks: Sequence[TrainerCallback] = ()
) -> TrainResult:
    """Train, pick the no-answer threshold on held-out pairs (or keep the starting reader's when
    they are too few: :func:`threshold_choice`), and write the model folder.

    ``callbacks`` are extra ``TrainerCallback`` objects (progress reporting, stopping early).
    """
    started = time.time()
    out = Path(config.output_dir)
    work = out.parent / f".{out.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    checkpoints = work / "checkpoints"
    resume_from = (
        get_last_checkpoint(str(checkpoints)) if config.resume and checkpoints.is_dir() else None
    )
    if resume_from is None:
        # A fresh run must neither resume later from a stale run's checkpoints nor mix its
        # losses into that run's log.
        shutil.rmtree(checkpoints, ignore_errors=True)
        (work / "train_log.jsonl").unlink(missing_ok=True)
    train, heldout, report = _load_training_examples(config)
    precision = resolve_precision(config.precision)
    logger.info(
        "%d training examples, %d held out, precision %s", len(train), len(heldout), precision
    )
    # A reader continued from a trained one keeps its tuned ranking settings (retriever weight,
    # null offset and scope), and its no-answer threshold unless the held-out pairs can choose one.
    start_config = ReaderConfig.load(config.base_model)
    choice = threshold_choice(heldout, start_config.no_answer_threshold)
    logger.info("no-answer threshold: %s", choice.reason)

    # Seed before the model is built: the new QA head is initialized from the global RNG, and
    # Trainer seeds only later, so the same config would otherwise give a different model.
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    # Resuming: build the model from the checkpoint. Trainer's own reload is a strict=False
    # state-dict load that skips legacy weight names (LayerNorm gamma/beta, which save_pretrained
    # keeps), so those layers would silently restart from the base model. A LoRA checkpoint holds
    # only the adapter, which Trainer does restore.
    weights = resume_from if resume_from and not config.lora else config.base_model
    # fp32 master weights whatever the stored precision: the shipped reader is stored in fp16,
    # which trains about 11x slower on a CPU (autocast does the mixed precision where it pays).
    keep_freed_memory()
    model = AutoModelForQuestionAnswering.from_pretrained(weights, dtype=torch.float32)
    params = FeatureParams(
        config.max_seq_length, config.doc_stride, config.max_negative_windows, config.seed
    )
    features = cached_train_features(train, tokenizer, params, out.parent / ".feature-cache")
    dataset = FeatureDataset(features)
    logger.info("%d training windows", len(dataset))
    if config.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.QUESTION_ANS,
                r=config.lora_rank,
                lora_alpha=2 * config.lora_rank,
                lora_dropout=0.05,
                target_modules=["query", "key", "value", "dense"],
            ),
        )

    steps_per_epoch = max(1, len(dataset) // (config.batch_size * config.gradient_accumulation))
    eval_steps = config.eval_steps or steps_per_epoch
    args = training_arguments(
        work / "checkpoints",
        precision=precision,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        eval_steps=eval_steps,
        save_steps=eval_steps,  # save with every evaluation so the best can be reloaded
        logging_steps=max(1, min(50, steps_per_epoch // 4)),
        seed=config.seed,
        progress=progress,
        num_train_epochs=config.epochs,
        gradient_accumulation_steps=config.gradient_accumulation,
        warmup_steps=config.warmup,
        metric_for_best_model="f1",
        greater_is_better=True,
    )
    reader_config = ReaderConfig(max_seq_length=config.max_seq_length, doc_stride=config.doc_stride)
    cpu_masks = config.cpu_dropout and args.use_cpu  # on a GPU torch's dropout is fast
    trainer = _QATrainer.over_windows(
        model,
        args,
        dataset,
        tokenizer,
        heldout,
        reader_config,
        precision,
        [
            EarlyStoppingCallback(config.early_stopping_patience),
            _JsonLinesLog(work / "train_log.jsonl"),
            *callbacks,
        ],
        serving_threshold=None if choice.choose else choice.start,
        cpu_dropout=cpu_masks,
    )
    train_out = trainer.train(resume_from_checkpoint=resume_from)
    model = trainer.model
    best_ckpt = trainer.state.best_model_checkpoint
    # Compare the best checkpoint with the model as it ended, not with the last evaluation:
    # steps after that evaluation may have made it better.
    final_step_eval = trainer.last_eval
    if not final_step_eval or trainer.state.global_step % eval_steps:
        final_step_eval = trainer.qa_evaluate()
    final: dict[str, Any] | None = final_step_eval
    if best_ckpt and final_step_eval.get("f1", 0.0) < (trainer.state.best_metric or 0.0):
        logger.info(
            "reloading the best checkpoint %s (F1 %.2f)", best_ckpt, trainer.state.best_metric
        )
        if config.lora:
            from peft import PeftModel

            base = AutoModelForQuestionAnswering.from_pretrained(
                config.base_model, dtype=torch.float32
            )
            model = PeftModel.from_pretrained(base, best_ckpt)
        else:
            model = AutoModelForQuestionAnswering.from_pretrained(best_ckpt, dtype=torch.float32)
        trainer.model = model
        final = None
    if config.lora:
        model = model.merge_and_unload()
        trainer.model = model
        final = None
    if final is None:
        final = trainer.qa_evaluate()
    seconds = time.time() - started
    metrics = {
        "heldout": final,
        "threshold_choice": choice.to_dict(),
        "train_examples": len(train),
        "train_windows": len(dataset),
        "heldout_questions": len(heldout),
        "train_seconds": round(seconds, 1),
        "train_windows_per_second": round(
            len(dataset)
            * config.epochs
            / max(1e-9, train_out.metrics.get("train_runtime", seconds)),
            2,
        ),
        "training_loss": train_out.training_loss,
        "precision": precision,
        "dropout": "reader_training.dropout" if cpu_masks else "torch",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "validation": report.to_dict() | {"skipped": len(report.skipped)},
    }
    write_model_folder(
        model,
        tokenizer,
        dataclasses.replace(
            start_config,
            no_answer_threshold=final["threshold"],
            max_seq_length=config.max_seq_length,
            doc_stride=config.doc_stride,
        ),
        out,
        config,
        metrics,
    )
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    return TrainResult(out, metrics, report, heldout)


def write_model_folder(
    model: Any,
    tokenizer: Any,
    reader_config: ReaderConfig,
    out: Path,
    config: TrainConfig,
    metrics: dict[str, Any],
) -> None:
    """Write weights, tokenizer, reader config, metrics and card to a temp folder, then rename.

    A model folder either is complete or does not exist; an existing folder of the same name is
    replaced only after the new one is fully written.
    """
    recover_model_folder(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        to_save = model.half() if config.save_fp16 else model
        to_save.save_pretrained(tmp, safe_serialization=True)
        if config.save_fp16:
            model.float()
        tokenizer.save_pretrained(tmp)
        reader_config.save(tmp)
        # The starting reader's answer verifier goes with it: its features leave out the
        # no-answer threshold, so it ranks a retrained reader's spans too (docqa train-verifier
        # fits a new one).
        start_verifier = Path(config.base_model) / VERIFIER_FILE
        if start_verifier.is_file():
            shutil.copy2(start_verifier, tmp / VERIFIER_FILE)
        meta = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": asdict(config),
            "metrics": metrics,
        }
        (tmp / "metrics.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(
            model_card(config, metrics, meta["created"]), encoding="utf-8"
        )
    except BaseException:
        # A failed write must not leave a half-written folder behind (the old one is untouched).
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote reader to %s", out)


def model_card(config: TrainConfig, metrics: dict[str, Any], created: str) -> str:
    held = metrics.get("heldout", {})
    lines = [
        f"# DocQA reader: {Path(config.output_dir).name}",
        "",
        config.description or "An extractive question-answering reader trained with `docqa train`.",
        "",
        f"- Created: {created}",
        f"- Base model: `{config.base_model}`",
        f"- Training data: {', '.join(config.train_files)}",
        f"- Replay: {', '.join(config.replay_files) or 'none'} (ratio {config.replay_ratio})",
        f"- Synthetic unanswerables per answerable example: {config.synthetic_negatives}",
        f"- Examples / windows: {metrics.get('train_examples')} / {metrics.get('train_windows')}",
        f"- Hyperparameters: lr {config.learning_rate}, epochs {config.epochs}, batch "
        f"{config.batch_size}x{config.gradient_accumulation}, warm-up {config.warmup}, "
        f"weight decay "
        f"{config.weight_decay}, max length {config.max_seq_length}, stride {config.doc_stride}, "
        f"seed {config.seed}, LoRA {config.lora}, precision {metrics.get('precision')}, "
        f"dropout masks {metrics.get('dropout')}",
        f"- Training time: {metrics.get('train_seconds')} s on {metrics.get('device')} "
        f"({metrics.get('train_windows_per_second')} windows/s)",
        "",
        "## Held-out metrics (articles never trained on; at the threshold the reader serves with)",
        "",
        "| split | EM | F1 | n |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {em:.2f} | {f1:.2f} | {n} |" for name, em, f1, n in metric_rows(held)]
    lines.append(f"\nNo-answer threshold: {held.get('threshold', 0.0):.3f}")
    if "threshold_choice" in metrics:
        lines[-1] += f" ({metrics['threshold_choice']['reason']})"
    for key, value in config.extra_card.items():
        lines += ["", f"## {key}", "", str(value)]
    return "\n".join(lines) + "\n"
