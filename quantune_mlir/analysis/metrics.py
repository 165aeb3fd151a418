"""QuantuneV2's local metrics of one layer, and the sensitivity score that ranks the layers.

Per layer four metrics: SQNR and MSE of the weights (W against dequantize(quantize(W)) at the plan's scales) and of
the activations (the FP32 run's tensor against the int8 run's tensor, dequantized). One score combines them with
configurable ratios (default equal). Normalisation: each metric becomes a risk in [0, 1] across the model's layers
by min-max scaling, oriented so that 1 is the worst layer (the lowest SQNR, the highest MSE); a metric equal on
every layer carries no information and gives 0. The score is the ratio-weighted mean of the four risks, so it too
lies in [0, 1], and the most sensitive layer has the highest score.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import QuantuneError
from ..quantization import AffineParams, dequantize, dequantize_weight, quantize_weight

SQNR_CAP_DB = 200.0  # what identical arrays report instead of infinity


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(signal power / noise power), capped at SQNR_CAP_DB for identical arrays."""
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    noise = float(np.sum((reference - other) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal == 0.0:
        return -SQNR_CAP_DB
    return float(np.clip(10.0 * np.log10(signal / noise), -SQNR_CAP_DB, SQNR_CAP_DB))


def power_sqnr_db(signal: float, noise: float) -> float:
    """10 log10(signal / noise) for mean powers, capped at +-SQNR_CAP_DB (a zero noise gives the cap)."""
    if noise == 0.0:
        return SQNR_CAP_DB
    return float(np.clip(10.0 * np.log10(max(signal, 1e-300) / noise), -SQNR_CAP_DB, SQNR_CAP_DB))


def mse(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))


@dataclass(frozen=True)
class LayerMetrics:
    layer: str
    weight_sqnr_db: float
    weight_mse: float
    activation_sqnr_db: float
    activation_mse: float


def weight_metrics(weight: np.ndarray, scales: np.ndarray, int8: np.ndarray | None = None) -> tuple[float, float]:
    """(SQNR, MSE) of weight against its symmetric int8 round trip at scales (one per output channel, or one):
    int8, where given (the rounding calibration chose), else rounded to nearest."""
    restored = dequantize_weight(quantize_weight(weight, scales) if int8 is None else int8, scales)
    return sqnr_db(weight, restored), mse(weight, restored)


def activation_metrics(fp32: np.ndarray, int8: np.ndarray, params: AffineParams) -> tuple[float, float]:
    """(SQNR, MSE) of an FP32 tensor against the int8 run's tensor at the same point, dequantized."""
    if fp32.shape != int8.shape:
        raise QuantuneError(f"the FP32 tensor has shape {fp32.shape} but the int8 one {int8.shape}")
    restored = dequantize(int8, params)
    return sqnr_db(fp32, restored), mse(fp32, restored)


@dataclass(frozen=True)
class MetricRatios:
    """How much each metric counts in the sensitivity score (relative weights, at least one positive)."""

    weight_sqnr: float = 1.0
    weight_mse: float = 1.0
    activation_sqnr: float = 1.0
    activation_mse: float = 1.0

    def __post_init__(self):
        values = [getattr(self, f.name) for f in fields(self)]
        if any(v < 0 or not np.isfinite(v) for v in values) or sum(values) == 0:
            raise QuantuneError(f"metric ratios must be finite, non-negative and not all zero, got {values}")


def sensitivity_scores(metrics: list[LayerMetrics], ratios: MetricRatios = MetricRatios()) -> dict[str, float]:
    """Each layer's score in [0, 1] (module docstring), keyed by layer id."""
    if not metrics:
        return {}
    columns = {
        "weight_sqnr": _risk([m.weight_sqnr_db for m in metrics], higher_is_worse=False),
        "weight_mse": _risk([m.weight_mse for m in metrics], higher_is_worse=True),
        "activation_sqnr": _risk([m.activation_sqnr_db for m in metrics], higher_is_worse=False),
        "activation_mse": _risk([m.activation_mse for m in metrics], higher_is_worse=True),
    }
    weights = {name: getattr(ratios, name) for name in columns}
    total = sum(weights.values())
    combined = sum(weights[name] * risk for name, risk in columns.items()) / total
    return {m.layer: float(score) for m, score in zip(metrics, combined)}


def sensitivity_list(metrics: list[LayerMetrics], ratios: MetricRatios = MetricRatios()) -> list[tuple[str, float]]:
    """(layer, score), most sensitive first; ties keep the model's layer order."""
    scores = sensitivity_scores(metrics, ratios)
    return sorted(scores.items(), key=lambda item: -item[1])


def _risk(values: list[float], *, higher_is_worse: bool) -> np.ndarray:
    x = np.asarray(values, np.float64)
    span = x.max() - x.min()
    if span == 0:
        return np.zeros_like(x)
    scaled = (x - x.min()) / span
    return scaled if higher_is_worse else 1.0 - scaled
