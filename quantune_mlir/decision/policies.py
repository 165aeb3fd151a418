"""Policies that turn a sensitivity list (most sensitive first) into the layers kept FP32, and into a plan.

Each policy returns the FP32 layers in sensitivity order; `plan_keeping_fp32` makes the precision plan. The
accuracy budget takes the evaluation as a function (the pipeline builds and runs each candidate), the latency
budget per-layer costs from a profile (profile.py). `parse_policy` reads the CLI's `--policy` spelling.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

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
    return _greedy(ranked, lambda kept: model_bytes(table, kept) <= max_bytes)


def latency_budget(ranked: Sequence[str], costs: dict[str, tuple[float, float]], all_int8_ms: float,
                   max_ms: float) -> list[str]:
    """Walk down the list keeping layers FP32 while the estimated latency stays within max_ms, skipping a layer
    that does not fit as size_budget does. costs: per layer (FP32 ms, int8 ms) from one profile of each build;
    the estimate is the measured all-int8 latency plus, per FP32 layer, what FP32 costs it over int8."""
    if max_ms < all_int8_ms:
        raise QuantuneError(f"latency budget: {max_ms:.3f} ms is below the all-int8 build's {all_int8_ms:.3f} ms")
    missing = [layer for layer in ranked if layer not in costs]
    if missing:
        raise QuantuneError(f"latency budget: the profile has no cost for layer '{missing[0]}'")
    return _greedy(ranked, lambda kept: estimated_latency(costs, all_int8_ms, kept) <= max_ms)


def estimated_latency(costs: dict[str, tuple[float, float]], all_int8_ms: float, fp32_layers: Sequence[str]) -> float:
    return all_int8_ms + sum(costs[layer][0] - costs[layer][1] for layer in fp32_layers)


def _greedy(ranked: Sequence[str], fits: Callable[[list[str]], bool]) -> list[str]:
    kept: list[str] = []
    for layer in ranked:
        if fits([*kept, layer]):
            kept.append(layer)
    return kept


@dataclass(frozen=True)
class BudgetWalk:
    """What a measured budget chose, and what it took: one evaluation (a compile and a run) per candidate."""

    fp32_layers: list[str]
    evaluations: int
    trace: list[tuple[int, float]] = field(default_factory=list)  # (FP32 layers, measure) per evaluation


def accuracy_budget(ranked: Sequence[str], evaluate: Callable[[list[str]], float], fp32_accuracy: float,
                    max_drop_pp: float) -> BudgetWalk:
    """The fewest layers from the top of the list to keep FP32 so that the accuracy `evaluate` measures is at
    most max_drop_pp percentage points below fp32_accuracy (budget_walk)."""
    if max_drop_pp < 0:
        raise QuantuneError(f"accuracy budget: the allowed drop must be >= 0 percentage points, got {max_drop_pp}")
    return budget_walk(ranked, evaluate, fp32_accuracy - max_drop_pp)


def budget_walk(ranked: Sequence[str], evaluate: Callable[[list[str]], float], target: float) -> BudgetWalk:
    """The fewest layers from the top of the list to keep FP32 so that what `evaluate` measures (higher is
    better: accuracy, agreement with FP32, output SQNR) reaches target; every layer FP32 reaches it by
    definition. The walk takes 0, 1, 2, 4, 8, ... layers until one meets the target, then bisects between that
    count and the last that did not: about 2 log2(n) evaluations instead of up to n, where each is a compile of a
    large model. It returns a count that meets the target one fewer than which does not."""
    trace: list[tuple[int, float]] = []

    def meets(k: int) -> bool:
        if k == len(ranked):
            return True
        trace.append((k, evaluate(list(ranked[:k]))))
        return trace[-1][1] >= target

    below, k = -1, 0  # the largest count known to miss the target
    while not meets(k):
        below, k = k, min(len(ranked), max(1, 2 * k))
    while k - below > 1:
        middle = (below + k) // 2
        below, k = (below, middle) if meets(middle) else (middle, k)
    return BudgetWalk(list(ranked[:k]), len(trace), trace)


def first_and_last(layer_ids: Sequence[str], k: int) -> list[str]:
    """The baseline that keeps the ends of the network FP32: first, last, second, second to last, ..."""
    top_k(layer_ids, k)  # validates k
    order = [layer_ids[(i // 2) if i % 2 == 0 else len(layer_ids) - 1 - i // 2] for i in range(len(layer_ids))]
    return order[:k]


def random_layers(layer_ids: Sequence[str], k: int, seed: int) -> list[str]:
    """The random baseline: k layers drawn without replacement, seeded."""
    top_k(layer_ids, k)
    return [layer_ids[i] for i in sorted(np.random.default_rng(seed).permutation(len(layer_ids))[:k])]


def plan_keeping_fp32(base: PrecisionPlan, fp32_layers: Sequence[str]) -> PrecisionPlan:
    """base (all-int8, calibrated or not) with fp32_layers FP32."""
    unknown = [layer for layer in fp32_layers if layer not in base.layers]
    if unknown:
        raise QuantuneError(f"{base.model} has no layer '{unknown[0]}'")
    plan = base
    for layer in fp32_layers:
        plan = plan.with_precision(layer, "fp32")
    return plan


POLICY_FORMS = ("top-k:N", "fraction:SHARE", "sqnr:DB", "size:BYTES[K|M]", "accuracy:PP", "agreement:PCT",
                "output-sqnr:DB", "latency:MS", "all-int8")


@dataclass(frozen=True)
class Policy:
    """A parsed --policy: its kind and value (None for all-int8)."""

    kind: str
    value: float | None = None

    @property
    def spelling(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"


# The ranges a value can be checked against before any work; top-k's upper bound, the model's layer count, and the
# budgets' floors (the all-int8 build's size and latency) are known only later.
_POLICY_VALUES: dict[str, tuple[Callable[[float], bool], str]] = {
    "top-k": (lambda v: v == int(v), "a whole number of layers, e.g. top-k:2"),
    "fraction": (lambda v: 0 < v <= 1, "a share of the layers in (0, 1], e.g. fraction:0.1 (all-int8 keeps none)"),
    "size": (lambda v: v >= 1, "at least 1 byte, e.g. size:2M"),
    "accuracy": (lambda v: v <= 100, "a drop of 0 to 100 percentage points, e.g. accuracy:0.5"),
    "agreement": (lambda v: 0 < v <= 100, "a share of the images in (0, 100] %, e.g. agreement:97"),
    "output-sqnr": (lambda v: v > 0, "a positive number of dB, e.g. output-sqnr:25"),
    "latency": (lambda v: v > 0, "a positive number of milliseconds, e.g. latency:4.5"),
}


def parse_policy(text: str) -> Policy:
    if text == "all-int8":
        return Policy("all-int8")
    match = re.fullmatch(r"(top-k|fraction|sqnr|size|accuracy|agreement|output-sqnr|latency):([0-9.]+)([KkMm]?)", text.strip())
    if not match or (match.group(3) and match.group(1) != "size"):
        raise QuantuneError(f"--policy {text}: expected one of {', '.join(POLICY_FORMS)} (e.g. top-k:2, "
                            "accuracy:0.5 for at most 0.5 pp below FP32)")
    kind, number, unit = match.groups()
    try:
        value = float(number) * {"": 1, "k": 1e3, "m": 1e6}[unit.lower()]
    except ValueError:
        raise QuantuneError(f"--policy {text}: '{number}' is not a number") from None
    valid, what = _POLICY_VALUES.get(kind, (None, ""))
    if valid is not None and not valid(value):
        raise QuantuneError(f"--policy {text}: {kind} takes {what}")
    return Policy(kind, value)

