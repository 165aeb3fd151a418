"""Which code runs an int8 layer, the project's kernel or IREE's own codegen of the integer linalg, by a cost model
calibrated on this machine.

Per code path and layer kind, time = a * multiply-accumulates + b * outputs + c (the arithmetic, the epilogue
and the launch), fitted by least squares to the per-layer times `scripts/kernel_layer_costs.py
--write-calibration` measured on one profile of each path. The measurements and the fit are kept in
`calibration/<library>.json` beside this file, so that the choice can be checked against what was measured.
Without a calibration for the library, and for layers smaller or larger than any it measured of their kind (a
straight line through 224x224 layers says little about a 28x28 model's), every layer the kernels can run goes
to them.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
PATHS = ("kernel", "iree")


@dataclass(frozen=True)
class LayerWork:
    kind: str  # conv | depthwise_conv | linear (the layer table's kinds)
    macs: int
    outputs: int

    @classmethod
    def of(cls, kind: str, weight_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> "LayerWork":
        outputs = int(np.prod(output_shape))
        return cls(_TABLE_KINDS.get(kind, kind), outputs * int(np.prod(weight_shape[1:])), outputs)


_TABLE_KINDS = {"depthwise": "depthwise_conv"}  # the rewrite's name for it


@dataclass(frozen=True)
class CostModel:
    library: str
    coefficients: dict[str, tuple[float, float, float]]  # "<path>:<kind>" -> (ms per MAC, per output, per layer)
    # kind -> the smallest and largest MACs of a measured layer: the model does not extrapolate beyond them
    measured_macs: dict[str, tuple[int, int]]

    def milliseconds(self, path: str, work: LayerWork) -> float | None:
        fit = self.coefficients.get(f"{path}:{work.kind}")
        return None if fit is None else fit[0] * work.macs + fit[1] * work.outputs + fit[2]

    def prefers_kernel(self, work: LayerWork) -> bool:
        """The kernel unless the model, within the layer sizes it was measured on, predicts IREE faster."""
        low, high = self.measured_macs.get(work.kind, (0, -1))
        if not low <= work.macs <= high:
            return True
        kernel, iree = self.milliseconds("kernel", work), self.milliseconds("iree", work)
        return kernel is None or iree is None or kernel <= iree


def fit(library: str, measurements: list[dict]) -> CostModel:
    """measurements: {"kind", "macs", "outputs", "kernel_ms", "iree_ms"} per layer. The coefficients are fitted
    non-negative (a negative launch cost would make small layers look free)."""
    coefficients = {}
    for path in PATHS:
        for kind in sorted({m["kind"] for m in measurements}):
            rows = [m for m in measurements if m["kind"] == kind]
            if len(rows) < 2:  # one layer fixes no rate: no opinion, the kernel runs it
                continue
            # two layers (a model's one linear layer each) fit time = a * MACs + c only
            columns = ["macs", "outputs"] if len(rows) > 2 else ["macs"]
            design = np.array([[m[c] for c in columns] + [1.0] for m in rows], np.float64)
            times = np.array([m[f"{path}_ms"] for m in rows], np.float64)
            per_mac, *rest, per_layer = _non_negative_least_squares(design, times)
            coefficients[f"{path}:{kind}"] = (per_mac, rest[0] if rest else 0.0, per_layer)
    return CostModel(library, coefficients, _measured_macs(measurements))


def _measured_macs(measurements: list[dict]) -> dict[str, tuple[int, int]]:
    kinds = {m["kind"] for m in measurements}
    return {kind: (min(m["macs"] for m in measurements if m["kind"] == kind),
                   max(m["macs"] for m in measurements if m["kind"] == kind)) for kind in kinds}


def _non_negative_least_squares(design: np.ndarray, times: np.ndarray) -> list[float]:
    """The least-squares fit with every coefficient >= 0, over all subsets of free columns (three at most)."""
    scale = design.max(axis=0)  # MACs and outputs span 1e3..1e8: fit on comparable columns
    scaled = design / scale
    best, best_residual = np.zeros(design.shape[1]), float(np.sum(times ** 2))
    for mask in range(1, 1 << design.shape[1]):
        free = [i for i in range(design.shape[1]) if mask >> i & 1]
        solution = np.zeros(design.shape[1])
        solution[free] = np.linalg.lstsq(scaled[:, free], times, rcond=None)[0]
        residual = float(np.sum((scaled @ solution - times) ** 2))
        if (solution >= 0).all() and residual < best_residual - 1e-15:
            best, best_residual = solution, residual
    return [float(v) for v in best / scale]


def calibration_path(library: str) -> Path:
    return CALIBRATION_DIR / f"{library}.json"


def write_calibration(library: str, measurements: list[dict], machine: str) -> CostModel:
    model = fit(library, measurements)
    CALIBRATION_DIR.mkdir(exist_ok=True)
    calibration_path(library).write_text(json.dumps(
        {"library": library, "machine": machine, "coefficients": model.coefficients,
         "measurements": measurements}, indent=1) + "\n")
    return model


@functools.cache
def load(library: str) -> CostModel | None:
    path = calibration_path(library)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return CostModel(library, {k: tuple(v) for k, v in data["coefficients"].items()},
                     _measured_macs(data["measurements"]))
