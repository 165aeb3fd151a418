"""Where quantune keeps what it can rebuild: kernel objects, the aarch64 runtime, analyses."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "quantune", *parts)
