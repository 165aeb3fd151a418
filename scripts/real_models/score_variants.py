#!/usr/bin/env python3
"""Which ranking of the layers pays on the real-model bench: at k = 0..N FP32 layers, the top k of each score
variant from the same two inferences (the published score on the accumulated activation error, and the local,
added and output-referred variants, sensitivity.ACTIVATION_ERRORS), of the one-layer-at-a-time ranking (n + 1
inferences), of first/last, and random (the mean of seeded draws); each plan built for this machine and run on
the evaluation photos against the FP32 build: top-1 agreement and logits SQNR.

    python scripts/real_models/score_variants.py [--models ocr_text_cls,...] [--max-fp32 8] [--draws 3] [--mirrors]
        [--out DIR]

Prints, per model, one table per measure (rows k, columns methods) and each method's mean over k = 1..N, and
writes DIR/score_variants.json. Nothing is downloaded: the bench comes from scripts/real_models/fetch.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import models  # noqa: E402
from bench import MODELS  # noqa: E402
from fetch import DEFAULT_DEST  # noqa: E402

MEASURES = (("agreement", "top-1 agreement with FP32 (%)", "{:.1f}"), ("output_sqnr_db", "logits SQNR (dB)", "{:.2f}"))


def run_model(name: str, dest: Path, out: Path, max_fp32: int, draws: int, mirrors: bool) -> dict:
    from quantune_mlir import api
    from quantune_mlir.analysis.sensitivity import ACTIVATION_ERRORS, SensitivityList
    from quantune_mlir.analyze import AnalysisOptions, analyze, one_layer_at_a_time
    from quantune_mlir.build_dir import BuildDir
    from quantune_mlir.data import LabelledData
    from quantune_mlir.pipeline import HOST, BuildOptions, Variants, accuracy_points, measure_vmfb

    folder = out / name
    api.import_model(dest / name / "model.onnx", build_dir=folder)
    calibration = np.load(dest / name / "photos_calibration.npz")["inputs"]
    photos = np.load(dest / name / "photos_eval.npz")["inputs"]
    if mirrors:
        photos = models.with_mirror_images(photos)
    data = LabelledData("photos_eval.npz" + (" and its mirror images" if mirrors else ""), photos, None)
    analysis = analyze(folder, calibration, AnalysisOptions(), reuse=True)
    baseline = one_layer_at_a_time(folder, calibration, AnalysisOptions())
    options = BuildOptions(curve=max_fp32, random_draws=draws, latency_iterations=1)
    _, reference = measure_vmfb(api.compile_model(folder, HOST), data, None, options)
    variants = Variants(BuildDir(folder), analysis.plan, data, reference, options)
    metrics = [e.metrics for e in analysis.sensitivity.entries]
    rankings = {f"score-{error}": SensitivityList.from_metrics(analysis.sensitivity.model, metrics,
                                                               analysis.sensitivity.ratios,
                                                               analysis.activation_errors, error).ranked
                for error in ACTIVATION_ERRORS}
    rankings["one-at-a-time"] = list(baseline.ranked)
    candidates = [layer for layer in api.load_layer_table(folder).ids if layer in analysis.plan.int8_layers()]
    return {"model": name, "int8_capable": len(candidates), "images": len(data),
            "analysis_seconds": analysis.seconds["ranking"], "one_at_a_time_seconds": baseline.seconds,
            "curve": accuracy_points(rankings, candidates, variants, options)}


def tables(result: dict, max_fp32: int) -> str:
    methods = list(dict.fromkeys(p["method"] for p in result["curve"]))
    value = {(p["method"], p["fp32_layers"]): p for p in result["curve"]}
    lines = []
    for key, title, fmt in MEASURES:
        lines += [f"{result['model']}: {title} on {result['images']} photos, at k FP32 layers", "",
                  "| k | " + " | ".join(methods) + " |", "|---:|" + "---:|" * len(methods)]
        for k in range(max_fp32 + 1):
            lines.append(f"| {k} | " + " | ".join(fmt.format(value[m, k][key]) if (m, k) in value else "-"
                                                   for m in methods) + " |")
        means = [np.mean([value[m, k][key] for k in range(1, max_fp32 + 1) if (m, k) in value]) for m in methods]
        lines += [f"| mean 1..{max_fp32} | " + " | ".join(fmt.format(v) for v in means) + " |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--max-fp32", type=int, default=8)
    parser.add_argument("--draws", type=int, default=3, help="seeded draws of the random baseline")
    parser.add_argument("--out", type=Path, default=Path("build/score_variants"))
    parser.add_argument("--mirrors", action="store_true", help="evaluate on the photos and their left-right, "
                        "upside-down and rotated copies too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    results = []
    for name in args.models.split(","):
        results.append(run_model(name, args.dest, args.out, args.max_fp32, args.draws, args.mirrors))
        print(tables(results[-1], args.max_fp32), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "score_variants.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
