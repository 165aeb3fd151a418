#!/usr/bin/env python
"""The paper-style comparison over the five trained zoo models: FP32, all-int8, and at equal numbers of FP32
layers the accuracy of QuantuneV2's list (its score on the accumulated activation error, as published, and on
each layer's local error, from the same two inferences), the one-layer-at-a-time ranking, first/last and random
(mean of seeded draws), with each ranking's analysis time, and image by image whether QuantuneV2's accuracy
differs from one-at-a-time's and first/last's by more than chance (exact McNemar test).

    python scripts/paper_table.py                 # all five, 5000 test images, 1-3 FP32 layers
    python scripts/paper_table.py --models resnet18-small --images 1000

Per model: import, the two-inference analysis (timed), the one-at-a-time baseline (timed: n + 1 inferences, n
compiles), then one x86_64 build per distinct plan, each evaluated on the same seeded Fashion-MNIST test images
against the FP32 build. Each model's results go to <build>/<model>.json as soon as they exist; a rerun skips the
models already there (--fresh redoes them). Prints markdown tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = ["resnet18-small", "resnet50-small", "squeezenet1_1-small", "vgg16_bn-small", "mobilenet_v2-small"]
METHODS = ["quantunev2", "quantunev2-local", "quantunev2-added", "one-at-a-time", "first-last", "random"]
PAIRED_AGAINST = ["one-at-a-time", "first-last"]  # single plans at each k (random's draws are averaged)


def run_model(model: str, folder: Path, images: int, max_fp32: int, draws: int, per_tensor: bool) -> dict:
    from quantune_mlir import api
    from quantune_mlir.analysis.sensitivity import SensitivityList
    from quantune_mlir.analysis.calibration import CalibrationOptions
    from quantune_mlir.analyze import AnalysisOptions, analyze, one_layer_at_a_time
    from quantune_mlir.build_dir import BuildDir
    from quantune_mlir.data.resolve import load_data
    from quantune_mlir.pipeline import HOST, BuildOptions, Variants, accuracy_points, measure_vmfb
    from quantune_mlir.quantize import QuantizeOptions
    from quantune_mlir.zoo import parse_zoo_id

    api.import_model(model, build_dir=folder)
    table = api.load_layer_table(folder)
    samples = api.calibration_samples(model)
    quantize = QuantizeOptions(CalibrationOptions(per_channel_weights=not per_tensor))
    analysis = analyze(folder, samples, AnalysisOptions(quantize))
    baseline = one_layer_at_a_time(folder, samples, AnalysisOptions(quantize))
    fp32_vmfb = api.compile_model(folder, HOST)
    data = load_data("fashion-mnist", parse_zoo_id(model).preprocess, limit=images)
    options = BuildOptions(curve=max_fp32, random_draws=draws, latency_iterations=10,
                           analysis=AnalysisOptions(quantize))
    fp32, reference = measure_vmfb(fp32_vmfb, data, None, options)
    variants = Variants(BuildDir(folder), analysis.plan, data, reference, options)
    # The same two inferences scored on each layer's local, or added, activation error instead of the accumulated one.
    variant = {error: SensitivityList.from_metrics(model, [e.metrics for e in analysis.sensitivity.entries],
                                                   analysis.sensitivity.ratios, analysis.activation_errors, error)
               for error in ("local", "added")}
    local = variant["local"]
    rankings = {"quantunev2": list(analysis.sensitivity.ranked), "quantunev2-local": list(local.ranked),
                "quantunev2-added": list(variant["added"].ranked), "one-at-a-time": list(baseline.ranked)}
    candidates = [layer for layer in table.ids if layer in analysis.plan.int8_layers()]
    curve = accuracy_points(rankings, candidates, variants, options)
    paired = [{"fp32_layers": k, "against": other,
               **dataclasses.asdict(variants.compare(point(curve, "quantunev2", k)["layers"][0],
                                                     point(curve, other, k)["layers"][0]))}
              for k in range(1, max_fp32 + 1) for other in PAIRED_AGAINST]
    return {"model": model, "layers": len(table), "int8_capable": len(analysis.plan.int8_layers()),
            "images": len(data), "data": data.name, "fp32_top1": fp32.top1,
            "analysis": {"seconds": analysis.seconds["ranking"], "inferences": analysis.inferences,
                         "ranked": list(analysis.sensitivity.ranked),
                         "ranked_local": list(local.ranked), "ranked_added": list(variant["added"].ranked)},
            "one_at_a_time": {"seconds": baseline.seconds, "inferences": baseline.inferences,
                              "ranked": list(baseline.ranked)},
            "curve": curve, "paired": paired}


def point(curve: list[dict], method: str, k: int) -> dict:
    return next(p for p in curve if p["method"] == method and p["fp32_layers"] == k)


def tables(results: list[dict], max_fp32: int) -> str:
    def cell(row: dict, method: str, k: int, key: str, fmt: str) -> str:
        return fmt.format(point(row["curve"], method, k)[key])

    lines = ["Top-1 on the Fashion-MNIST test images (%); at k FP32 layers, each method keeps its own k layers FP32 "
             "(random: the mean of its draws); the best at each k in bold.", "",
             "| model | FP32 | all-int8 | k | " + " | ".join(METHODS) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(METHODS)]
    for row in results:
        int8 = cell(row, "quantunev2", 0, "top1", "{:.2f}")
        for k in range(1, max_fp32 + 1):
            values = {m: point(row["curve"], m, k)["top1"] for m in METHODS}
            best = max(values.values())
            cells = [f"**{values[m]:.2f}**" if values[m] == best else f"{values[m]:.2f}" for m in METHODS]
            lead = [row["model"], f"{row['fp32_top1']:.2f}", int8] if k == 1 else ["", "", ""]
            lines.append("| " + " | ".join(lead + [str(k)] + cells) + " |")
    lines += ["", "Output SQNR against the FP32 build (dB, higher is closer to FP32), same builds:", "",
              "| model | all-int8 | k | " + " | ".join(METHODS) + " |", "|---|---:|---:|" + "---:|" * len(METHODS)]
    for row in results:
        for k in range(1, max_fp32 + 1):
            lead = [row["model"], cell(row, "quantunev2", 0, "output_sqnr_db", "{:.1f}")] if k == 1 else ["", ""]
            lines.append("| " + " | ".join(lead + [str(k)] + [cell(row, m, k, "output_sqnr_db", "{:.1f}")
                                                               for m in METHODS]) + " |")
    lines += ["", "QuantuneV2 against one-at-a-time and first/last, image by image on the same test images: the images "
              "only quantunev2 classifies right / only the other does, and the exact McNemar p (the chance of a split "
              "at least this uneven between two equally accurate builds; below 0.05: unlikely to be chance):", "",
              "| model | k | " + " | ".join(f"against {m}" for m in PAIRED_AGAINST) + " |",
              "|---|---:|" + "---|" * len(PAIRED_AGAINST)]
    for row in results:
        for k in range(1, max_fp32 + 1):
            cells = []
            for other in PAIRED_AGAINST:
                pair = next(p for p in row["paired"] if p["fp32_layers"] == k and p["against"] == other)
                cells.append(f"{pair['only_first']} / {pair['only_second']}, p = {pair['p_value']:.2f}")
            lines.append("| " + " | ".join([row["model"] if k == 1 else "", str(k)] + cells) + " |")
    lines += ["", "Time to rank the layers (this machine, 2 cores; compiles included):", "",
              "| model | layers | QuantuneV2 (2 inferences) | one-at-a-time (n + 1 inferences) | ratio |",
              "|---|---:|---:|---:|---:|"]
    for row in results:
        ours, theirs = row["analysis"], row["one_at_a_time"]
        lines.append(f"| {row['model']} | {row['int8_capable']} | {ours['seconds']:.1f} s | "
                     f"{theirs['seconds']:.1f} s ({theirs['inferences']}) | {theirs['seconds'] / ours['seconds']:.1f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--images", type=int, default=5000, help="Fashion-MNIST test images per evaluation")
    parser.add_argument("--max-fp32", type=int, default=3, help="compare at 1..N FP32 layers")
    parser.add_argument("--draws", type=int, default=3, help="seeded draws of the random baseline")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "paper_table")
    parser.add_argument("--fresh", action="store_true", help="redo models whose results exist")
    parser.add_argument("--per-tensor-weights", action="store_true", help="one weight scale per layer, where int8 "
                        "costs these models more accuracy than per-channel scales")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    results = []
    for model in args.models:
        saved = args.build / f"{model}.json"
        if saved.is_file() and not args.fresh:
            results.append(json.loads(saved.read_text()))
            continue
        result = run_model(model, args.build / model, args.images, args.max_fp32, args.draws, args.per_tensor_weights)
        args.build.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(result, indent=1))
        results.append(result)
        print(tables([result], args.max_fp32), flush=True)
    print(tables(results, args.max_fp32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
