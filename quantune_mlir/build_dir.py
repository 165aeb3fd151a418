"""The build folder: one numbered artifact per stage, each written whole or not at all, and the folder marked
IN_PROGRESS while a command writes it, so that it is either consistent or visibly incomplete."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Iterator

from .errors import QuantuneError

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
IN_PROGRESS = "IN_PROGRESS"  # present while a command writes the folder, and after one that did not finish
FAILURE_PREFIX = "failed_"  # the IR and reproducer of a failed pass or compile
_NUMBERED = re.compile(r"^(\d\d)_")
EVERY_STAGE = range(100)  # build and import: everything downstream of the import changes
ANALYSIS_STAGES = range(10, 30)
QUANTIZE_STAGES = range(30, 60)


def vmfb_name(target: str) -> str:
    return f"50_{target}.vmfb"


def rounded_weights_name(digest: str) -> str:
    """The int8 weights a calibration rounded on its data, named by the digest the plan gives."""
    return f"14_rounded_weights_{digest}.npz"


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
    def writing(self, command: str, stages: range = range(0)) -> Iterator["BuildDir"]:
        """The folder marked IN_PROGRESS while command writes it; the mark goes only if the block succeeds.
        Before, what an interrupted run left is cleared: temporary files, failure reproducers, and the numbered
        artifacts of the stages the command rewrites, which would otherwise mix two runs. Nested in another
        command of this process (build runs import, analysis, quantize), it only yields."""
        self._create()
        marker = self.path / IN_PROGRESS
        owner = _owner(marker)
        if owner is not None and owner[0] == os.getpid():
            yield self
            return
        if owner is not None and _is_quantune(owner[0]):
            raise QuantuneError(f"{self.path} is being written by another quantune (pid {owner[0]}, `{owner[1]}`): "
                                "wait for it, or write to another folder (-o)")
        for leftover in self.path.rglob("*.partial"):
            _remove(leftover)
        for entry in list(self.path.iterdir()):
            numbered = _NUMBERED.match(entry.name)
            if entry.name.startswith(FAILURE_PREFIX) or (numbered and int(numbered.group(1)) in stages):
                _remove(entry)
        marker.write_text(json.dumps({"command": command, "pid": os.getpid(), "started": time.strftime(
            "%Y-%m-%d %H:%M:%S"), "note": "quantune has not finished writing this folder (it is running, failed "
            "or was stopped); rerun the command to complete it"}, indent=1) + "\n")
        yield self
        marker.unlink(missing_ok=True)

    def _create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise QuantuneError(f"{self.path} is a file, not a build folder: choose another output folder (-o)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise QuantuneError(f"cannot write the build folder {self.path} ({e.strerror}): choose a writable "
                                "output folder with -o") from None

    def name_of(self, artifact: Path) -> str:
        """An artifact's path relative to the folder (as the report records it)."""
        return os.path.relpath(artifact, self.path)

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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _is_quantune(pid: int) -> bool:
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"quantune" in command_line


def _owner(marker: Path) -> tuple[int, str] | None:
    """(pid, command) of the run that marked the folder, if any."""
    try:
        owner = json.loads(marker.read_text())
        return int(owner["pid"]), str(owner["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
