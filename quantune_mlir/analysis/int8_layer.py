"""One int8 layer computed in PyTorch from int8 tensors, with the arithmetic of the integer lowering: an exact
integer convolution or matmul (float64 holds these sums exactly), the bias quantized at input scale x weight
scale, the residual rescaled, then round half to even, zero point, clamp and saturation.

The analysis feeds it the FP32 run's input, quantized, to measure the error a layer makes on its own; the tests
feed it the int8 build's own tensors as the reference of the lowering. The lowering requantizes in float32
(quantization.requantize) where this uses float64: the two may differ by one unit where a value lies within
float32's rounding (about 2^-17 of a unit for outputs near 127) of a tie.
"""
from __future__ import annotations

import numpy as np

from ..quantization import INT_RANGES, AffineParams
from ..rewrite.chains import Chain
from ..rewrite.graph import Constants, Layer, int_array, layer_bias
from .weight_rounding import NEAREST, RoundedWeights


def int8_layer_output(chain: Chain, weight_scales: np.ndarray, constants: Constants,
                      x: tuple[np.ndarray, AffineParams], residual: tuple[np.ndarray, AffineParams] | None,
                      out: AffineParams | None, bias_correction: tuple[float, ...] | None = None,
                      rounded: RoundedWeights = NEAREST) -> np.ndarray:
    """The chain's output from its int8 input x (and int8 residual): int8 at out's parameters, or, when out is
    None (the layer writes fp32), the dequantized accumulator plus bias in float64. bias_correction, the plan's,
    is added to the FP32 bias before it is quantized, as the rewrite does; the int8 weights are rounded's."""
    import torch
    layer = chain.layer
    scales = np.asarray(weight_scales, np.float64)
    weight = rounded.int8(layer.id, constants.value_of(layer.weight), scales).astype(np.float64)
    values, params = x
    combined = params.scale * np.broadcast_to(scales, (weight.shape[0],))
    acc = contract(layer, torch.from_numpy(values.astype(np.float64) - params.zero_point), weight)
    bias = layer_bias(layer, constants, bias_correction).astype(np.float64)
    bias_q = np.rint(bias / combined)
    channel = (1, -1) + (1,) * (acc.ndim - 2)
    real = (acc + bias_q.reshape(channel)) * combined.reshape(channel)
    if out is None:
        return real
    if residual is not None:
        r_values, r_params = residual
        real = real + (r_values.astype(np.float64) - r_params.zero_point) * r_params.scale
    q = np.rint(real / out.scale) + out.zero_point
    lo, hi = chain.clamp
    qmin, qmax = INT_RANGES[out.dtype]
    q_lo = qmin if lo == -np.inf else max(qmin, np.rint(lo / out.scale) + out.zero_point)
    q_hi = qmax if hi == np.inf else min(qmax, np.rint(hi / out.scale) + out.zero_point)
    return np.clip(q, q_lo, q_hi).astype(np.int8)


def fp32_result(layer: Layer, constants: Constants, x) -> np.ndarray:
    """The layer's FP32 result before its activation: its FP32 weights and bias on x (a float32 torch tensor)."""
    result = contract(layer, x, constants.value_of(layer.weight).astype(np.float32))
    return result + layer_bias(layer, constants).astype(np.float32).reshape((1, -1) + (1,) * (result.ndim - 2))


def contract(layer: Layer, x, weight: np.ndarray) -> np.ndarray:
    """The layer's convolution (its padding, strides and groups) or matmul of x (a torch tensor, NCHW or NC)
    with weight, without bias, in x's dtype."""
    import torch
    w = torch.from_numpy(weight.astype(x.numpy().dtype, copy=False))
    if layer.kind == "linear":
        return (x @ w.T).numpy()
    top, left, bottom, right = layer.padding[2], layer.padding[3], layer.padding[6], layer.padding[7]
    padded = torch.nn.functional.pad(x, (left, right, top, bottom))
    groups = weight.shape[0] if layer.kind == "depthwise" else 1
    return torch.nn.functional.conv2d(padded, w if layer.kind != "depthwise" else w[:, None],
                                      stride=int_array(layer.op, "strides"), groups=groups).numpy()
