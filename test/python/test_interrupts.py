"""Signals held back while a native extension initialises: Ctrl-C inside nanobind's module initialisation would
otherwise end quantune with abort() (SIGABRT, no clean-up) instead of 'quantune: interrupted'. Each case runs in
a fresh interpreter, so that the extension is not imported yet and the test process keeps its own handlers."""
from __future__ import annotations

import subprocess
import sys
import textwrap

# The signal is sent from inside the extension's loader, after quantune's hold begins and before the native
# initialisation runs: the moment at which the unprotected handler raised into nanobind.
SCRIPT = textwrap.dedent("""
    import importlib.machinery, os, signal, sys
    from quantune_mlir import interrupts
    interrupts.install()
    native_exec = importlib.machinery.ExtensionFileLoader.exec_module
    finished = []

    def exec_module(self, module):
        if self.name == "iree._runtime_libs._runtime":
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # bytecodes at which the handler runs
                pass
        native_exec(self, module)
        finished.append(self.name)

    importlib.machinery.ExtensionFileLoader.exec_module = exec_module
    try:
        import iree.runtime
    except KeyboardInterrupt:
        print("after its initialisation" if "iree._runtime_libs._runtime" in finished else "inside its import")
    else:
        print("not interrupted")
""")


def test_ctrl_c_during_a_native_import_is_raised_after_it():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "after its initialisation"


def test_without_the_hold_the_same_signal_lands_inside_the_import():
    """The control: the handler alone raises before the native initialisation finishes."""
    script = SCRIPT.replace("interrupts.install()", "signal.signal(signal.SIGINT, interrupts._handler)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "inside its import"
