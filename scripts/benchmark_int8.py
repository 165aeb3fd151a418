#!/usr/bin/env python3
"""int8 latency, side by side in one run: IREE fp32 (quantune's x86_64 flags, the best measured), IREE all-int8
and a mixed plan (first and last layer fp32) from quantune's rewrite, each with the project's micro-kernels
and without them (IREE's own codegen of the integer linalg), onnxruntime int8 (QDQ, uint8 activations,
per-channel int8 weights: its fastest configuration), OpenVINO int8 (NNCF post-training quantization of the
model from `openvino.convert_model`, LATENCY hint) and onnxruntime fp32, for ResNet18 and MobileNetV2 at
1x3x224x224, batch 1, on 1 and 2 threads. Also each build's fraction of the physical limit: the model's
multiply-accumulates over the time the machine's peak int8 rate (vpdpbusd, measured in the same run by the
kernel library's peak loop, times the thread count) would take.

All int8 candidates calibrate on the same inputs: Fashion-MNIST training images through the ImageNet
preprocessing. The 224x224 models carry the zoo's seeded initial weights (speed only; accuracy is measured on
the trained 28x28 zoo, see the README). Each measurement runs in a fresh process; candidates take turns
(A B C A B C ...) for several rounds; the table shows the median over rounds of each process's median.

    pip install -e .[bench]
    python scripts/benchmark_int8.py [--rounds 3] [--iterations 20] [--threads 1,2] [--models resnet18,mobilenet_v2]
                                     [--reuse]

--reuse measures the artifacts an earlier run left in --build (for a second measurement of the same builds).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CANDIDATES = ("iree-fp32", "iree-int8", "iree-mixed", "iree-int8-linalg", "iree-mixed-linalg", "ort-int8-u8",
              "openvino-int8", "ort-fp32")
ARTIFACT = {"iree-fp32": "iree_fp32.vmfb", "iree-int8": "iree_int8.vmfb", "iree-mixed": "iree_mixed.vmfb",
            "iree-int8-linalg": "iree_int8_linalg.vmfb", "iree-mixed-linalg": "iree_mixed_linalg.vmfb",
            "ort-int8-u8": "ort_int8_u8.onnx", "openvino-int8": "openvino_int8.xml", "ort-fp32": "model.onnx"}
KERNELS = "x86_64-avx512vnni"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(model_id: str, folder: Path, calibration_images: int) -> None:
    """Every candidate's artifact for one model, in folder."""
    import numpy as np
    import torch

    from quantune_mlir import api
    from quantune_mlir.decision.plan import PrecisionPlan
    from quantune_mlir.quantize import QuantizeOptions
    from quantune_mlir.zoo import parse_zoo_id

    folder.mkdir(parents=True, exist_ok=True)
    zoo = parse_zoo_id(model_id)
    samples = api.calibration_samples(model_id, "fashion-mnist", calibration_images)
    started = time.perf_counter()
    api.import_model(model_id, build_dir=folder / "build")
    shutil.copy(api.compile_model(folder / "build", "x86_64"), folder / ARTIFACT["iree-fp32"])
    table = api.load_layer_table(folder / "build")
    mixed = PrecisionPlan.uniform(table, "int8")
    for layer_id in (table.ids[0], table.ids[-1]):
        mixed = mixed.with_precision(layer_id, "fp32")
    (folder / "mixed_plan.json").write_text(mixed.to_json())
    for plan, name in ((None, "int8"), (folder / "mixed_plan.json", "mixed")):
        for kernels, suffix in (("auto", ""), ("none", "-linalg")):
            build = api.quantize_model(folder / "build", "x86_64", plan=plan, calibration_images=calibration_images,
                                       options=QuantizeOptions(kernels=kernels))
            shutil.copy(build.vmfb, folder / ARTIFACT[f"iree-{name}{suffix}"])
    log(f"{model_id}: IREE builds in {time.perf_counter() - started:.0f} s")

    reference = api.zoo_reference(zoo).eval()
    example = torch.from_numpy(samples[:1])
    (folder / "macs.json").write_text(json.dumps(_multiply_accumulates(reference, example)))
    torch.onnx.export(reference, (example,), folder / ARTIFACT["ort-fp32"], input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    onnxruntime_int8_u8(folder / ARTIFACT["ort-fp32"], folder / ARTIFACT["ort-int8-u8"], samples)
    _openvino_int8(reference, example, samples, folder / ARTIFACT["openvino-int8"])
    log(f"{model_id}: onnxruntime and OpenVINO models ready")
    np.save(folder / "input.npy", samples[:1])


def _multiply_accumulates(model, example) -> int:
    """The conv and linear multiply-accumulates of one inference."""
    import torch

    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return total


def onnxruntime_int8_u8(fp32: Path, output: Path, samples) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"input": s[None]} for s in samples])

        def get_next(self):
            return next(self.items, None)

    prepared = output.with_name("model_prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(str(prepared), str(output), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def _openvino_int8(reference, example, samples, output: Path) -> None:
    import nncf
    import openvino as ov

    model = ov.convert_model(reference, example_input=example)
    quantized = nncf.quantize(model, nncf.Dataset([s[None] for s in samples]), subset_size=len(samples))
    ov.save_model(quantized, output)


def _openvino_int8_convolutions(compiled) -> tuple[int, int]:
    """(convolutions running int8, all convolutions) in the executed graph."""
    runtime = compiled.get_runtime_model()
    convs = [op for op in runtime.get_ops() if op.get_rt_info()["layerType"].astype(str) == "Convolution"]
    int8 = [op for op in convs if op.get_rt_info()["runtimePrecision"].astype(str) in ("i8", "u8")]
    return len(int8), len(convs)


def worker(candidate: str, folder: Path, threads: int, iterations: int) -> None:
    """One measurement in this (fresh) process; prints {"median_ms": ...} (the peak: {"gmacs": ...})."""
    import numpy as np

    if candidate == "peak":
        from quantune_mlir.kernels.peak import measure_peak_gmacs
        print(json.dumps({"gmacs": measure_peak_gmacs(KERNELS, folder)}))
        return

    x = np.load(folder / "input.npy")
    artifact = folder / ARTIFACT[candidate]
    extra = {}
    if candidate.startswith("iree"):
        from quantune_mlir import api
        module = api.load_module(artifact, threads)
        print(json.dumps({"median_ms": module.benchmark(x, iterations=iterations).median_ms}))
        return
    if candidate.startswith("ort"):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        run = lambda: session.run(None, feed)  # noqa: E731
    else:
        import openvino as ov
        compiled = ov.Core().compile_model(str(artifact), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                  "INFERENCE_NUM_THREADS": threads})
        request = compiled.create_infer_request()
        run = lambda: request.infer({0: x})  # noqa: E731
        extra["int8_convolutions"] = _openvino_int8_convolutions(compiled)
    for _ in range(3):
        run()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"median_ms": statistics.median(samples), **extra}))


def measure(candidate: str, folder: Path, threads: int, iterations: int) -> dict:
    command = [sys.executable, __file__, "--worker", candidate, "--folder", str(folder), "--threads", str(threads),
               "--iterations", str(iterations)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{candidate} on {folder.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--build", type=Path, default=REPO / "build" / "benchmark_int8")
    parser.add_argument("--reuse", action="store_true", help="measure the artifacts already in --build")
    parser.add_argument("--worker", choices=(*CANDIDATES, "peak"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, int(args.threads), args.iterations)
        return

    models, thread_counts = args.models.split(","), [int(t) for t in args.threads.split(",")]
    for model in models:
        folder = args.build / model
        if args.reuse:
            missing = [name for name in (*ARTIFACT.values(), "input.npy", "macs.json") if not (folder / name).is_file()]
            if missing:
                sys.exit(f"--reuse: {folder} lacks {', '.join(missing)}; run once without --reuse to build them")
            continue
        log(f"preparing {model}: import, IREE fp32 / int8 / mixed builds, onnxruntime and OpenVINO quantization")
        prepare(model, folder, args.calibration_images)
    results: dict[tuple[str, int, str], list[float]] = {}
    openvino_int8: dict[str, tuple[int, int]] = {}
    peaks: list[float] = []
    for round_index in range(args.rounds):
        peaks.append(measure("peak", args.build / "peak", 1, 1)["gmacs"])
        for model in models:
            for threads in thread_counts:
                for candidate in CANDIDATES:
                    out = measure(candidate, args.build / model, threads, args.iterations)
                    results.setdefault((model, threads, candidate), []).append(out["median_ms"])
                    if "int8_convolutions" in out:
                        openvino_int8[model] = tuple(out["int8_convolutions"])
        log(f"round {round_index + 1}/{args.rounds} done")

    peak = statistics.median(peaks)
    print(f"int8 latency, batch 1, 224x224; median of {args.rounds} rounds x {args.iterations} iterations, "
          "fresh process each; -linalg: without the project's micro-kernels")
    print(f"| model | threads | {' | '.join(CANDIDATES)} | IREE fp32 / IREE int8 | IREE fp32 / IREE mixed | "
          "IREE int8 / ORT int8 | IREE int8 / OpenVINO int8 |")
    print("|---|---:|" + "---:|" * (len(CANDIDATES) + 4))
    medians = {key: statistics.median(values) for key, values in results.items()}
    for model in models:
        for threads in thread_counts:
            ms = {c: medians[(model, threads, c)] for c in CANDIDATES}
            cells = " | ".join(f"{ms[c]:.2f} ms" for c in CANDIDATES)
            ratios = (ms["iree-fp32"] / ms["iree-int8"], ms["iree-fp32"] / ms["iree-mixed"],
                      ms["iree-int8"] / ms["ort-int8-u8"], ms["iree-int8"] / ms["openvino-int8"])
            print(f"| {model} | {threads} | {cells} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    int8_builds = ("iree-int8", "iree-mixed", "iree-int8-linalg", "openvino-int8", "ort-int8-u8")
    print(f"\nfraction of the physical limit: MACs / (threads x {peak:.0f} GMAC/s, the vpdpbusd peak of one core "
          "measured in this run) / time")
    print(f"| model | MACs | threads | {' | '.join(int8_builds)} | IREE int8 speed-up 1 -> 2 threads |")
    print("|---|---:|---:|" + "---:|" * (len(int8_builds) + 1))
    for model in models:
        macs = json.loads((args.build / model / "macs.json").read_text())
        for threads in thread_counts:
            limit_ms = macs / (threads * peak * 1e9) * 1e3
            cells = " | ".join(f"{limit_ms / medians[(model, threads, c)]:.0%}" for c in int8_builds)
            scaling = medians[(model, 1, "iree-int8")] / medians[(model, threads, "iree-int8")] \
                if (model, 1, "iree-int8") in medians else float("nan")
            print(f"| {model} | {macs / 1e9:.2f} G | {threads} | {cells} | {scaling:.2f}x |")
    for model, (int8, total) in openvino_int8.items():
        print(f"OpenVINO {model}: {int8} of {total} convolutions run int8")


if __name__ == "__main__":
    main()
