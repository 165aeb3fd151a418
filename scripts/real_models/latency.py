#!/usr/bin/env python3
"""Latency of the real-model bench's CNNs, side by side in one run: quantune all-int8 (the project's
micro-kernels) and IREE FP32 against OpenVINO int8, onnxruntime int8 and onnxruntime FP32, batch 1, on 1 and 2
threads; then, per model, where quantune's int8 time goes (the per-dispatch profile, charged to layers).

It measures the int8 models the fidelity bench (bench.py) made in its --out folder, so that the models timed
are the ones whose fidelity the bench reports: OpenVINO's `openvino_int8.xml` (NNCF) and onnxruntime's
`ort_int8_u8.onnx` (QDQ, uint8 activations, per-channel int8 weights). quantune's all-int8 build and the IREE
FP32 build are made here from model.onnx, calibrated on the same calibration photos. Each measurement runs in a
fresh process (scripts/benchmark_int8.py's worker); candidates take turns for several rounds; the table shows
the median over rounds of each process's median.

    python scripts/real_models/bench.py --out build/real_bench          # first: the int8 models
    python scripts/real_models/latency.py --bench build/real_bench [--threads 1,2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from benchmark_int8 import ARTIFACT, measure  # noqa: E402
from fetch import DEFAULT_DEST  # noqa: E402

CANDIDATES = ("iree-fp32", "iree-int8", "openvino-int8", "ort-int8-u8", "ort-fp32")
FROM_BENCH = {"openvino-int8": ("openvino_int8.xml", "openvino_int8.bin"), "ort-int8-u8": ("ort_int8_u8.onnx",)}
PROFILE_TOP = 8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(name: str, dest: Path, bench: Path) -> Path:
    """The model's latency folder, laid out as benchmark_int8's worker reads it."""
    from quantune_mlir import api

    source, folder = bench / name, bench / name / "latency"
    missing = [f for files in FROM_BENCH.values() for f in files if not (source / f).is_file()]
    if missing:
        raise SystemExit(f"{source} lacks {', '.join(missing)}: run scripts/real_models/bench.py --out {bench} first")
    folder.mkdir(parents=True, exist_ok=True)
    for files in FROM_BENCH.values():
        for file in files:
            shutil.copy(source / file, folder / file)
    onnx_path, calibration = dest / name / "model.onnx", dest / name / "photos_calibration.npz"
    shutil.copy(onnx_path, folder / ARTIFACT["ort-fp32"])
    np.save(folder / "input.npy", np.load(dest / name / "photos_eval.npz")["inputs"][:1])
    started = time.perf_counter()
    build = folder / "quantune"
    api.import_model(onnx_path, build_dir=build)
    shutil.copy(api.compile_model(build, "x86_64"), folder / ARTIFACT["iree-fp32"])
    int8 = api.quantize_model(build, "x86_64", calibration_data=str(calibration),
                              calibration_images=len(np.load(calibration)["inputs"]))
    shutil.copy(int8.vmfb, folder / ARTIFACT["iree-int8"])
    log(f"{name}: IREE FP32 and all-int8 builds in {time.perf_counter() - started:.0f} s")
    return folder


def profile(folder: Path) -> list[tuple[str, str, float]]:
    """quantune all-int8's costliest layers on one thread: (layer, kernel verdict, ms)."""
    from quantune_mlir import api
    from quantune_mlir.build_dir import audit_dump_name
    from quantune_mlir.compile.audit import audit_dump
    from quantune_mlir.compile.profile import dispatch_times, layer_costs

    build = folder / "quantune"
    audit = audit_dump(build / audit_dump_name("x86_64"), "x86_64", api.load_layer_table(build).ids)
    costs = layer_costs(audit, dispatch_times(folder / ARTIFACT["iree-int8"], (np.load(folder / "input.npy"),)))
    verdicts = {v.layer: v.verdict for v in audit.layers}
    return sorted(((layer, verdicts[layer], ms) for layer, ms in costs.items()), key=lambda row: -row[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=Path("build/real_bench"), help="bench.py's --out folder")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where fetch.py set the models up")
    parser.add_argument("--models", help="comma-separated (default: every model in --bench)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="time the builds an earlier run left in --bench")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else \
        [row["model"] for row in json.loads((args.bench / "bench.json").read_text())["rows"]]
    threads = [int(t) for t in args.threads.split(",")]
    folders = {name: (args.bench / name / "latency") if args.reuse else prepare(name, args.dest.expanduser(),
                                                                                   args.bench)
               for name in names}
    times: dict[tuple[str, int, str], list[float]] = {}
    for round_index in range(args.rounds):
        for name, folder in folders.items():
            for count in threads:
                for candidate in CANDIDATES:
                    times.setdefault((name, count, candidate), []).append(
                        measure(candidate, folder, count, args.iterations)["median_ms"])
        log(f"round {round_index + 1}/{args.rounds} done")
    medians = {key: statistics.median(values) for key, values in times.items()}

    print(f"Latency, batch 1; median of {args.rounds} rounds x {args.iterations} iterations, a fresh process each")
    print(f"| model | threads | {' | '.join(CANDIDATES)} | quantune int8 / OpenVINO int8 | "
          "quantune int8 / ORT int8 | IREE FP32 / quantune int8 |")
    print("|---|---:|" + "---:|" * (len(CANDIDATES) + 3))
    for name in names:
        for count in threads:
            ms = {c: medians[(name, count, c)] for c in CANDIDATES}
            ratios = (ms["iree-int8"] / ms["openvino-int8"], ms["iree-int8"] / ms["ort-int8-u8"],
                      ms["iree-fp32"] / ms["iree-int8"])
            print(f"| {name} | {count} | " + " | ".join(f"{ms[c]:.2f} ms" for c in CANDIDATES) + " | " +
                  " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    record = {"command": " ".join(["python", "scripts/real_models/latency.py", *sys.argv[1:]]),
              "median_ms": {f"{n}/{t}/{c}": ms for (n, t, c), ms in medians.items()}, "profiles": {}}
    for name, folder in folders.items():
        rows = profile(folder)
        total = sum(ms for _, _, ms in rows)
        record["profiles"][name] = rows
        print(f"\n{name}: quantune int8's costliest layers, one thread ({total:.2f} ms over {len(rows)} layers "
              "in the dispatch profile)")
        print("| layer | kernel | ms | share |\n|---|---|---:|---:|")
        for layer, verdict, ms in rows[:PROFILE_TOP]:
            print(f"| {layer} | {verdict} | {ms:.3f} | {ms / total:.0%} |")
    (args.bench / "latency.json").write_text(json.dumps(record, indent=1))
    print(f"\n(written to {args.bench / 'latency.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
