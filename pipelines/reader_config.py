"""A trained reader's decoding settings, saved beside its weights as ``docqa_reader.json``: the
no-answer threshold, windows, answer length and the ranking across passages tuned for it. Below
the modules that read with a reader (:mod:`pipelines.spans`, :mod:`pipelines.span_predictor`),
so they share it without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipelines.store.versions import write_atomic

READER_CONFIG_FILE = "docqa_reader.json"
NULL_SCOPES = ("window", "question")
ANSWER_POOLINGS = ("max", "noisy_or")


@dataclass(frozen=True)
class AnswerRanking:
    """How answers are ranked across passages, besides the reader's own scoring: the settings
    :func:`pipelines.spans.rank_answers` takes, tuned end to end on held-out pairs (``docqa
    tune-weight``) and kept in the reader's ``docqa_reader.json`` (one place, so the query
    pipeline, evaluation and tuning rank the same way)."""

    retriever_weight: float = 0.0  # the retriever's share of an answer's score
    # Subtracted from every margin when answers are ranked across retrieved passages: "no
    # answer" competes with the best span of k passages, a max that grows with k (open SQuAD
    # NoAns F1 falls as k grows). Tuned with the weight.
    open_null_offset: float = 0.0
    # Where "no answer" is decided across passages: "window" judges each span against its own
    # window's null logit (so the best of k passages grows with k); "question" judges every span
    # against one null for the question, the mean null logit of the passages read (the null a
    # shared-normalization reader is trained with).
    null_scope: str = "window"
    # How spans of the same text from several passages score: "max" (the best one) or
    # "noisy_or" (evidence combined).
    answer_pooling: str = "max"
    # Margins of the passage retrieved r-th lowered by rank_prior * ln(r) (0: off): a span from
    # a low-ranked passage needs more evidence to beat better-ranked spans and "no answer".
    rank_prior: float = 0.0

    def __post_init__(self) -> None:
        if self.null_scope not in NULL_SCOPES:
            raise ValueError(f"null_scope must be one of {NULL_SCOPES}, not {self.null_scope!r}")
        if self.answer_pooling not in ANSWER_POOLINGS:
            raise ValueError(
                f"answer_pooling must be one of {ANSWER_POOLINGS}, not {self.answer_pooling!r}"
            )

    def with_weight(self, retriever_weight: float | None) -> AnswerRanking:
        """This ranking with another retriever weight (None: this one's)."""
        if retriever_weight is None:
            return self
        return replace(self, retriever_weight=retriever_weight)

    def plain(self) -> AnswerRanking:
        """Just the settings (a subclass that carries tuning results, as a plain ranking)."""
        return AnswerRanking(**{f.name: getattr(self, f.name) for f in fields(AnswerRanking)})


_RANKING_KEYS = tuple(f.name for f in fields(AnswerRanking))


@dataclass(frozen=True)
class ReaderConfig:
    """Decoding settings saved beside a trained reader (``docqa_reader.json``)."""

    no_answer_threshold: float = 0.0  # added to span-minus-null margins; tuned on held-out pairs
    temperature: float = 2.0
    max_seq_length: int = 384
    doc_stride: int = 128
    max_answer_tokens: int = 30
    max_answer_chars: int = 300  # an answer is a span a person reads, never a whole blob
    # The ranking across passages, tuned for this reader (its fields are stored flat in
    # docqa_reader.json, beside the others).
    ranking: AnswerRanking = field(default_factory=AnswerRanking)
    # A cascade (0: off): read the best ``cascade_passages`` passages first and stop there when
    # their top answer, or "no answer", scores at least ``cascade_min_score`` (the verifier's
    # score where the reader has one); read the rest otherwise. Reading costs time in proportion
    # to the passages read.
    cascade_passages: int = 0
    cascade_min_score: float = 1.0
    # Spans widened to whole words and code tokens (pipelines.spans.widen_to_words): a reader
    # that stops inside "SQLITE_MISUSE" answers "MISUSE".
    whole_words: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReaderConfig:
        """The config a ``docqa_reader.json`` holds (unknown keys ignored: a newer release's)."""
        ranking = AnswerRanking(**{k: data[k] for k in _RANKING_KEYS if k in data})
        own = {f.name for f in fields(cls)} - {"ranking"}
        return cls(**{k: v for k, v in data.items() if k in own}, ranking=ranking)

    def to_dict(self) -> dict[str, Any]:
        """The flat dict ``docqa_reader.json`` holds."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ranking"}
        return {**data, **asdict(self.ranking.plain())}

    @classmethod
    def load(cls, model_dir: str | Path) -> ReaderConfig:
        path = Path(model_dir) / READER_CONFIG_FILE
        if not path.is_file():
            return cls()
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def save(self, model_dir: str | Path) -> None:
        path = Path(model_dir) / READER_CONFIG_FILE
        # A model folder is never left with half a config.
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")


def save_ranking(model_dir: str | Path, ranking: AnswerRanking) -> None:
    """Write ``ranking`` into a reader's ``docqa_reader.json`` (the rest kept)."""
    replace(ReaderConfig.load(model_dir), ranking=ranking.plain()).save(model_dir)
