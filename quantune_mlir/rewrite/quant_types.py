"""Spelling and reading `!quant.uniform` tensor types (IREE's bindings parse them but have no accessors)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..mlir import ir
from ..quantization import AffineParams
from .base import PassFailure

_STORAGE = {"int8": "i8", "uint8": "u8"}
_UNIFORM = re.compile(r"!quant\.uniform<(?P<storage>[iu]8)(?:<(?P<lo>-?\d+):(?P<hi>-?\d+)>)?:f32"
                      r"(?::(?P<axis>\d+))?, (?P<params>\{[^}]*\}|[^>]+)>")


@dataclass(frozen=True)
class UniformType:
    storage: str  # i8 | u8
    scales: np.ndarray  # one per tensor, or one per slice along axis
    zero_points: np.ndarray
    axis: int | None

    @property
    def activation(self) -> AffineParams:
        return AffineParams(float(self.scales[0]), int(self.zero_points[0]),
                            "int8" if self.storage == "i8" else "uint8")


def activation_type(shape: tuple[int, ...], params: AffineParams) -> str:
    return f"tensor<{_dims(shape)}!quant.uniform<{_STORAGE[params.dtype]}:f32, " \
           f"{params.scale!r}:{params.zero_point}>>"


def weight_type(shape: tuple[int, ...], scales: np.ndarray) -> str:
    if scales.size == 1:
        return f"tensor<{_dims(shape)}!quant.uniform<i8<-127:127>:f32, {float(scales[0])!r}>>"
    listed = ",".join(repr(float(s)) for s in scales)
    return f"tensor<{_dims(shape)}!quant.uniform<i8<-127:127>:f32:0, {{{listed}}}>>"


def _dims(shape: tuple[int, ...]) -> str:
    return "".join(f"{d}x" for d in shape)


def is_quantized(t: ir.Type) -> bool:
    return "!quant." in str(t)


def uniform_type(t: ir.Type) -> UniformType:
    text = str(t)
    match = _UNIFORM.search(text)
    if match is None:
        raise PassFailure(f"unsupported quantized type {text}: quantune lowers !quant.uniform with i8/u8 storage "
                          "and f32 expressed type")
    scales, zero_points = [], []
    for entry in match.group("params").strip("{}").split(","):
        scale, _, zero_point = entry.strip().partition(":")
        scales.append(float(scale))
        zero_points.append(int(zero_point or 0))
    axis = match.group("axis")
    return UniformType(match.group("storage"), np.asarray(scales), np.asarray(zero_points, np.int64),
                       int(axis) if axis is not None else None)
