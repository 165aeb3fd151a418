#!/usr/bin/env python3
"""Where a module's time goes on 1 worker thread and on 2: per dispatch, from IREE host-execution profiles
(`iree-benchmark-module --device_profiling_mode=host-execution`, events exported with `iree-profile export`).

For each thread count: the wall time of an inference (first dispatch start to last dispatch end), the sum of
the dispatches' wall times, the sum of the workers' busy time inside dispatches (tile execution), and the gaps
between dispatches. Per dispatch, on 2 threads: its wall time against half its workers' busy time (the rest is
a worker idle: waking late, or a tail tile the other waits for) and its busy time against its 1-thread time (the
tiles themselves running slower with two threads on).

    python scripts/profile_threads.py [--model resnet18] [--build build/benchmark_int8] [--iterations 20]

reads <build>/<model>/iree_int8.vmfb and input.npy, which scripts/benchmark_int8.py writes (or --vmfb, --input).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dispatch_events(vmfb: Path, inputs: Path, threads: int, iterations: int) -> list[list[dict]]:
    """Per inference (warm-up dropped), its dispatch events in start order."""
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "run.ireeprof"
        subprocess.run(["iree-benchmark-module", f"--module={vmfb}", "--device=local-task",
                        f"--task_topology_group_count={threads}", "--function=main", f"--input=@{inputs}",
                        "--benchmark_repetitions=1", f"--benchmark_min_time={iterations}x",
                        "--device_profiling_mode=host-execution", f"--device_profiling_output={profile}"],
                       check=True, capture_output=True)
        exported = subprocess.run(["iree-profile", "export", "--format=ireeperf-jsonl", "--output=-", str(profile)],
                                  check=True, capture_output=True, text=True).stdout
    by_submission = defaultdict(list)
    for line in exported.splitlines():
        event = json.loads(line)
        if event.get("record_type") == "host_execution_event" and event.get("op") == "dispatch":
            by_submission[event["submission_id"]].append(event)
    runs = [sorted(events, key=lambda e: e["start_host_time_ns"]) for _, events in sorted(by_submission.items())]
    return runs[len(runs) - iterations:]


def summary(runs: list[list[dict]]) -> dict[str, float]:
    def median_ms(value) -> float:
        return statistics.median(value(run) for run in runs) / 1e6

    return {"wall": median_ms(lambda r: r[-1]["end_host_time_ns"] - r[0]["start_host_time_ns"]),
            "dispatches": median_ms(lambda r: sum(e["duration_ns"] for e in r)),
            "busy": median_ms(lambda r: sum(e["tile_duration_sum_ns"] for e in r)),
            "gaps": median_ms(lambda r: sum(max(0, b["start_host_time_ns"] - a["end_host_time_ns"])
                                            for a, b in zip(r, r[1:])))}


def per_dispatch(runs: list[list[dict]]) -> list[tuple[str, float, float]]:
    """(name, median wall ms, median busy ms) for each dispatch position of an inference."""
    return [(runs[0][i]["key"], statistics.median(run[i]["duration_ns"] for run in runs) / 1e6,
             statistics.median(run[i]["tile_duration_sum_ns"] for run in runs) / 1e6) for i in range(len(runs[0]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "benchmark_int8")
    parser.add_argument("--vmfb", type=Path)
    parser.add_argument("--input", type=Path)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    vmfb = args.vmfb or args.build / args.model / "iree_int8.vmfb"
    inputs = args.input or args.build / args.model / "input.npy"
    for path in (vmfb, inputs):
        if not path.is_file():
            sys.exit(f"{path} not found: run scripts/benchmark_int8.py --models {args.model} first, or pass "
                     "--vmfb and --input")
    one, two = (dispatch_events(vmfb, inputs, threads, args.iterations) for threads in (1, 2))
    if len(one[0]) != len(two[0]):
        sys.exit(f"{vmfb}: {len(one[0])} dispatches on 1 thread, {len(two[0])} on 2; not comparable")
    print(f"{vmfb.name}: {len(one[0])} dispatches per inference, medians of {args.iterations} inferences (ms)\n")
    print("| threads | inference | sum of dispatches | workers busy | gaps between dispatches |")
    print("|---:|---:|---:|---:|---:|")
    for threads, runs in ((1, one), (2, two)):
        s = summary(runs)
        print(f"| {threads} | {s['wall']:.2f} | {s['dispatches']:.2f} | {s['busy']:.2f} | {s['gaps']:.2f} |")
    print(f"\nthe {args.top} longest dispatches on 2 threads: idle = 1 - busy / (2 x wall); busy / 1-thread: the "
          "tiles' own slow-down")
    print("| dispatch | 1 thread | 2 threads | speed-up | busy on 2 | idle | busy / 1-thread |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = sorted(zip(per_dispatch(one), per_dispatch(two)), key=lambda pair: -pair[1][1])
    for (name, alone, _), (_, wall, busy) in rows[:args.top]:
        print(f"| {name[:48]} | {alone:.3f} | {wall:.3f} | {alone / wall:.2f}x | {busy:.3f} | "
              f"{1 - busy / (2 * wall):.0%} | {busy / alone:.2f}x |")


if __name__ == "__main__":
    main()
