"""Quantization arithmetic and calibration on synthetic data with known answers."""
import numpy as np
import pytest

from quantune_mlir import QuantuneError
from quantune_mlir.analysis.calibration import CalibrationOptions, activation_params
from quantune_mlir.quantization import (AffineParams, affine_params, dequantize, dequantize_weight, quantize,
                                        quantize_weight, requantize, requantize_multipliers, weight_scales)


def test_affine_params_cover_the_range_and_hold_zero_exactly():
    p = affine_params(-1.0, 3.0, "int8")
    assert p.scale == pytest.approx(4.0 / 255) and p.zero_point == -128 + round(1.0 / p.scale)
    assert dequantize(quantize(np.array([0.0]), p), p)[0] == 0.0
    u = affine_params(0.0, 6.0, "uint8")
    assert (u.zero_point, u.scale) == (0, pytest.approx(6.0 / 255))
    s = affine_params(-2.0, 1.0, "int8", symmetric=True)
    assert (s.zero_point, s.scale) == (0, pytest.approx(2.0 / 127))
    # a range that excludes 0 is widened to hold it, so that zero padding stays exact
    assert affine_params(2.0, 4.0, "uint8").zero_point == 0


def test_quantize_rounds_half_to_even_and_saturates():
    p = AffineParams(1.0, 0, "int8")
    np.testing.assert_array_equal(quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0]), p),
                                  [0, 2, 2, 0, -2, 127, -128])
    np.testing.assert_array_equal(quantize(np.array([-5.0, 255.4, 300.0]), AffineParams(1.0, 0, "uint8")),
                                  [0, 255, 255])


def test_weight_quantization_per_channel_and_per_tensor():
    w = np.array([[1.0, -0.5], [0.0, 0.0], [-4.0, 2.0]], np.float32)
    scales = weight_scales(w)
    np.testing.assert_allclose(scales, [1.0 / 127, 1.0, 4.0 / 127])
    q = quantize_weight(w, scales)
    assert q.min() >= -127 and q[0, 0] == 127 and q[2, 0] == -127 and (q[1] == 0).all()
    np.testing.assert_allclose(dequantize_weight(q, scales), w, atol=scales.max() / 2)
    tensor = weight_scales(w, per_channel=False)
    assert tensor.shape == (1,) and tensor[0] == pytest.approx(4.0 / 127)
    with pytest.raises(QuantuneError, match=r"weights hold NaN or Inf"):
        weight_scales(np.array([[np.nan]]))


def test_quantization_error_is_bounded_by_half_a_step():
    x = np.random.default_rng(0).uniform(-3, 5, 10_000)
    p = affine_params(-3.0, 5.0)
    assert np.abs(dequantize(quantize(x, p), p) - x).max() <= p.scale / 2 + 1e-7


def test_params_validation():
    with pytest.raises(QuantuneError, match=r"unknown integer type 'int4'"):
        AffineParams(0.1, 0, "int4")
    with pytest.raises(QuantuneError, match=r"zero point 300 lies outside int8"):
        AffineParams(0.1, 300)
    with pytest.raises(QuantuneError, match=r"the range is \[0, 0\]"):
        affine_params(0.0, 0.0)
    with pytest.raises(QuantuneError, match=r"symmetric quantization needs a signed type"):
        affine_params(-1.0, 1.0, "uint8", symmetric=True)


def test_requantize_rounds_half_to_even_clamps_and_adds_the_residual():
    multipliers = requantize_multipliers(np.array([0.5, 0.25]))
    assert multipliers.dtype == np.float32
    acc = np.array([[1, 2], [3, 6], [5, 10], [-3, -6], [1000, -1000]], np.int32)
    # 0.5, 1.5, 2.5 and -1.5 round to 0, 2, 2 and -2; the last row saturates at the bounds
    expected = np.array([[0, 0], [2, 2], [2, 2], [-2, -2], [127, -128]])
    np.testing.assert_array_equal(requantize(acc, multipliers, 0, (-128, 127)), expected)
    # zero point 10 and a ReLU bound: the clamp applies to the output, zero point included
    np.testing.assert_array_equal(requantize(acc, multipliers, 10, (10, 127)), np.clip(expected + 10, 10, 127))
    residual = (np.full((4, 2), 7, np.int8), 5, np.float32(0.75))  # (7 - 5) * 0.75 = 1.5 more
    np.testing.assert_array_equal(requantize(acc[:4], multipliers, 0, (-128, 127), residual),
                                  [[2, 2], [3, 3], [4, 4], [0, 0]])
    with pytest.raises(QuantuneError, match=r"requantize multipliers must lie in"):
        requantize_multipliers(np.array([0.0]))


@pytest.fixture(scope="module")
def heavy_tailed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000).astype(np.float32)
    x[:20] = 40.0  # a few outliers
    return x


def test_minmax_keeps_the_outliers(heavy_tailed):
    p = activation_params(heavy_tailed, CalibrationOptions("minmax"))
    assert p.scale == pytest.approx((40.0 - heavy_tailed.min()) / 255, rel=1e-6)


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_clipping_methods_cut_the_outliers_and_lower_the_error(heavy_tailed, method):
    options = CalibrationOptions(method)
    clipped = activation_params(heavy_tailed.reshape(50, 1, 40, 100), options)  # 50 samples of a feature map
    full = activation_params(heavy_tailed, CalibrationOptions("minmax"))
    assert clipped.scale < full.scale / 3
    bulk = heavy_tailed[20:]

    def mse(p):
        return float(np.mean((dequantize(quantize(bulk, p), p) - bulk) ** 2))
    assert mse(clipped) < mse(full) / 5


def test_entropy_keeps_the_range_of_a_relu_output():
    """Half a ReLU output's values are zeros; they must not make the divergence choose the finest levels (which
    clipped such a tensor at a third of its range and gave PP-OCR's classifier 1.6 dB)."""
    x = np.maximum(np.random.default_rng(0).standard_normal((50, 4, 32, 32)), 0).astype(np.float32)
    p = activation_params(x, CalibrationOptions("entropy"))
    assert p.scale * (255 - (p.zero_point + 128)) > 0.75 * float(x.max())  # the tail alone clipped


def test_entropy_takes_a_feature_vectors_min_and_max():
    vectors = np.random.default_rng(1).standard_normal((40, 16, 1, 1)).astype(np.float32)
    assert activation_params(vectors, CalibrationOptions("entropy")) == \
        activation_params(vectors, CalibrationOptions("minmax"))


def test_mse_clipping_minimises_the_error_on_a_heavy_tail():
    x = np.random.default_rng(0).laplace(0.0, 1.0, 200_000).astype(np.float32)

    def mse(p):
        return float(np.mean((dequantize(quantize(x, p), p) - x) ** 2))
    chosen, full = activation_params(x, CalibrationOptions("mse")), activation_params(x, CalibrationOptions("minmax"))
    assert chosen.scale < full.scale and mse(chosen) < 0.8 * mse(full)


def test_mean_minmax_averages_each_samples_range():
    """OpenVINO NNCF's default: one sample with an outlier moves the range by 1/N of the outlier."""
    batch = np.tile(np.linspace(-1.0, 3.0, 50, dtype=np.float32), (10, 1))
    batch[0, 0] = 43.0  # that sample's min is the next value, -1 + 4/49
    p = activation_params(batch, CalibrationOptions("mean-minmax"))
    mean_min, mean_max = (9 * -1.0 + (-1.0 + 4.0 / 49)) / 10, (9 * 3.0 + 43.0) / 10
    expected = affine_params(mean_min, mean_max)  # float32 data: equal to float32 precision
    assert p.zero_point == expected.zero_point and p.scale == pytest.approx(expected.scale, rel=1e-6)


def test_hybrid_averages_the_samples_ranges_of_feature_maps_only():
    maps = np.tile(np.linspace(-1.0, 3.0, 48, dtype=np.float32).reshape(1, 3, 4, 4), (10, 1, 1, 1))
    maps[0, 0, 0, 0] = -21.0
    mean_min = (9 * -1.0 - 21.0) / 10
    assert activation_params(maps, CalibrationOptions("hybrid")) == activation_params(maps, CalibrationOptions(
        "mean-minmax")) and activation_params(maps, CalibrationOptions("hybrid")).zero_point == \
        affine_params(mean_min, 3.0).zero_point
    # a vector per sample (pooled features, a squeeze-excite gate's input): each sample's extremes are a few
    # channels, not outliers, so its range is the min/max
    for vectors in (maps.reshape(10, 48), maps.reshape(10, 48, 1, 1)):
        assert activation_params(vectors, CalibrationOptions("hybrid")) == \
            activation_params(vectors, CalibrationOptions("minmax")) == affine_params(-21.0, 3.0)


def test_percentile_matches_numpy():
    x = np.arange(10_001, dtype=np.float32) - 5000
    p = activation_params(x, CalibrationOptions("percentile", percentile=99.0), "t")
    lo, hi = np.percentile(x, 1.0), np.percentile(x, 99.0)
    assert p.scale == pytest.approx((hi - lo) / 255, rel=1e-6)


def test_calibration_errors_name_the_tensor():
    with pytest.raises(QuantuneError, match=r"layer3.conv: the activations have zero range \(0.0 to 0.0\)"):
        activation_params(np.zeros(100), CalibrationOptions(), "layer3.conv")
    with pytest.raises(QuantuneError, match=r"fc: the FP32 activations hold NaN or Inf"):
        activation_params(np.array([1.0, np.inf]), CalibrationOptions(), "fc")
    with pytest.raises(QuantuneError, match=r"unknown calibration method 'kl': choose one of hybrid, auto, minmax, mean-minmax, percentile"):
        CalibrationOptions("kl")
    with pytest.raises(QuantuneError, match=r"fc: method auto chooses among the others per tensor by the error at its "
                                            r"consumer layers"):
        activation_params(np.ones(4), CalibrationOptions("auto"), "fc")
