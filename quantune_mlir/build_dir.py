"""The build folder: one numbered artifact per stage, each written whole or not at all."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

IMPORT_MLIR = "00_import.mlirbc"
LAYER_TABLE = "01_layers.json"
INSTRUMENTED_MLIR = "10_instrumented.mlirbc"
CALIBRATION_MLIR = "12_calibration.mlirbc"  # the FP32 build that also returns every tensor a plan makes int8
SENSITIVITY = "20_sensitivity.json"  # the analysis: every layer's local metrics and score, most sensitive first
SENSITIVITY_PLOT = "20_sensitivity.png"
INT8_RUN_MLIR = "21_int8_run.mlirbc"  # the all-int8 build of the analysis, returning every int8 tensor
ONE_AT_A_TIME = "25_one_at_a_time.json"  # the baseline: one build and inference per layer
ONE_AT_A_TIME_MLIR = "26_one_at_a_time.mlirbc"  # the last of those builds
PLAN = "30_plan.json"
QUANTIZED_MLIR = "40_quantized.mlirbc"  # the plan as quant-dialect types
LOWERED_MLIR = "41_lowered.mlirbc"  # integer linalg: what iree-compile gets
PROFILES = "52_profiles"  # --policy latency: the FP32 and all-int8 builds profiled per layer, with their dumps
REPORT = "60_report.json"
REPORT_MD = "60_report.md"
VARIANTS = "70_variants"  # the builds quantune build measures: the policy's candidates and the accuracy curve


def vmfb_name(target: str) -> str:
    return f"50_{target}.vmfb"


def instrumented_vmfb_name(target: str) -> str:
    return f"11_instrumented_{target}.vmfb"


def calibration_vmfb_name(target: str) -> str:
    return f"13_calibration_{target}.vmfb"


def int8_run_vmfb_name(target: str) -> str:
    return f"22_int8_run_{target}.vmfb"


def one_at_a_time_vmfb_name(target: str) -> str:
    return f"27_one_at_a_time_{target}.vmfb"


def quantized_vmfb_name(target: str) -> str:
    return f"50_{target}_quantized.vmfb"


def audit_name(target: str) -> str:
    return f"51_{target}_audit.json"


def audit_dump_name(target: str) -> str:
    return f"51_{target}_dump"


class BuildDir:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @contextlib.contextmanager
    def atomic(self, name: str) -> Iterator[Path]:
        """Yields a temporary path beside the artifact; it replaces the artifact only if the block succeeds."""
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / name
        partial = final.with_name(final.name + ".partial")
        try:
            yield partial
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
