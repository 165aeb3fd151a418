"""What both console scripts share: logging set-up, and turning failures into one line and an exit status."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable, NoReturn

from .. import interrupts
from ..errors import QuantuneError


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def describe_os_error(error: OSError) -> str:
    """An OSError as the file at fault and what to do."""
    path = error.filename if error.filename is not None else "a file"
    advice = {PermissionError: "choose a folder you can write to (-o) or fix its permissions",
              IsADirectoryError: "name a file, not a folder",
              NotADirectoryError: "a part of the path is a file: choose another path (-o)",
              FileExistsError: "remove it or choose another path (-o)"}
    hint = next((text for kind, text in advice.items() if isinstance(error, kind)), None)
    if hint is None and error.errno in (30, 28):  # EROFS, ENOSPC
        hint = "choose another output folder (-o)"
    return f"{path}: {error.strerror or error}" + (f"; {hint}" if hint else "")


def _interruption(error: BaseException) -> BaseException | None:
    """The Ctrl-C or termination behind error, if any: one that lands while a native extension initialises
    (importing iree.runtime, torch) comes back wrapped, e.g. as an ImportError."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (KeyboardInterrupt, interrupts.Terminated)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def run_guarded(prog: str, main: Callable[[], int]) -> int:
    interrupts.install()
    try:
        return main()
    except BaseException as e:
        interruption = _interruption(e)
        if interruption is not None:
            _end_interrupted(prog, interruption)
        if isinstance(e, QuantuneError):
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        if isinstance(e, OSError):
            print(f"{prog}: error: {describe_os_error(e)}", file=sys.stderr)
            return 1
        raise


def _end_interrupted(prog: str, interruption: BaseException) -> NoReturn:
    """Every `finally` has run by now, so the process ends here, without the interpreter's shutdown, which can
    still go wrong after the clean-up: nanobind reports the IREE and MLIR objects that the interrupted frames hold
    as leaks after quantune's last line, and a run interrupted while IREE's runtime loads has been seen to end
    killed by SIGINT instead of with the status printed here."""
    if isinstance(interruption, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        status = 130
    else:
        print(f"{prog}: stopped by {interruption}", file=sys.stderr)
        status = 128 + interruption.signum
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
