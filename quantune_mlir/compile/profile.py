"""Per-layer latency from one profile of a build: IREE's host-execution profile gives each dispatch function's
time, the kernel audit says which dispatches belong to which layer.

A dispatch function IREE launches for several identical layers appears once in the profile, with all its
launches; each layer that lists it is charged the mean time of one launch, or its share of it where one launch
runs several layers (the fused depthwise entries).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import QuantuneError
from .audit import KernelAudit
from .. import children


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise QuantuneError(f"{name} is not on PATH: it comes with iree-base-runtime (pip install iree-base-runtime)")
    return path


def dispatch_times(vmfb: Path, inputs: tuple[np.ndarray, ...], iterations: int = 20) -> dict[str, float]:
    """Mean milliseconds per launch of every dispatch function of vmfb, over `iterations` runs on one thread."""
    with tempfile.TemporaryDirectory() as folder:
        arguments = []
        for i, array in enumerate(inputs):
            np.save(Path(folder) / f"input{i}.npy", array)
            arguments.append(f"--input=@{Path(folder) / f'input{i}.npy'}")
        profile = Path(folder) / "run.ireeprof"
        run = children.run([_tool("iree-benchmark-module"), f"--module={vmfb}", "--device=local-sync",
                            "--function=main", *arguments, "--benchmark_repetitions=1",
                            f"--benchmark_min_time={iterations}x", "--device_profiling_mode=host-execution",
                            f"--device_profiling_output={profile}"], capture_output=True, text=True)
        if run.returncode != 0:
            raise QuantuneError(f"profiling {vmfb.name} failed: {run.stderr.strip().splitlines()[-1:]}")
        read = children.run([_tool("iree-profile"), "statistics", "--format=jsonl", str(profile)],
                            capture_output=True, text=True)
        if read.returncode != 0:
            raise QuantuneError(f"iree-profile could not read the profile of {vmfb.name}: "
                                f"{read.stderr.strip().splitlines()[-1:]}")
        statistics = read.stdout
    times = {}
    for line in statistics.splitlines():
        row = json.loads(line) if line.startswith("{") else {}
        if row.get("row_type") == "host_execution_function" and row.get("sample_count"):
            times[row["function_name"]] = row["total_duration_ns"] / row["sample_count"] / 1e6
    if not times:
        raise QuantuneError(f"the profile of {vmfb.name} holds no dispatch timings")
    return times


def layer_costs(audit: KernelAudit, times: dict[str, float]) -> dict[str, float]:
    """Milliseconds per layer: its contraction's dispatches and the related ones (im2col, packing, epilogue). A
    launch that runs several layers (a fused kernel: more layers list the dispatch than it has launches) is
    shared among them equally."""
    launches = {d.name: d.launches for d in audit.dispatches}
    listed = Counter(name for v in audit.layers for name in v.dispatches)

    def per_layer(name: str) -> float:
        return times.get(name, 0.0) * min(1.0, launches.get(name, 1) / listed[name])

    return {v.layer: sum(per_layer(name) for name in v.dispatches) + sum(times.get(name, 0.0) for name in v.related)
            for v in audit.layers}
