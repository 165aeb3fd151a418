"""Whole-model int8 builds through IREE: which kernels each layer reached (the kernel audit of real compiles),
how many dispatches a mixed plan costs, and aarch64 builds run under qemu-aarch64 against the x86_64 build."""
from __future__ import annotations

import re

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.compile.audit import INT8, INT8_NO_DOT, KernelAudit
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.quantize import QuantizeOptions, calibrate, rewrite_and_compile
from quantune_mlir.zoo import parse_zoo_id

from test_int8_numerics import _assert_within_one_lsb, _int8_tensors, _quantized, alternating, first_and_last_fp32

IREE_X86_DOT = "vnni: vpdpwssd"  # IREE 3.13 sign-extends int8 to i16 for its own int8 tiles


def _audited(model_id: str, build_dir, plan_of, kernels: str = "auto", cost_model: bool = False
             ) -> tuple[KernelAudit, tuple[str, ...]]:
    """(the kernel audit quantize made of its x86_64 compile, layer ids), for a build without exposed int8
    tensors, as users get it (but by default with every layer the kernels can run on them)."""
    api.import_model(model_id, build_dir=build_dir)
    table = api.load_layer_table(build_dir)
    samples = api.calibration_samples(model_id, "fashion-mnist", 8)
    options = QuantizeOptions(kernels=kernels, cost_model=cost_model)
    plan = calibrate(build_dir, plan_of(table), samples, options)
    return rewrite_and_compile(build_dir, plan, "x86_64", options).audit, table.ids


def _all_int8(table):
    return PrecisionPlan.uniform(table, "int8")


def _depthwise_layers(model_id: str) -> set[str]:
    import torch
    model = api.zoo_reference(parse_zoo_id(model_id))
    return {name for name, m in model.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels}


@pytest.mark.parametrize("kernels", ["auto", "none"])
@pytest.mark.parametrize("model_id", ["resnet18-small", "mobilenet_v2-small"])
def test_x86_all_int8_layers_reach_vnni_kernels(model_id, kernels, tmp_path):
    """With the project's kernels (auto), every conv and linear layer runs vpdpbusd in a linked kernel, depthwise
    convs too (four rows of a kernel column per 32-bit lane), each with the 1x1 conv after it in MobileNetV2
    (the fused entry); without them, IREE's data-tiled mmt4d with vpdpwssd, and for depthwise convs IREE's
    vectorisation with widened multiplies (vpmulld)."""
    audit, layers = _audited(model_id, tmp_path, _all_int8, kernels)
    depthwise = _depthwise_layers(model_id)
    for layer in layers:
        verdict = audit.verdict(layer)
        if kernels == "auto":
            kernels_of_layer = ("call @quantune_depthwise",) if layer in depthwise else \
                ("call @quantune_conv", "call @quantune_depthwise_conv")
            assert verdict.verdict == INT8 and "vnni: vpdpbusd" in verdict.instructions, verdict
            assert verdict.contraction.startswith(kernels_of_layer), verdict
        elif layer in depthwise:
            assert (verdict.verdict, verdict.instructions) == (INT8_NO_DOT, ("vpmulld",)), verdict
        else:
            # the strongest class first (some CPUs' builds also hold avx2 vpmaddwd)
            assert (verdict.verdict, verdict.instructions[:1]) == (INT8, (IREE_X86_DOT,)), verdict
            assert verdict.contraction == "linalg.mmt4d i8 x i8 -> i32", verdict


def test_the_cost_model_choice_shows_in_the_audit(tmp_path):
    """Each layer of a build runs where the calibrated cost model (quantune_mlir/kernels/calibration) says:
    ResNet18-small's layers are smaller than any it measured, so all of them run on the kernels (its choices
    inside the measured range: test_cost_model.py)."""
    from quantune_mlir.kernels.cost_model import LayerWork, load
    model = load("x86_64-avx512vnni")
    assert model is not None
    audit, layers = _audited("resnet18-small", tmp_path, _all_int8, cost_model=True)
    table = api.load_layer_table(tmp_path)
    on_kernel = []
    for layer in table.layers:
        on_kernel.append(audit.verdict(layer.id).contraction.startswith("call @quantune_conv"))
        work = LayerWork.of(layer.kind, tuple(layer.weight_shape), tuple(layer.output_shape))
        assert on_kernel[-1] == model.prefers_kernel(work), (layer.id, audit.verdict(layer.id))
    assert all(on_kernel)


# A dispatch that only converts between int8 and fp32 (IREE names it after its one elementwise op and types)
_STANDALONE_CONVERSION = re.compile(r"_elementwise_[0-9x]+_(f32xi8|i8xf32)$")


@pytest.mark.parametrize("plan_of", [
    first_and_last_fp32,
    pytest.param(alternating, marks=pytest.mark.xfail(strict=True, reason=(
        "an int8 tensor read by an int8 layer and by an fp32 conv (a block's output, read by the next block's "
        "fp32 conv and its int8 residual add) is dequantized by a dispatch of its own: IREE does not fuse an "
        "elementwise producer into a conv's input"))),
], ids=["first-last-fp32", "alternating"])
def test_mixed_builds_add_no_dispatch_that_only_quantizes_or_dequantizes(tmp_path, plan_of):
    """At an fp32 -> int8 boundary the quantize runs in the fp32 producer's dispatch, at int8 -> fp32 the kernel
    writes fp32 itself: a mixed plan adds no dispatch of its own for either. (Its dispatch count is no measure
    of that: the FP32 layers' own IREE codegen takes more dispatches than the int8 kernels, e.g. a padded copy
    of the FP32 stem's input, the classifier's mmt4d and unpack.)"""
    audit = _audited("resnet18-small", tmp_path / "mixed", plan_of)[0]
    assert audit.dispatches and not [d.name for d in audit.dispatches if _STANDALONE_CONVERSION.search(d.name)]


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("model_id", ["resnet18-small", "mobilenet_v2-small"])
def test_aarch64_int8_under_qemu_agrees_with_x86_within_one_lsb(model_id, tmp_path):
    """The same calibrated plan lowered for each target: x86_64 on the VNNI kernels, aarch64 (+dotprod,+i8mm) on
    the project's kernels, smmla for conv and linear layers, sdot for depthwise ones."""
    build, test_input = _quantized(model_id, tmp_path)
    x86_logits, x86 = _int8_tensors(build.vmfb, build, test_input)
    arm_build = rewrite_and_compile(tmp_path, build.plan, "aarch64", QuantizeOptions(expose_int8=True))
    depthwise = _depthwise_layers(model_id)
    for layer in build.plan.int8_layers():
        verdict = arm_build.audit.verdict(layer)
        instruction = "dotprod: sdot" if layer in depthwise else "i8mm: smmla"
        assert (verdict.verdict, verdict.instructions) == (INT8, (instruction,)), verdict
        kernel = "call @quantune_depthwise" if layer in depthwise else "call @quantune_conv"
        assert verdict.contraction.startswith(kernel), verdict
    arm_logits, on_arm = _int8_tensors(None, arm_build, test_input,
                                       run=api.load_module(arm_build.vmfb, target="aarch64"))
    _assert_within_one_lsb(on_arm, x86)
    np.testing.assert_allclose(arm_logits, x86_logits, rtol=1e-5, atol=1e-5)
    # as deployed (no tensor exposed): each depthwise layer in one dispatch with the 1x1 conv after it and, but
    # the first, the expansion before it
    deployed = rewrite_and_compile(tmp_path, build.plan, "aarch64", QuantizeOptions())
    fused = [layer for layer in build.plan.int8_layers()
             if deployed.audit.verdict(layer).contraction.startswith("call @quantune_depthwise_conv")]
    assert len(fused) == (3 * len(depthwise) - 1 if depthwise else 0), fused
    deployed_logits = api.load_module(deployed.vmfb, target="aarch64")(test_input)[0]
    np.testing.assert_allclose(deployed_logits, x86_logits, rtol=1e-5, atol=1e-5)
