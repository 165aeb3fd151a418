"""`quantune`: argument parsing only; the work is in quantune_mlir.api."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from .. import api
from ..compile import TARGETS
from ..analysis.calibration import METHODS, CalibrationOptions
from ..errors import QuantuneError
from ..analysis.metrics import MetricRatios
from ..analysis.sensitivity import ACTIVATION_ERRORS
from ..analysis.weight_rounding import ROUNDINGS
from ..analyze import AnalysisOptions
from ..data.datasets import read_arrays
from ..decision.policies import POLICY_FORMS, parse_policy
from ..pipeline import BuildOptions
from ..quantize import KERNEL_CHOICES, QuantizeOptions
from ..tensor_spec import TensorSpec
from ..zoo import MODEL_NAMES
from .common import run_guarded, setup_logging

MODEL_HELP = (f"a zoo model ({', '.join(MODEL_NAMES)}; add -small for the 28x28 configuration, "
              "e.g. resnet18-small) or an .onnx file")


def _default_build_dir(model: str) -> Path:
    return Path("build") / Path(model).stem


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum. A count below it would not fail but mislead: a negative
    --calibration-images slices the data from the end."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _policy(text: str) -> str:
    """An argparse type: a --policy spelling checked whole before any work (the pipeline parses it again)."""
    try:
        parse_policy(text)
    except QuantuneError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--policy ")) from None
    return text


def _new_or_build_folder(text: str) -> Path:
    """An argparse type for -o of the commands that write a build folder: refuse a file before the import runs."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a build folder: name a new or existing folder")
    return path


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """An argparse type for --input-shape NAME=1x3x224x224."""
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        shape = ()
    if not name or not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected NAME=DIMS with positive sizes, e.g. input=1x3x224x224")
    return name, shape


def _add_input_shape(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", type=_input_shape, action="append", default=[], metavar="NAME=DIMS",
                   help="fix an ONNX model's dynamic input dimensions, e.g. input=1x3x224x224 (a dynamic batch "
                   "alone becomes 1 without it)")


def _npy_file(text: str) -> Path:
    """An argparse type for run's -o: numpy would write a folder's name or another suffix plus .npy elsewhere."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder: name the .npy file to write, e.g. {path / 'y.npy'}")
    if path.suffix != ".npy":
        raise argparse.ArgumentTypeError(f"{path}: name a .npy file (numpy would write {path}.npy)")
    return path


def _build_folder(text: str) -> Path:
    """An argparse type for the build folder an earlier `quantune import` wrote."""
    path = Path(text)
    if not path.is_dir():
        what = "is a file, not a build folder" if path.exists() else "no such build folder"
        raise argparse.ArgumentTypeError(f"{path}: {what}; run `quantune import MODEL -o {path}` first")
    return path


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="x86_64", choices=list(TARGETS), help="flag file under pipelines/")


def _add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="a state_dict file (torchvision's format) for a zoo model; "
                   "default: the trained weights quantune ships for it, if any")


def _add_calibration(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibration-data", default="fashion-mnist",
                   help="fashion-mnist (its train split), an image folder or a .npy/.npz of inputs")
    p.add_argument("--calibration-images", type=_at_least(1), default=64)
    p.add_argument("--calibration", default=CalibrationOptions.method, choices=list(METHODS),
                   help=f"activation range method (default {CalibrationOptions.method})")
    p.add_argument("--no-bias-correction", action="store_true", help="keep each int8 layer's FP32 bias as it is, "
                   "instead of shifting it by the mean error the layer's int8 arithmetic adds on the calibration data")
    p.add_argument("--per-tensor-weights", action="store_true", help="one weight scale per layer, not per "
                   "output channel")
    p.add_argument("--weight-rounding", default=CalibrationOptions.weight_rounding, choices=list(ROUNDINGS),
                   help="gptq: round each int8 layer's weights so that its output on the calibration data stays "
                   "closest to FP32 (default); nearest: each weight to its nearest int8 value")
    p.add_argument("--strict", action="store_true", help="fail when a layer planned int8 cannot be lowered, "
                   "instead of keeping it fp32 with a warning")
    p.add_argument("--kernels", default="auto", choices=list(KERNEL_CHOICES),
                   help="auto: the project's micro-kernels for the int8 conv and linear layers where the target CPU "
                   "has them (x86-64 with AVX-512 VNNI); none: IREE's own codegen of the integer linalg")


def _add_analysis(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ratios", type=_ratios, default="1,1,1,1", help="weights of weight SQNR, weight MSE, "
                   "activation SQNR and activation MSE in the score")
    p.add_argument("--activation-error", default=AnalysisOptions.activation_error, choices=list(ACTIVATION_ERRORS),
                   help="the activation metrics the score reads: the int8 run's (accumulated, as published), each "
                   "layer's own error on the FP32 run's input (local), the accumulated error less what the layer "
                   "inherits (added), or the local error times the noise gain to the model output (output, the "
                   "default)")


def _analysis_options(args) -> AnalysisOptions:
    return AnalysisOptions(_quantize_options(args), args.ratios, activation_error=args.activation_error)


def _quantize_options(args) -> QuantizeOptions:
    return QuantizeOptions(CalibrationOptions(method=args.calibration, per_channel_weights=not args.per_tensor_weights,
                                              bias_correction=not args.no_bias_correction,
                                              weight_rounding=args.weight_rounding),
                           strict=args.strict, kernels=args.kernels)


def _ratios(text: str) -> MetricRatios:
    """An argparse type: four weights of the score."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected four numbers, e.g. 1,1,2,1 (weight SQNR, weight MSE, "
                                         f"activation SQNR, activation MSE), got '{text}'")
    try:
        return MetricRatios(*values)
    except QuantuneError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantune", description="Mixed-precision quantization of CNNs "
                                     "with MLIR and IREE. Unrecognised --iree-* flags pass through to iree-compile.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="model -> linalg MLIR (00_import.mlirbc) and layer table (01_layers.json)")
    p.add_argument("model", help=MODEL_HELP)
    _add_weights(p)
    _add_input_shape(p)
    p.add_argument("-o", "--output", type=_new_or_build_folder, help="build folder (default build/<model>)")

    p = sub.add_parser("compile", help="MLIR or build folder -> .vmfb for a target")
    p.add_argument("source", type=Path, help="a build folder or an .mlir/.mlirbc file")
    _add_target(p)
    p.add_argument("-o", "--output", type=Path, help="the .vmfb (default 50_<target>.vmfb beside the source)")

    p = sub.add_parser("run", help="run a .vmfb on .npy inputs (or seeded random ones), optionally timed")
    p.add_argument("vmfb", type=Path)
    p.add_argument("--target", choices=list(TARGETS), help="the target vmfb was compiled for (default: this "
                   "machine); aarch64 ones run here under qemu-aarch64, untimed")
    p.add_argument("--input", type=Path, action="append", default=[], help=".npy file, once per input; or an "
                   ".npz: its 'inputs' (or 'x') array, else all its arrays in the order saved")
    p.add_argument("--seed", type=_at_least(0), default=0, help="seed of the random inputs used without --input")
    p.add_argument("--threads", type=_at_least(1), default=1, help="1: local-sync driver; more: local-task")
    p.add_argument("--benchmark", type=_at_least(0), metavar="N", default=0, help="time N runs after 3 warm-ups")
    p.add_argument("-o", "--output", type=_npy_file, help="write the first output to this .npy")

    p = sub.add_parser("build", help="the whole pipeline: import, the two-inference analysis, a policy's plan, "
                       "rewrite, compile, evaluate and report (60_report.md)")
    p.add_argument("model", help=MODEL_HELP)
    _add_weights(p)
    _add_input_shape(p)
    _add_target(p)
    p.add_argument("-o", "--output", type=_new_or_build_folder, help="build folder (default build/<model>)")
    p.add_argument("--policy", type=_policy, default="accuracy:0.5", help="which layers stay FP32: "
                   f"{', '.join(POLICY_FORMS)} (default accuracy:0.5: the fewest, down the sensitivity list, for at "
                   "most 0.5 pp below FP32; without labels, agreement:99.5)")
    _add_calibration(p)
    _add_analysis(p)
    p.add_argument("--eval-data", default="fashion-mnist", help="labelled data for accuracy (test split of "
                   "fashion-mnist, a class-folder tree or .npy/.npz)")
    p.add_argument("--eval-images", type=_at_least(1), default=1000)
    p.add_argument("--curve", type=_at_least(0), default=3, help="measure 0..N FP32 layers for the method and each "
                   "baseline (0: no curve)")
    p.add_argument("--random-draws", type=_at_least(1), default=3, help="seeded draws the random baseline averages")
    p.add_argument("--one-at-a-time", action="store_true", help="also run the one-layer-at-a-time baseline "
                   "(one compile and inference per layer) and compare its time and ranking")
    p.add_argument("--threads", type=_at_least(1), default=1)
    p.add_argument("--fresh-analysis", action="store_true", help="run the two-inference analysis even where "
                   "quantune's cache holds one of the same model, calibration data and options")

    p = sub.add_parser("analyze", help="the sensitivity list of a build folder from two inferences "
                       "(20_sensitivity.json, 20_sensitivity.png)")
    p.add_argument("build_dir", type=_build_folder, help="a build folder holding 00_import.mlirbc (see `quantune "
                   "import`)")
    _add_calibration(p)
    _add_analysis(p)
    p.add_argument("--one-at-a-time", action="store_true", help="also run the one-layer-at-a-time baseline and "
                   "print both times")

    p = sub.add_parser("quantize", help="calibrate, rewrite to int8 (every layer, or as a plan says) and compile")
    p.add_argument("build_dir", type=_build_folder, help="a build folder holding 00_import.mlirbc (see `quantune "
                   "import`)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--plan", type=Path, help="precision plan JSON (dialects/README.md); unlisted layers: "
                       "its \"default\"")
    which.add_argument("--all-int8", action="store_true", help="every layer int8 (the default without --plan)")
    _add_target(p)
    _add_calibration(p)

    p = sub.add_parser("eval", help="top-1 accuracy on labelled data, and agreement between two builds")
    p.add_argument("model", help="a zoo model (PyTorch eager, shipped trained weights) or a .vmfb")
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, a folder with one sub-folder per class, or a .npy/.npz file")
    p.add_argument("--split", default="test", choices=["test", "train"], help="for fashion-mnist")
    p.add_argument("--limit", type=_at_least(1), help="evaluate a seeded random subset of this many images")
    p.add_argument("--compare", help="a second zoo model or .vmfb: report top-1 match and output SQNR")
    p.add_argument("--threads", type=_at_least(1), default=1)
    p.add_argument("--batch", type=_at_least(1), default=100)
    _add_weights(p)

    p = sub.add_parser("layers", help="print the layer table of a build folder")
    p.add_argument("build_dir", type=_build_folder)

    sub.add_parser("targets", help="list the targets and their flag files")
    return parser


def _summary(report: dict, build_dir: Path) -> str:
    evaluation, analysis = report["evaluation"], report["analysis"]
    lines = [f"{report['model']}: {len(report['fp32_layers'])} of {report['layers']} layers FP32 "
             f"({report['policy']}): {', '.join(report['fp32_layers']) or 'none'}",
             f"analysis: {analysis['inferences']} inferences of {analysis['samples']} samples, "
             f"{analysis['seconds']['total']:.1f} s" + (" (reused from quantune's analysis cache)"
                                                         if analysis["reused_from"] else "") +
             f"; sensitivity list {build_dir / analysis['sensitivity_list']}"]
    if report["fp32_only_layers"]:
        lines.insert(1, "  and FP32 because they cannot run int8: " + "; ".join(
            f"{layer} ({why})" for layer, why in report["fp32_only_layers"].items()))
    if (report.get("decision") or {}).get("uncompilable_plans"):
        lines.append(f"{len(report['decision']['uncompilable_plans'])} plan(s) iree-compile rejected, which the "
                     "policy moved past (60_report.md)")
    if report["compile_fallbacks"]:
        lines.append(f"{len(report['compile_fallbacks'])} module(s) compiled again without speed-only flags that "
                     "iree-compile rejected: " + ", ".join(note["module"] for note in report["compile_fallbacks"]))
    if report["widened_weight_scales"]:
        lines.append("weight scales widened for the int32 bias to fit: " + ", ".join(
            f"{layer} ({len(channels)} channel(s))" for layer, channels in report["widened_weight_scales"].items()))
    if report["bias_corrected_layers"]:
        lines.append(f"bias correction: {len(report['bias_corrected_layers'])} int8 layer(s) shifted by the mean error "
                     "of their int8 arithmetic (values in the plan)")
    if any(report["output_shifts"].values()):
        lines.append("output shift: " + ", ".join(f"{layer} takes {100 * share:.0f} % of the mean error the all-int8 "
                                                  "run left at its output" for layer, share in
                                                  report["output_shifts"].items()))
    if report["relative_l2_vs_framework"] is not None:
        lines.append(f"FP32 build against the framework: relative L2 error {report['relative_l2_vs_framework']:.2e}")
    lines.append(f"on {evaluation['data']}, measured on {evaluation['measured_on']}:")
    for name in ("fp32", "all_int8", "mixed"):
        m = evaluation[name]
        top1 = f"top-1 {m['top1']:.2f} %, " if m["top1"] is not None else ""
        lines.append(f"  {name:<9}{top1}same class as FP32 {m['agreement']:.2f} %, output SQNR "
                     f"{m['output_sqnr_db']:.1f} dB, {m['latency_ms']:.2f} ms")
    if report["audit"]:
        audit = report["audit"]
        lines.append(f"kernel audit ({audit['target']}): " + ", ".join(f"{v} {n}" for v, n in audit["verdicts"].items())
                     + f"; {audit['dispatches_per_inference']} dispatches per inference")
    lines += [f"{report['target']} module: {build_dir / report['artifacts']['mixed_vmfb']}",
              f"report: {build_dir / '60_report.md'} (and .json, plots)"]
    return "\n".join(lines)


def _analysis_summary(analysis) -> str:
    lines = [f"{analysis.sensitivity.model}: {analysis.inferences} inferences of {analysis.samples} samples in "
             f"{analysis.seconds['ranking']:.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in analysis.seconds.items()
                                                                   if k not in ("ranking", "total")) + ")",
             f"{'rank':>4}  {'layer':<28} {'score':>5}  {'weight SQNR':>11}  {'act. SQNR':>9}  {'local SQNR':>10}"]
    for i, entry in enumerate(analysis.sensitivity.entries):
        m = entry.metrics
        lines.append(f"{i + 1:>4}  {entry.layer:<28} {entry.score:5.3f}  {m.weight_sqnr_db:8.1f} dB  "
                     f"{m.activation_sqnr_db:6.1f} dB  {entry.local_activation_sqnr_db:7.1f} dB")
    for layer, why in analysis.fp32_only.items():
        lines.append(f"always FP32: {layer} ({why})")
    lines.append(f"sensitivity list: {analysis.sensitivity_path}, bar chart: {analysis.plot_path}")
    return "\n".join(lines)


def _load_inputs(paths: list[Path], specs: list[TensorSpec], vmfb: Path) -> tuple[np.ndarray, ...]:
    """The --input arrays in order: a .npy is one input; an .npz its 'inputs' (or 'x') array, else all its arrays
    in the order saved. Checked here, where a mismatch can name the file it came from."""
    given = []
    for path in paths:
        found = read_arrays(path)
        key = next((k for k in ("inputs", "x") if k in found), None)
        given += [(path, found[key])] if key else [(path, array) for array in found.values()]
    if len(given) != len(specs):
        raise QuantuneError(f"{vmfb.name} takes {len(specs)} input(s) ({', '.join(s.describe() for s in specs)}), "
                            f"--input gave {len(given)} array(s); pass one --input per input")
    for i, ((path, array), spec) in enumerate(zip(given, specs)):
        if tuple(array.shape) != spec.shape or array.dtype != np.dtype(spec.dtype):
            raise QuantuneError(f"{path}: input {i} has shape {tuple(array.shape)} and dtype {array.dtype}; "
                                f"{vmfb.name} expects {spec.shape} {spec.dtype}: save an array of that shape and dtype")
    return tuple(array for _, array in given)


def main(argv: list[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    extra_flags = tuple(unknown)
    if extra_flags and args.command not in ("compile", "build", "quantize"):
        _parser().error(f"unrecognized arguments: {' '.join(extra_flags)}")
    setup_logging(-1 if args.quiet else args.verbose)

    def run() -> int:
        if args.command == "import":
            imported = api.import_model(args.model, build_dir=args.output or _default_build_dir(args.model),
                                        weights=args.weights, input_shapes=dict(args.input_shape))
            print(imported.layers.summary())
        elif args.command == "compile":
            print(api.compile_model(args.source, args.target, output=args.output, extra_flags=extra_flags))
        elif args.command == "run":
            module = api.load_module(args.vmfb, args.threads, args.target)
            inputs = _load_inputs(args.input, module.input_specs, args.vmfb) if args.input \
                else api.random_inputs(module.input_specs, args.seed)
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
            options = BuildOptions(
                target=args.target, policy=args.policy, analysis=_analysis_options(args),
                calibration_data=args.calibration_data, calibration_images=args.calibration_images,
                eval_data=args.eval_data, eval_images=args.eval_images, curve=args.curve,
                random_draws=args.random_draws, one_at_a_time=args.one_at_a_time, threads=args.threads,
                extra_flags=tuple(extra_flags), weights=args.weights, input_shapes=tuple(args.input_shape),
                reuse_analysis=not args.fresh_analysis)
            report = api.build(args.model, build_dir, options)
            print(_summary(report, build_dir))
        elif args.command == "analyze":
            analysis = api.analyze_model(args.build_dir, calibration_data=args.calibration_data,
                                         calibration_images=args.calibration_images,
                                         options=_analysis_options(args))
            print(_analysis_summary(analysis))
            if args.one_at_a_time:
                baseline = api.one_at_a_time(args.build_dir, calibration_data=args.calibration_data,
                                             calibration_images=args.calibration_images,
                                             options=AnalysisOptions(_quantize_options(args)))
                print(f"one layer at a time: {baseline.inferences} inferences, {baseline.seconds:.1f} s "
                      f"({baseline.seconds / analysis.seconds['ranking']:.1f}x the analysis); most sensitive first: "
                      f"{', '.join(baseline.ranked[:5])}, ...")
        elif args.command == "quantize":
            result = api.quantize_model(args.build_dir, args.target, plan=args.plan,
                                        calibration_data=args.calibration_data,
                                        calibration_images=args.calibration_images, options=_quantize_options(args),
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
