"""Flag files: present for every target, readable by iree-compile itself as response files, and taking
pass-through flags from Python."""
import subprocess

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.compile import TARGETS, get_target

TINY = """func.func @main(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = linalg.matmul ins(%x, %w : tensor<2x3xf32>, tensor<3x4xf32>) outs(%f : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
"""


def test_every_target_has_a_flag_file():
    for target in TARGETS.values():
        flags = target.flags()
        assert flags and all(f.startswith("--iree-") for f in flags), target.name


def test_arm_variants_differ_only_in_cpu_features():
    features = {name: [f for f in get_target(name).flags() if "cpu-features" in f][0]
                for name in ("aarch64", "aarch64-dotprod", "aarch64-armv8a")}
    assert features == {"aarch64": "--iree-llvmcpu-target-cpu-features=+neon,+dotprod,+i8mm",
                        "aarch64-dotprod": "--iree-llvmcpu-target-cpu-features=+neon,+dotprod",
                        "aarch64-armv8a": "--iree-llvmcpu-target-cpu-features=+neon"}


@pytest.mark.parametrize("target", ["x86_64", "aarch64", "aarch64-dotprod", "aarch64-armv8a"])
def test_cpu_flags_use_channels_last_and_data_tiling(target):
    flags = get_target(target).flags()
    assert any("iree-preprocessing-convert-conv-to-channels-last" in f for f in flags)
    assert "--iree-dispatch-creation-data-tiling" in flags


@pytest.mark.parametrize("target", list(TARGETS))
def test_flag_file_works_straight_from_iree_compile(target, tmp_path):
    source = tmp_path / "tiny.mlir"
    source.write_text(TINY)
    out = tmp_path / "tiny.vmfb"
    subprocess.run(["iree-compile", f"@{get_target(target).flag_file}", str(source), "-o", str(out)], check=True)
    if get_target(target).runs_on_host:
        x, w = np.ones((2, 3), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)
        np.testing.assert_allclose(api.load_module(out)(x, w)[0], x @ w)


def test_pass_through_flags_reach_iree_compile(tmp_path):
    source = tmp_path / "tiny.mlir"
    source.write_text(TINY)
    out = api.compile_model(source, "x86_64", extra_flags=("--iree-hal-dump-executable-files-to=" + str(tmp_path / "dump"),))
    assert out.name == "50_x86_64.vmfb"
    assert list((tmp_path / "dump").glob("*.s")) or list((tmp_path / "dump").glob("*"))
