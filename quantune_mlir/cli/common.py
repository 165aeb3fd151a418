"""What both console scripts share: logging set-up and turning QuantuneError into one line and exit 1."""
from __future__ import annotations

import logging
import sys
from typing import Callable

from ..errors import QuantuneError


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def run_guarded(prog: str, main: Callable[[], int]) -> int:
    try:
        return main()
    except QuantuneError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
