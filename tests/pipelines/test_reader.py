"""The extractive reader: span decoding on hand-made logits, and the Haystack component."""

from __future__ import annotations

import itertools
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from haystack import Document, Pipeline

from pipelines.reader import (
    ExtractiveReader,
    ReaderConfig,
    SpanPredictor,
    Windows,
    decode_spans,
    get_predictor,
    tokenize_pairs,
    widen_to_words,
)
from pipelines.settings import DEMO_COLLECTION
from pipelines.spans import MAX_WIDEN_CHARS

# A window as the tokenizer lays it out: [CLS] q q [SEP] c c c c c [SEP] [PAD]
# Context tokens cover "alfa beta gama delt echo" (4 characters each, one space between).
CONTEXT = "alfa beta gama delt echo"
CONTEXT_OFFSETS = [(0, 4), (5, 9), (10, 14), (15, 19), (20, 24)]
OFFSETS: list[tuple[int, int] | None] = [None, None, None, None, *CONTEXT_OFFSETS, None, None]
LENGTH = len(OFFSETS)
FIRST_CONTEXT_TOKEN = 4


def window_logits(
    start_at: dict[int, float], end_at: dict[int, float], base: float = -5.0
) -> tuple[np.ndarray, np.ndarray]:
    start, end = np.full(LENGTH, base, dtype=np.float32), np.full(LENGTH, base, dtype=np.float32)
    for i, v in start_at.items():
        start[i] = v
    for i, v in end_at.items():
        end[i] = v
    return start, end


def decode_one(
    start: np.ndarray, end: np.ndarray, max_answer_tokens: int = 30, threshold: float = 0.0
) -> list:
    windows = Windows(encodings={}, pair_index=[0], offsets=[OFFSETS])
    return decode_spans(start[None, :], end[None, :], windows, max_answer_tokens, threshold)[0]


def token_span(cand: object) -> tuple[int, int]:
    starts = [s for s, _ in CONTEXT_OFFSETS]
    ends = [e for _, e in CONTEXT_OFFSETS]
    return starts.index(cand.start_char), ends.index(cand.end_char)  # type: ignore[attr-defined]


# -- decode_spans -------------------------------------------------------------------------------


def test_best_span_is_the_highest_start_plus_end() -> None:
    c = FIRST_CONTEXT_TOKEN
    start, end = window_logits({0: 1.0, c + 1: 6.0, c + 3: 2.0}, {0: 1.0, c + 2: 5.0, c: 4.0})
    cands = decode_one(start, end)
    best = cands[0]
    assert CONTEXT[best.start_char : best.end_char] == "beta gama"
    assert best.span_logit == pytest.approx(11.0)
    assert [c.margin for c in cands] == sorted((c.margin for c in cands), reverse=True)
    # Every candidate starts before it ends and lies in the context.
    for cand in cands:
        s, e = token_span(cand)
        assert s <= e


def test_spans_respect_max_answer_length() -> None:
    c = FIRST_CONTEXT_TOKEN
    # The best pair by logits alone, first to last token, is 5 tokens long.
    start, end = window_logits({c: 9.0, c + 3: 1.0}, {c + 4: 9.0, c + 3: 0.5})
    assert CONTEXT[slice(*_span(decode_one(start, end)[0]))] == CONTEXT
    for max_tokens in (1, 2, 4):
        cands = decode_one(start, end, max_answer_tokens=max_tokens)
        assert cands
        for cand in cands:
            s, e = token_span(cand)
            assert 0 <= e - s < max_tokens
    assert CONTEXT[slice(*_span(decode_one(start, end, max_answer_tokens=1)[0]))] == "alfa"


def _span(cand: object) -> tuple[int, int]:
    return cand.start_char, cand.end_char  # type: ignore[attr-defined]


def test_spans_never_fall_in_the_question_or_special_tokens() -> None:
    # The question tokens (1, 2), [SEP] (3, 9) and padding (10) carry the highest logits.
    start, end = window_logits(
        {1: 50.0, 2: 40.0, 3: 30.0, 9: 45.0, 10: 60.0, 6: 2.0},
        {1: 50.0, 2: 40.0, 3: 30.0, 9: 45.0, 10: 60.0, 7: 2.0},
    )
    cands = decode_one(start, end)
    assert cands
    allowed_starts = {s for s, _ in CONTEXT_OFFSETS}
    allowed_ends = {e for _, e in CONTEXT_OFFSETS}
    assert all(c.start_char in allowed_starts and c.end_char in allowed_ends for c in cands)
    assert CONTEXT[slice(*_span(cands[0]))] == "gama delt"


def test_margin_is_span_minus_null_plus_threshold() -> None:
    c = FIRST_CONTEXT_TOKEN
    # The null ([CLS]) logit 8 + 8 beats the best span 3 + 3: "no answer".
    start, end = window_logits({0: 8.0, c + 2: 3.0}, {0: 8.0, c + 2: 3.0})
    best = decode_one(start, end)[0]
    assert best.margin == pytest.approx(6.0 - 16.0) and best.margin < 0
    # A threshold shifts every margin by the same amount.
    shifted = decode_one(start, end, threshold=12.5)[0]
    assert shifted.margin == pytest.approx(2.5) and shifted.margin > 0
    assert _span(shifted) == _span(best)
    # A span above the null logit has a positive margin.
    start, end = window_logits({0: -1.0, c + 2: 3.0}, {0: -1.0, c + 2: 3.0})
    assert decode_one(start, end)[0].margin == pytest.approx(8.0)


def test_candidates_of_overlapping_windows_are_merged_per_pair() -> None:
    c = FIRST_CONTEXT_TOKEN
    s1, e1 = window_logits({0: 0.0, c + 1: 4.0}, {0: 0.0, c + 1: 4.0})
    s2, e2 = window_logits({0: 0.0, c + 1: 6.0}, {0: 0.0, c + 1: 6.0})  # same span, better
    s3, e3 = window_logits({0: 0.0, c: 3.0}, {0: 0.0, c: 3.0})
    windows = Windows(encodings={}, pair_index=[0, 0, 1], offsets=[OFFSETS, OFFSETS, OFFSETS])
    pairs = decode_spans(np.stack([s1, s2, s3]), np.stack([e1, e2, e3]), windows, 30)
    assert len(pairs) == 2
    spans = [_span(cand) for cand in pairs[0]]
    assert len(spans) == len(set(spans))  # one candidate per character span
    assert spans[0] == (5, 9) and pairs[0][0].margin == pytest.approx(12.0)
    assert _span(pairs[1][0]) == (0, 4)


def test_window_without_context_tokens_gives_no_candidates() -> None:
    windows = Windows(encodings={}, pair_index=[0], offsets=[[None] * LENGTH])
    start, end = window_logits({}, {})
    assert decode_spans(start[None, :], end[None, :], windows, 30) == [[]]


# -- tokenization -------------------------------------------------------------------------------


# -- whole words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span", "widened"),
    [
        # Identifiers the wordpiece tokenizer splits at "_" or inside a word.
        ("it returns SQLITE_MISUSE if so.", "MISUSE", "SQLITE_MISUSE"),
        ("flag SQLITE_OPEN_NOFOLLOW.", "SQLITE_OPEN_NOFOL", "SQLITE_OPEN_NOFOLLOW"),
        ("use the -DZERO_ARGUMENT_GENERATE_SERIES option", "the -DZERO_ARGUMENT",
         "the -DZERO_ARGUMENT_GENERATE_SERIES"),
        # Code tokens come whole, less the punctuation of the sentence around them.
        ("run PRAGMA checksum_verification=OFF; first", "PRAGMA checksum_verification",
         "PRAGMA checksum_verification=OFF"),
        ("open it with mode=rwc. Then", "mode", "mode=rwc"),
        ("held in azResult[2] here", "azResult", "azResult[2]"),
        ("(see sqlite3_value_frombind())", "frombind", "sqlite3_value_frombind()"),
        # Prose keeps the reader's edges.
        ("The French-speaking people", "French", "French"),
        ("The Broncos' defense", "Broncos", "Broncos"),
        ("McDonald's, a restaurant", "McDonald", "McDonald"),
        ("the value 4096 bytes", "4096", "4096"),
        ("Denver won 24-10.", "24-10", "24-10"),
    ],
)  # fmt: skip
def test_spans_widen_to_whole_words_and_code_tokens(text: str, span: str, widened: str) -> None:
    start = text.index(span)
    new_start, new_end = widen_to_words(text, start, start + len(span))
    assert text[new_start:new_end] == widened


def test_widening_is_bounded_in_a_line_without_spaces() -> None:
    text = "see " + "x_y=" * 250_000 + " done"  # a megabyte of one code-like "token"
    start, end = widen_to_words(text, 5_000, 5_010)
    assert start >= 5_000 - MAX_WIDEN_CHARS and end <= 5_010 + MAX_WIDEN_CHARS


def _cuts_a_word(text: str, start: int, end: int) -> bool:
    def word(ch: str) -> bool:
        return ch.isalnum() or ch == "_"

    return (start > 0 and word(text[start - 1]) and word(text[start])) or (
        end < len(text) and word(text[end - 1]) and word(text[end])
    )


def test_the_reader_never_answers_half_an_identifier(tiny_reader: Path, tmp_path: Path) -> None:
    """The real tokenizer splits identifiers at "_", so the model's own spans can stop inside
    one; the answers users get never do, unless the reader's config turns widening off."""
    context = (
        "A conflict handler may return SQLITE_CHANGESET_REPLACE; otherwise the call fails with "
        "SQLITE_MISUSE or SQLITE_CORRUPT_VTAB. Open the file with mode=rwc and build with "
        "-DSQLITE_USE_URI=1, then call sqlite3_value_frombind() or json_replace()."
    )
    question = "What does the call fail with?"
    folder = tmp_path / "reader"
    shutil.copytree(tiny_reader, folder)
    whole = SpanPredictor(folder).predict([question], [context])[0]
    assert whole
    assert not [c for c in whole if _cuts_a_word(context, c.start_char, c.end_char)]
    spans = [(c.start_char, c.end_char) for c in whole]
    assert len(spans) == len(set(spans))  # spans that widen to the same words are one answer
    replace(ReaderConfig.load(folder), whole_words=False).save(folder)
    raw = SpanPredictor(folder).predict([question], [context])[0]
    assert [c for c in raw if _cuts_a_word(context, c.start_char, c.end_char)]


def test_tokenize_pairs_windows_cover_a_long_context_with_exact_offsets(tiny_reader: Path) -> None:
    predictor = get_predictor(tiny_reader)
    text = (DEMO_COLLECTION / "it" / "office-network-and-wifi.txt").read_text(encoding="utf-8")
    windows = tokenize_pairs(
        predictor.tokenizer,
        ["What is the guest Wi-Fi called?"],
        [text],
        max_seq_length=128,
        doc_stride=32,
    )
    assert len(windows.pair_index) > 3 and set(windows.pair_index) == {0}
    assert windows.encodings["input_ids"].shape == (len(windows.pair_index), 128)
    covered = set()
    for offs in windows.offsets:
        context_offs = [o for o in offs if o is not None]
        assert context_offs
        for s, e in context_offs:
            # Uncased WordPiece: the token is the lower-cased text at its offsets.
            assert text[s:e].strip() and s < e
            covered.update(range(s, e))
    non_space = {i for i, ch in enumerate(text) if not ch.isspace()}
    assert non_space <= covered


def test_an_answer_is_never_longer_than_max_answer_chars(tiny_base: str) -> None:
    from transformers import AutoTokenizer

    # WordPiece makes one [UNK] of a word over 100 characters: one token, thousands of characters.
    blob = "".join(f"{i:06d}" for i in range(700))
    context = f"The dump follows. {blob} The end."
    windows = tokenize_pairs(
        AutoTokenizer.from_pretrained(tiny_base), ["What is the dump?"], [context], 64, 16
    )
    width = windows.encodings["input_ids"].shape[1]
    start = np.full((len(windows.pair_index), width), -5.0, dtype=np.float32)
    end = start.copy()
    for w, offsets in enumerate(windows.offsets):
        for t, offset in enumerate(offsets):
            if offset is not None and offset[1] - offset[0] == len(blob):
                start[w, t] = end[w, t] = 9.0  # the reader's favourite span is the whole blob
    assert (start == 9.0).any()
    unbounded = decode_spans(start, end, windows, 30)[0]
    assert max(c.end_char - c.start_char for c in unbounded) >= len(blob)
    bounded = decode_spans(start, end, windows, 30, max_answer_chars=300)[0]
    assert bounded and all(c.end_char - c.start_char <= 300 for c in bounded)
    assert ReaderConfig().max_answer_chars == 300  # what serving decodes with


# -- the Haystack component ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def passages() -> list[Document]:
    text = (DEMO_COLLECTION / "hr" / "remote-work-policy.md").read_text(encoding="utf-8")
    docs = []
    for i, start in enumerate(range(0, 3000, 600)):
        content = text[start : start + 900]  # passages overlap by 300 characters
        docs.append(
            Document(
                id=f"remote-{i}",
                content=content,
                score=0.5 - 0.01 * i,
                meta={
                    "doc_id": "remote",
                    "start": start,
                    "end": start + len(content),
                    "source": "remote.md",
                },
            )
        )
    return docs


def test_reader_answers_are_spans_of_their_passages(
    tiny_reader: Path, passages: list[Document]
) -> None:
    reader = ExtractiveReader(tiny_reader, top_k=3)
    answers = reader.run(
        query="How many days per week can employees work remotely?", documents=passages
    )["answers"]
    real = [a for a in answers if a.data is not None]
    assert 1 <= len(real) <= 3
    assert [a.data for a in answers].count(None) == 1  # exactly one no-answer entry
    for a in answers:
        assert 0.0 <= a.score <= 1.0
    for a in real:
        assert a.document is not None and a.document_offset is not None
        doc = a.document
        assert a.data == doc.content[a.document_offset.start : a.document_offset.end]
        assert a.data.strip()
        assert a.meta["reader_score"] == pytest.approx(a.score)  # retriever_weight 0
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    no_answer = next(a for a in answers if a.data is None)
    assert no_answer.score == pytest.approx(1 - max(a.meta["reader_score"] for a in real))


def test_longer_read_windows_read_each_passage_once_with_exact_offsets(
    tiny_reader: Path, passages: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings.reader_max_seq_length: one 384-token window per 900-character passage instead
    of overlapping 192-token ones (the tiny reader's own), answers still exact spans."""
    question = "How many days per week can employees work remotely?"
    windows_read: list[int] = []
    original = SpanPredictor.logits

    def counting(self: SpanPredictor, windows: Windows) -> Any:
        windows_read.append(len(windows.pair_index))
        return original(self, windows)

    monkeypatch.setattr(SpanPredictor, "logits", counting)
    own = ExtractiveReader(tiny_reader, top_k=3).run(query=question, documents=passages)
    longer = ExtractiveReader(tiny_reader, top_k=3, max_seq_length=384)
    answers = longer.run(query=question, documents=passages)["answers"]
    assert windows_read[1] == len(passages) < windows_read[0]
    for a in answers:
        if a.data is not None:
            assert a.document is not None and a.document_offset is not None
            assert a.data == a.document.content[a.document_offset.start : a.document_offset.end]
    assert own["answers"] and answers
    assert ExtractiveReader.from_dict(longer.to_dict()).max_seq_length == 384


def test_duplicate_and_overlapping_answers_are_merged(
    tiny_reader: Path, passages: list[Document]
) -> None:
    reader = ExtractiveReader(tiny_reader, top_k=10, no_answer=False)
    # The same passage twice (as overlapping windows of one document give the same span twice).
    twice = [
        passages[1],
        Document(id="copy", content=passages[1].content, score=0.4, meta=dict(passages[1].meta)),
    ]
    answers = reader.run(query="Who approves remote work?", documents=twice)["answers"]
    assert answers and all(a.data is not None for a in answers)
    absolute = [(a.document.meta["start"] + a.document_offset.start, a.data) for a in answers]
    assert len(absolute) == len(set(absolute))
    # Within one passage no two answers overlap ("202" and "2024" are not both given).
    for doc_id in {a.document.id for a in answers}:
        spans = sorted(
            (a.document_offset.start, a.document_offset.end)
            for a in answers
            if a.document.id == doc_id
        )
        assert all(e1 <= s2 for (_, e1), (s2, _) in itertools.pairwise(spans))


def test_retriever_weight_mixes_scores(tiny_reader: Path, passages: list[Document]) -> None:
    reader = ExtractiveReader(tiny_reader, top_k=2, retriever_weight=0.25, no_answer=False)
    for a in reader.run(query="Which equipment is provided?", documents=passages[:2])["answers"]:
        expected = 0.75 * a.meta["reader_score"] + 0.25 * a.meta["retriever_score"]
        assert a.score == pytest.approx(expected)


def test_a_cascade_stops_after_the_first_passages_only_when_they_settle_it(
    tiny_reader: Path, passages: list[Document], tmp_path: Path
) -> None:
    folder = tmp_path / "reader"
    shutil.copytree(tiny_reader, folder)
    question = "Which equipment is provided?"
    whole = ExtractiveReader(folder, top_k=10).run(query=question, documents=passages)["answers"]
    config = ReaderConfig.load(folder)

    def answers_with(min_score: float) -> list[Any]:
        replace(config, cascade_passages=2, cascade_min_score=min_score).save(folder)
        reader = ExtractiveReader(folder, top_k=10)
        return reader.run(query=question, documents=passages)["answers"]

    # A bar no score reaches: every passage is read, the same answers as without the cascade.
    never = answers_with(2.0)
    assert [(a.data, a.score) for a in never] == [(a.data, a.score) for a in whole]
    # A bar every score reaches: only the first two passages were read.
    always = answers_with(0.0)
    read = {a.document.id for a in always if a.document is not None}
    assert read and read <= {passages[0].id, passages[1].id}
    assert {a.document.id for a in whole if a.document is not None} - read


def test_no_documents_gives_only_no_answer(tiny_reader: Path) -> None:
    reader = ExtractiveReader(tiny_reader)
    answers = reader.run(query="Anything?", documents=[Document(content="")])["answers"]
    assert len(answers) == 1 and answers[0].data is None and answers[0].score == 1.0


def test_to_dict_from_dict_round_trip(tiny_reader: Path) -> None:
    reader = ExtractiveReader(
        tiny_reader,
        top_k=5,
        retriever_weight=0.1,
        batch_size=4,
        cpu_precision="bf16",
        no_answer=False,
    )
    data = reader.to_dict()
    assert data["type"] == "pipelines.reader.ExtractiveReader"
    assert data["init_parameters"]["model"] == str(tiny_reader)
    again = ExtractiveReader.from_dict(data)
    assert again.to_dict() == data
    # Inside a pipeline saved as YAML too.
    pipe = Pipeline()
    pipe.add_component("reader", reader)
    restored = Pipeline.loads(pipe.dumps(), allowed_modules=["pipelines.*"])
    assert restored.get_component("reader").to_dict() == data


# -- the predictor and its saved config ---------------------------------------------------------


def test_predictor_loads_the_saved_reader_config(tiny_reader: Path) -> None:
    predictor = SpanPredictor(tiny_reader)
    config = ReaderConfig.load(tiny_reader)
    assert predictor.config == config
    assert math.isfinite(config.no_answer_threshold)
    assert (config.max_seq_length, config.doc_stride) == (192, 64)
    assert predictor.score(0.0) == pytest.approx(0.5)
    assert 0.5 < predictor.score(1.0) < 1.0 and 0.0 < predictor.score(-1.0) < 0.5
    cands = predictor.predict(["Where?"], ["The office is in Leeds."])[0]
    assert cands and all(0 <= c.start_char < c.end_char <= 23 for c in cands)


def test_a_cached_reader_serves_settings_tuned_after_it_loaded(
    tiny_reader: Path, tmp_path: Path
) -> None:
    """`docqa tune-weight` and the campaign gate rewrite docqa_reader.json beside the weights;
    a reader already loaded (the page's, the gate's own evaluation) must answer with them."""
    folder = tmp_path / "reader"
    shutil.copytree(tiny_reader, folder)
    reader = ExtractiveReader(folder, top_k=1)
    question, passage = "Where is the office?", Document(content="The office is in Leeds.")
    before = reader.run(question, [passage])["answers"][0]
    config = ReaderConfig.load(folder)
    tuned = replace(config, no_answer_threshold=1e6, ranking=config.ranking.with_weight(0.0))
    tuned.save(folder)
    assert reader.predictor.config == tuned
    after = reader.run(question, [passage])["answers"][0]
    # A threshold of a million makes every span beat "no answer" with a confidence near 1.
    assert after.data is not None and after.score > 0.99
    assert before.score < 0.99


def test_reader_config_defaults_without_a_file(tmp_path: Path) -> None:
    assert ReaderConfig.load(tmp_path) == ReaderConfig()
    ReaderConfig(no_answer_threshold=-1.5, temperature=3.0).save(tmp_path)
    assert ReaderConfig.load(tmp_path).no_answer_threshold == -1.5


def test_the_predictor_cache_is_bounded_and_keyed_by_batch_size(tiny_reader: Path) -> None:
    from pipelines import reader as reader_module

    first = get_predictor(tiny_reader, batch_size=1)
    assert get_predictor(tiny_reader, batch_size=1) is first
    others = [
        get_predictor(tiny_reader, batch_size=b)
        for b in range(2, reader_module.MAX_CACHED_PREDICTORS + 2)
    ]
    assert all(p.batch_size == b for p, b in zip(others, range(2, 99), strict=False))
    cached = reader_module._load_predictor.cache_info().currsize
    assert cached <= reader_module.MAX_CACHED_PREDICTORS
    # The least recently used one was dropped: asking again loads it anew.
    assert get_predictor(tiny_reader, batch_size=1) is not first


def test_a_loaded_model_needs_its_tokenizer_and_config(tiny_reader: Path) -> None:
    loaded = SpanPredictor(tiny_reader)
    with pytest.raises(ValueError, match="tokenizer"):
        SpanPredictor(loaded.model)
    again = SpanPredictor(loaded.model, tokenizer=loaded.tokenizer, config=loaded.config)
    assert (
        again.predict(["What?"], ["Nothing here."])[0]
        == loaded.predict(["What?"], ["Nothing here."])[0]
    )
