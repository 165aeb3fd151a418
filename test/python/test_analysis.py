"""The two-inference analysis on real IREE builds: exactly two runtime invocations, the batched FP32 run equal to
PyTorch sample by sample, the sensitivity list and its artifacts, and the one-at-a-time baseline's n + 1."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.analysis.sensitivity import SensitivityList
from quantune_mlir.analyze import analyze, one_layer_at_a_time
from quantune_mlir.build_dir import SENSITIVITY, SENSITIVITY_PLOT
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.analysis.calibration import CalibrationOptions
from quantune_mlir.analysis.range_choice import CANDIDATES as RANGE_CANDIDATES
from quantune_mlir.quantize import QuantizeOptions, run_fp32
from quantune_mlir.runtime import CompiledModule


@pytest.fixture
def invocations(monkeypatch):
    """Counts the runtime invocations of every compiled module (the real ones run)."""
    calls = []
    real_call = CompiledModule.__call__

    def counted(self, *inputs):
        calls.append(self.path.name)
        return real_call(self, *inputs)

    monkeypatch.setattr(CompiledModule, "__call__", counted)
    return calls


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("squeezenet")
    api.import_model("squeezenet1_1-small", build_dir=folder)
    return folder, api.calibration_samples("squeezenet1_1-small", limit=32)


def test_the_analysis_runs_exactly_two_inferences(squeezenet, invocations):
    folder, samples = squeezenet
    analysis = analyze(folder, samples)
    assert len(invocations) == 2 and analysis.inferences == 2, invocations
    assert invocations == ["13_calibration_x86_64.vmfb", "22_int8_run_x86_64.vmfb"]
    assert analysis.samples == 32
    assert {"fp32 compile", "fp32 inference", "int8 inference", "metrics", "ranking", "plot", "total"
            } <= set(analysis.seconds)
    assert analysis.seconds["ranking"] + analysis.seconds["plot"] <= analysis.seconds["total"]
    table = api.load_layer_table(folder)
    assert sorted(analysis.sensitivity.ranked) == sorted(table.ids) and not analysis.fp32_only
    saved = SensitivityList.from_json((folder / SENSITIVITY).read_text())
    assert saved == analysis.sensitivity
    assert (folder / SENSITIVITY_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = [e.score for e in saved.entries]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    by_layer = {e.layer: e for e in saved.entries}
    for entry in saved.entries:
        m = entry.metrics
        assert 30 < m.weight_sqnr_db < 60 and 10 < m.activation_sqnr_db < 60 and m.activation_mse > 0, entry
    # The first layer reads the model input: quantized the same way in both, so its local error is its
    # accumulated error (up to the lowering's one-unit rounding ties).
    first = by_layer[table.ids[0]]
    assert first.local_activation_sqnr_db == pytest.approx(first.metrics.activation_sqnr_db, abs=0.2)
    # Deeper layers carry their upstream layers' error too.
    deep = [by_layer[layer] for layer in table.ids[len(table.ids) // 2:]]
    assert np.mean([e.local_activation_sqnr_db - e.metrics.activation_sqnr_db for e in deep]) > 2.0


def test_a_second_analysis_of_the_same_model_and_samples_is_read_from_the_cache(squeezenet, invocations):
    folder, samples = squeezenet
    samples = samples[:24]  # not the samples the other tests analyse
    first = analyze(folder, samples, reuse=True)
    assert first.reused_from is None and len(invocations) == 2
    (folder / SENSITIVITY).unlink()
    again = analyze(folder, samples, reuse=True)
    assert len(invocations) == 2 and again.reused_from is not None and again.reused_from.is_file()
    assert again.sensitivity == first.sensitivity and again.plan == first.plan
    assert (again.activation_errors, again.range_methods, again.inferences) == \
        (first.activation_errors, first.range_methods, first.inferences)
    assert SensitivityList.from_json((folder / SENSITIVITY).read_text()) == first.sensitivity
    # other samples, or a fresh analysis asked for, run the two inferences again
    assert analyze(folder, samples[:16], reuse=True).reused_from is None and len(invocations) == 4
    assert analyze(folder, samples).reused_from is None and len(invocations) == 6
    # an unreadable entry is ignored with a warning, not an error
    again.reused_from.write_text("{")
    assert analyze(folder, samples, reuse=True).reused_from is None and len(invocations) == 8


def test_the_batched_fp32_run_equals_pytorch_sample_by_sample(squeezenet):
    folder, samples = squeezenet
    fp32 = run_fp32(folder, PrecisionPlan.uniform(api.load_layer_table(folder), "int8"), samples[:8])
    model = api.zoo_reference(api.parse_zoo_id("squeezenet1_1-small")).eval()
    with torch.no_grad():
        expected = np.concatenate([model(torch.from_numpy(x[None])).numpy() for x in samples[:8]])
    assert fp32.outputs[0].shape == (8, 10) and fp32.inferences == 1
    assert api.relative_l2(fp32.outputs[0], expected) < 1e-5
    assert fp32.tensors["features.0.input"].shape == (8, 1, 28, 28)
    assert np.array_equal(fp32.tensors["features.0.input"], samples[:8])


def test_auto_ranges_choose_per_tensor_and_say_how_many_each(squeezenet):
    folder, samples = squeezenet
    table = api.load_layer_table(folder)
    options = QuantizeOptions(CalibrationOptions(method="auto"))
    auto = run_fp32(folder, PrecisionPlan.uniform(table, "int8"), samples[:16], options)
    assert set(auto.range_methods) <= set(RANGE_CANDIDATES) and len(auto.range_methods) > 1, auto.range_methods
    by_method = {method: run_fp32(folder, PrecisionPlan.uniform(table, "int8"), samples[:16],
                                  QuantizeOptions(CalibrationOptions(method=method))).plan
                 for method in auto.range_methods}
    # every tensor's parameters are those of one of the candidates
    for layer_id in auto.plan.int8_layers():
        given = auto.plan.layers[layer_id].input
        assert any(plan.layers[layer_id].input == given for plan in by_method.values()), layer_id


class _Three(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.b(torch.relu(self.a(x)))).flatten(1))


def test_the_one_at_a_time_baseline_takes_n_plus_one_inferences(tmp_path, invocations):
    torch.manual_seed(0)
    api.import_model(_Three().eval(), example_inputs=(torch.randn(1, 1, 6, 6),), build_dir=tmp_path, name="three")
    samples = np.random.default_rng(0).standard_normal((8, 1, 6, 6)).astype(np.float32)
    baseline = one_layer_at_a_time(tmp_path, samples)
    assert baseline.inferences == 4 and len(invocations) == 4
    assert sorted(baseline.ranked) == ["a", "b", "fc"]
    sqnr = [baseline.output_sqnr_db[layer] for layer in baseline.ranked]
    assert sqnr == sorted(sqnr) and all(20 < s < 80 for s in sqnr)
