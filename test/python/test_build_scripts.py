"""The per-model build scripts run the whole pipeline for an ARM board from one command (slow: three models; the
five scripts differ only in the model id, and resnet50-small and vgg16_bn-small go through the same pipeline in
test_plan_space.py's sweep)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = ["resnet18", "squeezenet1_1", "mobilenet_v2"]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_build_script_for_aarch64(model, tmp_path):
    subprocess.run([sys.executable, REPO / "scripts" / f"build_{model}.py", "--target", "aarch64", "-o", tmp_path,
                    "--policy", "top-k:1", "--curve", "1", "--random-draws", "1", "--eval-images", "200"],
                   check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "60_report.json").read_text())
    assert report["model"] == f"{model}-small" and report["target"] == "aarch64"
    assert report["analysis"]["inferences"] == 2 and len(report["fp32_layers"]) == 1
    assert (tmp_path / "50_aarch64_quantized.vmfb").stat().st_size > 0
    assert report["audit"]["target"] == "aarch64" and report["audit"]["planned_int8_not_integer"] == []
    assert report["evaluation"]["mixed"]["agreement"] >= 95.0
    assert len(report["plots"]) == 3 and all((tmp_path / p).is_file() for p in report["plots"].values())
    assert (tmp_path / "60_report.md").read_text().startswith(f"# {model}-small for aarch64")


def test_benchmark_reuse_names_the_missing_artifacts(tmp_path):
    """--reuse with nothing built says which folder lacks what and how to build it, before measuring anything."""
    (tmp_path / "mobilenet_v2").mkdir()
    (tmp_path / "mobilenet_v2" / "input.npy").write_bytes(b"")
    result = subprocess.run([sys.executable, REPO / "scripts" / "benchmark_int8.py", "--reuse", "--models",
                             "mobilenet_v2", "--build", tmp_path], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (f"--reuse: {tmp_path / 'mobilenet_v2'} lacks iree_fp32.vmfb, iree_int8.vmfb, "
                                     "iree_mixed.vmfb, iree_int8_linalg.vmfb, iree_mixed_linalg.vmfb, "
                                     "ort_int8_u8.onnx, openvino_int8.xml, model.onnx, macs.json; run once without "
                                     "--reuse to build them")
