"""The console scripts, run as a user would run them."""
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest


def quantune(*args, check=True):
    return subprocess.run(["quantune", *map(str, args)], capture_output=True, text=True, check=check)


def test_import_compile_run(tmp_path):
    build = tmp_path / "sq"
    result = quantune("import", "squeezenet1_1-small", "-o", build)
    assert "features.3.squeeze" in result.stdout and (build / "00_import.mlirbc").exists()
    assert "features.3.squeeze" in quantune("layers", build).stdout
    result = quantune("compile", build, "--target", "x86_64")
    vmfb = build / "50_x86_64.vmfb"
    assert result.stdout.strip() == str(vmfb)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 28, 28), np.float32))
    out = tmp_path / "y.npy"
    result = quantune("run", vmfb, "--input", x, "-o", out, "--benchmark", "3")
    assert "output 0: shape (1, 10) float32" in result.stdout and "driver local-sync, 1 thread" in result.stdout
    assert np.load(out).shape == (1, 10)


def test_build_runs_the_whole_pipeline_and_writes_the_report(tmp_path):
    result = quantune("-q", "build", "squeezenet1_1-small", "-o", tmp_path, "--policy", "top-k:1", "--curve", "1",
                      "--random-draws", "1", "--eval-images", "200")
    report = json.loads((tmp_path / "60_report.json").read_text())
    assert set(report) == {"model", "target", "policy", "decision", "layers", "fp32_layers", "int8_layers",
                           "fp32_only_layers", "widened_weight_scales", "bias_corrected_layers", "output_shifts",
                           "compile_fallbacks", "analysis", "plan",
                           "evaluation", "relative_l2_vs_framework", "size", "artifacts", "audit", "curve",
                           "one_at_a_time", "flags", "versions", "plots", "seconds"}
    assert set(report["evaluation"]["mixed"]) == {"fp32_layers", "top1", "agreement", "output_sqnr_db", "latency_ms",
                                                  "vmfb_bytes"}
    assert report["relative_l2_vs_framework"] < 1e-5 and report["analysis"]["inferences"] == 2
    assert len(report["fp32_layers"]) == 1 and report["fp32_layers"][0] == report["analysis"]["ranked"][0]["layer"]
    assert len(report["int8_layers"]) == report["layers"] - 1
    assert report["bias_corrected_layers"] and set(report["bias_corrected_layers"]) <= set(report["int8_layers"])
    # the last conv (then ReLU, average pool, the output) takes the all-int8 run's mean error there, scaled by
    # the share of the analysis' int8 layers the plan keeps: 25 of 26, unless it is the FP32 layer itself
    ((last, share),) = report["output_shifts"].items()
    assert report["layers"] == 26 and last == report["int8_layers"][-1] or last in report["fp32_layers"], last
    assert share == (0.0 if last in report["fp32_layers"] else pytest.approx(25 / 26)), share
    methods = report["analysis"]["range_methods"]
    assert set(methods) == {"hybrid"} and methods["hybrid"] > 0, methods
    evaluation = report["evaluation"]
    assert evaluation["images"] == 200 and evaluation["fp32"]["agreement"] == 100.0
    assert evaluation["all_int8"]["agreement"] >= 95.0 and evaluation["mixed"]["latency_ms"] > 0
    assert report["audit"]["planned_int8_not_integer"] == [] and report["audit"]["verdicts"] == {"int8": 25, "float": 1}
    assert {p["method"] for p in report["curve"]} == {"quantunev2", "first-last", "random"}
    assert {"iree-base-compiler", "iree-base-runtime", "torch"} <= set(report["versions"])
    assert any("--iree-global-opt-data-tiling" == f for f in report["flags"]["int8"])
    for plot in report["plots"].values():
        assert (tmp_path / plot).read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "60_report.md").read_text()
    assert markdown.startswith("# squeezenet1_1-small for x86_64: 1 of 26 layers FP32 (top-k:1)")
    assert "## Against the baselines" in markdown and "![accuracy_vs_fp32_layers](62_accuracy_vs_fp32_layers.png)" in markdown
    assert f"relative L2 error {report['relative_l2_vs_framework']:.2e}" in result.stdout
    assert "analysis: 2 inferences of 64 samples" in result.stdout and "60_report.md" in result.stdout


def test_build_refuses_a_misspelt_policy_before_any_work(tmp_path):
    result = quantune("build", "squeezenet1_1-small", "-o", tmp_path, "--policy", "best:3", check=False)
    assert result.returncode == 2 and "argument --policy: best:3: expected one of top-k:N" in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_analyze_prints_the_list(tmp_path):
    quantune("import", "squeezenet1_1-small", "-o", tmp_path)
    result = quantune("analyze", tmp_path, "--calibration-images", "16", "--ratios", "1,1,2,1")
    assert "squeezenet1_1-small: 2 inferences of 16 samples" in result.stdout
    assert result.stdout.count(" dB") >= 3 * 26 and "sensitivity list: " in result.stdout
    assert json.loads((tmp_path / "20_sensitivity.json").read_text())["ratios"]["activation_sqnr"] == 2.0
    result = quantune("analyze", tmp_path, "--ratios", "1,2", check=False)
    assert result.returncode == 2 and "argument --ratios: expected four numbers" in result.stderr


def test_errors_are_one_line_with_nonzero_exit(tmp_path):
    result = quantune("compile", tmp_path, "--target", "x86_64", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("quantune: error: ") and "run `quantune import" in result.stderr
    result = quantune("import", tmp_path / "missing.onnx", check=False)
    assert result.returncode == 1 and "missing.onnx: no such ONNX file" in result.stderr
    result = quantune("compile", tmp_path, "--target", "arm", check=False)
    assert result.returncode == 2 and "invalid choice: 'arm'" in result.stderr


def test_wrong_input_shape_from_cli(tmp_path):
    build = tmp_path / "sq"
    quantune("import", "squeezenet1_1-small", "-o", build)
    quantune("compile", build)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 28, 28), np.float32))
    result = quantune("run", build / "50_x86_64.vmfb", "--input", x, check=False)
    assert result.returncode == 1 and "input 0 has shape (1, 3, 28, 28)" in result.stderr


def test_quantune_opt_lists_and_runs_passes(tmp_path):
    listed = subprocess.run(["quantune-opt", "--list-passes"], capture_output=True, text=True, check=True)
    assert "quantune-tag-layers" in listed.stdout
    bad = subprocess.run(["quantune-opt", "--pass-pipeline=quantune-tag-layers{bogus=1}", "-"], input="module {}",
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "pass quantune-tag-layers has no option 'bogus'" in bad.stderr


def test_lit_suite_passes():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(["lit", "-q", str(root / "test" / "lit")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_weights_flag_checks_the_checkpoint(tmp_path):
    import torch

    from quantune_mlir.zoo import zoo_model
    torch.save(zoo_model("squeezenet1_1", "small").build().state_dict(), tmp_path / "small.pt")
    result = quantune("import", "squeezenet1_1", "--weights", tmp_path / "small.pt", "-o", tmp_path / "b", check=False)
    assert result.returncode == 1
    assert "small.pt does not fit squeezenet1_1-imagenet: shape mismatches (52): features.0.weight" in result.stderr
    assert not (tmp_path / "b").exists()


def test_quantize_writes_the_plan_the_lowered_module_the_vmfb_and_the_audit(tmp_path):
    build = tmp_path / "sq"
    quantune("import", "squeezenet1_1-small", "-o", build)
    result = quantune("quantize", build, "--all-int8", "--calibration-images", "8")
    for artifact in ("30_plan.json", "41_lowered.mlirbc", "50_x86_64_quantized.vmfb", "51_x86_64_audit.json"):
        assert str(build / artifact) in result.stdout and (build / artifact).is_file(), artifact
    audit = json.loads((build / "51_x86_64_audit.json").read_text())
    layers = json.loads((build / "01_layers.json").read_text())["layers"]
    assert {v["layer"] for v in audit["layers"]} == {layer["id"] for layer in layers}
    # every layer on the project's VNNI kernel (vpdpbusd: IREE's own int8 codegen emits vpdpwssd)
    assert all(v["verdict"] == "int8" and v["instructions"] == ["vnni: vpdpbusd"] for v in audit["layers"])
    assert f"kernel audit, x86_64: {audit['dispatch_count']} dispatches per inference" in result.stdout
    assert re.search(r"^features\.3\.expand3x3 +int8 +vnni: vpdpbusd +call @quantune_conv_s8_avx512vnni",
                     result.stdout, re.MULTILINE)
    without = quantune("quantize", build, "--all-int8", "--calibration-images", "8", "--kernels", "none")
    assert re.search(r"^features\.3\.expand3x3 +int8 +vnni: vpdpwssd(, avx2: vpmaddwd)? +linalg\.mmt4d", without.stdout, re.MULTILINE)


def test_build_an_onnx_model_with_its_own_data(tmp_path, zoo_onnx):
    from quantune_mlir import api
    from quantune_mlir.data.resolve import load_data
    from quantune_mlir.zoo import parse_zoo_id
    onnx_file = zoo_onnx("squeezenet1_1-small")
    np.savez(tmp_path / "calib.npz", inputs=api.calibration_samples("squeezenet1_1-small", limit=16))
    data = load_data("fashion-mnist", parse_zoo_id("squeezenet1_1-small").preprocess, limit=100)
    np.savez(tmp_path / "val.npz", inputs=data.inputs, labels=data.labels)
    result = quantune("-q", "build", onnx_file, "-o", tmp_path / "b", "--calibration-data", tmp_path / "calib.npz",
                      "--eval-data", tmp_path / "val.npz", "--policy", "fraction:0.05", "--curve", "0")
    report = json.loads((tmp_path / "b" / "60_report.json").read_text())
    assert report["model"] == "squeezenet1_1-small" and len(report["fp32_layers"]) == 2
    assert report["evaluation"]["data"] == "val.npz" and report["evaluation"]["images"] == 100
    assert report["relative_l2_vs_framework"] < 1e-5 and report["curve"] == []
    assert "analysis: 2 inferences of 16 samples" in result.stdout
