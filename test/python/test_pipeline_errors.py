"""Bad input to quantune build and the analysis: each error names the culprit and the way out, and is raised
before any compile."""
import shutil

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.analyze import AnalysisOptions
from quantune_mlir.compile import get_target
from quantune_mlir.errors import QuantuneError
from quantune_mlir.pipeline import BuildOptions, build_model


def test_a_latency_budget_for_a_board_is_refused_up_front(tmp_path):
    with pytest.raises(QuantuneError, match=r"--policy latency:2: latency is measured on this machine \(x86_64\), "
                                            r"not on aarch64; for a board, budget its size or accuracy instead"):
        build_model("squeezenet1_1-small", tmp_path / "b", BuildOptions(target="aarch64", policy="latency:2"))
    assert not (tmp_path / "b").exists()


@pytest.fixture
def foreign_onnx(tmp_path, zoo_onnx):
    """A model quantune knows no preprocessing for (not a zoo id), with model-ready calibration inputs."""
    path = tmp_path / "net.onnx"
    shutil.copy(zoo_onnx("squeezenet1_1-small"), path)
    np.savez(tmp_path / "calib.npz", inputs=api.calibration_samples("squeezenet1_1-small", limit=4))
    return path


def test_a_foreign_model_needs_its_own_evaluation_data(tmp_path, foreign_onnx):
    options = BuildOptions(calibration_data=str(tmp_path / "calib.npz"))
    with pytest.raises(QuantuneError, match=r"net is not a zoo model, so quantune knows no preprocessing for it: "
                                            r"pass --eval-data and --calibration-data as \.npy/\.npz files"):
        build_model(foreign_onnx, tmp_path / "b", options)
    assert not list((tmp_path / "b").glob("*.vmfb"))


def test_without_labels_the_accuracy_budget_bounds_the_agreement_with_fp32(tmp_path, foreign_onnx):
    samples = api.calibration_samples("squeezenet1_1-small", limit=8)
    np.savez(tmp_path / "unlabelled.npz", inputs=samples)
    np.savez(tmp_path / "calib.npz", inputs=samples)
    options = BuildOptions(calibration_data=str(tmp_path / "calib.npz"), calibration_images=8,
                           eval_data=str(tmp_path / "unlabelled.npz"), curve=0, latency_iterations=1)
    report = build_model(foreign_onnx, tmp_path / "b", options)
    decision = report["decision"]
    assert decision["measure"] == "agreement" and decision["fp32_agreement"] == 100.0
    assert [step["fp32_layers"] for step in decision["trace"]][0] == 0
    # the walk stops at the first count whose agreement is within 0.5 pp of FP32's 100 %
    chosen = len(report["fp32_layers"])
    assert all(step["agreement"] < 99.5 for step in decision["trace"] if step["fp32_layers"] < chosen)
    assert report["evaluation"]["mixed"]["agreement"] >= 99.5 or chosen == report["layers"]


def test_an_unknown_activation_error_is_named():
    with pytest.raises(QuantuneError, match=r"activation error 'global': choose accumulated, local, added or output"):
        AnalysisOptions(activation_error="global")


def test_a_target_without_analysis_flags_is_named():
    with pytest.raises(QuantuneError, match=r"the analysis runs on this machine; vmvx has no vmvx-analysis\.flags "
                                            r"\(x86_64 has\): pass a host target"):
        get_target("vmvx").for_analysis(int8=False)
