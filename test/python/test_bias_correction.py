"""Bias correction from the FP32 run (analysis/bias_correction.py): each int8 layer's bias shifted so that its
result with int8 weights has the mean of its FP32 result, per channel, on the calibration data."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.analysis.calibration import CalibrationOptions
from quantune_mlir.analysis.int8_layer import contract
from quantune_mlir.analyze import AnalysisOptions, _int8_run, output_shifts
from quantune_mlir.decision.plan import LayerPlan, PrecisionPlan
from quantune_mlir.quantization import AffineParams
from quantune_mlir.quantize import QuantizeOptions, load_import, rounded_weights, run_fp32
from quantune_mlir.build_dir import BuildDir
from quantune_mlir.rewrite.chains import int8_region
from quantune_mlir.rewrite.graph import Constants, layer_bias

from int8_reference import reference_int8_outputs  # noqa: E402

UNCORRECTED = QuantizeOptions(CalibrationOptions(bias_correction=False))


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    """MobileNetV2-small: depthwise 3x3 layers, whose nine weights per channel round with a visible mean error."""
    folder = tmp_path_factory.mktemp("mobilenet")
    api.import_model("mobilenet_v2-small", build_dir=folder)
    samples = api.calibration_samples("mobilenet_v2-small", limit=32)
    table = api.load_layer_table(folder)
    plan = PrecisionPlan.uniform(table, "int8")
    return folder, samples, run_fp32(folder, plan, samples), run_fp32(folder, plan, samples, UNCORRECTED)


def _weight_rounding_errors(folder, fp32_run, plan: PrecisionPlan) -> dict[str, np.ndarray]:
    """Per int8 layer with a bias, the mean over the batch and positions of its result with int8 weights and
    rounded bias less its FP32 result, per channel, on the FP32 run's input: float64, from the plan's scales and
    the int8 weights its calibration rounded."""
    module = load_import(BuildDir(folder))
    int8_weights = rounded_weights(BuildDir(folder), plan)
    errors = {}
    with module.context:
        constants = Constants(module)
        region = int8_region(module, set(plan.int8_layers()), constants)
        point_name = {p.value: p.name for p in region.points}
        for layer_id, chain in region.chains.items():
            if chain.layer.bias is None:
                continue
            layer_plan = plan.layers[layer_id]
            x = torch.from_numpy(fp32_run.tensors[point_name[chain.layer.activation]].astype(np.float64))
            weight = constants.value_of(chain.layer.weight)
            scales = np.asarray(layer_plan.weight_scales)
            shape = (-1,) + (1,) * (weight.ndim - 1)
            rounded = int8_weights.int8(layer_id, weight, scales) * scales.reshape(shape)
            weight = weight.astype(np.float64)
            bias = layer_bias(chain.layer, constants).astype(np.float64)
            combined = layer_plan.input.scale * scales
            difference = contract(chain.layer, x, rounded) - contract(chain.layer, x, weight)
            channel = (1, -1) + (1,) * (difference.ndim - 2)
            difference += (np.rint(bias / combined) * combined - bias).reshape(channel)
            errors[layer_id] = difference.mean(axis=(0,) + tuple(range(2, difference.ndim)))
    return errors


def test_the_correction_cancels_the_mean_error_of_each_layers_int8_weights(mobilenet):
    folder, _, corrected, uncorrected = mobilenet
    errors = _weight_rounding_errors(folder, corrected, corrected.plan)
    kept = [layer for layer in errors if corrected.plan.layers[layer].bias_correction is not None]
    assert len(errors) > 40 and len(kept) > len(errors) // 2, (len(errors), len(kept))
    for layer_id in kept:
        np.testing.assert_allclose(corrected.plan.layers[layer_id].bias_correction, -errors[layer_id],
                                   atol=1e-6 + 1e-3 * np.abs(errors[layer_id]).max())
    assert all(uncorrected.plan.layers[layer].bias_correction is None for layer in errors)


def test_the_int8_build_runs_the_correction(mobilenet):
    """The rewrite adds the shift to the bias the integer kernels add: the compiled all-int8 module (the
    analysis's int8 run) matches the layer-by-layer reference of the corrected plan within one unit, and not
    that of the same plan without its corrections."""
    folder, samples, corrected, _ = mobilenet
    tensors, _ = _int8_run(BuildDir(folder), corrected, samples[:8], AnalysisOptions())
    without = dataclasses.replace(corrected.plan, layers={
        layer: dataclasses.replace(entry, bias_correction=None) for layer, entry in corrected.plan.layers.items()})
    source = folder

    def mismatches(plan: PrecisionPlan) -> tuple[int, int]:
        """(values one unit off, values further off) of the module against the reference of plan"""
        expected = reference_int8_outputs(source, plan, tensors)
        off = [np.abs(tensors[name].astype(np.int32) - values.astype(np.int32)) for name, values in expected.items()]
        return sum(int(np.sum(o == 1)) for o in off), sum(int(np.sum(o > 1)) for o in off)

    one_unit, further = mismatches(corrected.plan)
    assert further == 0
    one_unit_without, _ = mismatches(without)
    # the lowering requantizes in float32, the reference in float64: they may round a tie apart
    assert one_unit_without > 20 * max(one_unit, 1), (one_unit, one_unit_without)


def test_the_plan_carries_the_correction_and_a_given_one_is_kept(mobilenet):
    folder, samples, corrected, _ = mobilenet
    table = api.load_layer_table(folder)
    text = corrected.plan.to_json()
    assert PrecisionPlan.from_json(text, table.ids) == corrected.plan
    layer = next(layer for layer in corrected.plan.int8_layers() if corrected.plan.layers[layer].bias_correction)
    given = tuple(0.5 for _ in corrected.plan.layers[layer].bias_correction)
    plan = PrecisionPlan.uniform(table, "int8")
    plan = dataclasses.replace(plan, layers={**plan.layers, layer: dataclasses.replace(plan.layers[layer],
                                                                                      bias_correction=given)})
    assert run_fp32(folder, plan, samples[:8]).plan.layers[layer].bias_correction == given


def test_a_malformed_correction_in_a_plan_file_is_refused(mobilenet):
    folder = mobilenet[0]
    table = api.load_layer_table(folder)
    text = '{"schema_version": 1, "layers": {"%s": {"precision": "int8", "bias_correction": ["x"]}}}' % table.ids[0]
    with pytest.raises(Exception, match=r"layer '.*': malformed quantization parameters"):
        PrecisionPlan.from_json(text, table.ids)
    text = '{"schema_version": 1, "layers": {"%s": {"precision": "int8", "bias_correction": [NaN]}}}' % table.ids[0]
    with pytest.raises(Exception, match=r"bias_correction must be a list of finite numbers"):
        PrecisionPlan.from_json(text, table.ids)



def test_the_output_layer_takes_the_mean_error_the_int8_run_leaves_at_the_output(mobilenet):
    """No layer's own correction sees what the layers upstream add; the int8 run does. After the output shift,
    the all-int8 module's mean error at the logits, per class, is gone on the samples it was measured on."""
    folder, samples, corrected, _ = mobilenet
    build = BuildDir(folder)

    def mean_output_error(plan: PrecisionPlan) -> tuple[str, np.ndarray]:
        tensors, _ = _int8_run(build, dataclasses.replace(corrected, plan=plan), samples, AnalysisOptions())
        (layer,) = output_shifts(build, plan, corrected.tensors, tensors)
        error = tensors[f"{layer}.output"].astype(np.float64) - corrected.tensors[f"{layer}.output"]
        return layer, error.mean(axis=0)

    layer, before = mean_output_error(corrected.plan)
    assert layer == api.load_layer_table(folder).ids[-1]
    shifted = corrected.plan.with_output_shifts({layer: tuple(-before)})
    np.testing.assert_allclose(shifted.layers[layer].bias_correction,
                               np.asarray(corrected.plan.layers[layer].bias_correction) - before)
    _, after = mean_output_error(shifted)
    assert np.linalg.norm(after) < 0.05 * np.linalg.norm(before), (np.linalg.norm(after), np.linalg.norm(before))


def _plan_with_an_output_shift() -> PrecisionPlan:
    def calibrated(correction):
        return LayerPlan("int8", (0.01,), AffineParams(0.1, 0), None, correction)
    plan = PrecisionPlan("m", {"conv1": calibrated(None), "conv2": calibrated(None), "conv3": LayerPlan("fp32"),
                               "fc": calibrated((1.0, 2.0))})
    return plan.with_output_shifts({"fc": (0.5, -1.0)})


def test_a_mixed_plan_takes_the_output_shift_in_proportion_to_its_int8_layers():
    plan = _plan_with_an_output_shift()
    assert plan.layers["fc"].bias_correction == (1.5, 1.0)  # measured on this plan: all of it
    mixed = plan.with_precision("conv1", "fp32")
    assert mixed.output_shift_share("fc") == pytest.approx(2 / 3)
    assert mixed.layers["fc"].bias_correction == pytest.approx((1.0 + 0.5 * 2 / 3, 2.0 - 2 / 3))
    assert mixed.with_precision("conv2", "fp32").layers["fc"].bias_correction == pytest.approx((1 + 0.5 / 3, 2 - 1 / 3))
    assert mixed.with_precision("fc", "fp32").output_shift_share("fc") == 0.0


def test_the_output_shift_survives_the_plan_file_and_an_edit_of_it():
    plan = _plan_with_an_output_shift()
    ids = list(plan.layers)
    assert PrecisionPlan.from_json(plan.to_json(), ids) == plan
    edited = json.loads(plan.to_json())
    edited["layers"]["conv2"] = "fp32"
    assert PrecisionPlan.from_json(json.dumps(edited), ids).layers["fc"].bias_correction == \
        pytest.approx(plan.with_precision("conv2", "fp32").layers["fc"].bias_correction)
    broken = plan.to_json().replace('"int8_layers": 3', '"int8_layers": 0')
    with pytest.raises(Exception, match=r"output_shifts of layer 'fc' needs finite shifts and int8_layers of at "):
        PrecisionPlan.from_json(broken, ids)
