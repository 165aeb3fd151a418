"""Precision plans: schema, shorthand, validation against the layer table."""
import json

import pytest

from quantune_mlir import QuantuneError
from quantune_mlir.decision import LayerPlan, PrecisionPlan
from quantune_mlir.layers import LayerInfo, LayerTable
from quantune_mlir.quantization import AffineParams

TABLE = LayerTable("net", (
    LayerInfo("conv1", "conv", (1, 1, 8, 8), (1, 4, 8, 8), (4, 1, 3, 3), 40),
    LayerInfo("layer1.0.conv1", "conv", (1, 4, 8, 8), (1, 4, 8, 8), (4, 4, 3, 3), 148),
    LayerInfo("fc", "linear", (1, 4), (1, 10), (10, 4), 50),
))


def test_ready_made_plans():
    assert PrecisionPlan.uniform(TABLE, "int8").int8_layers() == TABLE.ids
    assert PrecisionPlan.uniform(TABLE, "fp32").int8_layers() == ()


def test_shorthand_with_default():
    plan = PrecisionPlan.from_json(json.dumps({"schema_version": 1, "default": "int8",
                                               "layers": {"conv1": "fp32", "fc": "fp32"}}), TABLE.ids)
    assert plan.int8_layers() == ("layer1.0.conv1",)
    assert not plan.layers["layer1.0.conv1"].calibrated and plan.layers["fc"].calibrated


def test_round_trip_with_parameters():
    params = AffineParams(0.05, -3)
    plan = PrecisionPlan.uniform(TABLE, "fp32")
    plan = PrecisionPlan(plan.model, {**plan.layers, "fc": LayerPlan("int8", (0.01,) * 10, params, params)})
    again = PrecisionPlan.from_json(plan.to_json(), TABLE.ids)
    assert again == plan and again.layers["fc"].calibrated


def test_unknown_layer_is_named_with_a_suggestion():
    with pytest.raises(QuantuneError, match=r"plan: layer 'layer1.0.conv' is not in the model \(did you mean "
                                            r"layer1.0.conv1\?\); `quantune layers BUILD_DIR` lists its 3 layers"):
        PrecisionPlan.from_json(json.dumps({"schema_version": 1, "layers": {"layer1.0.conv": "fp32"}}), TABLE.ids)


def test_bad_precisions_and_parameters():
    with pytest.raises(QuantuneError, match=r"layer 'fc': unknown precision 'int4': choose one of int8, fp32"):
        PrecisionPlan.from_json(json.dumps({"schema_version": 1, "layers": {"fc": "int4"}}), TABLE.ids)
    with pytest.raises(QuantuneError, match=r"layer 'fc': malformed quantization parameters"):
        PrecisionPlan.from_json(json.dumps({"schema_version": 1, "layers": {
            "fc": {"precision": "int8", "input": {"scale": 0.1}}}}), TABLE.ids)
    with pytest.raises(QuantuneError, match=r"layer 'conv1': zero point 999 lies outside int8"):
        PrecisionPlan.from_json(json.dumps({"schema_version": 1, "layers": {
            "conv1": {"precision": "int8", "output": {"scale": 0.1, "zero_point": 999}}}}), TABLE.ids)
    with pytest.raises(QuantuneError, match=r'expected a quantune plan with "schema_version": 1'):
        PrecisionPlan.from_json("{}", TABLE.ids)
    with pytest.raises(QuantuneError, match=r"plan.json: no such plan file"):
        PrecisionPlan.load("plan.json", TABLE.ids)
