"""Child processes (iree-compile, zig, iree-benchmark-module, qemu) that die with quantune.

subprocess.run kills its child when quantune is interrupted (Ctrl-C, SIGTERM), but not when quantune itself is
killed (SIGKILL, an out-of-memory kill): the child would run on and write its output into a folder that the next
run has already cleaned. On Linux the child asks the kernel for SIGKILL when its parent dies. And a Ctrl-C that
lands while the child is being forked would be swallowed (Python ignores exceptions in its fork hooks), so the
interrupting signals wait until the child exists, then stop both.
"""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1
_DEFERRED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _child_setup(parent_mask: set[signal.Signals]) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, parent_mask)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run(command: list[str], *, capture_output: bool = False, text: bool = False, timeout: float | None = None,
        cwd=None) -> subprocess.CompletedProcess:
    """subprocess.run whose child never outlives quantune: killed on an interrupt, a timeout (then
    subprocess.TimeoutExpired is raised, as by subprocess.run) or quantune's own death."""
    pipe = subprocess.PIPE if capture_output else None
    process = None
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
        try:
            process = subprocess.Popen(command, stdout=pipe, stderr=pipe, text=text, cwd=cwd,
                                       preexec_fn=lambda: _child_setup(mask))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile is raised here
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        if process is not None:
            process.kill()
            process.wait()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
