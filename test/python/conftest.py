import logging

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.zoo import parse_zoo_id

# Anything beyond this relative L2 error between IREE and PyTorch eager fails the acceptance of issue 2.
FP32_TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING)


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path) -> None:
    """PyTorch's dynamo ONNX exporter, which keeps module paths in the weight names."""
    torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["input"], output_names=["logits"],
                      verbose=False)


def check_against_eager(model_id: str, source, target: str, build_dir) -> float:
    """Import source (zoo id or ONNX path), compile for target, run on a seeded random input and return the
    relative L2 error against PyTorch eager of the zoo model."""
    imported = api.import_model(source, build_dir=build_dir, name=model_id)
    vmfb = api.compile_model(build_dir, target)
    inputs = api.random_inputs(imported.inputs, seed=1)
    (actual,) = api.load_module(vmfb)(*inputs)
    (expected,) = api.reference_outputs(model_id, inputs)
    assert actual.shape == expected.shape
    return api.relative_l2(actual, expected)


@pytest.fixture
def zoo_onnx(tmp_path):
    def make(model_id: str):
        zoo = parse_zoo_id(model_id)
        path = tmp_path / f"{model_id}.onnx"
        export_onnx(api.zoo_reference(zoo), torch.randn(zoo.input_shape), path)
        return path
    return make


def random_array(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
