"""The per-model build scripts run the whole pipeline for an ARM board from one command (slow: five models)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = ["resnet18", "resnet50", "squeezenet1_1", "vgg16_bn", "mobilenet_v2"]


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
    assert len(report["plots"]) == 3 and all(Path(p).is_file() for p in report["plots"].values())
    assert (tmp_path / "60_report.md").read_text().startswith(f"# {model}-small for aarch64")
