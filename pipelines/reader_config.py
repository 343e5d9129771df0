"""A trained reader's decoding settings, saved beside its weights as ``docqa_reader.json``: the
no-answer threshold, windows, answer length and the ranking across passages tuned for it. Below
the modules that read with a reader (:mod:`pipelines.spans`, :mod:`pipelines.span_predictor`),
so they share it without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.store.versions import write_atomic

READER_CONFIG_FILE = "docqa_reader.json"


@dataclass(frozen=True)
class ReaderConfig:
    """Decoding settings saved beside a trained reader (``docqa_reader.json``)."""

    no_answer_threshold: float = 0.0  # added to span-minus-null margins; tuned on held-out pairs
    temperature: float = 2.0
    max_seq_length: int = 384
    doc_stride: int = 128
    max_answer_tokens: int = 30
    max_answer_chars: int = 300  # an answer is a span a person reads, never a whole blob
    retriever_weight: float = 0.0  # tuned end to end on held-out pairs (docqa tune-weight)
    # Subtracted from every margin when answers are ranked across retrieved passages: "no
    # answer" competes with the best span of k passages, a max that grows with k (open SQuAD
    # NoAns F1 falls as k grows: README). Tuned with the weight.
    open_null_offset: float = 0.0
    # Where "no answer" is decided across passages: "window" judges each span against its own
    # window's null logit (so the best of k passages grows with k); "question" judges every span
    # against one null for the question, the mean null logit of the passages read (the null a
    # shared-normalization reader is trained with). Tuned with the weight on held-out pairs.
    null_scope: str = "window"
    # How spans of the same text from several passages score: "max" (the best one) or
    # "noisy_or" (evidence combined; pipelines.spans.rank_answers).
    answer_pooling: str = "max"
    # Margins of the passage retrieved r-th lowered by rank_prior * ln(r) (0: off): a span from
    # a low-ranked passage needs more evidence to beat better-ranked spans and "no answer".
    rank_prior: float = 0.0
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
    def load(cls, model_dir: str | Path) -> ReaderConfig:
        path = Path(model_dir) / READER_CONFIG_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, model_dir: str | Path) -> None:
        path = Path(model_dir) / READER_CONFIG_FILE
        # A model folder is never left with half a config.
        write_atomic(path, json.dumps(self.__dict__, indent=2) + "\n")
