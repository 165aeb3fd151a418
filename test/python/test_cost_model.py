"""The cost model that chooses kernel or IREE codegen per layer, on synthetic measurements with known answers."""
import json

import pytest

from quantune_mlir.kernels import cost_model
from quantune_mlir.kernels.cost_model import CostModel, LayerWork, fit


def test_layer_work_counts_macs_and_outputs():
    assert LayerWork.of("conv", (64, 32, 3, 3), (1, 64, 56, 56)) == LayerWork("conv", 64 * 56 * 56 * 32 * 9,
                                                                              64 * 56 * 56)
    assert LayerWork.of("depthwise", (32, 1, 3, 3), (1, 32, 112, 112)) == LayerWork(  # the rewrite's name
        "depthwise_conv", 32 * 112 * 112 * 9, 32 * 112 * 112)
    assert LayerWork.of("linear", (10, 512), (1, 10)) == LayerWork("linear", 5120, 10)


def _measured(kind, macs, outputs):
    # the kernel: 1 ms per 200 M MACs + 0.05 us per output + 2 us; IREE: 1 ms per 90 M MACs + 0.4 us per output
    return {"kind": kind, "macs": macs, "outputs": outputs,
            "kernel_ms": macs / 2e8 + outputs * 5e-5 + 2e-3, "iree_ms": macs / 9e7 + outputs * 4e-4}


def test_fit_recovers_the_coefficients_and_chooses_the_faster_path():
    rows = [_measured("conv", m, o) for m, o in [(1e6, 1e3), (5e7, 2e5), (1e8, 5e4), (2e7, 4e5), (3e6, 9e3)]]
    model = fit("lib", rows)
    assert model.coefficients["kernel:conv"] == pytest.approx((1 / 2e8, 5e-5, 2e-3), rel=1e-6, abs=1e-9)
    assert model.coefficients["iree:conv"] == pytest.approx((1 / 9e7, 4e-4, 0.0), rel=1e-6, abs=1e-9)
    assert model.prefers_kernel(LayerWork("conv", 10 ** 8, 10 ** 5))
    # a kernel with a fixed cost of 10 us: within the measured sizes small layers go to IREE, large ones to the
    # kernel; outside them the model does not extrapolate, the kernel runs it
    fixed = CostModel("lib", {"kernel:conv": (1e-9, 0.0, 1e-2), "iree:conv": (2e-9, 0.0, 0.0)}, {"conv": (1000, 10 ** 8)})
    assert not fixed.prefers_kernel(LayerWork("conv", 10 ** 6, 1))
    assert fixed.prefers_kernel(LayerWork("conv", 10 ** 8, 1))
    assert fixed.prefers_kernel(LayerWork("conv", 10, 1))
    # a kind measured once has no opinion: the kernel runs it; measured twice, time = a * MACs + c
    assert "kernel:depthwise_conv" not in fit("lib", rows + [_measured("depthwise_conv", 1e6, 1e5)]).coefficients
    assert model.prefers_kernel(LayerWork("depthwise_conv", 10, 10))
    two = fit("lib", [_measured("linear", 1e4, 10), _measured("linear", 1e6, 10)]).coefficients["kernel:linear"]
    assert two == pytest.approx((1 / 2e8, 0.0, 10 * 5e-5 + 2e-3), rel=1e-6)


def test_fitted_costs_are_never_negative():
    """Times that a free fit would explain with a negative launch cost: the fit keeps every coefficient >= 0."""
    rows = [{"kind": "conv", "macs": m, "outputs": 1000, "kernel_ms": t, "iree_ms": t}
            for m, t in [(1e6, 0.001), (2e6, 0.012), (3e6, 0.023)]]
    per_mac, per_output, per_layer = fit("lib", rows).coefficients["kernel:conv"]
    assert min(per_mac, per_output, per_layer) >= 0 and per_mac > 0


def test_calibration_round_trips_through_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cost_model, "CALIBRATION_DIR", tmp_path)
    cost_model.load.cache_clear()
    rows = [_measured("linear", m, o) for m, o in [(1e4, 10), (5e5, 1000), (2e6, 100), (8e5, 700)]]
    written = cost_model.write_calibration("lib", rows, "znver4")
    assert cost_model.load("lib") == written and isinstance(written, CostModel)
    assert written.measured_macs == {"linear": (10 ** 4, 2 * 10 ** 6)}
    saved = json.loads((tmp_path / "lib.json").read_text())
    assert saved["machine"] == "znver4" and saved["measurements"] == rows
    assert cost_model.load("other") is None
    cost_model.load.cache_clear()
