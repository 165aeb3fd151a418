"""Quantization arithmetic shared by calibration, the metrics, the rewrite and its numpy reference.

Conventions (see dialects/README.md): real = scale * (q - zero_point); rounding is half to even; values
saturate to the integer type's range. Weights are symmetric int8 in [-127, 127] (zero point 0, so that the
negated range fits), per output channel or per tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import QuantuneError

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}
WEIGHT_RANGE = (-127, 127)


@dataclass(frozen=True)
class AffineParams:
    """Per-tensor affine quantization of an activation."""

    scale: float
    zero_point: int
    dtype: str = "int8"

    def __post_init__(self):
        if self.dtype not in INT_RANGES:
            raise QuantuneError(f"unknown integer type '{self.dtype}': choose one of {', '.join(INT_RANGES)}")
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise QuantuneError(f"scale must be a positive finite number, not {self.scale}")
        lo, hi = INT_RANGES[self.dtype]
        if not lo <= self.zero_point <= hi:
            raise QuantuneError(f"zero point {self.zero_point} lies outside {self.dtype} [{lo}, {hi}]")


def affine_params(lo: float, hi: float, dtype: str = "int8", symmetric: bool = False) -> AffineParams:
    """Scale and zero point that map the real range [lo, hi] (widened to hold 0) onto dtype. A zero-width range
    is an error: the tensor carries no information to quantize."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise QuantuneError(f"range [{lo}, {hi}] is not finite: the calibration data holds NaN or Inf")
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo == 0.0:
        raise QuantuneError("the range is [0, 0]: the tensor is constant zero on the calibration data")
    qmin, qmax = INT_RANGES[dtype]
    if symmetric:
        bound = max(-lo, hi)
        if dtype == "uint8":
            raise QuantuneError("symmetric quantization needs a signed type (int8)")
        return AffineParams(bound / qmax, 0, dtype)
    scale = (hi - lo) / (qmax - qmin)
    zero_point = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    return AffineParams(scale, zero_point, dtype)


def quantize(x: np.ndarray, params: AffineParams) -> np.ndarray:
    qmin, qmax = INT_RANGES[params.dtype]
    q = np.rint(np.asarray(x, np.float64) / params.scale) + params.zero_point  # rint: half to even
    return np.clip(q, qmin, qmax).astype(np.int8 if params.dtype == "int8" else np.uint8)


def dequantize(q: np.ndarray, params: AffineParams) -> np.ndarray:
    return (params.scale * (q.astype(np.float64) - params.zero_point)).astype(np.float32)


def weight_scales(weight: np.ndarray, per_channel: bool = True) -> np.ndarray:
    """Symmetric int8 scales, one per output channel (axis 0) or one for the tensor. All-zero channels get
    scale 1 (their values quantize to 0 whatever the scale)."""
    if not np.isfinite(weight).all():
        raise QuantuneError("weights hold NaN or Inf")
    flat = np.abs(weight.reshape(weight.shape[0], -1)) if per_channel else np.abs(weight.reshape(1, -1))
    bound = flat.max(axis=1).astype(np.float64)
    return np.where(bound > 0, bound / WEIGHT_RANGE[1], 1.0)


# The quantized bias of a channel may take at most this much of int32: the rest holds the input zero point's term
# (zero point times the channel's weight sum, below 2**30 for any layer of up to 2**16 inputs per output)
BIAS_BOUND = 2 ** 30


def bias_fitting_scales(scales: np.ndarray, bias: np.ndarray, input_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weight scales widened where a channel's bias would not fit int32 at input_scale * scale, as onnxruntime
    and TFLite do for the near-dead channels of trained networks (tiny weights, a bias the batch norm folded in);
    with the widened channels' indices. Per-tensor scales widen as a whole."""
    needed = np.abs(bias.astype(np.float64)) / (input_scale * BIAS_BOUND)
    if scales.size == 1:
        needed = needed.max(initial=0.0, keepdims=True)
    widened = np.flatnonzero(needed > scales)
    return np.maximum(scales, needed), widened


def quantize_weight(weight: np.ndarray, scales: np.ndarray) -> np.ndarray:
    shape = (-1,) + (1,) * (weight.ndim - 1) if scales.size > 1 else ()
    q = np.rint(weight.astype(np.float64) / scales.reshape(shape))
    return np.clip(q, *WEIGHT_RANGE).astype(np.int8)


def dequantize_weight(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    shape = (-1,) + (1,) * (q.ndim - 1) if scales.size > 1 else ()
    return (q.astype(np.float64) * scales.reshape(shape)).astype(np.float32)


def requantize_multipliers(real_multiplier) -> np.ndarray:
    """The requantize epilogue's per-channel factors (input scale x weight scale / output scale) as float32."""
    m = np.asarray(real_multiplier, np.float64)
    if (m <= 0).any() or not np.isfinite(m).all():
        raise QuantuneError(f"requantize multipliers must lie in (0, inf); got {float(m.min()):.3g}..{float(m.max()):.3g}")
    return m.astype(np.float32)


def requantize(acc: np.ndarray, multipliers: np.ndarray, zero_point: int, bounds: tuple[int, int],
               residual: tuple[np.ndarray, int, np.float32] | None = None) -> np.ndarray:
    """The requantize epilogue, operation for operation as the integer linalg and the kernels compute it, in
    float32 without fused multiply-adds: float(acc) * multiplier (+ float(residual - its zero point) * its
    multiplier), clamped to the output bounds less the zero point, rounded half to even, plus the zero point.
    acc is the int32 accumulator with the bias added; bounds are the int8 output's (ReLU, ReLU6, saturation)."""
    y = acc.astype(np.int32).astype(np.float32) * multipliers.astype(np.float32)
    if residual is not None:
        values, residual_zero_point, residual_multiplier = residual
        y = y + (values.astype(np.int32) - residual_zero_point).astype(np.float32) * np.float32(residual_multiplier)
    y = np.clip(y, np.float32(bounds[0] - zero_point), np.float32(bounds[1] - zero_point))
    return (np.rint(y).astype(np.int32) + zero_point).astype(np.int8)
