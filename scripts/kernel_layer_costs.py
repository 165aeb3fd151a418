#!/usr/bin/env python3
"""Per layer, the time of the project's micro-kernel against IREE's own codegen of the same integer linalg:
one all-int8 build of each (`--kernels auto` and `none`), each profiled once per dispatch
(`iree-benchmark-module --device_profiling_mode=host-execution`, 1 thread) and mapped to layers by its kernel
audit; a layer's time is its contraction's dispatches plus the related ones (im2col, packing, padding,
epilogue). Prints the table and the totals; saves it as JSON. With --write-calibration, fits the cost model
that chooses between the two per layer (quantune_mlir/kernels/cost_model.py) to these measurements and writes
it, with them, to quantune_mlir/kernels/calibration/<library>.json. Both builds here put every layer the kernels
can run on them (the cost model is off), so each layer is measured both ways.

    python scripts/kernel_layer_costs.py [--models resnet18,mobilenet_v2] [--iterations 20] [--write-calibration]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def layer_costs_of(model_id: str, folder: Path, kernels: str, iterations: int) -> dict[str, float]:
    import numpy as np

    from quantune_mlir import api
    from quantune_mlir.compile.profile import dispatch_times, layer_costs
    from quantune_mlir.quantize import QuantizeOptions

    build_dir = folder / kernels
    if not (build_dir / "00_import.mlirbc").is_file():
        shutil.rmtree(build_dir, ignore_errors=True)
        api.import_model(model_id, build_dir=build_dir)
    build = api.quantize_model(build_dir, "x86_64", options=QuantizeOptions(kernels=kernels, cost_model=False))
    sample = api.calibration_samples(model_id, "fashion-mnist", 1).astype(np.float32)
    return layer_costs(build.audit, dispatch_times(build.vmfb, (sample,), iterations))


def work_of(folder: Path) -> dict:
    from quantune_mlir import api
    from quantune_mlir.kernels.cost_model import LayerWork
    return {layer.id: LayerWork.of(layer.kind, tuple(layer.weight_shape), tuple(layer.output_shape))
            for layer in api.load_layer_table(folder / "none").layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--build", type=Path, default=REPO / "build" / "kernel_layer_costs")
    parser.add_argument("--write-calibration", action="store_true")
    args = parser.parse_args()
    measurements = []
    for model in args.models.split(","):
        folder = args.build / model
        costs = {kernels: layer_costs_of(model, folder, kernels, args.iterations) for kernels in ("none", "auto")}
        rows = [(layer, costs["none"][layer], costs["auto"][layer]) for layer in costs["auto"]]
        (folder / "layer_costs.json").write_text(json.dumps(
            [{"layer": layer, "iree_ms": iree, "kernel_ms": kernel} for layer, iree, kernel in rows], indent=1))
        print(f"\n{model}, 1 thread, ms per inference (each layer's dispatches, from one profile of each build)")
        print("| layer | IREE codegen | kernel | IREE / kernel |")
        print("|---|---:|---:|---:|")
        for layer, iree, kernel in rows:
            print(f"| {layer} | {iree:.3f} | {kernel:.3f} | {iree / kernel:.2f}x |" if kernel else
                  f"| {layer} | {iree:.3f} | {kernel:.3f} | - |")
        work = work_of(folder)
        measurements += [{"model": model, "layer": layer, "kind": work[layer].kind, "macs": work[layer].macs,
                          "outputs": work[layer].outputs, "kernel_ms": kernel, "iree_ms": iree}
                         for layer, iree, kernel in rows]
        slower = [layer for layer, iree, kernel in rows if kernel > iree]
        total_iree, total_kernel = sum(r[1] for r in rows), sum(r[2] for r in rows)
        print(f"| all layers | {total_iree:.2f} | {total_kernel:.2f} | {total_iree / total_kernel:.2f}x |")
        print(f"layers slower on the kernel: {', '.join(slower) or 'none'}")
    if args.write_calibration:
        from quantune_mlir.compile import get_target
        from quantune_mlir.kernels import library_for, target_config
        from quantune_mlir.kernels.cost_model import calibration_path, write_calibration
        library = library_for(get_target("x86_64")).name
        model = write_calibration(library, measurements, target_config(get_target("x86_64").flag_file).cpu)
        chosen_iree = [m["layer"] for m in measurements if not model.prefers_kernel(work_of_row(m))]
        print(f"\ncalibration written to {calibration_path(library)}: {model.coefficients}")
        print(f"layers the fitted model gives IREE's codegen: {', '.join(chosen_iree) or 'none'}")


def work_of_row(row: dict):
    from quantune_mlir.kernels.cost_model import LayerWork
    return LayerWork(row["kind"], row["macs"], row["outputs"])


if __name__ == "__main__":
    main()
