"""Policies that turn a sensitivity list (most sensitive first) into the layers kept FP32, and into a plan.

Each policy returns the FP32 layers in sensitivity order; `plan_keeping_fp32` makes the precision plan. The
accuracy and latency budgets, which need evaluations and profiles, build on these.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..analysis.metrics import LayerMetrics
from ..errors import QuantuneError
from ..layers import LayerTable
from .plan import PrecisionPlan

FP32_BYTES, INT8_BYTES = 4, 1


def top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The k most sensitive layers."""
    if not 0 <= k <= len(ranked):
        raise QuantuneError(f"top-k: k must lie in [0, {len(ranked)}] (the model's layers), got {k}")
    return list(ranked[:k])


def fraction(ranked: Sequence[str], share: float) -> list[str]:
    """The most sensitive share of the layers (rounded up: any positive share keeps at least one FP32)."""
    if not 0.0 <= share <= 1.0:
        raise QuantuneError(f"fraction: the share of FP32 layers must lie in [0, 1], got {share}")
    return top_k(ranked, math.ceil(round(share * len(ranked), 9)))


def sqnr_threshold(ranked: Sequence[str], metrics: Sequence[LayerMetrics], min_db: float) -> list[str]:
    """The layers whose activation SQNR falls below min_db (their int8 output loses too much of the signal)."""
    by_layer = {m.layer: m for m in metrics}
    missing = [layer for layer in ranked if layer not in by_layer]
    if missing:
        raise QuantuneError(f"sqnr threshold: no metrics for layer '{missing[0]}'")
    return [layer for layer in ranked if by_layer[layer].activation_sqnr_db < min_db]


def model_bytes(table: LayerTable, fp32_layers: Sequence[str]) -> int:
    """The layers' weight bytes when fp32_layers stay FP32 and the rest are int8 (biases and per-channel scales,
    a few hundred bytes per layer, are left out)."""
    keep = set(fp32_layers)
    return sum(layer.params * (FP32_BYTES if layer.id in keep else INT8_BYTES) for layer in table.layers)


def size_budget(ranked: Sequence[str], table: LayerTable, max_bytes: int) -> list[str]:
    """Walk down the list keeping layers FP32 while the weights fit in max_bytes; a layer that does not fit is
    skipped and the walk goes on (a smaller, less sensitive layer may still fit)."""
    floor = model_bytes(table, [])
    if max_bytes < floor:
        raise QuantuneError(f"size budget: {max_bytes} bytes is below the all-int8 model's {floor} bytes of weights")
    kept: list[str] = []
    for layer in ranked:
        if model_bytes(table, [*kept, layer]) <= max_bytes:
            kept.append(layer)
    return kept


def plan_keeping_fp32(table: LayerTable, fp32_layers: Sequence[str]) -> PrecisionPlan:
    unknown = [layer for layer in fp32_layers if layer not in table.ids]
    if unknown:
        raise QuantuneError(f"{table.model} has no layer '{unknown[0]}'")
    plan = PrecisionPlan.uniform(table, "int8")
    for layer in fp32_layers:
        plan = plan.with_precision(layer, "fp32")
    return plan
