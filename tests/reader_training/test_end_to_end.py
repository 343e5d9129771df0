"""End-to-end evaluation over the small indexed demo collection (retrieval, answers, latency)."""

from __future__ import annotations

from pipelines.settings import REPO_ROOT, Settings
from reader_training.end_to_end import evaluate_end_to_end, format_report
from reader_training.squad import load_squad

DEMO_TRAIN = REPO_ROOT / "data" / "demo" / "labels" / "train.json"
INDEXED_TITLES = {
    "hr/leave-policy.pdf",
    "hr/remote-work-policy.md",
    "it/office-network-and-wifi.txt",
    "it/laptop-provisioning.html",
    "it/backup-restore-runbook-v1.docx",
}


def test_end_to_end_report_over_the_demo_index(demo_home: Settings) -> None:
    examples = [ex for ex in load_squad(DEMO_TRAIN)[0] if ex.title in INDEXED_TITLES][::8]
    answerable = sum(1 for ex in examples if ex.answers)
    assert answerable >= 5 and len(examples) > answerable

    report = evaluate_end_to_end(examples, demo_home, top_k=5, progress=False)
    assert report["questions"] == len(examples) and report["top_k"] == 5
    retrieval = report["retrieval"]
    assert set(retrieval) == {"recall@1", "recall@5", "mrr"}
    # The labels' contexts are the converted documents, so gold passages are found in the index.
    assert retrieval["recall@5"] >= 0.7
    assert retrieval["recall@1"] <= retrieval["recall@5"]
    assert 0.0 < retrieval["mrr"] <= 1.0
    answers = report["answers"]
    assert answers["total"] == len(examples) and answers["HasAns_total"] == answerable
    assert 0.0 <= answers["f1"] <= 100.0
    latency = report["latency_seconds"]
    assert 0.0 < latency["p50"] <= latency["p95"]
    assert report["reader"] == demo_home.reader_model

    text = format_report(report)
    assert text.splitlines()[0].startswith(f"{len(examples)} questions, top 5 passages")
    assert "recall@5" in text and "latency p50" in text
