"""Acceptance of issue 2: every zoo model, both configurations, both frontends, matches PyTorch eager in FP32
on x86_64; vmvx on the small configuration and ResNet18; aarch64 compiles. Real imports, real compiles."""
import pytest

from quantune_mlir import api
from quantune_mlir.zoo import MODEL_NAMES

from conftest import FP32_TOLERANCE, check_against_eager

SMALL = [f"{name}-small" for name in MODEL_NAMES]
IMAGENET = list(MODEL_NAMES)


@pytest.mark.parametrize("model_id", SMALL)
def test_small_torch_x86_64(model_id, tmp_path):
    assert check_against_eager(model_id, model_id, "x86_64", tmp_path) <= FP32_TOLERANCE


@pytest.mark.parametrize("model_id", SMALL)
def test_small_onnx_x86_64(model_id, tmp_path, zoo_onnx):
    assert check_against_eager(model_id, zoo_onnx(model_id), "x86_64", tmp_path) <= FP32_TOLERANCE


@pytest.mark.parametrize("model_id", SMALL)
def test_small_torch_vmvx(model_id, tmp_path):
    assert check_against_eager(model_id, model_id, "vmvx", tmp_path) <= FP32_TOLERANCE


@pytest.mark.parametrize("model_id", SMALL)
@pytest.mark.parametrize("target", ["aarch64", "aarch64-armv8a"])
def test_small_aarch64_compiles(model_id, target, tmp_path):
    api.import_model(model_id, build_dir=tmp_path)
    vmfb = api.compile_model(tmp_path, target)
    assert vmfb.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("model_id", IMAGENET)
def test_imagenet_torch_x86_64(model_id, tmp_path):
    assert check_against_eager(model_id, model_id, "x86_64", tmp_path) <= FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("model_id", IMAGENET)
def test_imagenet_onnx_x86_64(model_id, tmp_path, zoo_onnx):
    assert check_against_eager(model_id, zoo_onnx(model_id), "x86_64", tmp_path) <= FP32_TOLERANCE


@pytest.mark.slow
def test_imagenet_resnet18_vmvx(tmp_path):
    assert check_against_eager("resnet18", "resnet18", "vmvx", tmp_path) <= FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("model_id", IMAGENET)
def test_imagenet_aarch64_compiles(model_id, tmp_path):
    api.import_model(model_id, build_dir=tmp_path)
    assert api.compile_model(tmp_path, "aarch64").stat().st_size > 0
