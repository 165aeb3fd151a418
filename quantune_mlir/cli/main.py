"""`quantune`: argument parsing only; the work is in quantune_mlir.api."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import api
from ..compile import TARGETS
from ..analysis.calibration import METHODS, CalibrationOptions
from ..errors import QuantuneError
from ..quantize import QuantizeOptions
from ..zoo import MODEL_NAMES
from .common import run_guarded, setup_logging

MODEL_HELP = (f"a zoo model ({', '.join(MODEL_NAMES)}; add -small for the 28x28 configuration, "
              "e.g. resnet18-small) or an .onnx file")


def _default_build_dir(model: str) -> Path:
    return Path("build") / Path(model).stem


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="x86_64", choices=list(TARGETS), help="flag file under pipelines/")


def _add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="a state_dict file (torchvision's format) for a zoo model; "
                   "default: the trained weights quantune ships for it, if any")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantune", description="Mixed-precision quantization of CNNs "
                                     "with MLIR and IREE. Unrecognised --iree-* flags pass through to iree-compile.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="model -> linalg MLIR (00_import.mlirbc) and layer table (01_layers.json)")
    p.add_argument("model", help=MODEL_HELP)
    _add_weights(p)
    p.add_argument("-o", "--output", type=Path, help="build folder (default build/<model>)")

    p = sub.add_parser("compile", help="MLIR or build folder -> .vmfb for a target")
    p.add_argument("source", type=Path, help="a build folder or an .mlir/.mlirbc file")
    _add_target(p)
    p.add_argument("-o", "--output", type=Path, help="the .vmfb (default 50_<target>.vmfb beside the source)")

    p = sub.add_parser("run", help="run a .vmfb on .npy inputs (or seeded random ones), optionally timed")
    p.add_argument("vmfb", type=Path)
    p.add_argument("--target", choices=list(TARGETS), help="the target vmfb was compiled for (default: this "
                   "machine); aarch64 ones run here under qemu-aarch64, untimed")
    p.add_argument("--input", type=Path, action="append", default=[], help=".npy file, once per input")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs used without --input")
    p.add_argument("--threads", type=int, default=1, help="1: local-sync driver; more: local-task")
    p.add_argument("--benchmark", type=int, metavar="N", default=0, help="time N runs after 3 warm-ups")
    p.add_argument("-o", "--output", type=Path, help="write the first output to this .npy")

    p = sub.add_parser("build", help="import, compile, check against the framework and time, in one go")
    p.add_argument("model", help=MODEL_HELP)
    _add_weights(p)
    _add_target(p)
    p.add_argument("-o", "--output", type=Path, help="build folder (default build/<model>)")
    p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("quantize", help="calibrate, rewrite to int8 (every layer, or as a plan says) and compile")
    p.add_argument("build_dir", type=Path, help="a build folder holding 00_import.mlirbc (see `quantune import`)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--plan", type=Path, help="precision plan JSON (dialects/README.md); unlisted layers: "
                       "its \"default\"")
    which.add_argument("--all-int8", action="store_true", help="every layer int8 (the default without --plan)")
    _add_target(p)
    p.add_argument("--calibration-data", default="fashion-mnist",
                   help="fashion-mnist (its train split), an image folder or a .npy/.npz of inputs")
    p.add_argument("--calibration-images", type=int, default=64)
    p.add_argument("--calibration", default="minmax", choices=list(METHODS), help="activation range method")
    p.add_argument("--per-tensor-weights", action="store_true", help="one weight scale per layer, not per "
                   "output channel")
    p.add_argument("--strict", action="store_true", help="fail when a layer planned int8 cannot be lowered, "
                   "instead of keeping it fp32 with a warning")

    p = sub.add_parser("eval", help="top-1 accuracy on labelled data, and agreement between two builds")
    p.add_argument("model", help="a zoo model (PyTorch eager, shipped trained weights) or a .vmfb")
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, a folder with one sub-folder per class, or a .npy/.npz file")
    p.add_argument("--split", default="test", choices=["test", "train"], help="for fashion-mnist")
    p.add_argument("--limit", type=int, help="evaluate a seeded random subset of this many images")
    p.add_argument("--compare", help="a second zoo model or .vmfb: report top-1 match and output SQNR")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=100)
    _add_weights(p)

    p = sub.add_parser("layers", help="print the layer table of a build folder")
    p.add_argument("build_dir", type=Path)

    sub.add_parser("targets", help="list the targets and their flag files")
    return parser


def _summary(report: dict, build_dir: Path) -> str:
    lines = [f"{report['model']} -> {report['vmfb']} ({report['vmfb_bytes'] / 1e6:.1f} MB), "
             f"{report['layers']} quantizable layers, input {', '.join(report['inputs'])}"]
    if "relative_l2_vs_framework" in report:
        lines.append(f"relative L2 error against the framework: {report['relative_l2_vs_framework']:.2e}")
    if "accuracy" in report:
        a = report["accuracy"]
        lines.append(f"{a['data']}: top-1 {a['top1']:.2f} %, same class as the framework on "
                     f"{a['top1_agreement_with_framework']:.2f} %, output SQNR {a['output_sqnr_db']:.1f} dB")
    if "latency" in report:
        t = report["latency"]
        lines.append(f"latency: median {t['median_ms']:.2f} ms over {t['iterations']} runs, driver {t['driver']}, "
                     f"{t['threads']} thread(s)")
    lines += [report.get("note", ""), f"report: {build_dir / '60_report.json'}"]
    return "\n".join(line for line in lines if line)


def _load_inputs(paths: list[Path]) -> tuple[np.ndarray, ...]:
    arrays = []
    for path in paths:
        if not path.is_file():
            raise QuantuneError(f"{path}: no such input file")
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except ValueError as e:
            raise QuantuneError(f"{path}: not a .npy array ({e})") from None
    return tuple(arrays)


def main(argv: list[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    extra_flags = tuple(unknown)
    if extra_flags and args.command not in ("compile", "build", "quantize"):
        _parser().error(f"unrecognized arguments: {' '.join(extra_flags)}")
    setup_logging(-1 if args.quiet else args.verbose)

    def run() -> int:
        if args.command == "import":
            imported = api.import_model(args.model, build_dir=args.output or _default_build_dir(args.model),
                                        weights=args.weights)
            print(imported.layers.summary())
        elif args.command == "compile":
            print(api.compile_model(args.source, args.target, output=args.output, extra_flags=extra_flags))
        elif args.command == "run":
            module = api.load_module(args.vmfb, args.threads, args.target)
            inputs = _load_inputs(args.input) or api.random_inputs(module.input_specs, args.seed)
            outputs = module(*inputs)
            for i, out in enumerate(outputs):
                top1 = f", top-1 class {int(out[0].argmax())}" if out.ndim == 2 else ""
                print(f"output {i}: shape {out.shape} {out.dtype}{top1}")
            if args.output:
                np.save(args.output, outputs[0])
            if args.benchmark:
                print(module.benchmark(*inputs, iterations=args.benchmark).describe())
        elif args.command == "build":
            build_dir = args.output or _default_build_dir(args.model)
            report = api.build(args.model, args.target, build_dir, threads=args.threads, extra_flags=extra_flags,
                               weights=args.weights)
            print(_summary(report, build_dir))
        elif args.command == "quantize":
            options = QuantizeOptions(CalibrationOptions(method=args.calibration,
                                                         per_channel_weights=not args.per_tensor_weights),
                                      strict=args.strict)
            result = api.quantize_model(args.build_dir, args.target, plan=args.plan,
                                        calibration_data=args.calibration_data,
                                        calibration_images=args.calibration_images, options=options,
                                        extra_flags=extra_flags)
            print(f"{len(result.plan.int8_layers())} of {len(result.plan.layers)} layers int8; plan "
                  f"{result.plan_path}\nlowered MLIR {result.lowered_mlir}\n{result.vmfb}")
            if result.audit is not None:
                print(f"{result.audit.describe()}\n(audit: {result.audit_path})")
        elif args.command == "eval":
            result = api.evaluate_model(args.model, args.data, split=args.split, limit=args.limit,
                                        compare=args.compare, weights=args.weights, threads=args.threads,
                                        batch_size=args.batch)
            print(result.describe())
        elif args.command == "layers":
            print(api.load_layer_table(args.build_dir).summary())
        elif args.command == "targets":
            for target in TARGETS.values():
                print(f"{target.name:<16} {target.flag_file}  {target.description}")
        return 0

    return run_guarded("quantune", run)


if __name__ == "__main__":
    sys.exit(main())
