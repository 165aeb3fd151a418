"""The local metrics and the sensitivity score on synthetic arrays with known answers."""
import numpy as np
import pytest

from quantune_mlir.analysis.metrics import (SQNR_CAP_DB, LayerMetrics, MetricRatios, activation_metrics, mse,
                                            sensitivity_list, sensitivity_scores, sqnr_db, weight_metrics)
from quantune_mlir.errors import QuantuneError
from quantune_mlir.quantization import AffineParams


def test_sqnr_known_answers():
    x = np.random.default_rng(0).standard_normal(100_000)
    assert sqnr_db(x, x) == SQNR_CAP_DB
    noise = np.random.default_rng(1).standard_normal(100_000) * 0.1  # 20 dB below the signal
    assert sqnr_db(x, x + noise) == pytest.approx(20.0, abs=0.1)
    assert sqnr_db(np.zeros(4), np.ones(4)) == -SQNR_CAP_DB
    signal = np.full(8, 2.0)
    exact = signal + np.array([0.2, -0.2] * 4)  # noise power 0.04 against signal power 4: exactly 20 dB
    assert sqnr_db(signal, exact) == pytest.approx(20.0, abs=1e-12) and mse(signal, exact) == pytest.approx(0.04)


def test_weight_metrics_of_a_weight_on_the_int8_grid_are_exact():
    scales = np.array([0.5, 0.25])
    on_grid = np.array([[127, -3, 0], [-127, 64, 1]]) * scales[:, None]
    assert weight_metrics(on_grid, scales) == (SQNR_CAP_DB, 0.0)
    half_step = on_grid + np.array([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0]])  # rounds back to the grid: error 0.1
    sqnr, error = weight_metrics(half_step, scales)
    assert error == pytest.approx(0.01 / 6) and sqnr == pytest.approx(
        10 * np.log10(np.sum(half_step ** 2) / 0.01))


def test_activation_metrics_dequantize_the_int8_tensor():
    params = AffineParams(0.5, -10, "int8")
    q = np.array([-10, -8, 0, 20], np.int8)
    fp32 = np.array([0.0, 1.0, 5.0, 15.0])
    assert activation_metrics(fp32, q, params) == (SQNR_CAP_DB, 0.0)
    sqnr, error = activation_metrics(fp32 + np.array([0.0, 0.0, 0.0, 0.25]), q, params)
    assert error == pytest.approx(0.0625 / 4)
    with pytest.raises(QuantuneError, match=r"the FP32 tensor has shape \(4,\) but the int8 one \(2,\)"):
        activation_metrics(fp32, q[:2], params)


LAYERS = [LayerMetrics("a", 40.0, 1e-4, 30.0, 1e-3),   # safest on every metric
          LayerMetrics("b", 20.0, 1e-2, 10.0, 1e-1),   # worst on every metric
          LayerMetrics("c", 30.0, 1e-4, 20.0, 1e-1)]   # halfway in SQNR, best weight MSE, worst activation MSE


def test_sensitivity_scores_normalise_each_metric_to_a_risk():
    scores = sensitivity_scores(LAYERS)
    assert scores["a"] == 0.0 and scores["b"] == 1.0
    assert scores["c"] == pytest.approx((0.5 + 0.0 + 0.5 + 1.0) / 4)
    assert [layer for layer, _ in sensitivity_list(LAYERS)] == ["b", "c", "a"]


def test_ratios_weigh_the_metrics():
    only_weights = MetricRatios(weight_sqnr=1, weight_mse=1, activation_sqnr=0, activation_mse=0)
    assert sensitivity_scores(LAYERS, only_weights)["c"] == pytest.approx(0.25)
    only_activation_mse = MetricRatios(0, 0, 0, 2)
    assert sensitivity_scores(LAYERS, only_activation_mse) == {"a": 0.0, "b": 1.0, "c": 1.0}
    assert sensitivity_list(LAYERS, only_activation_mse)[:2] == [("b", 1.0), ("c", 1.0)]  # ties keep layer order


def test_a_metric_equal_on_every_layer_carries_no_risk():
    same = [LayerMetrics("x", 30.0, 1e-3, 20.0, 1e-2), LayerMetrics("y", 30.0, 1e-3, 20.0, 1e-2)]
    assert sensitivity_scores(same) == {"x": 0.0, "y": 0.0} and sensitivity_scores([]) == {}


@pytest.mark.parametrize("ratios", [(0, 0, 0, 0), (1, -1, 0, 0), (1, float("nan"), 0, 0)])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(QuantuneError, match=r"metric ratios must be finite, non-negative and not all zero"):
        MetricRatios(*ratios)
