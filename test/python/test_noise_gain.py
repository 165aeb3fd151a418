"""The output-referred score's noise gains: the path arithmetic on hand-made graphs, and, on a real IREE analysis
of a small network, the gain it estimates against noise injected in PyTorch at a layer's output."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.analysis.noise_gain import output_gains, output_referred
from quantune_mlir.analyze import analyze, one_layer_at_a_time


def test_gains_multiply_along_a_path_and_add_where_paths_meet():
    # a -> b -> out, and a -> c, whose output is b's residual operand
    consumers = {"a": (("input", "b"), ("input", "c")), "b": (("output", None),), "c": (("residual", "b"),)}
    accumulated = {"a": 2.0, "b": 5.0, "c": 3.0}
    inherited = {"b": 4.0, "c": 1.0}
    gains = output_gains(consumers, accumulated, inherited)
    assert gains["b"] == 1.0 and gains["c"] == 1.0
    assert gains["a"] == pytest.approx(4.0 / 2.0 * 1.0 + 1.0 / 2.0 * 1.0)
    referred = output_referred({"a": (30.0, 1e-3), "b": (20.0, 1e-2), "c": (40.0, 0.0)}, gains, 1.0)
    assert referred["a"] == pytest.approx((30.0 - 10 * np.log10(2.5), 2.5e-3))
    assert referred["b"] == pytest.approx((20.0, 1e-2)) and referred["c"][1] == 0.0


class _Funnel(torch.nn.Module):
    """A wide layer whose output the next layer mostly cancels, then pooling and a classifier."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.b(torch.relu(self.a(x))))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def test_the_output_referred_error_predicts_each_layer_alone_int8(tmp_path):
    """What the score estimates from two inferences against what n + 1 measure: the model's output SQNR with
    only that layer int8."""
    torch.manual_seed(0)
    model = _Funnel().eval()
    with torch.no_grad():
        model.b.weight.mul_(4.0)  # an amplifying middle layer
    samples = np.random.default_rng(0).standard_normal((32, 3, 12, 12)).astype(np.float32)
    api.import_model(model, example_inputs=(torch.from_numpy(samples[:1]),), build_dir=tmp_path, name="funnel")
    analysis = analyze(tmp_path, samples)
    local, referred = analysis.activation_errors["local"], analysis.activation_errors["output"]
    assert referred["fc"][1] == pytest.approx(local["fc"][1])  # an output layer: gain 1
    alone = one_layer_at_a_time(tmp_path, samples).output_sqnr_db
    # Measured: a 44.0 dB estimated against 47.1 alone, b 48.2 against 50.7, while the local SQNRs (32.2 and 35.8
    # dB) miss the gains of the layers after them by 12-15 dB.
    for layer in alone:
        assert abs(referred[layer][0] - alone[layer]) < 4.0, (layer, referred[layer][0], alone[layer])
    assert sorted(alone, key=alone.get) == sorted(referred, key=lambda layer: referred[layer][0])
