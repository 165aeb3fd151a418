"""Plots written as PNG files, whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path

from ..analysis.sensitivity import SensitivityList


def sensitivity_bars(sensitivity: SensitivityList, path: Path | str, *, fp32_layers: frozenset[str] = frozenset()
                     ) -> Path:
    """A horizontal bar per layer, most sensitive at the top; the layers a plan keeps FP32 are highlighted."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    entries = sensitivity.entries
    figure, axes = plt.subplots(figsize=(8, 1.5 + 0.22 * len(entries)), layout="constrained")
    try:
        rows = range(len(entries))
        colours = ["#c0392b" if e.layer in fp32_layers else "#2e86c1" for e in entries]
        axes.barh(list(rows), [e.score for e in entries], color=colours)
        axes.set_yticks(list(rows), [e.layer for e in entries], fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.set_xlabel("sensitivity score (0 safest, 1 most sensitive layer)")
        title = f"{sensitivity.model}: layer sensitivity"
        axes.set_title(title + (f" (red: kept FP32, {len(fp32_layers)})" if fp32_layers else ""))
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        figure.savefig(partial, format="png", dpi=110)
        os.replace(partial, path)
    finally:
        plt.close(figure)
    return path
