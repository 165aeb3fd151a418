"""Bad input to the quantize path: each error names the culprit and the way out, and nothing is compiled
for an input that can be refused up front."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.errors import QuantuneError
from quantune_mlir.quantize import calibrate


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    build_dir = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    api.import_model(_Tiny().eval(), example_inputs=(torch.randn(1, 1, 6, 6),), build_dir=build_dir, name="tiny")
    return build_dir


def _all_int8(build_dir) -> PrecisionPlan:
    return PrecisionPlan.uniform(api.load_layer_table(build_dir), "int8")


def test_calibration_refuses_a_target_that_cannot_run_here(tmp_path):
    with pytest.raises(QuantuneError, match=r"calibration runs on this machine, which cannot run aarch64 code: "
                                            r"pass a host target \(x86_64 here\)"):
        calibrate(tmp_path, PrecisionPlan("m"), np.zeros((1, 1, 6, 6), np.float32), host_target="aarch64")
    assert not any(tmp_path.iterdir())


def test_no_preprocessing_known_for_a_model_outside_the_zoo(tiny_build):
    with pytest.raises(QuantuneError, match=r"no preprocessing is known for tiny: pass --calibration-data as a "
                                            r"\.npy/\.npz of model-ready float32 inputs"):
        api.quantize_model(tiny_build)


def test_too_few_calibration_samples(tiny_build):
    with pytest.raises(QuantuneError, match=r"calibration needs at least 1 samples \(the model.s batch\), got 0"):
        calibrate(tiny_build, _all_int8(tiny_build), np.zeros((0, 1, 6, 6), np.float32))


def test_zero_range_activations_name_the_tensor(tiny_build):
    with pytest.raises(QuantuneError, match=r"tensor conv\.input: the activations have zero range \(0\.0 to 0\.0\) "
                                            r"on the calibration data; keep this layer in fp32"):
        calibrate(tiny_build, _all_int8(tiny_build), np.zeros((4, 1, 6, 6), np.float32))
