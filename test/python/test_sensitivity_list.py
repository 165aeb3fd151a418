"""The sensitivity list's JSON schema and its bar chart."""
import json

import numpy as np
import pytest
from PIL import Image

from quantune_mlir.analysis.metrics import LayerMetrics, MetricRatios
from quantune_mlir.analysis.sensitivity import SensitivityList
from quantune_mlir.errors import QuantuneError
from quantune_mlir.report.plots import sensitivity_bars

METRICS = [LayerMetrics("a", 40.0, 1e-4, 30.0, 1e-3), LayerMetrics("b", 20.0, 1e-2, 10.0, 1e-1),
           LayerMetrics("c", 30.0, 1e-4, 20.0, 1e-1)]


def test_the_list_is_ranked_and_round_trips_through_json():
    sensitivity = SensitivityList.from_metrics("net", METRICS, MetricRatios(activation_mse=2))
    assert sensitivity.ranked == ["b", "c", "a"] and sensitivity.entries[0].score == 1.0
    data = json.loads(sensitivity.to_json())
    assert data["schema_version"] == 1 and data["ratios"]["activation_mse"] == 2
    assert data["layers"][1] == {"score": pytest.approx((0.5 + 0 + 0.5 + 2 * 1.0) / 5), "layer": "c",
                                 "weight_sqnr_db": 30.0, "weight_mse": 1e-4, "activation_sqnr_db": 20.0,
                                 "activation_mse": 1e-1, "local_activation_sqnr_db": None}
    assert SensitivityList.from_json(sensitivity.to_json()) == sensitivity


@pytest.mark.parametrize("text, message", [
    ("[1", r"s\.json: not JSON"),
    ('{"schema_version": 7}', r"s\.json: schema_version 7, this quantune reads 1; rerun `quantune analyze`"),
    ('{"schema_version": 1, "model": "m", "ratios": {}, "layers": [{"score": 1}]}',
     r"s\.json: missing or malformed field \('layer'\); expected model, ratios and layers with score, layer, "
     r"weight_sqnr_db"),
])
def test_bad_files_name_the_problem(text, message):
    with pytest.raises(QuantuneError, match=message):
        SensitivityList.from_json(text, "s.json")


def test_bar_chart_is_a_png_with_a_bar_per_layer(tmp_path):
    sensitivity = SensitivityList.from_metrics("net", METRICS)
    path = sensitivity_bars(sensitivity, tmp_path / "sensitivity.png", fp32_layers=frozenset({"b"}))
    assert path.is_file() and not (tmp_path / "sensitivity.png.partial").exists()
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = ((pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)).sum()  # the FP32 layer's bar
    blue = ((pixels[..., 2] > 150) & (pixels[..., 0] < 90)).sum()  # the two int8 layers' bars
    assert red > blue > 0  # b (score 1, FP32) has the longest bar, c (0.5) a shorter one, a (0) none


def test_the_local_score_reads_each_layers_own_error():
    # a shows the least error in the int8 run, but on its own it is the worst layer
    local = {"a": (5.0, 1.0), "b": (50.0, 1e-6), "c": (30.0, 1e-3)}
    ratios = MetricRatios(activation_sqnr=2)
    accumulated = SensitivityList.from_metrics("net", METRICS, ratios, {"local": local})
    own = SensitivityList.from_metrics("net", METRICS, ratios, {"local": local}, "local")
    assert accumulated.ranked == ["b", "c", "a"] and own.ranked == ["a", "b", "c"]
    assert own.entries[0].score == pytest.approx((0 + 0 + 2 * 1 + 1) / 5)
    assert [e.local_activation_sqnr_db for e in own.entries] == [5.0, 50.0, 30.0]
    assert own.entries[0].metrics == METRICS[0]  # the list keeps reporting the accumulated metrics
    assert SensitivityList.from_json(own.to_json()) == own and own.activation_error == "local"


def test_a_variant_the_analysis_did_not_compute_is_named():
    with pytest.raises(QuantuneError, match=r"no added activation errors to rank by: the analysis computes local"):
        SensitivityList.from_metrics("net", METRICS, MetricRatios(), {"local": {}}, "added")
