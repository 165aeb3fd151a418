"""Weight rounding on the calibration data (analysis/weight_rounding.py): GPTQ's int8 weights against the
output error of rounding to nearest, on real layer inputs, and the rounded weights' file and digest."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir.analysis.weight_rounding import RoundedWeights, gptq_round, input_gram
from quantune_mlir.errors import QuantuneError
from quantune_mlir.quantization import WEIGHT_RANGE, quantize_weight, weight_scales


def _output_error(weight, int8, scales, x, conv):
    restored = torch.from_numpy((int8 * scales.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(np.float32))
    return float(torch.mean((conv(x, torch.from_numpy(weight)) - conv(x, restored)) ** 2))


@pytest.mark.parametrize("kind", ["conv", "depthwise", "linear"])
def test_gptq_lowers_the_output_error_of_rounding_to_nearest(kind):
    """On inputs like an image's activations (smooth in space, correlated across channels, positive), the layer's
    output error on held-out inputs of the same distribution drops below rounding to nearest: by more than half
    for the linear layer, whose 8 inputs are all correlated; less for the convs, whose patches add independent
    noise (what the bench's MobileNetV2 gains is in docs/analysis.md)."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((8, 8)).astype(np.float32)

    def inputs(n):
        coarse = torch.from_numpy(np.einsum("nchw,cd->ndhw", rng.standard_normal((n, 8, 4, 4)), mixing))
        smooth = torch.nn.functional.interpolate(coarse.float(), size=(10, 10), mode="bilinear")
        return np.abs(smooth.numpy()) + 2.0

    if kind == "linear":
        weight = rng.standard_normal((6, 8)).astype(np.float32)
        fit, held_out = inputs(64).mean(axis=(2, 3)), torch.from_numpy(inputs(64).mean(axis=(2, 3)))
        gram = input_gram("linear", fit, (1, 1), (0, 0, 0, 0), (1, 1))

        def conv(x, w):
            return x @ w.T
    else:
        groups = 8 if kind == "depthwise" else 1
        weight = rng.standard_normal((8, 3, 3) if kind == "depthwise" else (6, 8, 3, 3)).astype(np.float32)
        fit, held_out = inputs(32), torch.from_numpy(inputs(32))
        gram = input_gram(kind, fit, (3, 3), (1, 1, 1, 1), (1, 1))

        def conv(x, w):
            return torch.nn.functional.conv2d(x, w if w.ndim == 4 else w[:, None], padding=1, groups=groups)
    scales = weight_scales(weight)
    rounded = gptq_round(weight, scales, gram)
    assert rounded.dtype == np.int8 and rounded.shape == weight.shape
    assert rounded.min() >= WEIGHT_RANGE[0] and rounded.max() <= WEIGHT_RANGE[1]
    nearest = quantize_weight(weight, scales)
    assert np.abs(rounded.astype(int) - nearest).max() <= 3  # a rounding of the same values at the same scales
    gptq_error = _output_error(weight, rounded, scales, held_out, conv)
    nearest_error = _output_error(weight, nearest, scales, held_out, conv)
    assert gptq_error < nearest_error / (2 if kind == "linear" else 1.1), (gptq_error, nearest_error)


def test_the_gram_of_a_conv_is_that_of_its_im2col_columns():
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5)).astype(np.float32)
    columns = torch.nn.functional.unfold(torch.from_numpy(x), 3, padding=1, stride=2).double()
    columns = columns.permute(0, 2, 1).reshape(-1, 18).numpy()
    assert np.allclose(input_gram("conv", x, (3, 3), (1, 1, 1, 1), (2, 2)), columns.T @ columns)
    per_channel = input_gram("depthwise", x, (3, 3), (1, 1, 1, 1), (2, 2))
    assert per_channel.shape == (2, 9, 9)
    assert np.allclose(per_channel[1], columns[:, 9:].T @ columns[:, 9:])


def test_rounded_weights_round_trip_their_file_and_refuse_another_digest(tmp_path):
    weight = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    scales = weight_scales(weight)
    stored = quantize_weight(weight, scales)
    stored[0, 0] += 1
    rounded = RoundedWeights({"fc": (stored, scales)})
    rounded.save(tmp_path / "w.npz")
    again = RoundedWeights.load(tmp_path / "w.npz", rounded.digest)
    assert np.array_equal(again.int8("fc", weight, scales), stored)
    # other scales than those it was rounded at (an edited plan): rounded to nearest
    assert np.array_equal(again.int8("fc", weight, scales * 2), quantize_weight(weight, scales * 2))
    assert np.array_equal(again.int8("other", weight, scales), quantize_weight(weight, scales))
    with pytest.raises(QuantuneError, match="plan comes from another calibration"):
        RoundedWeights.load(tmp_path / "w.npz", "0" * 16)
