"""Plots written as PNG files, whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path

from ..analysis.sensitivity import SensitivityList


COLOURS = {"quantunev2": "#c0392b", "one-at-a-time": "#8e44ad", "first-last": "#2e86c1", "random": "#7f8c8d"}


def _figure(size):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    return plt, *plt.subplots(figsize=size, layout="constrained")


def _save(plt, figure, path: Path | str) -> Path:
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        figure.savefig(partial, format="png", dpi=110)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        plt.close(figure)
    return path


def accuracy_curve(points: list[dict], fp32, model: str, path: Path | str) -> Path:
    """Top-1 (or agreement with FP32, without labels) against the number of FP32 layers, one line per method."""
    plt, figure, axes = _figure((7, 4.5))
    key = "top1" if fp32.top1 is not None else "agreement"
    for method in dict.fromkeys(p["method"] for p in points):
        line = [p for p in points if p["method"] == method]
        axes.plot([p["fp32_layers"] for p in line], [p[key] for p in line], marker="o", label=method,
                  color=COLOURS.get(method))
    if key == "top1":
        axes.axhline(fp32.top1, color="black", linestyle="--", linewidth=1, label="FP32")
    axes.set_xlabel("layers kept FP32 (random: the mean of its draws)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("top-1 (%)" if key == "top1" else "same class as FP32 (%)")
    axes.set_title(f"{model}: accuracy against FP32 layers")
    axes.legend()
    return _save(plt, figure, path)


def accuracy_vs_latency(points: list[dict], fp32, model: str, path: Path | str) -> Path:
    """Each measured build as a point: latency on this machine against top-1."""
    plt, figure, axes = _figure((7, 4.5))
    key = "top1" if fp32.top1 is not None else "agreement"
    for method in dict.fromkeys(p["method"] for p in points):
        line = [p for p in points if p["method"] == method]
        axes.scatter([p["latency_ms"] for p in line], [p[key] for p in line], label=method,
                     color=COLOURS.get(method))
    axes.scatter([fp32.latency_ms], [fp32.top1 if key == "top1" else 100.0], marker="*", s=150, color="black",
                 label="FP32")
    axes.set_xlabel("latency (ms, median, this machine)")
    axes.set_ylabel("top-1 (%)" if key == "top1" else "same class as FP32 (%)")
    axes.set_title(f"{model}: accuracy against latency")
    axes.legend()
    return _save(plt, figure, path)


def sensitivity_bars(sensitivity: SensitivityList, path: Path | str, *, fp32_layers: frozenset[str] = frozenset()
                     ) -> Path:
    """A horizontal bar per layer, most sensitive at the top; the layers a plan keeps FP32 are highlighted."""
    entries = sensitivity.entries
    plt, figure, axes = _figure((8, 1.5 + 0.22 * len(entries)))
    rows = range(len(entries))
    colours = ["#c0392b" if e.layer in fp32_layers else "#2e86c1" for e in entries]
    axes.barh(list(rows), [e.score for e in entries], color=colours)
    axes.set_yticks(list(rows), [e.layer for e in entries], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("sensitivity score (0 safest, 1 most sensitive layer)")
    title = f"{sensitivity.model}: layer sensitivity"
    axes.set_title(title + (f" (red: kept FP32, {len(fp32_layers)})" if fp32_layers else ""))
    return _save(plt, figure, path)
