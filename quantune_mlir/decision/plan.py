"""The precision plan: per layer int8 or fp32, with its quantization parameters once calibrated.

On disk (JSON, versioned):

    {"schema_version": 1, "model": "resnet18-small", "default": "int8",
     "layers": {"conv1": "fp32",
                "layer1.0.conv1": {"precision": "int8", "weight_scales": [...],
                                   "input": {"scale": 0.02, "zero_point": -128, "dtype": "int8"},
                                   "output": {...},
                                   "bias_correction": [...]}}}

`bias_correction` (one value per output channel) is added to the layer's FP32 bias before the bias is quantized:
calibration measures it (analysis/bias_correction.py).

`output_shifts` (optional) holds, for each int8 layer whose result is a model output, the negated per-channel
mean error that the analysis' all-int8 run left there: the systematic part of what every int8 layer upstream
adds (noise rectified by ReLUs does not average out), which no layer's own correction sees. It is added to that
layer's `bias_correction` in proportion to the share of the measuring run's int8 layers that the plan keeps
int8 (`local` + share x `shift`): all of it in the all-int8 plan it was measured on, none once every layer
upstream is FP32, and the layer entries always hold the sum that the rewrite uses.

    "output_shifts": {"fc": {"shift": [...], "local": [...], "int8_layers": 21}}

`rounded_weights` (optional) is the digest of the int8 weights that calibration rounded on its data
(`14_rounded_weights_<digest>.npz` in the build folder, beside the plan; analysis/weight_rounding.py): an int8 layer whose
weight_scales are those they were rounded at takes them, any other rounds its weights to nearest. Without it
every layer rounds to nearest.

A layer may be given as a bare precision; layers not listed take `default`. Parameters left out are filled
by calibration before the rewrite.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from ..errors import QuantuneError
from ..layers import LayerTable
from ..quantization import AffineParams

PRECISIONS = ("int8", "fp32")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerPlan:
    precision: str
    weight_scales: tuple[float, ...] | None = None
    input: AffineParams | None = None
    output: AffineParams | None = None
    bias_correction: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise QuantuneError(f"unknown precision '{self.precision}': choose one of {', '.join(PRECISIONS)}")

    @property
    def calibrated(self) -> bool:
        return self.precision == "fp32" or None not in (self.weight_scales, self.input, self.output)

    def to_json(self) -> dict | str:
        if self.precision == "fp32" or not any((self.weight_scales, self.input, self.output,
                                                    self.bias_correction)):
            return self.precision
        entry: dict = {"precision": self.precision}
        if self.weight_scales is not None:
            entry["weight_scales"] = list(self.weight_scales)
        for name in ("input", "output"):
            params = getattr(self, name)
            if params is not None:
                entry[name] = {"scale": params.scale, "zero_point": params.zero_point, "dtype": params.dtype}
        if self.bias_correction is not None:
            entry["bias_correction"] = list(self.bias_correction)
        return entry


@dataclass(frozen=True)
class OutputShift:
    shift: tuple[float, ...]  # per output channel: minus the all-int8 run's mean error at the layer's result
    local: tuple[float, ...] | None  # the layer's own bias correction, without the shift
    int8_layers: int  # how many layers the measuring run had int8


@dataclass(frozen=True)
class PrecisionPlan:
    model: str
    layers: dict[str, LayerPlan] = field(default_factory=dict)
    output_shifts: dict[str, OutputShift] = field(default_factory=dict)
    rounded_weights: str | None = None  # the digest of the build folder's rounded int8 weights; None: nearest

    @classmethod
    def uniform(cls, table: LayerTable, precision: str) -> "PrecisionPlan":
        """The ready-made plans: every layer int8, or every layer fp32."""
        return cls(table.model, {layer_id: LayerPlan(precision) for layer_id in table.ids})

    def with_precision(self, layer_id: str, precision: str) -> "PrecisionPlan":
        return replace(self, layers={**self.layers, layer_id: LayerPlan(precision)})._shifts_applied()

    def with_output_shifts(self, shifts: dict[str, tuple[float, ...]]) -> "PrecisionPlan":
        """This plan, every layer of shifts taking its whole shift (the plan is the one it was measured on)."""
        measured = {layer: OutputShift(tuple(shift), self.layers[layer].bias_correction, len(self.int8_layers()))
                    for layer, shift in shifts.items()}
        return replace(self, output_shifts={**self.output_shifts, **measured})._shifts_applied()

    def output_shift_share(self, layer_id: str) -> float:
        """How much of its output shift the layer takes in this plan (0 when it is not int8)."""
        shift = self.output_shifts.get(layer_id)
        if shift is None or self.layers[layer_id].precision != "int8":
            return 0.0
        return min(1.0, len(self.int8_layers()) / shift.int8_layers)

    def _shifts_applied(self) -> "PrecisionPlan":
        layers = dict(self.layers)
        for layer_id, shift in self.output_shifts.items():
            layer = layers[layer_id]
            if layer.precision != "int8" or layer.weight_scales is None:
                continue  # FP32 now, or not calibrated: calibration measures the layer's own correction first
            share = self.output_shift_share(layer_id)
            local = shift.local or (0.0,) * len(shift.shift)
            layers[layer_id] = replace(layer, bias_correction=tuple(c + share * s for c, s in zip(local, shift.shift)))
        return replace(self, layers=layers)

    def int8_layers(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.layers.items() if v.precision == "int8")

    def to_json(self) -> str:
        data = {"schema_version": SCHEMA_VERSION, "model": self.model,
                "layers": {k: v.to_json() for k, v in self.layers.items()}}
        if self.rounded_weights is not None:
            data["rounded_weights"] = self.rounded_weights
        if self.output_shifts:
            data["output_shifts"] = {k: {"shift": list(v.shift), "local": None if v.local is None else list(v.local),
                                         "int8_layers": v.int8_layers} for k, v in self.output_shifts.items()}
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, layer_ids: Sequence[str], source: str = "plan") -> "PrecisionPlan":
        """Parse and check against the model's layer ids: every id must exist; unlisted layers get default."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise QuantuneError(f"{source}: not JSON ({e})") from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise QuantuneError(f"{source}: expected a quantune plan with \"schema_version\": {SCHEMA_VERSION}")
        entries = data.get("layers", {})
        if not isinstance(entries, dict):
            raise QuantuneError(f"{source}: \"layers\" must map layer ids to a precision or an object")
        unknown = [k for k in entries if k not in layer_ids]
        model = data.get("model", "the model")
        if unknown:
            hint = difflib.get_close_matches(unknown[0], layer_ids, n=1)
            raise QuantuneError(f"{source}: layer '{unknown[0]}' is not in {model}"
                                f"{f' (did you mean {hint[0]}?)' if hint else ''}; "
                                f"`quantune layers BUILD_DIR` lists its {len(layer_ids)} layers")
        default = data.get("default", "int8")
        layers = {}
        for layer_id in layer_ids:
            try:
                layers[layer_id] = _layer_from_json(entries.get(layer_id, default))
            except QuantuneError as e:
                raise QuantuneError(f"{source}: layer '{layer_id}': {e}") from None
        shifts = {}
        for layer_id, entry in data.get("output_shifts", {}).items():
            if layer_id not in layers:
                raise QuantuneError(f"{source}: output_shifts names layer '{layer_id}', which is not in {model}")
            try:
                shifts[layer_id] = OutputShift(tuple(float(v) for v in entry["shift"]),
                                               None if entry["local"] is None else tuple(map(float, entry["local"])),
                                               int(entry["int8_layers"]))
            except (KeyError, TypeError, ValueError) as e:
                raise QuantuneError(f"{source}: output_shifts of layer '{layer_id}' is malformed ({e})") from None
            if shifts[layer_id].int8_layers < 1 or not all(map(math.isfinite, shifts[layer_id].shift)):
                raise QuantuneError(f"{source}: output_shifts of layer '{layer_id}' needs finite shifts and "
                                    "int8_layers of at least 1")
        # an edited plan (layers moved to FP32 or back) takes the share of the shift its int8 layers give
        rounded = data.get("rounded_weights")
        if rounded is not None and not isinstance(rounded, str):
            raise QuantuneError(f"{source}: rounded_weights must be the digest string of the build folder's "
                                "rounded weights, or absent (round to nearest)")
        return cls(data.get("model", ""), layers, shifts, rounded)._shifts_applied()

    @classmethod
    def load(cls, path: Path, layer_ids: Sequence[str]) -> "PrecisionPlan":
        path = Path(path)
        if not path.is_file():
            raise QuantuneError(f"{path}: no such plan file")
        return cls.from_json(path.read_text(), layer_ids, str(path))


def _layer_from_json(entry) -> LayerPlan:
    if isinstance(entry, str):
        return LayerPlan(entry)
    if not isinstance(entry, dict) or "precision" not in entry:
        raise QuantuneError(f"expected \"int8\", \"fp32\" or an object with \"precision\", got {entry!r}")
    try:
        params = {name: AffineParams(float(entry[name]["scale"]), int(entry[name]["zero_point"]),
                                     entry[name].get("dtype", "int8"))
                  for name in ("input", "output") if name in entry}
        scales = tuple(float(s) for s in entry["weight_scales"]) if "weight_scales" in entry else None
        correction = tuple(float(c) for c in entry["bias_correction"]) if "bias_correction" in entry else None
    except (KeyError, TypeError, ValueError) as e:
        raise QuantuneError(f"malformed quantization parameters ({e})") from None
    if scales is not None and (not scales or min(scales) <= 0):
        raise QuantuneError("weight_scales must be a non-empty list of positive numbers")
    if correction is not None and not all(map(math.isfinite, correction)):
        raise QuantuneError("bias_correction must be a list of finite numbers, one per output channel")
    return LayerPlan(entry["precision"], scales, params.get("input"), params.get("output"), correction)
