"""The reader campaign's data: the full pool, its held-out articles, and every epoch of the
schedule laid out in training order (see :mod:`reader_training.campaign`).

Epoch ``e`` is the training pool plus hard unanswerables drawn with seed ``e``, tokenized with
its own choice of answerless windows and ordered in length-grouped batches; the last epochs are
shared-normalization groups packed whole into batches. Each epoch is cut or padded to the first
epoch's size, so window ``i`` of the schedule is always the same window. Epochs are built when
the cursor reaches them and cached on disk (int32/int16 tensors).
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from evaluation.squad import SquadExample, load_squad, write_json_atomic
from reader_training.features import FeatureParams, prepare_train_features, save_tensors_atomic
from reader_training.hard_negatives import ArticleIndex, hard_negatives
from reader_training.recipes import BaseRecipe, PoolPart, build_base_pool
from reader_training.shared_norm import pack_groups

if TYPE_CHECKING:
    from reader_training.campaign_spec import CampaignSpec, CampaignState

logger = logging.getLogger(__name__)

# The full permissive pool: every question of every file (the 16 SQuAD evaluation articles are
# removed by build_base_pool).
FULL_POOL = (
    PoolPart("squad/dev-v1.1.json"),
    PoolPart("squad-shifts/new_wiki_v1.0.json"),
    PoolPart("tydiqa-en/train.json"),
    PoolPart("tydiqa-en/dev.json"),
    PoolPart("squad-shifts/amazon_reviews_v1.0.json"),
    PoolPart("squad-shifts/reddit_v1.0.json"),
    PoolPart("covid-qa/covid-qa-200423.json"),
)


class CampaignData:
    """The pool, its held-out articles, and each epoch's windows (built on first use, cached)."""

    def __init__(self, folder: Path, shared_data: Path, spec: CampaignSpec, tokenizer: Any):
        self.folder = folder
        self.spec = spec
        self.tokenizer = tokenizer
        pool_file = folder / "pool.json"
        if not pool_file.is_file():
            counts = build_base_pool(shared_data, BaseRecipe(parts=FULL_POOL), pool_file)
            write_json_atomic(counts, folder / "pool_counts.json")
        examples, _ = load_squad(pool_file)
        from reader_training.train import split_holdout

        self.train, heldout = split_holdout(examples, spec.holdout_fraction, spec.seed)
        rng = random.Random(spec.seed)
        if len(heldout) > spec.max_holdout_questions:
            heldout = rng.sample(heldout, spec.max_holdout_questions)
        # Held-out unanswerables of the same kinds, so the threshold is chosen on hard ones too.
        negatives = hard_negatives(heldout, len(heldout) // 2, spec.seed + 7919, spec.negative_mix)
        self.heldout = heldout + [n.example for n in negatives]
        self._epoch: tuple[int, dict[str, torch.Tensor]] | None = None

    def _params(self, epoch: int) -> FeatureParams:
        s = self.spec
        return FeatureParams(s.max_seq_length, s.doc_stride, s.max_negative_windows, s.seed + epoch)

    def is_grouped(self, epoch: int) -> bool:
        """Whether ``epoch`` trains with shared normalization (the schedule's last epochs)."""
        return epoch >= math.ceil(self.spec.epochs) - self.spec.shared_norm_epochs

    def build_epoch(self, epoch: int, size: int | None = None) -> dict[str, torch.Tensor]:
        """Epoch ``epoch``'s windows in training order, unsized (a grouped epoch is built to
        about ``size`` windows)."""
        if self.is_grouped(epoch):
            return self.build_grouped_epoch(epoch, size)
        answerable = prepare_train_features(self.train, self.tokenizer, self._params(epoch))
        n_ans = int(answerable["input_ids"].shape[0])
        share = self.spec.unanswerable_share
        wanted = round(n_ans * share / (1 - share))
        negatives = hard_negatives(
            self.train, wanted, self.spec.seed * 1000 + epoch, self.spec.negative_mix
        )
        unanswerable = prepare_train_features(
            [n.example for n in negatives],
            self.tokenizer,
            FeatureParams(self.spec.max_seq_length, self.spec.doc_stride, 1, self.spec.seed),
        )
        kinds: dict[str, int] = {}
        for n in negatives:
            kinds[n.kind] = kinds.get(n.kind, 0) + 1
        logger.info(
            "epoch %d: %d answerable-question windows, %d unanswerable (%s)",
            epoch,
            n_ans,
            int(unanswerable["input_ids"].shape[0]),
            kinds,
        )
        feats = {k: _compact(torch.cat([answerable[k], unanswerable[k]]), k) for k in answerable}
        generator = torch.Generator()
        generator.manual_seed(self.spec.seed * 1000 + epoch)
        order = list(
            LengthGroupedSampler(
                self.spec.batch_size,
                lengths=feats["attention_mask"].sum(dim=1).tolist(),
                generator=generator,
            )
        )
        index = torch.tensor(order, dtype=torch.long)
        return {k: v[index] for k, v in feats.items()}

    def build_grouped_epoch(self, epoch: int, size: int | None) -> dict[str, torch.Tensor]:
        """A shared-normalization epoch: question groups packed whole into batches.

        Each answerable question's group is its own window(s) and the windows of the question
        over its ``shared_norm_distractors`` BM25-nearest paragraphs of the same article that
        lack the answer (what a retriever would return beside the gold passage). Half the usual
        share of hard unanswerables is kept, as groups of one (the distractor windows teach "no
        answer" too). As many groups as fit ``size`` windows are drawn at random.
        """
        spec = self.spec
        seed = spec.seed * 1000 + epoch
        rng = random.Random(seed)
        articles = ArticleIndex(self.train)
        members: list[SquadExample] = []
        member_group: list[int] = []
        answerable = [ex for ex in self.train if ex.answers]
        rng.shuffle(answerable)
        for g, ex in enumerate(answerable):
            members.append(ex)
            member_group.append(g)
            for j, context in enumerate(articles.nearest(ex, spec.shared_norm_distractors)):
                members.append(
                    SquadExample(f"{ex.id}-d{j}", ex.title, context, ex.question, (), "retrieved")
                )
                member_group.append(g)
        grouped = prepare_train_features(
            members, self.tokenizer, self._params(epoch), with_example_index=True
        )
        groups = torch.tensor(member_group, dtype=torch.long)[grouped.pop("example_index")]
        n_grouped = int(groups.shape[0])
        target = size or n_grouped
        n_unanswerable = round(target * spec.unanswerable_share / 2)
        negatives = hard_negatives(self.train, n_unanswerable, seed, spec.negative_mix)
        single = prepare_train_features(
            [n.example for n in negatives],
            self.tokenizer,
            FeatureParams(spec.max_seq_length, spec.doc_stride, 1, spec.seed),
        )
        n_single = int(single["input_ids"].shape[0])
        feats = {k: torch.cat([grouped[k], single[k]]) for k in grouped}
        # Group ids: questions 0..G-1, then every unanswerable window a group of its own.
        first_single = int(groups.max()) + 1 if n_grouped else 0
        groups = torch.cat([groups, first_single + torch.arange(n_single)])
        lengths = feats["attention_mask"].sum(dim=1)
        rows_of: dict[int, list[int]] = defaultdict(list)
        for row, g in enumerate(groups.tolist()):
            rows_of[g].append(row)
        keys = sorted(rows_of)
        # Keep whole groups, in random order, until the epoch's size is reached.
        rng.shuffle(keys)
        kept, total = [], 0
        for g in keys:
            if size is not None and total + len(rows_of[g]) > size:
                continue
            kept.append(g)
            total += len(rows_of[g])
        batches = pack_groups(
            [len(rows_of[g]) for g in kept],
            [int(lengths[rows_of[g]].max()) for g in kept],
            spec.batch_size,
            seed,
        )
        order = [row for batch in batches for i in batch for row in rows_of[kept[i]]]
        index = torch.tensor(order, dtype=torch.long)
        logger.info(
            "epoch %d (shared normalization): %d question groups, %d unanswerable windows, "
            "%d windows",
            epoch,
            sum(1 for g in kept if g < first_single),
            sum(1 for g in kept if g >= first_single),
            len(order),
        )
        out = {k: _compact(v[index], k) for k, v in feats.items()}
        out["group"] = groups[index]
        return out

    def epoch(self, epoch: int, size: int | None) -> dict[str, torch.Tensor]:
        """Epoch ``epoch`` cut or padded (with its own windows again) to ``size`` windows."""
        if self._epoch is not None and self._epoch[0] == epoch:
            return self._epoch[1]
        path = self.folder / "features" / f"epoch-{epoch}.pt"
        feats = torch.load(path) if path.is_file() else None
        if feats is not None and self.is_grouped(epoch) != ("group" in feats):
            logger.info("%s was built for another layout; building it again", path)
            feats = None
        if feats is None:
            feats = self.build_epoch(epoch, size)
            if size is not None:
                feats = _resize(feats, size, self.spec.seed + epoch)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_tensors_atomic(feats, path)
            # Only the epoch being read is kept on disk (each is some hundreds of MB).
            for old in path.parent.glob("epoch-*.pt"):
                if old != path and int(old.stem.split("-")[1]) < epoch:
                    old.unlink(missing_ok=True)
        self._epoch = (epoch, feats)
        return feats


def _compact(values: torch.Tensor, key: str) -> torch.Tensor:
    """Token ids in int32, everything else (masks, positions < 512) in int16: a third of int64."""
    return values.to(torch.int32 if key == "input_ids" else torch.int16)


def _resize(feats: dict[str, torch.Tensor], size: int, seed: int) -> dict[str, torch.Tensor]:
    n = int(feats["input_ids"].shape[0])
    if n >= size:
        return {k: v[:size] for k, v in feats.items()}
    extra = torch.randint(0, n, (size - n,), generator=torch.Generator().manual_seed(seed))
    padded = {k: torch.cat([v, v[extra]]) for k, v in feats.items()}
    if "group" in padded:  # a repeated window trains on its own, not with a group elsewhere
        padded["group"][n:] = -1
    return padded


class ScheduleDataset(torch.utils.data.Dataset):
    """Windows ``first_window ..`` of the whole schedule, read in order."""

    def __init__(self, data: CampaignData, state: CampaignState, first_window: int) -> None:
        self.data = data
        self.state = state
        self.first_window = first_window
        self.length = state.total_steps * state.spec.batch_size - first_window

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        w = self.first_window + i
        epoch, j = divmod(w, self.state.epoch_windows)
        feats = self.data.epoch(epoch, self.state.epoch_windows)
        item = {k: v[j].long() for k, v in feats.items()}
        item.setdefault("group", torch.tensor(-1))  # every batch has the same keys
        return item
