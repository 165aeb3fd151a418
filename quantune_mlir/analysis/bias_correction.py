"""Bias correction from the FP32 run: per output channel, the mean error a layer's int8 weights add.

Rounding the weights of a trained layer shifts the mean of its outputs (Nagel et al., "Data-Free Quantization",
2019, "empirical bias correction"): a depthwise 3x3 channel has nine weights, and their rounding errors do not
average out. Each int8 layer is computed twice on the FP32 run's own input (which that run returns for every
int8 layer): with its FP32 weights and bias, and with its int8 weights at their scales and its bias rounded at
input scale x weight scale, as the rewrite quantizes them. The mean difference over the batch and the spatial
positions, per channel, is the error the layer adds; its negation, added to the FP32 bias, cancels it. No
inference beyond the FP32 run.

The input's own quantization is left out on purpose: the error of clipping it is the upstream layer's output
range's, and a shift that cancelled it on average would move every value to make up for a few clipped
outliers (on ImageNet MobileNetV2 with per-sample mean ranges, including it cost 4 dB of output SQNR; leaving
it out gained 1.3 dB). The shift is measured before the activation and the residual add, and kept only where it
lowers the error of the layer's output after them (and after its output quantization).
"""
from __future__ import annotations

import numpy as np

from ..quantization import AffineParams, dequantize, dequantize_weight, quantize
from ..rewrite.chains import Chain
from ..rewrite.graph import Constants, layer_bias
from .int8_layer import contract, fp32_result
from .weight_rounding import NEAREST, RoundedWeights

# At most this many samples feed the mean (the FP32 run holds at most a few hundred of a 224x224 model): every
# calibration sample of the real-model bench, and two float32 convolutions of them per layer
MAX_SAMPLES = 256


def bias_correction(chain: Chain, constants: Constants, weight_scales: np.ndarray, x: np.ndarray,
                    x_params: AffineParams, residual: np.ndarray | None, out: AffineParams | None,
                    rounded: RoundedWeights = NEAREST) -> np.ndarray | None:
    """The value to add to each output channel's FP32 bias so that the layer's result with int8 weights has,
    before its activation, the mean of its FP32 result on x (the layer's FP32 input); None where the shift does
    not lower the error of the layer's output (x residual, its FP32 residual operand)."""
    import torch
    layer = chain.layer
    x = torch.from_numpy(np.ascontiguousarray(x[:MAX_SAMPLES], np.float32))
    weight = constants.value_of(layer.weight)
    scales = np.asarray(weight_scales, np.float64)
    channel_axes = (0,) + tuple(range(2, x.ndim))
    channel = (1, -1) + (1,) * (x.ndim - 2)
    bias = layer_bias(layer, constants).astype(np.float64)
    combined = x_params.scale * np.broadcast_to(scales, bias.shape)
    fp32 = fp32_result(layer, constants, x)
    int8 = contract(layer, x, dequantize_weight(rounded.int8(layer.id, weight, scales), scales))
    int8 += (np.rint(bias / combined) * combined).astype(np.float32).reshape(channel)
    shift = -(int8.astype(np.float64) - fp32).mean(axis=channel_axes)
    if residual is not None:
        fp32 += residual[:MAX_SAMPLES]
        int8 += residual[:MAX_SAMPLES]
    lo, hi = chain.clamp
    reference = np.clip(fp32, lo, hi)

    def output_error(result: np.ndarray) -> float:
        y = np.clip(result, lo, hi)
        y = dequantize(quantize(y, out), out) if out is not None else y
        return float(np.mean((y - reference) ** 2))

    uncorrected = output_error(int8)
    return shift if output_error(int8 + shift.astype(np.float32).reshape(channel)) < uncorrected else None
