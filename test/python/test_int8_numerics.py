"""The integer builds against an independent PyTorch reference of the same quantized graph (int8_reference.py),
and against each other across targets: every int8 tensor within one unit (LSB)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.data.resolve import load_data
from quantune_mlir.decision.plan import LayerPlan, PrecisionPlan
from quantune_mlir.quantize import QuantizeOptions, calibrate, rewrite_and_compile
from quantune_mlir.runtime import CompiledModule
from quantune_mlir.zoo import parse_zoo_id

from int8_reference import reference_int8_outputs

FAST_MODELS = ["resnet18-small", "mobilenet_v2-small"]
SLOW_MODELS = ["resnet50-small", "squeezenet1_1-small", "vgg16_bn-small"]
EXPOSE = QuantizeOptions(expose_int8=True)


def _quantized(model_id: str, build_dir, plan_of=lambda table: PrecisionPlan.uniform(table, "int8")):
    api.import_model(model_id, build_dir=build_dir)
    table = api.load_layer_table(build_dir)
    preprocess = parse_zoo_id(model_id).preprocess
    samples = load_data("fashion-mnist", preprocess, split="train", limit=16).inputs
    plan = calibrate(build_dir, plan_of(table), samples, EXPOSE)
    build = rewrite_and_compile(build_dir, plan, "x86_64", EXPOSE)
    test_input = load_data("fashion-mnist", preprocess, limit=1).inputs
    return build, test_input


def _int8_tensors(vmfb, build, test_input, run=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    outputs = (run or CompiledModule(vmfb))(test_input)
    extra = len(build.int8_tensors)
    return outputs[0], dict(zip(build.int8_tensors, outputs[len(outputs) - extra:]))


def _assert_within_one_lsb(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert expected, "no int8 layer output to compare"
    for name, reference in expected.items():
        diff = np.abs(actual[name].astype(np.int32) - reference.astype(np.int32))
        assert diff.max() <= 1, f"{name}: {int(diff.max())} LSB off"
        assert (diff > 0).mean() < 1e-3, f"{name}: {(diff > 0).mean():.2%} of values off by one"


def _check_against_reference(model_id: str, build_dir) -> None:
    build, test_input = _quantized(model_id, build_dir)
    _, tensors = _int8_tensors(build.vmfb, build, test_input)
    expected = reference_int8_outputs(build_dir, build.plan, tensors)
    _assert_within_one_lsb(tensors, expected)


@pytest.mark.parametrize("model_id", FAST_MODELS)
def test_all_int8_matches_the_reference_within_one_lsb(model_id, tmp_path):
    _check_against_reference(model_id, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", SLOW_MODELS)
def test_all_int8_matches_the_reference_within_one_lsb_slow_models(model_id, tmp_path):
    _check_against_reference(model_id, tmp_path)


def first_and_last_fp32(table) -> PrecisionPlan:
    return with_fp32(table, {table.ids[0], table.ids[-1]})


def alternating(table) -> PrecisionPlan:
    return with_fp32(table, set(table.ids[1::2]))


def with_fp32(table, fp32_layers: set[str]) -> PrecisionPlan:
    plan = PrecisionPlan.uniform(table, "int8")
    return PrecisionPlan(plan.model, {**plan.layers, **{layer: LayerPlan("fp32") for layer in fp32_layers}})


@pytest.mark.parametrize("plan_of", [first_and_last_fp32, alternating])
def test_mixed_plans_match_the_reference(plan_of, tmp_path):
    build, test_input = _quantized("resnet18-small", tmp_path, plan_of)
    planned = plan_of(api.load_layer_table(tmp_path))
    assert set(build.plan.int8_layers()) == set(planned.int8_layers()) != set(planned.layers)
    logits, tensors = _int8_tensors(build.vmfb, build, test_input)
    expected = reference_int8_outputs(tmp_path, build.plan, tensors)
    _assert_within_one_lsb(tensors, expected)
    (fp32,) = api.reference_outputs("resnet18-small", (test_input,))
    assert logits.argmax() == fp32.argmax()


@pytest.mark.slow
def test_vmvx_and_x86_int8_builds_agree_within_one_lsb(tmp_path):
    """The same calibrated plan lowered for each: x86_64 on the project's kernels, vmvx on integer linalg."""
    build, test_input = _quantized("resnet18-small", tmp_path)
    _, x86 = _int8_tensors(build.vmfb, build, test_input)
    vmvx = rewrite_and_compile(tmp_path, build.plan, "vmvx", EXPOSE)
    _, interpreted = _int8_tensors(vmvx.vmfb, vmvx, test_input)
    _assert_within_one_lsb(interpreted, x86)


class _Batched(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 1)
        self.c = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = torch.relu(self.c(torch.relu(self.b(x)) + x))
        return self.fc(x.mean((2, 3)))


def test_a_batched_model_matches_the_reference(tmp_path):
    """Batch 4: dense convs stay direct convs (IREE's im2col rewrite is batch 1 only), 1x1 convs too."""
    torch.manual_seed(0)
    model, x = _Batched().eval(), torch.randn(4, 3, 8, 8)
    api.import_model(model, example_inputs=(x,), build_dir=tmp_path, name="batched")
    plan = calibrate(tmp_path, PrecisionPlan.uniform(api.load_layer_table(tmp_path), "int8"),
                     torch.randn(16, 3, 8, 8).numpy(), EXPOSE)
    build = rewrite_and_compile(tmp_path, plan, "x86_64", EXPOSE)
    logits, tensors = _int8_tensors(build.vmfb, build, x.numpy())
    _assert_within_one_lsb(tensors, reference_int8_outputs(tmp_path, build.plan, tensors))
    assert (logits.argmax(1) == model(x).argmax(1).numpy()).all()
    assert not build.audit.failures(build.plan.int8_layers())
