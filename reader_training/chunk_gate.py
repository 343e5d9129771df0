"""After a campaign chunk: domain stage, evaluation, and the gate that decides whether to ship.

The chunk's base reader (``<campaign>/latest``) goes through the default recipe's stages 2 and 3
(domain fine-tuning on the demo train pairs with replay of the pool; the retriever weight and
open no-answer offset tuned on held-out demo train pairs) in a work folder of the campaign, never
in the user's home or the checkout. The candidate and the shipped reader are then measured side
by side, in one run:

* ``dev-v2.0-half`` (all 6,078 questions; the official ``evaluate-v2.0.py`` on the candidate's
  predictions too), with each reader's own threshold: overall, HasAns, NoAns, and HasAns with the
  best span forced;
* the demo dev pairs on their gold documents (what ``docqa promote`` compares) and end to end
  over the indexed demo collection, top 10 passages read;
* forgetting: best-span HasAns F1 on the fixed 1,000-question SQuAD sample before and after the
  domain stage.

The gate ships the candidate only when it is the better reader on SQuAD 2.0 by the measures
that do not depend on a no-answer threshold (F1 at the best threshold higher, HasAns F1 with
the best span forced not lower), is not worse on the demo dev pairs at its serving threshold (the
promotion gate's own test) and forgot at most one point on the SQuAD sample. SQuAD F1 at each
reader's own threshold is reported beside, not gated on: both thresholds are chosen on demo
held-out pairs (none of the data has unanswerables written like SQuAD 2.0's, and rule-made ones
pulled the threshold the wrong way: README), so that number measures how a domain threshold
transfers to SQuAD more than which reader reads better. The shipped folder then records its
schedule position (``campaign_position.json``) so that a new machine can warm-start the campaign
from it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evaluation.environment import cpu_description
from evaluation.squad import load_squad, write_json_atomic
from pipelines.settings import Settings
from reader_training.campaign_spec import POSITION_FILE, CampaignState
from reader_training.promote import MAX_FORGETTING

logger = logging.getLogger(__name__)

REPORT_FILE = "chunk_report.json"
LABELS = {"candidate": "the chunk's reader", "shipped": "the reader it was measured against"}


def _official_score(shared_data: Path, predictions: dict[str, str], out: Path) -> dict[str, Any]:
    """The official SQuAD v2.0 script's numbers for ``predictions`` (run as a subprocess)."""
    pred_file = out / "predictions.json"
    write_json_atomic(predictions, pred_file)
    script = shared_data / "squad" / "evaluate-v2.0.py"
    data = shared_data / "squad" / "dev-v2.0-half.json"
    if not script.is_file():
        raise FileNotFoundError(f"{script}: the official SQuAD v2.0 evaluation script is missing")
    run = subprocess.run(
        [sys.executable, str(script), str(data), str(pred_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def _squad_eval(reader: Path, shared_data: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from evaluation.reader_metrics import evaluate_reader

    # Every question id, duplicates included: the official script scores all of them.
    examples, _ = load_squad(shared_data / "squad" / "dev-v2.0-half.json", drop_duplicates=False)
    return evaluate_reader(reader, examples, progress=False)


def _demo_eval(reader: Path, demo_settings: Settings) -> dict[str, Any]:
    from evaluation.end_to_end import evaluate_end_to_end
    from evaluation.reader_metrics import evaluate_reader
    from pipelines.settings import DEMO_LABELS

    dev, _ = load_squad(DEMO_LABELS / "dev.json")
    closed, _ = evaluate_reader(reader, dev, progress=False)
    report = evaluate_end_to_end(
        dev, demo_settings.with_(reader_model=str(reader)), top_k=10, progress=False
    )
    return {
        "gold_documents": closed,
        "end_to_end": report["answers"],
        "end_to_end_at_k": report["answers_at_k"],
        "retrieval": report["retrieval"],
    }


def _summary(metrics: dict[str, Any]) -> dict[str, float]:
    keys = ("f1", "exact", "HasAns_f1", "NoAns_f1", "HasAns_f1_best_span", "best_f1")
    return {k: round(float(metrics[k]), 2) for k in keys if k in metrics}


def readme_rows(
    report: dict[str, Any], state: CampaignState, campaign: str = "default"
) -> list[dict[str, str]]:
    """The README results table's rows for a chunk report (scripts/results_table.py)."""
    squad, demo = report["squad_dev_v2_half"], report["demo_dev"]
    chunk = state.chunks[-1] if state.chunks else {}
    where = (
        f"schedule step {state.step} of {state.total_steps} "
        f"({report['windows_seen']:,} windows, {report['epochs_done']} epochs)"
    )

    def squad_text(name: str) -> str:
        m = squad[name]
        return (
            f"{LABELS[name]} F1 {m['f1']:.2f} (HasAns {m.get('HasAns_f1', 0):.2f}, best span "
            f"{m.get('HasAns_f1_best_span', 0):.2f}, NoAns {m.get('NoAns_f1', 0):.2f}; at the "
            f"best threshold {m.get('best_f1', 0):.2f})"
        )

    def demo_text(name: str) -> str:
        d = demo[name]
        at_k = d["end_to_end_f1_at_k"]
        return (
            f"{LABELS[name]} gold documents F1 {d['gold_documents']['f1']:.2f}, end to end "
            f"top 10 F1 {d['end_to_end']['f1']:.2f} (top 1: {at_k.get('1', float('nan')):.2f})"
        )

    named = "" if campaign == "default" else f" --name {campaign}"
    command = f"docqa campaign{named} --resume --budget 150m"
    forget = report["forgetting_best_span_hasans_f1"]
    return [
        {
            "what": f"reader campaign, {where}: SQuAD 2.0 `dev-v2.0-half`, all 6,078 questions",
            "number": f"{squad_text('candidate')}; {squad_text('shipped')}; "
            f"gate {'passed' if report['gate']['passed'] else 'not passed'}",
            "command": command,
        },
        {
            "what": f"reader campaign, {where}: demo dev pairs (190)",
            "number": f"{demo_text('candidate')}; {demo_text('shipped')}; forgetting (best-span "
            f"HasAns F1, 1,000 SQuAD questions) {forget['before_domain']:.2f} -> "
            f"{forget['after_domain']:.2f}",
            "command": command,
        },
        {
            "what": f"reader campaign training speed (chunk to step {state.step})",
            "number": f"{chunk.get('windows_per_second', 0)} windows/s, "
            f"{chunk.get('precision', '?')}, {chunk.get('windows', 0):,} windows in "
            f"{chunk.get('seconds', 0) / 60:.0f} min on {chunk.get('cpu', '?')}",
            "command": command,
        },
    ]


def gate_checks(
    squad: dict[str, Any], demo: dict[str, Any], forgetting: dict[str, float]
) -> dict[str, bool]:
    """The gate's tests (all must hold to ship), from the side-by-side numbers."""
    c, s = squad["candidate"], squad["shipped"]
    return {
        "squad_best_threshold_f1_higher": c["best_f1"] > s["best_f1"],
        "squad_best_span_hasans_f1_not_lower": c["HasAns_f1_best_span"] >= s["HasAns_f1_best_span"],
        "demo_dev_f1_not_lower": demo["candidate"]["gold_documents"]["f1"]
        >= demo["shipped"]["gold_documents"]["f1"],
        "forgetting_within_limit": forgetting["before_domain"] - forgetting["after_domain"]
        <= MAX_FORGETTING,
    }


def finish_chunk(
    campaign_dir: Path,
    shared_data: Path,
    settings: Settings,
    ship_to: Path | None = None,
    shipped: Path | None = None,
    domain_recipe: Any = None,
) -> dict[str, Any]:
    """Domain stage, evaluation and gate for the campaign's latest chunk; returns the report.

    ``shipped`` is the reader to beat (default: the one in the repository); with ``ship_to`` a
    candidate that passes the gate is copied there (fp16, atomically).
    """
    from evaluation.end_to_end import index_collection
    from evaluation.environment import environment
    from evaluation.reader_metrics import evaluate_reader
    from pipelines.reader_config import ReaderConfig
    from pipelines.settings import DEMO_COLLECTION, SHIPPED_READER
    from reader_training.recipes import (
        DomainRecipe,
        domain_train_config,
        forgetting_sample,
        ship_reader,
        tune_domain_weight,
    )
    from reader_training.train import train_reader

    shipped = shipped or SHIPPED_READER
    state = CampaignState.load(campaign_dir)
    latest = campaign_dir / "latest"
    work = campaign_dir / "finish" / f"step-{state.step}"
    candidate = work / "reader"
    demo_settings = settings.with_(home=work / "home")
    domain = domain_train_config(
        latest, campaign_dir / "pool.json", candidate, domain_recipe or DomainRecipe()
    )
    if not (candidate / "metrics.json").is_file():
        train_reader(domain, progress=False)
        ranking: dict[str, Any] = tune_domain_weight(candidate, demo_settings, domain).report()
    else:  # a finish that was interrupted after training: keep its reader and its tuning
        index_collection([DEMO_COLLECTION], demo_settings, progress=False)
        saved = ReaderConfig.load(candidate).ranking
        ranking = asdict(saved) | {"heldout_f1": "tuned by an earlier run of this gate"}
    write_json_atomic(state.position(), candidate / POSITION_FILE)

    sample = forgetting_sample(shared_data)
    report: dict[str, Any] = {
        "campaign_step": state.step,
        "total_steps": state.total_steps,
        "windows_seen": state.step * state.spec.batch_size,
        "epochs_done": state.position()["epochs_done"],
        "cpu": cpu_description(),
        "answer_ranking": ranking,
        "forgetting_best_span_hasans_f1": {
            "before_domain": round(
                evaluate_reader(latest, sample, progress=False)[0]["HasAns_f1_best_span"], 2
            ),
            "after_domain": round(
                evaluate_reader(candidate, sample, progress=False)[0]["HasAns_f1_best_span"], 2
            ),
        },
    }
    squad: dict[str, Any] = {}
    demo: dict[str, Any] = {}
    measured: dict[Path, tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = {}
    for name, reader in (("candidate", candidate), ("shipped", shipped)):
        folder = Path(reader).resolve()
        if folder not in measured:  # a reader gated against itself is measured once
            on_squad = _squad_eval(reader, shared_data)
            measured[folder] = (*on_squad, _demo_eval(reader, demo_settings))
        metrics, predictions, d = measured[folder]
        squad[name] = _summary(metrics) | {"threshold": round(float(metrics["threshold"]), 3)}
        if name == "candidate":
            official = _official_score(shared_data, predictions, work)
            squad[name]["official"] = {
                k: round(float(v), 2) for k, v in official.items() if "total" not in k
            }
        demo[name] = {
            "gold_documents": _summary(d["gold_documents"]),
            "end_to_end": _summary(d["end_to_end"]),
            "end_to_end_f1_at_k": {
                str(row["k"]): round(row["f1"], 2) for row in d["end_to_end_at_k"]
            },
            "recall@10": d["retrieval"].get("recall@10"),
        }
    report["squad_dev_v2_half"] = squad
    report["demo_dev"] = demo
    gate = gate_checks(squad, demo, report["forgetting_best_span_hasans_f1"])
    passed = all(gate.values())
    report["gate"] = {"passed": passed, **gate}
    c, s = squad["candidate"], squad["shipped"]
    verdict = (
        f"chunk at step {state.step}/{state.total_steps}: SQuAD 2.0 F1 at the best threshold "
        f"{c['best_f1']:.2f} (shipped {s['best_f1']:.2f}), best-span HasAns "
        f"{c['HasAns_f1_best_span']:.2f} ({s['HasAns_f1_best_span']:.2f}), at its own threshold "
        f"{c['f1']:.2f} ({s['f1']:.2f}); demo dev F1 "
        f"{demo['candidate']['gold_documents']['f1']:.2f} "
        f"(shipped {demo['shipped']['gold_documents']['f1']:.2f}): "
        + ("passes the gate" if passed else "does not pass the gate; not shipped")
    )
    if passed and ship_to is not None:
        ship_reader(candidate, ship_to)
        verdict += f"; shipped to {ship_to}"
    report["verdict"] = verdict
    report["environment"] = environment()
    report["readme_rows"] = readme_rows(report, state, campaign_dir.name)
    write_json_atomic(report, work / REPORT_FILE)
    write_json_atomic(report, campaign_dir / REPORT_FILE)
    if passed and ship_to is not None:
        write_json_atomic(report, ship_to / REPORT_FILE)
    logger.info("%s", verdict)
    return report
