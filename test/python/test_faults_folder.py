"""Faults around the build folder, as a user meets them: unwritable and occupied paths, interrupts (SIGINT,
SIGTERM, SIGKILL) at several stages followed by a rerun, a second quantune on the same folder, a plan's own
parameters, and the same module bytes from any folder. Each case checks the message, the exit status and the
folder afterwards. Real imports, compiles and runs; the CLI in a subprocess, as a user runs it."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quantune_mlir.build_dir import IN_PROGRESS

MODEL = "squeezenet1_1-small"  # the fastest zoo model to import, calibrate and compile
QUANTUNE = [sys.executable, "-m", "quantune_mlir.cli.main"]


def quantune(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([*QUANTUNE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, pattern: str, status: int = 1) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("quantune: ")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".partial"))


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A build folder holding the model's import, made once; tests copy it."""
    folder = tmp_path_factory.mktemp("imported")
    result = quantune("-q", "import", MODEL, "-o", folder)
    assert result.returncode == 0, result.stderr
    return folder


def copy_of(imported: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "build"
    shutil.copytree(imported, folder)
    return folder


def read_only_command(folder: Path, args: list[str]) -> list[str]:
    """args run with folder mounted read-only: chmod does not stop root, a read-only bind mount does."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return args
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare: no way to make a read-only folder")
    mount = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"
    return ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *args]


# -- unwritable and occupied paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["build", MODEL, "-o", "{ro}/build"],
    ["import", MODEL, "-o", "{ro}/build"],
    ["quantize", "{ro}"],
    ["compile", "{ro}"],
    ["analyze", "{ro}"],
])
def test_read_only_folder_is_one_line(imported, tmp_path, command):
    folder = copy_of(imported, tmp_path)
    args = [*QUANTUNE, *(a.replace("{ro}", str(folder)) for a in command)]
    result = subprocess.run(read_only_command(folder, args), capture_output=True, text=True, timeout=600)
    assert_one_line_error(result, r"(cannot write the build folder .*build|Read-only file system|Permission denied)"
                                  r".*(-o|writ)")
    assert not (folder / IN_PROGRESS).exists()


def test_compile_output_into_read_only_folder(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    args = [*QUANTUNE, "compile", str(folder), "-o", str(locked / "m.vmfb")]
    result = subprocess.run(read_only_command(locked, args), capture_output=True, text=True, timeout=600)
    assert_one_line_error(result, r"cannot write .*locked/m\.vmfb \((Read-only file system|Permission denied)\): "
                                  r"choose another output")
    assert list(locked.iterdir()) == []


def test_run_output_into_read_only_folder(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    assert quantune("-q", "compile", folder).returncode == 0
    locked = tmp_path / "locked"
    locked.mkdir()
    args = [*QUANTUNE, "run", str(folder / "50_x86_64.vmfb"), "-o", str(locked / "y.npy")]
    result = subprocess.run(read_only_command(locked, args), capture_output=True, text=True, timeout=600)
    assert_one_line_error(result, r"y\.npy.*(Read-only file system|Permission denied)")


@pytest.mark.parametrize("name, message", [("", r"is a folder: name the \.npy file to write"),
                                           ("y.txt", r"y\.txt: name a \.npy file \(numpy would write .*y\.txt\.npy\)")])
def test_run_output_must_name_a_npy_file(imported, tmp_path, name, message):
    folder = copy_of(imported, tmp_path)
    assert quantune("-q", "compile", folder).returncode == 0
    result = quantune("run", folder / "50_x86_64.vmfb", "-o", tmp_path / name)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"quantune run: error: argument -o/--output: .*" + message, result.stderr), result.stderr
    assert not list(tmp_path.parent.glob("*.npy")) and not list(tmp_path.glob("*.npy"))


def test_a_second_quantune_on_the_same_folder_is_refused(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    # a live process whose command line names quantune holds the folder
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "quantune"])
    try:
        (folder / IN_PROGRESS).write_text(json.dumps({"command": "quantune build", "pid": holder.pid}))
        result = quantune("quantize", folder)
        assert_one_line_error(result, rf"is being written by another quantune \(pid {holder.pid}, `quantune build`\)"
                                      r": wait for it, or write to another folder")
        assert not (folder / "30_plan.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_mark_of_a_dead_run_is_cleared(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    (folder / IN_PROGRESS).write_text(json.dumps({"command": "quantune quantize", "pid": 2 ** 22 + 1}))
    (folder / "30_plan.json").write_text("{half a plan")
    (folder / "50_x86_64_quantized.vmfb.123.partial").write_bytes(b"\0" * 10)
    result = quantune("-q", "quantize", folder, "--calibration-images", "8")
    assert result.returncode == 0, result.stderr
    assert not (folder / IN_PROGRESS).exists() and leftovers(folder) == []
    assert json.loads((folder / "30_plan.json").read_text())["schema_version"] == 1


# -- interrupts ------------------------------------------------------------------------------------------------

def wait_until(condition, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"quantune ended ({process.returncode}) before the stage: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("the stage never came")
        time.sleep(0.05)


def compilers_writing(folder: Path) -> list[int]:
    """pids of iree-compile processes whose command line names folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command_line = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"iree-compile" in command_line and str(folder).encode() in command_line:
                found.append(int(entry.name))
    return found


STAGES = {
    # quantize: the calibration build's compile, then the quantized module's
    "calibration compile": ("quantize", lambda f: any(f.glob("13_calibration_x86_64.vmfb.*.partial"))),
    "rewrite": ("quantize", lambda f: (f / "13_calibration_x86_64.vmfb").exists()),
    "quantized compile": ("quantize", lambda f: any(f.glob("50_x86_64_quantized.vmfb.*.partial"))),
    # build: the import, the analysis' first compile
    "import": ("build", lambda f: f.is_dir()),
    "analysis": ("build", lambda f: (f / "01_layers.json").exists()),
}
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}


def start(stage: str, folder: Path, imported: Path) -> subprocess.Popen:
    command, _ = STAGES[stage]
    if command == "quantize":
        shutil.copytree(imported, folder)
        args = ["quantize", folder, "--calibration-images", "8"]
    else:
        args = ["build", MODEL, "-o", folder, "--policy", "all-int8", "--curve", "0", "--eval-images", "50",
                "--calibration-images", "8"]
    return subprocess.Popen([*QUANTUNE, "-q", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


# every signal at quantize's stages in the default suite; at build's (a whole pipeline each, run twice) one signal
# per stage, and the third at the longer one, in the slow suite
INTERRUPTS = [(stage, signum) for stage, (command, _) in STAGES.items() if command == "quantize"
              for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)] + [
    pytest.param(stage, signum, marks=pytest.mark.slow) for stage, signum in (
        ("import", signal.SIGTERM), ("analysis", signal.SIGINT), ("analysis", signal.SIGKILL))]


@pytest.mark.parametrize("stage, signum", INTERRUPTS, ids=lambda v: v.name if isinstance(v, signal.Signals) else v)
def test_interrupt_leaves_a_marked_folder_that_a_rerun_completes(imported, tmp_path, stage, signum):
    folder = tmp_path / "build"
    process = start(stage, folder, imported)
    wait_until(lambda: STAGES[stage][1](folder), 300, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT[signum], stderr
    assert "Traceback" not in stderr
    if signum != signal.SIGKILL:
        assert stderr.strip().splitlines()[-1] == ("quantune: interrupted" if signum == signal.SIGINT
                                                   else "quantune: stopped by SIGTERM"), stderr
        assert leftovers(folder) == []  # temporary files go on every exit quantune sees
    time.sleep(0.5)
    assert compilers_writing(folder) == []  # no compiler outlives quantune, not even after SIGKILL
    assert (folder / IN_PROGRESS).exists() and not (folder / "60_report.json").exists()
    # the rerun clears what the interrupted run left and completes the folder
    command, _ = STAGES[stage]
    rerun = quantune("-q", *(["quantize", folder, "--calibration-images", "8"] if command == "quantize" else
                             ["build", MODEL, "-o", folder, "--policy", "all-int8", "--curve", "0", "--eval-images",
                              "50", "--calibration-images", "8"]))
    assert rerun.returncode == 0, rerun.stderr
    assert not (folder / IN_PROGRESS).exists() and leftovers(folder) == []
    assert (folder / "50_x86_64_quantized.vmfb").stat().st_size > 0


@pytest.mark.slow
def test_an_interrupted_rebuild_never_leaves_the_old_report(tmp_path):
    """A rerun killed half way: the folder may not keep the first run's report beside the second's artifacts."""
    folder = tmp_path / "build"
    args = ["build", MODEL, "-o", folder, "--policy", "all-int8", "--curve", "0", "--eval-images", "50",
            "--calibration-images", "8"]
    assert quantune("-q", *args).returncode == 0
    assert (folder / "60_report.json").exists()
    process = subprocess.Popen([*QUANTUNE, "-q", *map(str, args[:-1]), "16"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_until(lambda: (folder / IN_PROGRESS).exists() and (folder / "01_layers.json").exists(), 300, process)
    process.kill()
    process.wait()
    assert (folder / IN_PROGRESS).exists()
    assert not (folder / "60_report.json").exists() and not (folder / "60_report.md").exists()


# -- a plan's own parameters -----------------------------------------------------------------------------------

def _plan(folder: Path, layers: dict) -> Path:
    path = folder / "my_plan.json"
    path.write_text(json.dumps({"schema_version": 1, "model": MODEL, "default": "int8", "layers": layers}))
    return path


def test_a_plans_weight_scales_and_parameters_are_honoured(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    scales = [0.004] * 32
    output = {"scale": 0.05, "zero_point": -3, "dtype": "int8"}
    plan = _plan(tmp_path, {"features.0": {"precision": "int8", "weight_scales": scales, "output": output}})
    result = quantune("-q", "quantize", folder, "--plan", plan, "--calibration-images", "8")
    assert result.returncode == 0, result.stderr
    written = json.loads((folder / "30_plan.json").read_text())["layers"]
    assert written["features.0"]["weight_scales"] == scales and written["features.0"]["output"] == output
    # the same tensor is the next layer's input: it carries the plan's parameters too
    assert written["features.3.squeeze"]["input"] == output


def test_a_plans_weight_scales_of_the_wrong_count_are_refused(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    plan = _plan(tmp_path, {"features.0": {"precision": "int8", "weight_scales": [0.01] * 5}})
    result = quantune("quantize", folder, "--plan", plan, "--calibration-images", "8")
    assert_one_line_error(result, r"the plan gives layer 'features.0' 5 weight scales, but it has 32 output "
                                  r"channel\(s\): give one per channel or a single one")


def test_two_parameters_for_one_tensor_are_refused(imported, tmp_path):
    folder = copy_of(imported, tmp_path)
    plan = _plan(tmp_path, {
        "features.0": {"precision": "int8", "output": {"scale": 0.05, "zero_point": 0}},
        "features.3.squeeze": {"precision": "int8", "input": {"scale": 0.07, "zero_point": 0}}})
    result = quantune("quantize", folder, "--plan", plan, "--calibration-images", "8")
    assert_one_line_error(result, r"the plan gives one tensor two sets of parameters: .*; give them once, or the "
                                  r"same in both places")
    assert "features.0.output 0.05:0 int8" in result.stderr and "features.3.squeeze.input 0.07:0 int8" in result.stderr


# -- reproducible modules --------------------------------------------------------------------------------------

def test_same_inputs_give_the_same_module_bytes_in_any_folder(imported, tmp_path):
    folders = [tmp_path / "a", tmp_path / "deeper" / "elsewhere"]
    for folder in folders:
        shutil.copytree(imported, folder)
        result = quantune("-q", "quantize", folder, "--calibration-images", "8")
        assert result.returncode == 0, result.stderr
    first, second = (f / "50_x86_64_quantized.vmfb" for f in folders)
    assert first.read_bytes() == second.read_bytes()
    assert str(tmp_path).encode() not in first.read_bytes()


def test_the_imported_mlir_names_no_folder_of_this_machine(imported):
    text = subprocess.run(["quantune-opt", "--mlir-print-debuginfo", "--elide-large-elements", "16",
                           str(imported / "00_import.mlirbc")], capture_output=True, text=True, check=True).stdout
    assert "site-packages" not in text and sys.prefix not in text
    assert '"torch/nn/modules/conv.py"' in text  # the frames stay, from their package on


def test_outputs_of_the_interrupted_runs_module_match_a_clean_one(imported, tmp_path):
    """The rerun after an interrupt builds what a clean run builds."""
    clean = copy_of(imported, tmp_path / "clean")
    assert quantune("-q", "quantize", clean, "--calibration-images", "8").returncode == 0
    folder = tmp_path / "interrupted"
    process = start("quantized compile", folder, imported)
    wait_until(lambda: STAGES["quantized compile"][1](folder), 300, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert quantune("-q", "quantize", folder, "--calibration-images", "8").returncode == 0
    assert (folder / "50_x86_64_quantized.vmfb").read_bytes() == (clean / "50_x86_64_quantized.vmfb").read_bytes()
    x = np.zeros((1, 1, 28, 28), np.float32)
    np.save(tmp_path / "x.npy", x)
    assert quantune("run", folder / "50_x86_64_quantized.vmfb", "--input", tmp_path / "x.npy").returncode == 0
