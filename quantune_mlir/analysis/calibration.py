"""Activation ranges from FP32 activations: min/max, the mean of each sample's min/max (OpenVINO NNCF's default),
`hybrid` (that mean for feature maps, min/max for feature vectors), percentile, entropy (KL) and MSE-optimal
clipping; `auto` chooses among them per tensor (range_choice.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantuneError
from ..quantization import INT_RANGES, AffineParams, affine_params, dequantize, quantize
from .weight_rounding import ROUNDINGS

METHODS = ("hybrid", "auto", "minmax", "mean-minmax", "percentile", "entropy", "mse")


@dataclass(frozen=True)
class CalibrationOptions:
    # On ImageNet MobileNetV2 with real photos as good as mean-minmax (4 dB more output SQNR than minmax); on
    # PP-OCR's MobileNetV3, whose squeeze-excite vectors mean-minmax clips, 9 dB more than mean-minmax
    # (docs/analysis.md, "Activation ranges")
    method: str = "hybrid"
    percentile: float = 99.99  # for method percentile: the two-sided percentile kept
    activation_dtype: str = "int8"
    symmetric_activations: bool = False
    per_channel_weights: bool = True
    histogram_bins: int = 2048  # for method entropy
    # each int8 layer's bias shifted by the mean error its own int8 arithmetic adds (analysis/bias_correction.py)
    bias_correction: bool = True
    # how int8 weights are rounded: to minimise each layer's output error on the calibration data (gptq,
    # analysis/weight_rounding.py) or each weight's own (nearest)
    weight_rounding: str = "gptq"

    def __post_init__(self):
        if self.weight_rounding not in ROUNDINGS:
            raise QuantuneError(f"unknown weight rounding '{self.weight_rounding}': choose one of "
                                f"{', '.join(ROUNDINGS)}")
        if self.method not in METHODS:
            raise QuantuneError(f"unknown calibration method '{self.method}': choose one of {', '.join(METHODS)}")
        if self.activation_dtype not in INT_RANGES:
            raise QuantuneError(f"unknown activation type '{self.activation_dtype}': choose one of "
                                f"{', '.join(INT_RANGES)}")
        if not 50.0 < self.percentile <= 100.0:
            raise QuantuneError(f"percentile must lie in (50, 100], not {self.percentile}")


def activation_params(samples: np.ndarray, options: CalibrationOptions, name: str = "activation") -> AffineParams:
    """Quantization parameters of one activation tensor from its FP32 values on the calibration data (samples:
    the batch along axis 0)."""
    if options.method == "auto":
        raise QuantuneError(f"{name}: method auto chooses among the others per tensor by the error at its consumer "
                            "layers, which calibration (quantize.run_fp32) knows; pass a single method here")
    batch = np.asarray(samples, np.float32)
    x = batch.ravel()
    if x.size == 0:
        raise QuantuneError(f"{name}: no calibration values")
    if not np.isfinite(x).all():
        raise QuantuneError(f"{name}: the FP32 activations hold NaN or Inf; check the model and the data")
    if _sample_mean(batch, options.method):
        lo, hi = _mean_range(batch)
    elif options.method == "entropy" and not _is_feature_map(batch):
        # a feature vector's histogram holds one value per channel and sample: too few for the divergence of
        # 2048 bins to say which of them are outliers (it clipped PP-OCR's squeeze-excite gates)
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = _range(x, options)
    if hi - lo <= 0 or max(abs(lo), abs(hi)) == 0:
        raise QuantuneError(f"{name}: the activations have zero range ({lo} to {hi}) on the calibration data; "
                            "keep this layer in fp32 or calibrate with more varied data")
    return affine_params(lo, hi, options.activation_dtype, options.symmetric_activations)


def _sample_mean(batch: np.ndarray, method: str) -> bool:
    """Whether the range is the mean of the samples' ranges: always under mean-minmax; under hybrid for feature
    maps only. A feature vector (pooled features, a squeeze-excite gate's input, a dense layer's input) holds
    one value per channel: each sample's extremes are a few channels' values, not rare outliers among many, and
    their mean clips what most samples need."""
    if method == "mean-minmax":
        return True
    return method == "hybrid" and _is_feature_map(batch)


def _is_feature_map(batch: np.ndarray) -> bool:
    """Whether each sample holds channels of more than one value (not a feature vector, [N, C] or [N, C, 1, 1])."""
    return batch.ndim > 2 and int(np.prod(batch.shape[2:])) > 1


def _mean_range(batch: np.ndarray) -> tuple[float, float]:
    """The mean over the samples of each one's min and max: one outlier image moves the range by 1/N of it."""
    per_sample = batch.reshape(len(batch), -1)
    return float(per_sample.min(axis=1).mean()), float(per_sample.max(axis=1).mean())


def _range(x: np.ndarray, options: CalibrationOptions) -> tuple[float, float]:
    lo, hi = float(x.min()), float(x.max())
    if options.method in ("minmax", "hybrid"):
        return lo, hi
    if options.method == "percentile":
        tail = 100.0 - options.percentile
        return float(np.percentile(x, tail)), float(np.percentile(x, 100.0 - tail))
    if options.method == "entropy":
        # an affine int8 tensor with no negative values spends all 256 levels on its magnitudes
        levels = 2 * (INT_RANGES["int8"][1] + 1) if lo >= 0 else INT_RANGES["int8"][1] + 1
        threshold = _kl_threshold(np.abs(x), options.histogram_bins, levels)
    else:
        threshold = _mse_threshold(x, options)
    return max(lo, -threshold), min(hi, threshold)


def _kl_threshold(magnitudes: np.ndarray, bins: int, levels: int) -> float:
    """TensorRT's entropy calibration: the clipping threshold whose `levels`-level quantized histogram of |x|
    diverges least (KL) from the clipped reference histogram."""
    top = float(magnitudes.max())
    if top == 0.0:
        return 0.0
    hist, edges = np.histogram(magnitudes, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    # The zeros a ReLU writes (often half the tensor) pile into the first bin; spread over a merged level by the
    # candidate, that spike would outweigh everything else in the divergence and pick the finest levels, the
    # smallest threshold (a third of a ReLU output's range). As NVIDIA's pytorch-quantization does, the first bin
    # counts as much as its neighbour.
    hist[0] = hist[1]
    best, best_kl = bins, np.inf
    for i in range(levels, bins + 1):
        reference = hist[:i].copy()
        reference[i - 1] += hist[i:].sum()  # the clipped mass lands in the last bin
        candidate = np.zeros(i)
        for chunk in np.array_split(np.arange(i), levels):
            mass, nonzero = hist[chunk].sum(), hist[chunk] > 0
            if nonzero.any():
                candidate[chunk[nonzero]] = mass / nonzero.sum()
        p, q = reference / reference.sum(), candidate / max(candidate.sum(), 1e-30)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
        if kl < best_kl:
            best, best_kl = i, kl
    return float(edges[best])


def _mse_threshold(x: np.ndarray, options: CalibrationOptions, candidates: int = 64,
                   max_samples: int = 1 << 18) -> float:
    """The symmetric clipping bound, from 20 % to 100 % of max |x|, whose quantize-dequantize MSE is least."""
    if x.size > max_samples:
        x = np.random.default_rng(0).choice(x, max_samples, replace=False)
    top = float(np.abs(x).max())
    best, best_err = top, np.inf
    for bound in np.linspace(0.2 * top, top, candidates):
        lo, hi = max(float(x.min()), -bound), min(float(x.max()), bound)
        params = affine_params(lo, hi, options.activation_dtype, options.symmetric_activations)
        err = float(np.mean((dequantize(quantize(x, params), params) - x) ** 2))
        if err < best_err:
            best, best_err = float(bound), err
    return best
