"""Every plan compiles: seeded random plans (random FP32 sets of every size up to half the layers, runs of
consecutive FP32 layers, alternating int8/FP32, single FP32 layers) built through the paths the product uses (the
calibration build, the deployment build with and without the micro-kernels, aarch64) and run once. A fast slice in
the default suite, the sweep in the slow one. Real imports, compiles and runs."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.quantize import PlanCompileError, QuantizeOptions, calibrate, rewrite_and_compile

from conftest import REAL_MODELS


def plan_shapes(layer_ids: list[str], seed: int) -> dict[str, list[str]]:
    """Named sets of FP32 layers of the kinds a policy or a user may choose."""
    rng = random.Random(seed)
    n = len(layer_ids)
    size = rng.randint(1, max(1, n // 2))
    start = rng.randrange(0, n - size + 1)
    return {"random": sorted(rng.sample(layer_ids, size), key=layer_ids.index),
            "run": layer_ids[start:start + size],
            "alternating": layer_ids[rng.randint(0, 1)::2],
            "single": [rng.choice(layer_ids)]}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    made = {}

    def make(model_id: str):
        if model_id not in made:
            folder = tmp_path_factory.mktemp(model_id)
            table = api.import_model(model_id, build_dir=folder).layers
            made[model_id] = folder, list(table.ids)
        return made[model_id]
    return make


def build_plan(folder, layer_ids: list[str], fp32: list[str], *, kernels: str = "auto",
               targets=("x86_64",), samples: np.ndarray | None = None) -> None:
    """The plan calibrated (on samples, default 8 Fashion-MNIST images) and built for each target, the FP32 layers
    it states kept; the host build run once."""
    plan = PrecisionPlan.uniform(api.load_layer_table(folder), "int8")
    for layer in fp32:
        plan = plan.with_precision(layer, "fp32")
    if samples is None:
        samples = api.build_calibration_samples(folder, "fashion-mnist", 8)
    options = QuantizeOptions(kernels=kernels)
    calibrated = calibrate(folder, plan, samples, options)
    assert set(fp32) <= {layer for layer in layer_ids if calibrated.layers[layer].precision == "fp32"}
    for target in targets:
        build = rewrite_and_compile(folder, calibrated, target, options)
        written = json.loads(build.plan_path.read_text())["layers"]
        assert {layer for layer in layer_ids if written[layer] == "fp32"} == {
            layer for layer in layer_ids if calibrated.layers[layer].precision == "fp32"}
        if target == "x86_64":
            (logits,) = api.load_module(build.vmfb)(samples[:1])
            assert np.isfinite(logits).all()


@pytest.mark.parametrize("model_id, shape", [("mobilenet_v2-small", shape) for shape in ("random", "run", "alternating",
                                                                                     "single")]
                         + [("squeezenet1_1-small", shape) for shape in ("random", "alternating")])
def test_plans_of_every_shape_build_and_run(imported, model_id, shape):
    folder, layer_ids = imported(model_id)
    fp32 = plan_shapes(layer_ids, seed=len(layer_ids))[shape]
    build_plan(folder, layer_ids, fp32, targets=("x86_64", "aarch64") if shape == "run" else ("x86_64",))


def test_a_plan_builds_on_iree_codegen_too(imported):
    folder, layer_ids = imported("mobilenet_v2-small")
    build_plan(folder, layer_ids, plan_shapes(layer_ids, seed=1)["random"], kernels="none")


@pytest.mark.slow
@pytest.mark.parametrize("model_id, kernels", [("resnet18-small", "auto"), ("mobilenet_v2-small", "none"),
                                               ("squeezenet1_1-small", "auto"), ("vgg16_bn-small", "auto"),
                                               ("resnet50-small", "auto")])
def test_plan_sweep(imported, model_id, kernels):
    folder, layer_ids = imported(model_id)
    for shape, fp32 in plan_shapes(layer_ids, seed=7).items():
        build_plan(folder, layer_ids, fp32, kernels=kernels,
                   targets=("x86_64", "aarch64") if shape == "random" else ("x86_64",))


# The real-model bench (third-party ImageNet CNNs, scripts/real_models/fetch.py): the smallest in CI's slow run,
# the whole bench with `pytest -m full_sweep` (about 7 minutes)
@pytest.mark.slow
@pytest.mark.real_models
@pytest.mark.parametrize("model", ["ocr_text_cls", *(pytest.param(name, marks=pytest.mark.full_sweep)
                                                     for name in ("mobilenet_v2", "efficientnet_lite1", "open_nsfw"))])
def test_plan_sweep_on_the_real_model_bench(tmp_path, model):
    layer_ids = list(api.import_model(REAL_MODELS / model / "model.onnx", build_dir=tmp_path).layers.ids)
    samples = np.load(REAL_MODELS / model / "photos_calibration.npz")["inputs"][:8]
    for shape, fp32 in plan_shapes(layer_ids, seed=7).items():
        build_plan(tmp_path, layer_ids, fp32, samples=samples,
                   targets=("x86_64", "aarch64") if shape in ("random", "run") else ("x86_64",))


# The top 12 of a one-at-a-time ranking of the ImageNet MobileNetV2, which stopped the calibration build with
# "One or more operations with large vector sizes (32768 bytes) were found" under data tiling
REPRODUCER_FP32 = ["features.17.conv.0.0", "features.1.conv.0.0", "features.16.conv.0.0", "features.15.conv.0.0",
                   "features.14.conv.2", "features.17.conv.1.0", "features.17.conv.2", "features.2.conv.2",
                   "features.0.0", "features.2.conv.1.0", "features.16.conv.1.0", "features.15.conv.1.0"]


@pytest.mark.slow
def test_the_imagenet_mobilenet_v2_plan_that_iree_rejected_builds(tmp_path):
    """iree-compile rejects the calibration build's data-tiled form; it is compiled again without data tiling
    (same values) and the note says so."""
    api.import_model("mobilenet_v2", build_dir=tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"schema_version": 1, "default": "int8",
                                "layers": {layer: "fp32" for layer in REPRODUCER_FP32}}))
    build = api.quantize_model(tmp_path, plan=plan, calibration_images=4)
    assert len(build.plan.int8_layers()) == 53 - 12
    note = json.loads((tmp_path / "13_calibration_x86_64.vmfb.fallback.json").read_text())
    assert note["dropped_flags"] == ["--iree-dispatch-creation-data-tiling"]
    assert "large vector sizes" in note["error"]
    sample = api.build_calibration_samples(tmp_path, "fashion-mnist", 1)
    (logits,) = api.load_module(build.vmfb)(sample)
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def test_a_plan_iree_compile_rejects_names_its_fp32_layers(imported):
    """What a failure that no fallback mends says: the plan's FP32 layers, then iree-compile's error (here an
    unknown CPU passed through, which every flag set keeps)."""
    folder, layer_ids = imported("squeezenet1_1-small")
    plan = PrecisionPlan.uniform(api.load_layer_table(folder), "int8").with_precision(layer_ids[1], "fp32")
    calibrated = calibrate(folder, plan, api.build_calibration_samples(folder, "fashion-mnist", 4), QuantizeOptions())
    with pytest.raises(PlanCompileError, match=rf"the plan keeping 1 layer\(s\) FP32 \({layer_ids[1]}\) does not "
                       r"compile for x86_64: iree-compile failed for target x86_64: .*no-such-cpu") as caught:
        rewrite_and_compile(folder, calibrated, "x86_64", QuantizeOptions(),
                            ("--iree-llvmcpu-target-cpu=no-such-cpu",))
    assert caught.value.fp32_layers == (layer_ids[1],)
