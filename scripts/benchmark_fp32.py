#!/usr/bin/env python3
"""FP32 latency, side by side in one run: IREE with quantune's x86_64 flags, IREE with its default CPU flags,
IREE with im2col + data tiling (the alternative quantune measured and rejected), and PyTorch eager, for ResNet18
and MobileNetV2 at 1x3x224x224, batch 1.

Each measurement runs in a fresh process; candidates take turns (A B C A B C ...) for several rounds and the
table shows the median over rounds of each process's median, and ratios against PyTorch eager.

    python scripts/benchmark_fp32.py [--rounds 5] [--iterations 20] [--threads 1] [--models resnet18,mobilenet_v2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quantune_mlir.compile.targets import CHANNELS_LAST_FLAG  # noqa: E402

# The x86_64 flag file minus the flags quantune adds for FP32 speed is what iree-compile does by default.
TUNING_FLAGS = (CHANNELS_LAST_FLAG, "--iree-dispatch-creation-data-tiling")
IREE_VARIANTS = {
    "iree-default-flags": (),
    "iree-im2col-dt": ("--iree-global-opt-use-im2col-for-convs", "--iree-dispatch-creation-data-tiling"),
}
CANDIDATES = ("iree-quantune-flags", *IREE_VARIANTS, "torch-eager")


def prepare(models: list[str], build_root: Path) -> dict[tuple[str, str], Path]:
    from quantune_mlir import api
    from quantune_mlir.compile import compile_file, get_target
    from quantune_mlir.compile.targets import Target

    vmfbs = {}
    for model in models:
        build = build_root / model
        api.import_model(model, build_dir=build)
        vmfbs[(model, "iree-quantune-flags")] = api.compile_model(build, "x86_64")
        base_flags = [f for f in get_target("x86_64").flags() if f not in TUNING_FLAGS]
        assert len(base_flags) == len(get_target("x86_64").flags()) - len(TUNING_FLAGS), "flag file changed"
        for variant, extra in IREE_VARIANTS.items():
            flag_file = build / f"{variant}.flags"
            flag_file.write_text("\n".join([*base_flags, *extra]) + "\n")
            target = Target(variant, variant, "x86_64", flag_file)
            vmfbs[(model, variant)] = compile_file(build / "00_import.mlirbc", target, build / f"50_{variant}.vmfb")
    return vmfbs


def worker(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints {"median_ms": ...}."""
    from quantune_mlir import api
    from quantune_mlir.zoo import parse_zoo_id

    zoo = parse_zoo_id(args.model)
    if args.candidate == "torch-eager":
        import torch
        torch.set_num_threads(args.threads)
        model = api.zoo_reference(zoo)
        x = torch.randn(zoo.input_shape)
        samples = []
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            for _ in range(args.iterations):
                start = time.perf_counter()
                model(x)
                samples.append((time.perf_counter() - start) * 1e3)
        median = statistics.median(samples)
    else:
        module = api.load_module(args.vmfb, args.threads)
        median = module.benchmark(*api.random_inputs(module.input_specs), iterations=args.iterations).median_ms
    print(json.dumps({"median_ms": median}))


def measure(candidate: str, model: str, vmfb: Path | None, args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--worker", candidate, "--model", model, "--iterations",
               str(args.iterations), "--threads", str(args.threads)]
    if vmfb:
        command += ["--vmfb", str(vmfb)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--build", type=Path, default=REPO / "build" / "benchmark_fp32")
    parser.add_argument("--worker", choices=CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--vmfb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.candidate = args.worker
        worker(args)
        return

    models = args.models.split(",")
    print(f"preparing {', '.join(models)} (import + 2 compiles each) ...", file=sys.stderr)
    vmfbs = prepare(models, args.build)
    results: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        for model in models:
            for candidate in CANDIDATES:
                ms = measure(candidate, model, vmfbs.get((model, candidate)), args)
                results.setdefault((model, candidate), []).append(ms)
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

    print(f"FP32 latency, batch 1, 224x224, {args.threads} thread(s); median of {args.rounds} rounds x "
          f"{args.iterations} iterations, fresh process each")
    iree = [c for c in CANDIDATES if c != "torch-eager"]
    print(f"| model | {' | '.join(CANDIDATES)} | {' | '.join(f'{c} / eager' for c in iree)} |")
    print("|---|" + "---:|" * (len(CANDIDATES) + len(iree)))
    for model in models:
        medians = {c: statistics.median(results[(model, c)]) for c in CANDIDATES}
        cells = " | ".join(f"{medians[c]:.2f} ms" for c in CANDIDATES)
        ratios = " | ".join(f"{medians[c] / medians['torch-eager']:.2f}x" for c in iree)
        print(f"| {model} | {cells} | {ratios} |")


if __name__ == "__main__":
    main()
