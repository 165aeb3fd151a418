"""Compilation targets: each is a flag file under pipelines/, usable as is by iree-compile (`@file`)."""
from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import QuantuneError

PIPELINES_DIR = Path(__file__).resolve().parents[2] / "pipelines"
CHANNELS_LAST_FLAG = ("--iree-preprocessing-pass-pipeline=builtin.module(util.func("
                      "iree-preprocessing-convert-conv-to-channels-last))")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    arch: str  # the machine the code runs on: x86_64, aarch64, or "any" for vmvx bytecode
    custom_flag_file: Path | None = None  # a user's own flag file instead of pipelines/<name>.flags

    @property
    def flag_file(self) -> Path:
        return self.custom_flag_file or PIPELINES_DIR / f"{self.name}.flags"

    def flags(self) -> list[str]:
        if not self.flag_file.is_file():
            raise QuantuneError(f"flag file {self.flag_file} is missing: quantune reads pipelines/ from its "
                                "checkout, install it with `pip install -e .`")
        return [line.strip() for line in self.flag_file.read_text().splitlines() if line.strip()]

    def for_int8(self) -> "Target":
        """This target with its flag file for quantized modules (pipelines/<name>-int8.flags), if it has one."""
        path = PIPELINES_DIR / f"{self.name}-int8.flags"
        if self.custom_flag_file is not None or not path.is_file():
            return self
        return Target(self.name, f"{self.description}, int8 flags", self.arch, path)

    def for_analysis(self, *, int8: bool) -> "Target":
        """The flags of the builds the analysis runs once on this machine, the fastest to compile for the same
        arithmetic (pipelines/<name>-analysis.flags, <name>-int8-analysis.flags; pipelines/README.md)."""
        path = PIPELINES_DIR / f"{self.name}{'-int8' if int8 else ''}-analysis.flags"
        if not path.is_file():
            raise QuantuneError(f"the analysis runs on this machine; {self.name} has no {path.name} "
                                "(x86_64 has): pass a host target")
        return Target(self.name, f"{self.description}, analysis flags", self.arch, path)

    @property
    def runs_on_host(self) -> bool:
        return self.arch in ("any", platform.machine())

    @property
    def runs_under_qemu(self) -> bool:
        """Whether this machine runs the target's code only under qemu-aarch64 (quantune_mlir.runtime.qemu)."""
        return self.arch == "aarch64" and not self.runs_on_host


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("x86_64", "this machine's x86-64 CPU (-march=host), im2col + data-tiled matmuls", "x86_64"),
    Target("aarch64", "embedded ARM with dotprod and i8mm (Cortex-A510/A710/X2, Neoverse N2/V1)", "aarch64"),
    Target("aarch64-dotprod", "ARM with dotprod, no i8mm (Cortex-A55/A76/A78: Raspberry Pi 5, RK3588)",
           "aarch64"),
    Target("aarch64-armv8a", "ARMv8.0 NEON only (Cortex-A53/A72: Raspberry Pi 3/4)", "aarch64"),
    Target("vmvx", "IREE's portable VM bytecode interpreter (reference, ~400x slower than llvm-cpu)", "any"),
)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise QuantuneError(f"unknown target '{name}': choose one of {', '.join(TARGETS)}")
    return TARGETS[name]
