"""PNG plots of an end-to-end report: EM/F1 and recall against k, and the latency histogram.

Plots are drawn from the report dictionary alone (as printed by ``docqa evaluate --json``), so
they can be redrawn from a saved report. Matplotlib's object API is used without ``pyplot``: no
global backend or figure state, safe in a web page's threads.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

logger = logging.getLogger(__name__)

ACCURACY_PLOT = "em_f1_vs_k.png"
LATENCY_PLOT = "latency_histogram.png"


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    logger.info("wrote %s", path)
    return path


def plot_accuracy_vs_k(report: dict[str, Any], path: Path) -> Path:
    """Open EM/F1 (and HasAns/NoAns F1) against passages read, beside retrieval recall@k."""
    rows = report["answers_at_k"]
    ks = [row["k"] for row in rows]
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.plot(ks, [row["exact"] for row in rows], "o-", label="EM (open)")
    left.plot(ks, [row["f1"] for row in rows], "s-", label="F1 (open)")
    for split, style in (("HasAns", ":"), ("NoAns", "--")):
        if all(f"{split}_f1" in row for row in rows):
            left.plot(ks, [row[f"{split}_f1"] for row in rows], style, label=f"{split} F1 (open)")
    closed = report.get("closed")
    if closed:
        left.axhline(closed["exact"], color="C0", alpha=0.4, lw=1, label="EM (gold passages)")
        left.axhline(closed["f1"], color="C1", alpha=0.4, lw=1, label="F1 (gold passages)")
    left.set(xlabel="passages read (k)", ylabel="score (%)", title="Answers vs passages read")
    left.set_xticks(ks)
    left.set_ylim(0, 100)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    curve = report.get("recall_curve") or []
    right.plot(range(1, len(curve) + 1), curve, ".-", color="C2")
    if len(curve) > report["top_k"]:
        right.axvline(report["top_k"], color="k", ls=":", lw=1, label="passages read")
        right.legend(fontsize=8, loc="lower right")
    right.set(
        xlabel="passages retrieved (k)",
        ylabel="recall@k",
        title=f"Retrieval (MRR {report['retrieval']['mrr']:.3f})",
        ylim=(0, 1.02),
    )
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.grid(alpha=0.3)
    reader = Path(str(report["reader"]))
    fig.suptitle(f"{report['questions']} questions, reader {reader.parent.name}/{reader.name}")
    return _save(fig, path)


def plot_f1_vs_k(
    curves: dict[str, dict[str, list[dict[str, float]]]], path: Path, title: str = ""
) -> Path:
    """One panel per set: top-1 F1 against passages read, a line per ranking (the first solid,
    the others dashed), with HasAns and NoAns F1 of the first ranking dotted."""
    fig = Figure(figsize=(4.2 * len(curves), 4))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, by_label) in zip(axes, curves.items(), strict=True):
        for i, (label, points) in enumerate(by_label.items()):
            ks = [p["k"] for p in points]
            ax.plot(ks, [p["f1"] for p in points], "o-" if i == 0 else "s--", label=f"F1, {label}")
            if i == 0:
                for split, style in (("HasAns", ":"), ("NoAns", "-.")):
                    if all(split in p for p in points):
                        values = [p[split] for p in points]
                        ax.plot(ks, values, style, color="0.45", label=f"{split} F1")
        ax.set(xlabel="passages read (k)", ylabel="top-1 F1 (%)", title=name, ylim=(0, 100))
        ax.set_xscale("log")
        ax.minorticks_off()  # only the k read are labelled, not log-scale minor ticks
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_latency(report: dict[str, Any], path: Path) -> Path:
    """Histogram of the per-question latency, with p50 and p95 marked."""
    lat = report["latency_seconds"]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    hist = lat.get("histogram_ms")
    if hist:
        edges, counts = hist["edges"], hist["counts"]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        ax.bar(edges[:-1], counts, width=widths, align="edge", edgecolor="white")
    for name, style in (("p50", "-"), ("p95", "--")):
        ax.axvline(lat[name] * 1000, color="k", ls=style, label=f"{name} {lat[name] * 1000:.0f} ms")
    ax.set(
        xlabel="latency per question (ms)",
        ylabel="questions",
        title=f"Embed + retrieve + read {report['top_k']} passages",
    )
    ax.legend()
    return _save(fig, path)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Both plots of ``report`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    return [
        plot_accuracy_vs_k(report, out_dir / ACCURACY_PLOT),
        plot_latency(report, out_dir / LATENCY_PLOT),
    ]
