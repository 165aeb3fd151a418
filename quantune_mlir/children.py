"""Child processes (iree-compile, zig, iree-benchmark-module, qemu) that die with quantune.

subprocess.run kills its child when quantune is interrupted (Ctrl-C, SIGTERM), but not when quantune itself is
killed (SIGKILL, an out-of-memory kill): the child would run on and write its output into a folder that the next
run has already cleaned. On Linux the child asks the kernel for SIGKILL when its parent dies. And an interrupt
that lands while the child is being started would leave it running (or be swallowed in Python's fork hooks), so
interrupts are held until the child exists (quantune_mlir.interrupts), then stop both.
"""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

from . import interrupts

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run(command: list[str], *, capture_output: bool = False, text: bool = False, timeout: float | None = None,
        cwd=None) -> subprocess.CompletedProcess:
    """subprocess.run whose child never outlives quantune: killed on an interrupt, a timeout (then
    subprocess.TimeoutExpired is raised, as by subprocess.run) or quantune's own death."""
    pipe = subprocess.PIPE if capture_output else None
    process = None
    try:
        with interrupts.held():  # a signal that comes meanwhile is raised once process is set
            process = subprocess.Popen(command, stdout=pipe, stderr=pipe, text=text, cwd=cwd,
                                       preexec_fn=_die_with_parent)
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        if process is not None:
            process.kill()
            process.wait()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
