"""Loading, running and timing compiled modules, and the errors for inputs that do not fit."""
import numpy as np
import pytest

from quantune_mlir import QuantuneError, api
from quantune_mlir.runtime import CompiledModule, RuntimeOptions
from quantune_mlir.tensor_spec import TensorSpec


@pytest.fixture(scope="module")
def squeezenet_vmfb(tmp_path_factory):
    build = tmp_path_factory.mktemp("squeezenet")
    api.import_model("squeezenet1_1-small", build_dir=build)
    return api.compile_model(build, "x86_64")


def test_signature_is_read_from_the_module(squeezenet_vmfb):
    module = api.load_module(squeezenet_vmfb)
    assert module.input_specs == [TensorSpec((1, 1, 28, 28), "float32")]


def test_run_matches_eager_and_is_deterministic(squeezenet_vmfb):
    module = api.load_module(squeezenet_vmfb)
    x = api.random_inputs(module.input_specs, seed=3)
    first, second = module(*x)[0], module(*x)[0]
    np.testing.assert_array_equal(first, second)
    (expected,) = api.reference_outputs("squeezenet1_1-small", x)
    assert api.relative_l2(first, expected) < 1e-5


def test_outputs_survive_later_calls(squeezenet_vmfb):
    """Outputs are copies: a later call must not overwrite what an earlier one returned."""
    module = api.load_module(squeezenet_vmfb)
    (a,) = api.random_inputs(module.input_specs, seed=1)
    (b,) = api.random_inputs(module.input_specs, seed=2)
    first = module(a)[0]
    kept = first.copy()
    module(b)
    np.testing.assert_array_equal(first, kept)


def test_benchmark_reports_driver_threads_and_a_sane_median(squeezenet_vmfb):
    module = api.load_module(squeezenet_vmfb)
    timing = module.benchmark(*api.random_inputs(module.input_specs), iterations=5, warmup=1)
    assert (timing.driver, timing.threads, timing.iterations, timing.warmup) == ("local-sync", 1, 5, 1)
    assert 0 < timing.min_ms <= timing.median_ms <= timing.max_ms
    assert "driver local-sync, 1 thread" in timing.describe()


def test_wrong_shape_and_dtype(squeezenet_vmfb):
    module = api.load_module(squeezenet_vmfb)
    with pytest.raises(QuantuneError, match=r"input 0 has shape \(1, 1, 32, 32\), .* expects \(1, 1, 28, 28\)"):
        module(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(QuantuneError, match=r"input 0 has dtype float64, .* expects float32"):
        module(np.zeros((1, 1, 28, 28), np.float64))
    with pytest.raises(QuantuneError, match=r"takes 1 inputs, got 2"):
        module(np.zeros((1, 1, 28, 28), np.float32), np.zeros((1,), np.float32))


def test_missing_and_corrupt_modules(tmp_path):
    with pytest.raises(QuantuneError, match=r"nothing\.vmfb: no such module"):
        api.load_module(tmp_path / "nothing.vmfb")
    bad = tmp_path / "bad.vmfb"
    bad.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(QuantuneError, match=r"bad\.vmfb: not an IREE module"):
        api.load_module(bad)


def test_runtime_options_are_validated():
    with pytest.raises(QuantuneError, match=r"unknown driver 'cuda': choose one of local-sync, local-task"):
        RuntimeOptions("cuda")
    with pytest.raises(QuantuneError, match=r"local-sync runs on one thread; use --driver local-task for 2"):
        RuntimeOptions("local-sync", 2)
    assert RuntimeOptions.for_threads(2) == RuntimeOptions("local-task", 2)


def test_aarch64_module_does_not_run_here(tmp_path):
    api.import_model("squeezenet1_1-small", build_dir=tmp_path)
    vmfb = api.compile_model(tmp_path, "aarch64")
    with pytest.raises(QuantuneError, match=r"cannot run on this machine .*compiled for another target"):
        CompiledModule(vmfb)(*api.random_inputs([TensorSpec((1, 1, 28, 28))]))
