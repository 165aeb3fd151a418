"""Ctrl-C, SIGTERM and SIGHUP as exceptions that run every `finally` (temporary files go, children stop), held
back while a child process is being started so that no child escapes its clean-up.

Blocking the signals in the main thread is not enough: with other threads alive (IREE's, torch's), the kernel
delivers the signal to one of them and Python still runs the handler in the main thread, in the middle of
subprocess.Popen, which then leaves its child running.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_holding = False
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
    if _holding:
        _pending.append(signum)
        return
    _raise_for(signum)


def install() -> None:
    """The handlers of the console scripts (the Python API keeps the host program's)."""
    for signum in _HANDLED:
        signal.signal(signum, _handler)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Signals that arrive inside are raised when it ends (at once, if the handlers are not installed)."""
    global _holding
    _holding = True
    try:
        yield
    finally:
        _holding = False
        if _pending:
            signum = _pending[0]
            _pending.clear()
            _raise_for(signum)
