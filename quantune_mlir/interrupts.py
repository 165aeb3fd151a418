"""Ctrl-C, SIGTERM and SIGHUP as exceptions that run every `finally` (temporary files go, children stop), held
back while a child process is being started so that no child escapes its clean-up.

Blocking the signals in the main thread is not enough: with other threads alive (IREE's, torch's), the kernel
delivers the signal to one of them and Python still runs the handler in the main thread, in the middle of
subprocess.Popen, which then leaves its child running.

They are held back too while a native extension module initialises (iree.runtime, the MLIR bindings, torch): an
exception raised inside a nanobind module's initialisation ends the process with abort() instead of unwinding.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import signal
import sys
from typing import Iterator

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_depth = 0  # held() nests: a native import can happen while a child starts
_pending: list[int] = []


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where quantune is, as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _handler(signum, _frame) -> None:
    if _depth:
        _pending.append(signum)
        return
    _raise_for(signum)


class _HeldExtensionLoader(importlib.machinery.ExtensionFileLoader):
    def create_module(self, spec):
        with held():
            return super().create_module(spec)

    def exec_module(self, module):
        with held():
            super().exec_module(module)


class _HeldExtensionFinder(importlib.abc.MetaPathFinder):
    """Finds what the path finder finds, and loads native extensions with the signals held."""

    def find_spec(self, fullname, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and type(spec.loader) is importlib.machinery.ExtensionFileLoader:
            spec.loader = _HeldExtensionLoader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    """The handlers of the console scripts (the Python API keeps the host program's)."""
    for signum in _HANDLED:
        signal.signal(signum, _handler)
    if not any(isinstance(finder, _HeldExtensionFinder) for finder in sys.meta_path):
        index = sys.meta_path.index(importlib.machinery.PathFinder)
        sys.meta_path.insert(index, _HeldExtensionFinder())


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Signals that arrive inside are raised when it ends (at once, if the handlers are not installed)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _pending and not _depth:
            signum = _pending[0]
            _pending.clear()
            _raise_for(signum)
