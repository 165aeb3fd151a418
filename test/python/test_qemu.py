"""aarch64 builds, run here under qemu-aarch64 by IREE's own aarch64 iree-run-module, compute what x86_64 builds
compute; the runner's errors name what is missing and how to install it. Real compiles, a real emulator."""
import subprocess

import numpy as np
import pytest

from quantune_mlir import QuantuneError, api
from quantune_mlir.runtime import run_under_qemu
from quantune_mlir.runtime.qemu import APT_INSTALL, iree_run_module

# Between two builds of one FP32 model; the same bound as against PyTorch eager (issue 2).
BUILD_TOLERANCE = 1e-5

INT8_MATMUL = """
func.func @main(%a: tensor<4x8xi8>, %b: tensor<8x4xi8>) -> (tensor<4x4xi32>, tensor<4x8xi8>) {
  %zero = arith.constant 0 : i32
  %empty = tensor.empty() : tensor<4x4xi32>
  %init = linalg.fill ins(%zero : i32) outs(%empty : tensor<4x4xi32>) -> tensor<4x4xi32>
  %product = linalg.matmul ins(%a, %b : tensor<4x8xi8>, tensor<8x4xi8>) outs(%init : tensor<4x4xi32>)
             -> tensor<4x4xi32>
  %twice = arith.addi %a, %a : tensor<4x8xi8>
  return %product, %twice : tensor<4x4xi32>, tensor<4x8xi8>
}
"""


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """model id -> (its x86_64 and aarch64 .vmfb, its input specs), each model imported and compiled once."""
    made = {}

    def build(model_id):
        if model_id not in made:
            folder = tmp_path_factory.mktemp(model_id)
            imported = api.import_model(model_id, build_dir=folder)
            made[model_id] = ({t: api.compile_model(folder, t) for t in ("x86_64", "aarch64")}, imported.inputs)
        return made[model_id]
    return build


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("model_id", ["resnet18-small", "mobilenet_v2-small"])
def test_aarch64_under_qemu_matches_x86_64(model_id, builds):
    vmfbs, specs = builds(model_id)
    inputs = api.random_inputs(specs, seed=1)
    expected = api.load_module(vmfbs["x86_64"])(*inputs)
    actual = run_under_qemu(vmfbs["aarch64"], list(inputs))
    assert [a.shape for a in actual] == [e.shape for e in expected]
    for a, e in zip(actual, expected):
        assert api.relative_l2(a, e) < BUILD_TOLERANCE


@pytest.mark.slow
@pytest.mark.qemu
def test_int8_inputs_and_outputs_pass_through_exactly(tmp_path):
    """What the int8 builds need from the runner: i8 inputs, i8 and i32 outputs, several of them, unchanged."""
    source = tmp_path / "int8_matmul.mlir"
    source.write_text(INT8_MATMUL)
    vmfb = api.compile_model(source, "aarch64")
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (4, 8), dtype=np.int8)
    b = rng.integers(-128, 128, (8, 4), dtype=np.int8)
    product, twice = run_under_qemu(vmfb, [a, b])
    np.testing.assert_array_equal(product, a.astype(np.int32) @ b.astype(np.int32))
    np.testing.assert_array_equal(twice, a + a)  # i8 wraps around, as numpy's does
    assert (product.dtype, twice.dtype) == (np.int32, np.int8)


@pytest.mark.slow
@pytest.mark.qemu
def test_cli_runs_aarch64_modules_under_qemu_and_will_not_time_them(builds, tmp_path):
    vmfbs, specs = builds("resnet18-small")
    out = tmp_path / "y.npy"
    result = subprocess.run(["quantune", "run", vmfbs["aarch64"], "--target", "aarch64", "--seed", "3", "-o", out],
                            capture_output=True, text=True, check=True)
    assert "output 0: shape (1, 10) float32" in result.stdout
    np.testing.assert_array_equal(np.load(out), run_under_qemu(vmfbs["aarch64"], list(api.random_inputs(specs, 3)))[0])
    result = subprocess.run(["quantune", "run", vmfbs["aarch64"], "--target", "aarch64", "--benchmark", "5"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "time it on the board" in result.stderr


def test_missing_qemu_names_the_apt_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QuantuneError, match=r"missing: qemu-aarch64 \(not on PATH\).*; install with `apt-get "
                       r"install -y qemu-user libc6-arm64-cross libstdc\+\+6-arm64-cross`"):
        run_under_qemu(tmp_path / "model.vmfb", [])


def test_missing_sysroot_names_the_missing_libraries(tmp_path, monkeypatch):
    monkeypatch.setenv("QEMU_LD_PREFIX", str(tmp_path))
    with pytest.raises(QuantuneError) as error:
        run_under_qemu(tmp_path / "model.vmfb", [])
    assert f"{tmp_path}/lib/ld-linux-aarch64.so.1" in str(error.value)
    assert f"{tmp_path}/lib/libstdc++.so.6" in str(error.value) and APT_INSTALL in str(error.value)


def test_failed_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    """pip offline, with nowhere to find the wheel: the error shows pip's command and its stderr, and the cache
    holds no partial binary that a later run would take for a good one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(QuantuneError, match=r"downloading the aarch64 iree-base-runtime wheel .*failed .*"
                       r"No matching distribution found for iree-base-runtime==3\.13\.0.*command: .*pip download"):
        iree_run_module()
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
