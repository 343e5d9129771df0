"""The F1-against-passages-read plot that ``bench_answer_ranking.py --k-curve`` draws."""

from __future__ import annotations

from pathlib import Path

from matplotlib.image import imread

from evaluation.plots import plot_f1_vs_k

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _curve(f1s: list[float]) -> list[dict[str, float]]:
    return [
        {"k": k, "f1": f1, "HasAns": f1 + 5, "NoAns": f1 - 5}
        for k, f1 in zip((1, 3, 5, 10, 20), f1s, strict=True)
    ]


def test_one_panel_per_set_with_a_line_per_ranking(tmp_path: Path) -> None:
    curves = {
        name: {"window (the reader's)": _curve(f1s), "question": _curve([f - 3 for f in f1s])}
        for name, f1s in (
            ("realdocs", [36.0, 42.0, 44.0, 46.0, 46.5]),
            ("demo", [61.9, 70.1, 70.1, 70.4, 70.0]),
            ("open SQuAD", [55.5, 53.2, 51.9, 50.5, 49.0]),
        )
    }
    three = plot_f1_vs_k(curves, tmp_path / "three" / "f1_vs_k.png", title="reader v0.4")
    one = plot_f1_vs_k({"demo": curves["demo"]}, tmp_path / "one.png")

    assert three.read_bytes()[:8] == PNG_MAGIC and three.stat().st_size > 10_000
    # A panel per set, side by side, each as wide as a single set's figure.
    height, width = imread(three).shape[:2]
    one_height, one_width = imread(one).shape[:2]
    assert height == one_height and width == 3 * one_width
