"""Reading as pure functions, as in the transformers QA example's ``utils_qa.py``: questions and
contexts into windows with character offsets, start/end logits into spans with margins, and one
question-level null when answers are compared across passages.

Training-time evaluation and query-time reading call the same functions, so they decode spans
the same way.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from pipelines.reader_config import AnswerRanking

logger = logging.getLogger(__name__)


@dataclass
class Windows:
    """Tokenized windows of many (question, context) pairs."""

    encodings: dict[str, torch.Tensor]
    pair_index: list[int]  # which pair each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # per token: char span in the context, else None


@dataclass(frozen=True)
class SpanCandidate:
    """An answer span as decoding finds it and, once ranked across the passages read
    (:func:`rank_answers`), with its scores: the one shape of a span before it is cited."""

    pair: int  # the (question, passage) pair it was read from; once ranked, the passage read
    start_char: int
    end_char: int
    margin: float  # span logit - null logit + threshold; > 0 means "answer"
    span_logit: float
    null_logit: float = 0.0  # its window's null ("no answer") logit
    # Set by the ranking across passages (None while only decoded):
    reader_score: float | None = None  # the reader's confidence in [0, 1] (offsets applied)
    score: float | None = None  # (1 - w) * reader_score + w * the passage's retriever score

    def ranked(self, passage: int, reader_score: float, score: float) -> SpanCandidate:
        """This span as ranked: from the ``passage``-th passage read, with its scores."""
        return replace(self, pair=passage, reader_score=reader_score, score=score)

    def text_in(self, passage_texts: Sequence[str]) -> str:
        """The span's text, ``passage_texts`` being the passages its ``pair`` indexes."""
        return passage_texts[self.pair][self.start_char : self.end_char]


def tokenize_pairs(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_seq_length: int,
    doc_stride: int,
) -> Windows:
    """Windows over each context with its question, with character offsets of context tokens.

    ``tokenizer``: transformers' (fast) tokenizer or a :class:`LightTokenizer` (same windows)."""
    from pipelines.light_tokenizer import LightTokenizer

    if isinstance(tokenizer, LightTokenizer):
        arrays, pair_index, offsets = tokenizer.pair_windows(
            questions, contexts, max_seq_length, doc_stride
        )
        encodings = {name: torch.from_numpy(array) for name, array in arrays.items()}
        return Windows(encodings=encodings, pair_index=pair_index, offsets=offsets)
    pad_right = tokenizer.padding_side == "right"
    first, second = (questions, contexts) if pad_right else (contexts, questions)
    enc = tokenizer(
        list(first),
        list(second),
        truncation="only_second" if pad_right else "only_first",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="longest",
        return_tensors="pt",
    )
    pair_index = [int(i) for i in enc.pop("overflow_to_sample_mapping")]
    offset_mapping = enc.pop("offset_mapping").tolist()
    context_id = 1 if pad_right else 0
    offsets: list[list[tuple[int, int] | None]] = []
    for w in range(len(pair_index)):
        seq_ids = enc.sequence_ids(w)
        offsets.append(
            [
                (int(o[0]), int(o[1])) if seq_ids[t] == context_id else None
                for t, o in enumerate(offset_mapping[w])
            ]
        )
    return Windows(encodings=dict(enc), pair_index=pair_index, offsets=offsets)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


# A whitespace-delimited token that is code rather than prose: an identifier with "_", an
# assignment or option ("mode=rwc", "-DSQLITE_USE_URI=1", "--enable-fts5"), a call or an index
# ("json_replace()", "azResult[2]"), camelCase ("xInverse") or a dotted name ("os.path").
_CODE_TOKEN = re.compile(r"[_=\[\]]|\(\)|^[-(\"'`]*-\w|[a-z][A-Z]|[A-Za-z]\.[A-Za-z]")
_OPENERS = "\"'`([{<"
_SENTENCE_END = ".,;:!?\"'`"
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}


# How far an edge may move: a run of text without spaces can be megabytes long (a minified
# line), and an identifier a user reads is far shorter.
MAX_WIDEN_CHARS = 64


def _token_bounds(text: str, index: int) -> tuple[int, int] | None:
    """The whitespace-delimited token around ``text[index]``; None if it reaches further than
    ``MAX_WIDEN_CHARS`` either side."""
    start, floor = index, max(0, index - MAX_WIDEN_CHARS)
    while start > floor and not text[start - 1].isspace():
        start -= 1
    end, ceiling = index + 1, min(len(text), index + 1 + MAX_WIDEN_CHARS)
    while end < ceiling and not text[end].isspace():
        end += 1
    if (start == floor and start > 0 and not text[start - 1].isspace()) or (
        end == ceiling and end < len(text) and not text[end].isspace()
    ):
        return None
    return start, end


def widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` widened so that it neither starts nor ends inside a word.

    A wordpiece reader can stop inside an identifier ("MISUSE" of "SQLITE_MISUSE": BERT splits
    words at "_"), and a user given half an identifier cannot use it. An edge between two word
    characters (letters, digits, "_") moves out to the word's edge; an edge inside a code-like
    token (``_CODE_TOKEN``) moves out to the whole token, less the quotes, brackets, possessive
    and sentence punctuation around it. Prose edges ("French" of "French-speaking", "Broncos" of
    "Broncos'") stay where the reader put them.
    """
    if not 0 <= start < end <= len(text):
        return start, end
    new_start, new_end = start, end
    floor, ceiling = max(0, start - MAX_WIDEN_CHARS), min(len(text), end + MAX_WIDEN_CHARS)
    while (
        new_start > floor and _is_word_char(text[new_start - 1]) and _is_word_char(text[new_start])
    ):
        new_start -= 1
    while new_end < ceiling and _is_word_char(text[new_end - 1]) and _is_word_char(text[new_end]):
        new_end += 1
    # An edge beside whitespace or the text's end is a token edge already: no scan (this runs for
    # every candidate of every window).
    token = (
        _token_bounds(text, new_start)
        if new_start > 0 and not text[new_start - 1].isspace()
        else None
    )
    if token and token[0] < new_start and _CODE_TOKEN.search(text[token[0] : token[1]]):
        new_start = token[0]
        while new_start < start and text[new_start] in _OPENERS + _SENTENCE_END:
            new_start += 1
    token = (
        _token_bounds(text, new_end - 1)
        if new_end < len(text) and not text[new_end].isspace()
        else None
    )
    if token and new_end < token[1] and _CODE_TOKEN.search(text[token[0] : token[1]]):
        new_end = token[1]
        while new_end > end:
            span = text[new_start:new_end]
            last = span[-1]
            if span.endswith(("'s", "\u2019s")) and new_end - 2 >= end:
                new_end -= 2
            elif last in _SENTENCE_END or (
                last in _CLOSERS and span.count(_CLOSERS[last]) < span.count(last)
            ):
                new_end -= 1
            else:
                break
    return new_start, new_end


def decode_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    windows: Windows,
    max_answer_tokens: int,
    no_answer_threshold: float = 0.0,
    n_best: int = 20,
    max_answer_chars: int | None = None,
    contexts: Sequence[str] | None = None,
) -> list[list[SpanCandidate]]:
    """The best spans of every pair, merged across windows and sorted by margin.

    A pair whose candidates all have a margin <= 0 is "no answer". Each window is judged against
    its own null logit because training taught every window without the answer to vote null.
    ``max_answer_chars`` bounds an answer in characters too: one token can cover a whole run of
    text the tokenizer could not split (a 3 MB line without spaces is one ``[UNK]``). With
    ``contexts`` (each pair's context) every span is widened to whole words
    (:func:`widen_to_words`) and spans that become the same are merged.
    """
    n_pairs = max(windows.pair_index, default=-1) + 1
    candidates: list[list[SpanCandidate]] = [[] for _ in range(n_pairs)]
    length = start_logits.shape[1]
    # Allowed (start, end) pairs: 0 <= end - start < max_answer_tokens.
    band = np.triu(np.ones((length, length), dtype=bool)) & ~np.triu(
        np.ones((length, length), dtype=bool), k=max_answer_tokens
    )
    for w, pair in enumerate(windows.pair_index):
        s_log, e_log, offs = start_logits[w], end_logits[w], windows.offsets[w]
        null_logit = float(s_log[0] + e_log[0])
        valid = np.zeros(length, dtype=bool)
        valid[: len(offs)] = [o is not None for o in offs[:length]]
        if not valid.any():
            continue
        scores = np.where(valid, s_log, -np.inf)[:, None] + np.where(valid, e_log, -np.inf)[None, :]
        flat = np.where(band, scores, -np.inf).ravel()
        k = min(n_best, int(np.isfinite(flat).sum()))
        if k == 0:
            continue
        for idx in np.argpartition(-flat, k - 1)[:k]:
            s, e = divmod(int(idx), length)
            start_off, end_off = offs[s], offs[e]
            assert start_off is not None and end_off is not None
            if max_answer_chars is not None and end_off[1] - start_off[0] > max_answer_chars:
                continue
            span_logit = float(flat[idx])
            candidates[pair].append(
                SpanCandidate(
                    pair=pair,
                    start_char=start_off[0],
                    end_char=end_off[1],
                    margin=span_logit - null_logit + no_answer_threshold,
                    span_logit=span_logit,
                    null_logit=null_logit,
                )
            )
    if contexts is not None:
        return [
            widen_candidates(c, contexts[i], max_answer_chars) for i, c in enumerate(candidates)
        ]
    return [_merge_duplicates(c) for c in candidates]


def widen_candidates(
    candidates: Sequence[SpanCandidate], context: str, max_answer_chars: int | None = None
) -> list[SpanCandidate]:
    """One context's candidates widened to whole words (:func:`widen_to_words`), those that
    become the same span merged (the best margin kept), best first."""
    widened = []
    for c in candidates:
        start, end = widen_to_words(context, c.start_char, c.end_char)
        if max_answer_chars is None or end - start <= max_answer_chars:
            widened.append(replace(c, start_char=start, end_char=end))
    return _merge_duplicates(widened)


def _merge_duplicates(cands: list[SpanCandidate]) -> list[SpanCandidate]:
    """Keep the best-scoring candidate of each character span (windows overlap)."""
    best: dict[tuple[int, int], SpanCandidate] = {}
    for c in cands:
        key = (c.start_char, c.end_char)
        if key not in best or c.margin > best[key].margin:
            best[key] = c
    return sorted(best.values(), key=lambda c: c.margin, reverse=True)


def question_null_shifts(
    candidates: Sequence[Sequence[SpanCandidate]], null_scope: str
) -> Callable[[SpanCandidate], float]:
    """What to add to each candidate's margin so it is judged against the question's null.

    With ``null_scope="question"`` the question's null is the mean of the null logits of the
    passages read (each passage's best window); a candidate's margin then moves by its own
    window's null minus that mean. With ``"window"`` nothing moves.
    """
    if null_scope == "window":
        return lambda c: 0.0
    if null_scope != "question":
        raise ValueError(f"null_scope must be 'window' or 'question', not {null_scope!r}")
    nulls = [cands[0].null_logit for cands in candidates if cands]
    question_null = sum(nulls) / len(nulls) if nulls else 0.0
    return lambda c: c.null_logit - question_null


def rank_answers(
    candidates: Sequence[Sequence[SpanCandidate]],
    retriever_scores: Sequence[float],
    score: Callable[[float], float],
    ranking: AnswerRanking | None = None,
    spans_per_passage: int | None = None,
    passage_texts: Sequence[str] | None = None,
) -> tuple[list[SpanCandidate], float]:
    """The spans of all passages read, best first (each :meth:`SpanCandidate.ranked`: its
    ``pair`` the passage's index in ``candidates``), and the score of "no answer".

    The one ranking of answers across passages, with the settings of ``ranking`` (the
    reader's :class:`~pipelines.reader_config.AnswerRanking`; default: none of its
    adjustments): the query pipeline's reader and end-to-end evaluation both call it. Within
    a passage a span overlapping a better one is dropped ("202" vs "2024"); each passage
    contributes at most ``spans_per_passage`` spans. A span scores
    ``(1 - w) * score(margin + shift - offset) + w * retriever`` (``shift``: see
    :func:`question_null_shifts`); ties keep passage order. "No answer" scores one minus the best
    reader score of any span, and loses ties to spans.

    With ``answer_pooling="noisy_or"`` (``passage_texts`` needed) spans of the same text from
    several passages are one answer: its reader score is ``1 - prod(1 - r)`` over the passages'
    best such span, its retriever score the best of theirs, and it is shown at its best span.

    ``rank_prior`` > 0 asks more of spans from passages retrieved lower: the passage at rank
    ``r`` (1: the best; ``candidates`` are in retrieval order) has ``rank_prior * ln(r)``
    subtracted from its margins, a prior that a lower-ranked passage holds the answer less often,
    so a weak span in the tenth passage no longer outvotes "no answer" on its own.
    """
    ranking = ranking or AnswerRanking()
    if ranking.answer_pooling == "noisy_or" and passage_texts is None:
        raise ValueError('answer_pooling="noisy_or" needs the passage texts')
    shift = question_null_shifts(candidates, ranking.null_scope)
    w = ranking.retriever_weight
    open_null_offset, rank_prior = ranking.open_null_offset, ranking.rank_prior
    ranked: list[SpanCandidate] = []
    best_reader = 0.0
    for passage, (cands, retriever) in enumerate(zip(candidates, retriever_scores, strict=True)):
        rank_penalty = rank_prior * math.log1p(passage)
        kept: list[tuple[int, int]] = []
        for c in cands:
            # A loop, not any() over a generator: tuning calls this ~10^5 times a run.
            start, end = c.start_char, c.end_char
            for s, e in kept:
                if start < e and s < end:
                    break
            else:
                kept.append((start, end))
                reader = score(c.margin + shift(c) - open_null_offset - rank_penalty)
                best_reader = max(best_reader, reader)
                if spans_per_passage is None or len(kept) <= spans_per_passage:
                    ranked.append(c.ranked(passage, reader, (1 - w) * reader + w * retriever))
    ranked.sort(key=_score, reverse=True)  # stable: ties keep passage order
    if ranking.answer_pooling == "noisy_or" and ranked:
        assert passage_texts is not None
        ranked = _pool_same_text(ranked, passage_texts, retriever_scores, w)
        best_reader = max(r.reader_score or 0.0 for r in ranked)
    return ranked, 1.0 - best_reader


def _score(span: SpanCandidate) -> float:
    return span.score or 0.0


def answer_key(text: str) -> str:
    """What makes two answer texts the same answer: case, punctuation and spacing aside."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


def _pool_same_text(
    ranked: list[SpanCandidate],
    passage_texts: Sequence[str],
    retriever_scores: Sequence[float],
    w: float,
) -> list[SpanCandidate]:
    """Spans of one text become one answer (noisy-or of the passages' reader scores)."""
    groups: dict[str, list[SpanCandidate]] = {}
    for r in ranked:  # best first, so each group's first span is its best
        text = r.text_in(passage_texts)
        groups.setdefault(answer_key(text) or text, []).append(r)
    pooled = []
    for spans in groups.values():
        best_per_passage: dict[int, float] = {}
        for r in spans:
            best_per_passage.setdefault(r.pair, r.reader_score or 0.0)
        reader = 1.0 - float(np.prod([1.0 - x for x in best_per_passage.values()]))
        retriever = max(retriever_scores[p] for p in best_per_passage)
        pooled.append(spans[0].ranked(spans[0].pair, reader, (1 - w) * reader + w * retriever))
    pooled.sort(key=_score, reverse=True)
    return pooled
