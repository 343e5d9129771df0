"""End-to-end evaluation: gold passages, recall/MRR, answers for every k, plots, own contexts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from haystack import Document
from typer.testing import CliRunner

from docqa.cli import app
from evaluation.end_to_end import (
    AnswerRanking,
    GoldPassages,
    PassageRead,
    answer_at_k,
    evaluate_end_to_end,
    format_report,
    read_passages,
    retrieval_metrics,
    sample_examples,
    tune_answer_ranking,
    write_contexts,
)
from evaluation.plots import write_plots
from evaluation.squad import Answer, SquadExample, load_squad
from pipelines.query import get_service
from pipelines.settings import REPO_ROOT, Settings
from pipelines.spans import SpanCandidate

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"
INDEXED_TITLES = {
    "hr/leave-policy.pdf",
    "hr/remote-work-policy.md",
    "it/office-network-and-wifi.txt",
    "it/laptop-provisioning.html",
    "it/backup-restore-runbook-v1.docx",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _example(qid: str, context: str, answer: str | None) -> SquadExample:
    answers = (Answer(answer, context.index(answer)),) if answer else ()
    return SquadExample(qid, "t", context, f"question {qid}?", answers)


def _passage(doc_id: str, start: int, content: str) -> Document:
    return Document(
        content=content, meta={"doc_id": doc_id, "start": start, "end": start + len(content)}
    )


class _Store:
    """The two store methods GoldPassages reads."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def sources(self) -> list[object]:
        return [type("Record", (), {"doc_id": d})() for d in self.texts]

    def source_text(self, doc_id: str) -> str:
        return self.texts[doc_id]


# -- small known cases ----------------------------------------------------------------------------


def test_recall_and_mrr_on_known_ranks() -> None:
    metrics = retrieval_metrics([1, 3, None, 2], [1, 2, 3, 5])
    assert metrics == {
        "recall@1": 0.25,
        "recall@2": 0.5,
        "recall@3": 0.75,
        "recall@5": 0.75,
        "mrr": pytest.approx((1 + 1 / 3 + 1 / 2) / 4),
    }
    assert retrieval_metrics([], [1])["mrr"] == 0.0


def test_gold_passages_by_offsets_document_and_answer_text() -> None:
    doc_a = "Alpha beta. The answer is Paris here. Gamma delta; Paris again."
    store = _Store({"a": doc_a, "b": "Paris is elsewhere too."})
    gold = GoldPassages(store)
    ex = _example("1", doc_a, "Paris")  # the first "Paris", chars 26..31
    first_half, second_half = _passage("a", 0, doc_a[:37]), _passage("a", 37, doc_a[37:])
    other = _passage("b", 0, "Paris is elsewhere too.")
    assert gold.rule(ex) == "offsets"
    # Only the passage of the right document whose range holds the labeled answer is gold.
    assert gold.rank(ex, [other, second_half, first_half]) == 3
    assert gold.rank(ex, [other, second_half]) is None

    # A context indexed as a document whose text was cleaned: the document and the answer text.
    context = "The  answer is Paris."
    gold = GoldPassages(store, doc_for_context={_sha(context): "a"})
    ex = _example("2", context, "Paris")
    assert gold.rule(ex) == "document+text"
    assert gold.rank(ex, [other, second_half]) == 2

    # Contexts that are not documents: any passage holding the answer text, as whole words.
    ex = _example("3", "Somewhere else: the answer is Paris.", "Paris")
    assert GoldPassages(store).rule(ex) == "answer text"
    assert GoldPassages(store).rank(ex, [_passage("c", 0, "Parisian"), other]) == 2


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(text: str, reader_score: float, retriever: float) -> PassageRead:
    """A passage whose best span is all of ``text`` (with ``score`` the identity below, the
    margin is the reader score)."""
    span = SpanCandidate(0, 0, len(text), margin=reader_score, span_logit=0.0)
    return PassageRead(text, (span,), retriever)


def test_answer_at_k_is_the_best_span_of_the_first_k_passages() -> None:
    def score(margin: float) -> float:
        return margin

    plain, half = AnswerRanking(0.0), AnswerRanking(0.5)
    reads = [_read("weak", 0.55, 0.9), PassageRead("", (), 0.8), _read("strong", 0.9, 0.1)]
    assert answer_at_k(reads, 1, score, plain) == "weak"
    assert answer_at_k(reads, 2, score, plain) == "weak"
    assert answer_at_k(reads, 3, score, plain) == "strong"
    # The retriever's score can tip the balance: 0.5*0.55+0.5*0.9 > 0.5*0.9+0.5*0.1.
    assert answer_at_k(reads, 3, score, half) == "weak"
    # "No answer" (1 - best reader score) wins over a weak best span.
    assert answer_at_k([_read("x", 0.3, 0.0)], 1, score, plain) is None
    assert answer_at_k([PassageRead("", (), 0.5)], 1, score, plain) is None


def test_sample_is_fixed_and_in_file_order() -> None:
    examples = [_example(str(i), "context", None) for i in range(50)]
    sample = sample_examples(examples, 10, seed=3)
    assert sample == sample_examples(examples, 10, seed=3)
    assert [int(ex.id) for ex in sample] == sorted(int(ex.id) for ex in sample)
    assert sample_examples(examples, None) == examples


def test_write_contexts_keeps_unchanged_files_and_drops_stale_ones(tmp_path: Path) -> None:
    files = write_contexts(["one", "two", "one", "  "], tmp_path)
    assert len(files) == 2
    first = {p.name: p.stat().st_mtime_ns for p in files.values()}
    again = write_contexts(["two", "one"], tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in again.values()} == first
    write_contexts(["two"], tmp_path)
    assert [p.read_text() for p in tmp_path.glob("*.txt")] == ["two"]


# -- over the small demo index, with the tiny reader ---------------------------------------------


def _demo_examples() -> list[SquadExample]:
    return [ex for ex in load_squad(DEMO_TRAIN)[0] if ex.title in INDEXED_TITLES][::8]


def test_answers_for_k_passages_are_what_ask_answers(demo_home: Settings) -> None:
    """Reading each passage once and keeping the first k gives ask(top_k_passages=k)'s answer."""
    service = get_service(demo_home)
    predictor = service.reader_predictor
    ranking = predictor.config.ranking
    for ex in _demo_examples()[:4]:
        reads = read_passages(predictor, ex.question, service.retrieve(ex.question, top_k=5))
        for k in (1, 3, 5):
            top = service.ask(ex.question, top_k_passages=k, top_n_answers=1)[0]
            assert answer_at_k(reads, k, predictor.score, ranking) == top.answer, (ex.question, k)


def test_one_question_level_null_is_what_ask_answers(demo_home: Settings, tmp_path: Path) -> None:
    """With null_scope "question", evaluation's answer for k passages is the component's."""
    from dataclasses import replace

    from pipelines.reader import ReaderConfig

    reader = tmp_path / "reader"
    shutil.copytree(demo_home.reader_model, reader)
    config = ReaderConfig.load(reader)
    ranking = replace(config.ranking, null_scope="question", open_null_offset=-1.0)
    replace(config, ranking=ranking).save(reader)
    settings = demo_home.with_(reader_model=str(reader))
    service = get_service(settings)
    predictor = service.reader_predictor
    ranking = predictor.config.ranking
    assert ranking.null_scope == "question"
    decided = set()
    for ex in _demo_examples()[:6]:
        reads = read_passages(predictor, ex.question, service.retrieve(ex.question, top_k=5))
        for k in (1, 3, 5):
            top = service.ask(ex.question, top_k_passages=k, top_n_answers=1)[0]
            mine = answer_at_k(reads, k, predictor.score, ranking)
            assert mine == top.answer, (ex.question, k)
            decided.add(mine is None)
        # The window-level decision can differ; the question-level one must match ask.
    assert decided  # at least one question was decided


def test_tuned_answer_ranking_is_what_the_pipeline_then_scores(
    demo_home: Settings, tmp_path: Path
) -> None:
    """The tuning's F1 for a combination is the F1 the pipeline gets once it is saved with the
    reader; the offset and the rank prior change how often "no answer" is given."""
    from dataclasses import replace

    from pipelines.reader_config import ReaderConfig, save_ranking

    reader = tmp_path / "reader"
    shutil.copytree(demo_home.reader_model, reader)
    # A served offset and prior other than 0: tuning must undo them to recover the margins.
    shipped = ReaderConfig.load(reader).ranking
    save_ranking(reader, replace(shipped, open_null_offset=1.0, rank_prior=0.5))
    settings = demo_home.with_(reader_model=str(reader), reader_backend="torch")
    examples = _demo_examples()
    best = tune_answer_ranking(
        examples,
        settings,
        weights=(0.0, 0.5),
        offsets=(-3.0, 0.0, 2.0),
        top_k=5,
        progress=False,
        rank_priors=(0.0, 2.0),
    )
    table = best.heldout_f1
    assert set(table) == {
        AnswerRanking(w, o, s, rank_prior=p)
        for s in ("window", "question")
        for w in (0.0, 0.5)
        for o in (-3.0, 0.0, 2.0)
        for p in (0.0, 2.0)
    }
    assert table[best.plain()] == max(table.values())
    report = json.loads(json.dumps(best.report()))  # what the recipe and gate reports hold
    assert report["retriever_weight"] == best.retriever_weight
    assert len(report["heldout_f1"]) == len(table)
    assert {"null_scope": "question", "retriever_weight": 0.5, "rank_prior": 2.0}.items() <= (
        report["heldout_f1"][-1].items()
    )
    answered: dict[tuple[str, float, float], float] = {}
    combinations = [(s, o, 0.0) for s in ("window", "question") for o in (-3.0, 2.0)]
    for scope, o, prior in [*combinations, ("window", -3.0, 2.0)]:
        other = tmp_path / f"reader-{scope}{o:g}-{prior:g}"
        shutil.copytree(reader, other)
        ranking = replace(
            shipped, retriever_weight=0.5, open_null_offset=o, null_scope=scope, rank_prior=prior
        )
        save_ranking(other, ranking)
        report = evaluate_end_to_end(
            examples, settings.with_(reader_model=str(other)), top_k=5, progress=False
        )
        answered[scope, o, prior] = report["answers"]["answered"]
        # What tuning computed for this combination is what the pipeline then scores.
        tried = AnswerRanking(0.5, o, scope, rank_prior=prior)
        assert report["answers"]["f1"] == pytest.approx(table[tried], abs=0.01)
        assert report["null_scope"] == scope
    # A larger offset asks more of a span before it beats "no answer"; so does a rank prior
    # of spans beyond the first passage.
    assert answered["window", -3.0, 0.0] > answered["window", 2.0, 0.0]
    assert answered["question", -3.0, 0.0] > answered["question", 2.0, 0.0]
    assert answered["window", -3.0, 0.0] >= answered["window", -3.0, 2.0]


def test_end_to_end_report_over_the_demo_index(demo_home: Settings, tmp_path: Path) -> None:
    examples = _demo_examples()
    answerable = sum(1 for ex in examples if ex.answers)
    assert answerable >= 5 and len(examples) > answerable
    settings = demo_home.with_(retriever_weight=0.0)  # answered share is then monotone in k

    report = evaluate_end_to_end(examples, settings, top_k=5, progress=False, recall_depth=10)
    assert report["questions"] == len(examples) and report["top_k"] == 5
    assert report["retrieved"] == 10
    retrieval = report["retrieval"]
    assert set(retrieval) == {"recall@1", "recall@5", "recall@10", "mrr"}
    # The labels' contexts are the converted documents: gold passages are found by offsets.
    assert report["gold_passage_rule"] == {"offsets": answerable}
    assert retrieval["recall@5"] >= 0.7
    curve = report["recall_curve"]
    assert len(curve) == 10 and curve == sorted(curve)
    assert curve[0] == retrieval["recall@1"] and curve[4] == retrieval["recall@5"]
    assert 0.0 < retrieval["mrr"] <= retrieval["recall@10"]

    answers = report["answers"]
    assert answers["total"] == len(examples) and answers["HasAns_total"] == answerable
    assert 0.0 <= answers["f1"] <= 100.0
    assert answers["no_answer_accuracy"] == pytest.approx(answers["NoAns_exact"] / 100)
    by_k = report["answers_at_k"]
    assert [row["k"] for row in by_k] == [1, 3, 5]
    assert by_k[-1] | {"k": 5} == {**answers, "k": 5}
    # With reader scores alone, "no answer" = 1 - best score: more passages, more answers.
    answered = [row["answered"] for row in by_k]
    assert answered == sorted(answered)
    for row in by_k:
        assert row["exact"] <= row["f1"] <= 100.0

    latency = report["latency_seconds"]
    assert 0.0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert sum(latency["histogram_ms"]["counts"]) == len(examples)
    assert report["reader"] == demo_home.reader_model
    assert report["environment"]["cores"] >= 1 and "torch" in report["environment"]["packages"]
    json.dumps(report)  # serializable as printed by --json

    paths = write_plots(report, tmp_path / "plots")
    assert [p.name for p in paths] == ["em_f1_vs_k.png", "latency_histogram.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000

    text = format_report(report)
    assert text.splitlines()[0].startswith(f"{len(examples)} questions, top 5 passages read of 10")
    assert "recall@5" in text and "latency per question p50" in text
    assert "open (top 5)" in text and "no-answer accuracy" in text


# -- own contexts, through the command line -------------------------------------------------------

TINY_CONTEXTS = {
    "Lighthouses": (
        "The Eddystone Lighthouse stands on the Eddystone Rocks, 14 kilometres south of Rame Head"
        " in Cornwall. The current tower, designed by James Douglass, was completed in 1882.",
        [
            ("Who designed the current Eddystone tower?", "James Douglass"),
            ("When was the current Eddystone tower completed?", "1882"),
            ("How tall is the Eddystone Lighthouse?", None),
        ],
    ),
    "Bread": (
        "Bread is made from flour, water and yeast. The dough is kneaded, left to rise for about"
        " two hours, and baked in a hot oven.",
        [
            ("How long is bread dough left to rise?", "about two hours"),
            ("Who invented sourdough bread?", None),
        ],
    ),
    "Nile": (
        "The Nile is a major river in northeastern Africa. It flows north into the Mediterranean"
        " Sea and is about 6,650 kilometres long.",
        [("Into which sea does the Nile flow?", "Mediterranean Sea")],
    ),
}


def _tiny_squad(path: Path) -> Path:
    data = []
    for title, (context, qas) in TINY_CONTEXTS.items():
        items = []
        for i, (question, answer) in enumerate(qas):
            answers = [{"text": answer, "answer_start": context.index(answer)}] if answer else []
            items.append(
                {
                    "id": f"{title}-{i}",
                    "question": question,
                    "answers": answers,
                    "is_impossible": not answers,
                }
            )
        data.append({"title": title, "paragraphs": [{"context": context, "qas": items}]})
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path


def test_evaluate_over_own_contexts_from_the_command_line(
    tmp_path: Path, tiny_reader: Path
) -> None:
    labels = _tiny_squad(tmp_path / "tiny.json")
    home, contexts = tmp_path / "home", tmp_path / "contexts"
    args = ["evaluate", str(labels), "--own-contexts", "--reader", str(tiny_reader)]
    args += ["--home", str(home), "--contexts-home", str(contexts), "-k", "3", "--json"]
    result = CliRunner().invoke(app, [*args, "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    assert report["questions"] == 6 and report["answerable"] == 4
    coll = report["collection"]
    assert coll["built_from"] == "contexts" and coll["contexts"] == 3
    assert coll["documents"] == 3 and coll["passages"] == 3 and coll["embedded_passages"] == 3
    # Three one-passage documents and k = 3: every gold passage is retrieved, by its offsets.
    assert report["retrieval"]["recall@3"] == 1.0
    assert report["gold_passage_rule"] == {"offsets": 4}
    assert report["closed"]["total"] == 6 and report["answers"]["total"] == 6
    assert report["labels"] == str(labels)
    assert all(Path(p).read_bytes()[:8] == PNG_MAGIC for p in report["plots"])
    assert not (home / "index").exists()  # --home's own index is neither read nor written

    # The kept contexts' index is reused: nothing is embedded again.
    result = CliRunner().invoke(app, [*args, "--no-closed", "--questions", "2"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["collection"]["embedded_passages"] == 0 and again["questions"] == 2
    assert again["closed"] is None
