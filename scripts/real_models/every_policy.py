#!/usr/bin/env python3
"""Every policy on every real-model bench CNN, for x86_64 and aarch64: `quantune build MODEL.onnx
--calibration-data ... --eval-data ... --policy P --target T` for each, as a user runs it. One analysis per
model serves all its builds (quantune's analysis cache). A build that fails is recorded with its error and the
sweep goes on; the script exits non-zero if any failed.

    python scripts/real_models/every_policy.py [--models ocr_text_cls,...] [--targets x86_64,aarch64] [--out DIR]

Prints one Markdown table (per build: FP32 layers, agreement and output SQNR against FP32 on the evaluation
photos, iree-compile fallbacks, seconds) and writes DIR/every_policy.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from bench import MODELS  # noqa: E402
from fetch import DEFAULT_DEST  # noqa: E402


def policies(onnx_path: Path, target: str) -> list[str]:
    """Each policy form once, with a value that keeps some layers FP32 on this model (latency: every layer the
    cost model allows, the largest FP32 plan a policy makes; measured on this machine, so x86_64 only: quantune
    refuses it for a board)."""
    import onnx
    weights = sum(int(np.prod(t.dims)) for t in onnx.load(str(onnx_path)).graph.initializer)
    return ["all-int8", "top-k:3", "fraction:0.1", "sqnr:35", f"size:{int(weights * 1.5)}", "accuracy:0.5",
            "accuracy:2", "agreement:97", "output-sqnr:20"] + (["latency:1000"] if target == "x86_64" else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where fetch.py set the models up")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--targets", default="x86_64,aarch64")
    parser.add_argument("--out", type=Path, default=Path("build/every_policy"))
    args = parser.parse_args()
    import logging
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from quantune_mlir.pipeline import BuildOptions, build_model

    rows = []
    for name in args.models.split(","):
        folder = args.dest.expanduser() / name
        onnx_path = folder / "model.onnx"
        calibration, evaluation = folder / "photos_calibration.npz", folder / "photos_eval.npz"
        for target in args.targets.split(","):
            for policy in policies(onnx_path, target):
                started = time.perf_counter()
                row = {"model": name, "target": target, "policy": policy}
                try:
                    report = build_model(onnx_path, args.out / name / target / policy.replace(":", "_"),
                                         BuildOptions(target=target, policy=policy, calibration_data=str(calibration),
                                                      calibration_images=len(np.load(calibration)["inputs"]),
                                                      eval_data=str(evaluation),
                                                      eval_images=len(np.load(evaluation)["inputs"]), curve=0))
                    mixed = report["evaluation"]["mixed"]
                    row.update(fp32_layers=len(report["fp32_layers"]), layers=report["layers"],
                               agreement=mixed["agreement"], output_sqnr_db=mixed["output_sqnr_db"],
                               fallbacks=len(report["compile_fallbacks"]),
                               analysis_reused=report["analysis"]["reused_from"] is not None)
                except Exception as e:  # noqa: BLE001 - the sweep records every failure and goes on
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
                    traceback.print_exc()
                row["seconds"] = time.perf_counter() - started
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "every_policy.json").write_text(json.dumps(rows, indent=1))
    print("| model | target | policy | FP32 layers | agreement | output SQNR | compile fallbacks | seconds |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        if "error" in row:
            print(f"| {row['model']} | {row['target']} | {row['policy']} | FAILED: {row['error']} | | | | "
                  f"{row['seconds']:.0f} |")
        else:
            print(f"| {row['model']} | {row['target']} | {row['policy']} | {row['fp32_layers']} of {row['layers']} | "
                  f"{row['agreement']:.1f} % | {row['output_sqnr_db']:.2f} dB | {row['fallbacks']} | "
                  f"{row['seconds']:.0f} |")
    failed = [row for row in rows if "error" in row]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} builds succeeded (written to {args.out / 'every_policy.json'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
