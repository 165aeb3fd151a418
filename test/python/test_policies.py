"""Policies on a synthetic sensitivity list against golden results."""
import pytest

from quantune_mlir.analysis.metrics import LayerMetrics
from quantune_mlir.decision.policies import (fraction, model_bytes, plan_keeping_fp32, size_budget, sqnr_threshold,
                                             top_k)
from quantune_mlir.errors import QuantuneError
from quantune_mlir.layers import LayerInfo, LayerTable

TABLE = LayerTable("net", (LayerInfo("stem", "conv", (1, 3, 8, 8), (1, 4, 8, 8), (4, 3, 3, 3), 108),
                           LayerInfo("body", "conv", (1, 4, 8, 8), (1, 4, 8, 8), (4, 4, 3, 3), 144),
                           LayerInfo("proj", "conv", (1, 4, 8, 8), (1, 8, 8, 8), (8, 4, 1, 1), 32),
                           LayerInfo("fc", "linear", (1, 8), (1, 10), (10, 8), 80)))
RANKED = ["body", "fc", "stem", "proj"]  # most sensitive first
METRICS = [LayerMetrics("stem", 40.0, 1e-5, 31.0, 1e-3), LayerMetrics("body", 38.0, 1e-5, 18.0, 1e-2),
           LayerMetrics("proj", 45.0, 1e-6, 35.0, 1e-4), LayerMetrics("fc", 39.0, 1e-5, 24.5, 1e-2)]


def test_top_k_and_fraction():
    assert top_k(RANKED, 0) == [] and top_k(RANKED, 2) == ["body", "fc"]
    assert fraction(RANKED, 0.5) == ["body", "fc"] and fraction(RANKED, 0.3) == ["body", "fc"]
    assert fraction(RANKED, 0.01) == ["body"] and fraction(RANKED, 1.0) == RANKED and fraction(RANKED, 0.0) == []
    with pytest.raises(QuantuneError, match=r"top-k: k must lie in \[0, 4\] \(the model's layers\), got 5"):
        top_k(RANKED, 5)
    with pytest.raises(QuantuneError, match=r"fraction: the share of FP32 layers must lie in \[0, 1\], got 1.5"):
        fraction(RANKED, 1.5)


def test_sqnr_threshold_keeps_the_layers_below_it_in_sensitivity_order():
    assert sqnr_threshold(RANKED, METRICS, 25.0) == ["body", "fc"]
    assert sqnr_threshold(RANKED, METRICS, 10.0) == []
    with pytest.raises(QuantuneError, match=r"sqnr threshold: no metrics for layer 'fc'"):
        sqnr_threshold(RANKED, METRICS[:2], 25.0)


def test_size_budget_walks_the_list_and_skips_what_does_not_fit():
    assert model_bytes(TABLE, []) == 364 and model_bytes(TABLE, ["body"]) == 364 + 3 * 144
    assert size_budget(RANKED, TABLE, 364) == []
    # body (+432) fits in 364 + 500; fc (+240) would not, stem (+324) neither, proj (+96) does
    assert size_budget(RANKED, TABLE, 364 + 500) == ["body"]
    assert size_budget(RANKED, TABLE, 364 + 540) == ["body", "proj"]
    assert size_budget(RANKED, TABLE, 4 * 364) == RANKED
    with pytest.raises(QuantuneError, match=r"size budget: 100 bytes is below the all-int8 model's 364 bytes"):
        size_budget(RANKED, TABLE, 100)


def test_plan_keeping_fp32():
    plan = plan_keeping_fp32(TABLE, ["body", "fc"])
    assert plan.int8_layers() == ("stem", "proj") and plan.layers["fc"].precision == "fp32"
    with pytest.raises(QuantuneError, match=r"net has no layer 'head'"):
        plan_keeping_fp32(TABLE, ["head"])
