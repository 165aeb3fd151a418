"""A build folder that any iree-compile can take: its lowered MLIR links kernel objects that lie in the folder,
and the response file beside each module holds the flags that made it. Moved to another directory, with
quantune's kernel cache gone, the documented command gives the same bytes; two builds into different folders give
the same module; and no file in the folder names a path of the machine that wrote it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from iree.compiler.tools.binaries import find_tool

import quantune_mlir
from quantune_mlir import kernels
from quantune_mlir.compile import get_target

pytestmark = pytest.mark.slow
REPO = Path(quantune_mlir.__file__).resolve().parent.parent


def build(folder: Path, target: str, cache: Path) -> None:
    subprocess.run(["quantune", "build", "squeezenet1_1-small", "-o", str(folder),
                    "--target", target, "--policy", "top-k:1", "--curve", "0", "--eval-images", "50",
                    "--calibration-images", "64"],
                   check=True, capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)})


def machine_paths(*places: Path) -> list[str]:
    """What a file written here could name of this machine: the folders of the build, the cache, the user, the
    Python environment and this checkout."""
    found = {str(p.resolve()) for p in places} | {str(Path.home()), sys.prefix, str(REPO)}
    return sorted(found, key=len, reverse=True)


@pytest.mark.parametrize("target", ["x86_64", "aarch64"])
def test_moved_build_folder_compiles_to_the_same_bytes(tmp_path, target):
    cache = tmp_path / "cache"
    first, second = tmp_path / "first" / "build", tmp_path / "second" / "elsewhere"
    build(first, target, cache)
    build(second, target, cache)
    module = f"50_{target}_quantized"
    for name in (f"{module}.vmfb", f"50_{target}.vmfb"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    if kernels.library_for(get_target(target)) is not None:  # x86_64 without AVX-512 VNNI links no kernel
        assert list((first / "kernels").glob("*.o")), "the folder holds no kernel object"

    written_in = machine_paths(first, second, cache, tmp_path)
    for path in first.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            named = [place for place in written_in if place.encode() in content]
            assert not named, f"{path.relative_to(first)} names {named[0]}"

    shutil.rmtree(cache)
    moved = tmp_path / "moved" / "folder"
    moved.parent.mkdir()
    first.rename(moved)
    elsewhere = tmp_path / "working"
    elsewhere.mkdir()
    # the command docs/targets.md and pipelines/README.md give, from a working folder outside the build folder
    command = [find_tool("iree-compile"), f"@{os.path.relpath(moved / f'{module}.flags', elsewhere)}",
               f"--iree-hal-executable-object-search-path={os.path.relpath(moved, elsewhere)}",
               os.path.relpath(moved / "41_lowered.mlirbc", elsewhere), "-o", "again.vmfb"]
    subprocess.run(command, cwd=elsewhere, check=True, capture_output=True, text=True,
                   env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "no-cache"), "HOME": str(elsewhere)})
    assert (elsewhere / "again.vmfb").read_bytes() == (moved / f"{module}.vmfb").read_bytes()
