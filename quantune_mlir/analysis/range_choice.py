"""The `auto` activation range: per tensor, the method whose range gives the least error at the outputs of the
layers that read the tensor.

No one method wins everywhere. On an ImageNet MobileNetV2 with real photos, the mean of each sample's min/max
(NNCF's default) gives 4 dB more output SQNR than min/max: a few channels of the late blocks carry outliers whose
clipping costs little at the logits, and a range wide enough for them wastes resolution on all the others. On
the Fashion-MNIST zoo the same clipping costs 19 dB: there the large values are the confident predictions. The
quantization error of the tensor alone cannot tell the two apart (MSE-optimal clipping is worse than either on
the real model). Here each candidate range is tried on the FP32 run's values of the tensor through the consumer
layers' FP32 weights, bias, residual and activation (a ReLU6 that would saturate on an outlier anyway makes its
clipping free), against their FP32 outputs. It is still a local view: on that MobileNetV2, auto gives 17.1 dB,
between min/max (14.9 dB) and the mean of the samples' ranges (19.0 dB); on the zoo 36.8 dB, against min/max's
37.9 dB and the mean range's 18.6 dB: never the best, never far from it (docs/analysis.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quantization import AffineParams, dequantize, quantize
from ..rewrite.chains import Chain
from ..rewrite.graph import Constants
from .int8_layer import fp32_result


@dataclass(frozen=True)
class Consumer:
    """A layer that reads the tensor, and the FP32 values of its residual operand (if its output adds one)."""

    chain: Chain
    residual: np.ndarray | None


CANDIDATES = ("minmax", "mean-minmax", "percentile", "mse")
# the consumers' results on this many samples: enough to rank ranges, a few seconds for a 224x224 model
SAMPLES = 16


def least_error_range(x: np.ndarray, candidates: dict[str, AffineParams], consumers: list[Consumer],
                      constants: Constants) -> str:
    """The candidate (method name) whose quantization of x (the tensor's FP32 values, batch first) changes the
    consumer layers' outputs least, in summed mean squared error; by the tensor's own error where no layer
    reads it directly (it feeds a pass-through op or a residual add only)."""
    import torch
    sample = np.ascontiguousarray(x[:SAMPLES], np.float32)
    distinct: dict[AffineParams, str] = {}
    for method, params in candidates.items():
        distinct.setdefault(params, method)
    if len(distinct) == 1:
        return next(iter(distinct.values()))

    def outputs(values: np.ndarray) -> list[np.ndarray]:
        found = []
        for consumer in consumers:
            result = fp32_result(consumer.chain.layer, constants, torch.from_numpy(values))
            if consumer.residual is not None:
                result += consumer.residual[:SAMPLES]
            found.append(np.clip(result, *consumer.chain.clamp))
        return found

    references = outputs(sample)

    def error(params: AffineParams) -> float:
        restored = dequantize(quantize(sample, params), params)
        if not consumers:
            return float(np.mean((restored - sample) ** 2))
        return sum(float(np.mean((y - reference) ** 2)) for y, reference in zip(outputs(restored), references))

    return min(distinct.items(), key=lambda item: error(item[0]))[1]
