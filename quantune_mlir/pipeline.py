"""`quantune build`: the whole method in one call. Import; compile and check FP32; the two-inference analysis;
a policy turns the sensitivity list into FP32 layers; rewrite and compile the mixed plan for the target with
its kernel audit; evaluate FP32, all-int8 and mixed; the accuracy curve of the method and the baselines; the
report (60_report.json, 60_report.md) with its plots.

Accuracy and latency are measured on this machine: where the target is another (aarch64), the same plans are
also compiled for the host, whose integer arithmetic is the same (the tests check x86_64 and aarch64 builds
agree within one unit).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from . import api
from .analysis.metrics import sqnr_db
from .analyze import Analysis, AnalysisOptions, analyze, one_layer_at_a_time
from .build_dir import EVERY_STAGE, PROFILES, REPORT, REPORT_MD, VARIANTS, BuildDir
from .compile import get_target
from .compile.audit import compile_and_audit
from .compile.profile import dispatch_times, layer_costs
from .data import LabelledData
from .data.resolve import load_data
from .decision.plan import PrecisionPlan
from .decision.policies import (budget_walk, estimated_latency, first_and_last, fraction, latency_budget,
                                Policy, model_bytes, parse_policy, plan_keeping_fp32, random_layers, size_budget,
                                sqnr_threshold, top_k)
from .errors import QuantuneError
from .evaluation import PairedComparison, logits_of, module_predictor, paired_comparison
from .layers import LayerTable
from .mlir import write_module
from .quantize import PlanCompileError, QuantizedBuild, compile_plan, lower_fp32, lower_plan, rewrite_and_compile
from .report.markdown import report_markdown
from .report.plots import accuracy_curve, accuracy_vs_latency, sensitivity_bars
from .runtime import CompiledModule, RuntimeOptions
from .zoo import parse_zoo_id

log = logging.getLogger(__name__)

HOST = "x86_64"
METHOD = "quantunev2"


@dataclass(frozen=True)
class BuildOptions:
    target: str = "x86_64"
    policy: str = "accuracy:0.5"  # decision/policies.py POLICY_FORMS
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    calibration_data: str = "fashion-mnist"
    calibration_images: int = 64
    eval_data: str = "fashion-mnist"  # test split; the accuracy budget is measured on it too
    eval_images: int = 1000
    curve: int = 3  # accuracy against 0..curve FP32 layers, for the method and each baseline (0: no curve)
    random_draws: int = 3  # the random baseline's accuracy is the mean over this many seeded draws
    one_at_a_time: bool = False  # also run the one-layer-at-a-time baseline (n + 1 inferences, n compiles)
    threads: int = 1
    latency_iterations: int = 20
    extra_flags: tuple[str, ...] = ()  # to iree-compile, for the target's builds
    weights: Path | None = None
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # an ONNX model's dynamic inputs, fixed
    reuse_analysis: bool = True  # read a cached analysis of the same model, samples, options and code


@dataclass(frozen=True)
class Measurement:
    fp32_layers: tuple[str, ...]
    top1: float | None  # percent
    agreement: float  # percent of images with FP32's class
    output_sqnr_db: float
    latency_ms: float
    vmfb_bytes: int

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "fp32_layers": list(self.fp32_layers)}

    def describe(self) -> str:
        top1 = f"top-1 {self.top1:.2f} %, " if self.top1 is not None else ""
        return (f"{top1}same class as FP32 on {self.agreement:.2f} %, output SQNR {self.output_sqnr_db:.1f} dB, "
                f"{self.latency_ms:.2f} ms")


class Variants:
    """Builds of the calibrated all-int8 plan with some layers FP32, compiled for this machine and measured on
    the evaluation data once each (70_variants/)."""

    def __init__(self, build: BuildDir, plan: PrecisionPlan, data: LabelledData, reference_logits: np.ndarray,
                 options: BuildOptions):
        self.build, self.plan, self.data, self.reference, self.options = build, plan, data, reference_logits, options
        self.measured: dict[frozenset[str], Measurement] = {}
        self.vmfbs: dict[frozenset[str], Path] = {}  # each measured build, for this machine
        self._classes: dict[frozenset[str], np.ndarray] = {}  # each build's predicted class per image
        self.uncompilable: list[dict] = []  # candidates whose plans iree-compile rejected
        (build / VARIANTS).mkdir(parents=True, exist_ok=True)

    def measure(self, fp32_layers: list[str] | tuple[str, ...], vmfb: Path | None = None) -> Measurement:
        """vmfb: a host build of this plan made already (the mixed build when the target is this machine)."""
        key = frozenset(fp32_layers)
        if key not in self.measured:
            if vmfb is None:
                index = len(self.measured)
                vmfb, _ = compile_plan(self.build, plan_keeping_fp32(self.plan, list(fp32_layers)),
                                       f"{VARIANTS}/{index:03d}.mlirbc", f"{VARIANTS}/{index:03d}_{HOST}.vmfb",
                                       target=HOST, options=self.options.analysis.quantize)
            self.measured[key], logits = measure_vmfb(vmfb, self.data, self.reference, self.options,
                                                      tuple(fp32_layers))
            self.vmfbs[key] = vmfb
            self._classes[key] = logits.argmax(1)
            log.info("%d FP32 layer(s) %s: %s", len(fp32_layers), list(fp32_layers), self.measured[key].describe())
        return self.measured[key]

    def score(self, fp32_layers: list[str] | tuple[str, ...], measure: str) -> float:
        """One measure of a candidate for a policy's walk: -inf where its plan does not compile, so that the
        walk goes on past it."""
        try:
            return getattr(self.measure(fp32_layers), measure)
        except PlanCompileError as e:
            log.warning("%s; the policy skips this candidate", e)
            self.uncompilable.append({"fp32_layers": list(fp32_layers), "error": str(e)})
            return float("-inf")

    def compare(self, first: list[str] | tuple[str, ...], second: list[str] | tuple[str, ...]) -> PairedComparison:
        """Image by image, the variant keeping `first` FP32 against the one keeping `second` (both measured)."""
        if self.data.labels is None:
            raise QuantuneError(f"{self.data.name} has no labels: no accuracy to compare")
        return paired_comparison(self._classes[frozenset(first)], self._classes[frozenset(second)], self.data.labels)


def measure_vmfb(vmfb: Path, data: LabelledData, reference: np.ndarray | None, options: BuildOptions,
                 fp32_layers: tuple[str, ...] = ()) -> tuple[Measurement, np.ndarray]:
    """The build's accuracy, agreement and output SQNR against reference logits (itself when None) and its
    latency; with its logits."""
    module = CompiledModule(vmfb, RuntimeOptions.for_threads(options.threads))
    logits = logits_of(module_predictor(module, vmfb.name), data)
    top1 = None if data.labels is None else 100.0 * float(np.mean(logits.argmax(1) == data.labels))
    reference = logits if reference is None else reference
    timing = module.benchmark(data.inputs[:module.input_specs[0].shape[0]], iterations=options.latency_iterations)
    return Measurement(fp32_layers, top1, 100.0 * float(np.mean(logits.argmax(1) == reference.argmax(1))),
                       sqnr_db(reference, logits), timing.median_ms, vmfb.stat().st_size), logits


def build_model(source, build_dir: Path | str = "build", options: BuildOptions = BuildOptions()) -> dict:
    """The whole pipeline (module docstring) for a zoo id, an .onnx file or an nn.Module with example inputs
    (then call with the imported build folder's source). Returns the report it writes. The folder is marked
    IN_PROGRESS, its earlier artifacts gone, until the report is written."""
    get_target(options.target)
    if not get_target(HOST).runs_on_host:
        raise QuantuneError("quantune build measures on this machine, which must be x86-64")
    policy = parse_policy(options.policy)
    if policy.kind == "latency" and options.target != HOST:
        raise QuantuneError(f"--policy {options.policy}: latency is measured on this machine ({HOST}), not on "
                            f"{options.target}; for a board, budget its size or accuracy instead")
    _check_source(source)  # before the folder's earlier build is cleared
    with BuildDir(build_dir).writing("quantune build", EVERY_STAGE) as build:
        return _build_model(source, build, policy, options)


def _check_source(source) -> None:
    if isinstance(source, (str, Path)) and str(source).endswith(".onnx"):
        if not Path(source).is_file():
            raise QuantuneError(f"{source}: no such ONNX file")
    elif isinstance(source, str):
        parse_zoo_id(source)


def _build_model(source, build: BuildDir, policy, options: BuildOptions) -> dict:
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    target = get_target(options.target)
    phase = time.perf_counter()
    imported = api.import_model(source, build_dir=build.path, weights=options.weights,
                                input_shapes=dict(options.input_shapes))
    table = imported.layers
    seconds["import"] = time.perf_counter() - phase
    # The data come before any compile, so that bad data or a policy they cannot serve fail at once.
    samples = api.build_calibration_samples(build.path, options.calibration_data, options.calibration_images)
    data = _evaluation_data(build, table, options)
    if policy.kind == "top-k":
        top_k(table.ids, int(policy.value))  # a k beyond the model's layers, refused before the analysis
    if policy.kind == "accuracy" and data.labels is None:
        # FP32 agrees with itself on every image: a drop of PP from it is an agreement of 100 - PP %
        policy = Policy("agreement", 100.0 - policy.value)
        log.warning("%s has no labels: --policy %s becomes --policy %s, the share of images on which the build's "
                    "top-1 class is the FP32 build's", data.name, options.policy, policy.spelling)

    phase = time.perf_counter()
    fp32_host = api.compile_model(build.path, HOST)
    fp32_target = api.compile_model(build.path, options.target, extra_flags=options.extra_flags) \
        if options.target != HOST or options.extra_flags else fp32_host
    inputs = api.random_inputs(imported.inputs)
    expected = api.reference_outputs(source, inputs, options.weights)
    framework_error = None if expected is None else max(
        api.relative_l2(a, e) for a, e in zip(CompiledModule(fp32_host)(*inputs), expected))
    seconds["fp32 compile and check"] = time.perf_counter() - phase

    analysis = analyze(build.path, samples, options.analysis, reuse=options.reuse_analysis)
    seconds["analysis"] = analysis.seconds["total"]

    phase = time.perf_counter()
    fp32, fp32_logits = measure_vmfb(fp32_host, data, None, options)
    variants = Variants(build, analysis.plan, data, fp32_logits, options)
    fp32_layers, decision = choose_fp32_layers(policy, analysis, table, variants, fp32)
    if variants.uncompilable:
        decision["uncompilable_plans"] = list(variants.uncompilable)
    seconds["policy"] = time.perf_counter() - phase

    phase = time.perf_counter()
    fp32_layers, quantized = _compile_or_move_on(build, analysis, fp32_layers, policy, decision, options)
    plan = quantized.plan
    seconds["mixed rewrite and compile"] = time.perf_counter() - phase

    phase = time.perf_counter()
    host_build = options.target == HOST and not options.extra_flags
    all_int8, mixed = variants.measure([]), variants.measure(fp32_layers, quantized.vmfb if host_build else None)
    baseline = one_layer_at_a_time(build.path, samples, options.analysis) if options.one_at_a_time else None
    rankings = {METHOD: list(analysis.sensitivity.ranked)}
    if baseline is not None:
        rankings["one-at-a-time"] = list(baseline.ranked)
    candidates = [layer for layer in table.ids if layer in analysis.plan.int8_layers()]
    curve = accuracy_points(rankings, candidates, variants, options) if options.curve else []
    seconds["evaluation and curve"] = time.perf_counter() - phase

    plots = {"sensitivity": sensitivity_bars(analysis.sensitivity, build / "61_sensitivity_plan.png",
                                             fp32_layers=frozenset(fp32_layers))}
    if curve:
        plots["accuracy_vs_fp32_layers"] = accuracy_curve(curve, fp32, table.model,
                                                          build / "62_accuracy_vs_fp32_layers.png")
        plots["accuracy_vs_latency"] = accuracy_vs_latency(curve, fp32, table.model,
                                                           build / "63_accuracy_vs_latency.png")
    seconds["total"] = time.perf_counter() - started
    report = {
        "model": table.model, "target": options.target, "policy": policy.spelling, "decision": decision,
        "layers": len(table), "fp32_layers": fp32_layers,
        "int8_layers": list(plan.int8_layers()), "fp32_only_layers": analysis.fp32_only,
        "widened_weight_scales": analysis.widened_channels,
        "bias_corrected_layers": [layer for layer in plan.int8_layers() if plan.layers[layer].bias_correction],
        "output_shifts": {layer: plan.output_shift_share(layer) for layer in plan.output_shifts},
        "analysis": {"inferences": analysis.inferences, "samples": analysis.samples,
                     "reused_from": None if analysis.reused_from is None else analysis.reused_from.name,
                     "range_methods": analysis.range_methods,
                     "calibration_data": options.calibration_data, "seconds": analysis.seconds,
                     "sensitivity_list": build.name_of(analysis.sensitivity_path), "ratios": dataclasses.asdict(
                         analysis.sensitivity.ratios), "activation_error": analysis.sensitivity.activation_error,
                     "ranked": [{"layer": e.layer, "score": e.score, **dataclasses.asdict(e.metrics),
                                 "local_activation_sqnr_db": e.local_activation_sqnr_db}
                                for e in analysis.sensitivity.entries]},
        "plan": build.name_of(quantized.plan_path),
        "evaluation": {"data": data.name, "images": len(data), "threads": options.threads,
                       "latency_iterations": options.latency_iterations, "measured_on": HOST,
                       "fp32": fp32.to_json(), "all_int8": all_int8.to_json(), "mixed": mixed.to_json()},
        "relative_l2_vs_framework": framework_error,
        "size": {"weights_bytes": {"fp32": model_bytes(table, table.ids), "all_int8": model_bytes(table, []),
                                   "mixed": model_bytes(table, fp32_layers)},
                 "vmfb_bytes": {"fp32": fp32_target.stat().st_size, "mixed": quantized.vmfb.stat().st_size}},
        # paths inside the build folder, relative to it: the report reads the same wherever the folder goes
        "artifacts": {"fp32_vmfb": build.name_of(fp32_target), "mixed_vmfb": build.name_of(quantized.vmfb),
                      "all_int8_host_vmfb": build.name_of(variants.vmfbs[frozenset()]),
                      "lowered_mlir": build.name_of(quantized.lowered_mlir),
                      "audit": build.name_of(quantized.audit_path) if quantized.audit_path else None},
        "audit": _audit_summary(quantized),
        "compile_fallbacks": [json.loads(note.read_text()) for note in sorted(build.path.rglob("*.fallback.json"))],
        "curve": curve,
        "one_at_a_time": None if baseline is None else {
            "seconds": baseline.seconds, "inferences": baseline.inferences, "ranked": list(baseline.ranked),
            "analysis_speedup": baseline.seconds / analysis.seconds["ranking"]},
        "flags": {"fp32": get_target(options.target).flags() + list(options.extra_flags),
                  "int8": target.for_int8().flags() + list(options.extra_flags)},
        "versions": tool_versions(),
        "plots": {name: build.name_of(path) for name, path in plots.items()},
        "seconds": seconds,
    }
    with build.atomic(REPORT) as path:
        path.write_text(json.dumps(report, indent=1))
    with build.atomic(REPORT_MD) as path:
        path.write_text(report_markdown(report))
    return report


def _evaluation_data(build: BuildDir, table: LayerTable, options: BuildOptions) -> LabelledData:
    try:
        preprocess = api.preprocess_for(table.model)
    except QuantuneError:
        if not Path(options.eval_data).is_file():
            raise QuantuneError(f"{table.model} is not a zoo model, so quantune knows no preprocessing for it: pass "
                                "--eval-data and --calibration-data as .npy/.npz files of model-ready float32 inputs"
                                ) from None
        preprocess = None  # model-ready float arrays only: uint8 images are refused, not guessed
    data = load_data(options.eval_data, preprocess, split="test", limit=options.eval_images)
    shape = api.model_input_shape(build.path)
    if shape is not None:
        data.check_fits(shape)
    return data


def _compile_or_move_on(build: BuildDir, analysis: Analysis, fp32_layers: list[str], policy, decision: dict,
                        options: BuildOptions) -> tuple[list[str], QuantizedBuild]:
    """The chosen plan built for the target; where iree-compile rejects it (after its fallback without
    speed-only flags), the policy's next candidate: one more layer FP32, down the sensitivity list. Every plan
    given up on is in decision["uncompilable_plans"]. all-int8 has no next candidate and fails."""
    chosen = list(fp32_layers)
    while True:
        try:
            return chosen, rewrite_and_compile(build.path, plan_keeping_fp32(analysis.plan, chosen), options.target,
                                               options.analysis.quantize, options.extra_flags)
        except PlanCompileError as e:
            int8_capable = set(analysis.plan.int8_layers())
            remaining = [layer for layer in analysis.sensitivity.ranked if layer not in chosen and layer in int8_capable]
            if policy.kind == "all-int8" or not remaining:
                raise
            log.warning("%s; --policy %s moves on to its next candidate, %s FP32 too", e, policy.spelling,
                        remaining[0])
            decision.setdefault("uncompilable_plans", []).append({"fp32_layers": list(chosen), "error": str(e)})
            chosen.append(remaining[0])


# The policies that build and measure candidates, and what each measures on the evaluation data (the accuracy
# budget needs labels; without them it is an agreement budget)
MEASURED_BUDGETS = {"accuracy": "top1", "agreement": "agreement", "output-sqnr": "output_sqnr_db"}


def choose_fp32_layers(policy, analysis: Analysis, table: LayerTable, variants: Variants, fp32: Measurement
                       ) -> tuple[list[str], dict]:
    """The policy's FP32 layers and what it did to find them."""
    ranked = analysis.sensitivity.ranked
    if policy.kind == "all-int8":
        return [], {}
    if policy.kind == "top-k":
        return top_k(ranked, int(policy.value)), {}
    if policy.kind == "fraction":
        return fraction(ranked, policy.value), {}
    if policy.kind == "sqnr":
        return sqnr_threshold(ranked, [e.metrics for e in analysis.sensitivity.entries], policy.value), {}
    if policy.kind == "size":
        return size_budget(ranked, table, int(policy.value)), {}
    if policy.kind == "latency":
        costs = profile_layer_costs(variants.build, analysis.plan, table, variants.options, variants.data.inputs[:1])
        all_int8_ms = variants.measure([]).latency_ms
        walk = latency_budget(ranked, costs, all_int8_ms, policy.value)
        return walk, {"all_int8_ms": all_int8_ms, "estimated_ms": estimated_latency(costs, all_int8_ms, walk),
                      "layer_costs_ms": {layer: {"fp32": c[0], "int8": c[1]} for layer, c in costs.items()}}
    if policy.kind in MEASURED_BUDGETS:
        measure = MEASURED_BUDGETS[policy.kind]
        target = getattr(fp32, measure) - policy.value if policy.kind == "accuracy" else policy.value
        walk = budget_walk(ranked, lambda layers: variants.score(layers, measure), target)
        return walk.fp32_layers, {"evaluations": walk.evaluations, "measure": measure, "target": target,
                                  f"fp32_{measure}": getattr(fp32, measure),
                                  "trace": [{"fp32_layers": k, measure: a if np.isfinite(a) else None}  # None: no build
                                            for k, a in walk.trace]}
    raise QuantuneError(f"--policy {policy.spelling} is not supported by quantune build")


def profile_layer_costs(build: BuildDir, plan: PrecisionPlan, table: LayerTable, options: BuildOptions,
                        sample: np.ndarray) -> dict[str, tuple[float, float]]:
    """(FP32 ms, int8 ms) per int8-capable layer, from one profile of the FP32 and one of the all-int8 build
    (compiled with the kernel audit's dumps, which map dispatches to layers; 52_profiles/)."""
    folder = BuildDir(build / PROFILES)
    with folder.atomic("fp32.mlirbc") as path:
        write_module(lower_fp32(build), path, bytecode=True)
    fp32_audit = compile_and_audit(folder / "fp32.mlirbc", get_target(HOST), folder / f"fp32_{HOST}.vmfb",
                                   layers=table.ids, dump_dir=folder / "fp32_dump", failure_dir=build.path)
    module, _ = lower_plan(build, plan, options.analysis.quantize, HOST)
    with folder.atomic("int8.mlirbc") as path:
        write_module(module, path, bytecode=True)
    int8_audit = compile_and_audit(folder / "int8.mlirbc", get_target(HOST).for_int8(), folder / f"int8_{HOST}.vmfb",
                                   layers=table.ids, dump_dir=folder / "int8_dump", failure_dir=build.path,
                                   object_dir=build.path)
    fp32 = layer_costs(fp32_audit, dispatch_times(folder / f"fp32_{HOST}.vmfb", (sample,)))
    int8 = layer_costs(int8_audit, dispatch_times(folder / f"int8_{HOST}.vmfb", (sample,)))
    return {layer: (fp32[layer], int8[layer]) for layer in plan.int8_layers()}


def accuracy_points(rankings: dict[str, list[str]], candidates: list[str], variants: Variants, options: BuildOptions
                    ) -> list[dict]:
    """Accuracy and latency at 0..options.curve FP32 layers: for each ranking (most sensitive first) its top k,
    and the first/last and random baselines (mean of options.random_draws seeded draws) over the candidates,
    the int8-capable layers in model order."""
    points = []
    for k in range(min(options.curve, len(candidates)) + 1):
        draws = {name: [ranked[:k]] for name, ranked in rankings.items()}
        draws["first-last"] = [first_and_last(candidates, k)]
        draws["random"] = [random_layers(candidates, k, seed) for seed in range(options.random_draws if k else 1)]
        for method, sets in draws.items():
            measured = [variants.measure(layers) for layers in sets]
            points.append({"method": method, "fp32_layers": k, "draws": len(measured),
                           "top1": _mean([m.top1 for m in measured]),
                           "agreement": _mean([m.agreement for m in measured]),
                           "output_sqnr_db": _mean([m.output_sqnr_db for m in measured]),
                           "latency_ms": _mean([m.latency_ms for m in measured]),
                           "layers": [list(m.fp32_layers) for m in measured]})
    return points


def _mean(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def _audit_summary(quantized) -> dict | None:
    if quantized.audit is None:
        return None
    verdicts = Counter(v.verdict for v in quantized.audit.layers)
    int8 = set(quantized.plan.int8_layers())
    return {"target": quantized.audit.target, "dispatches_per_inference": quantized.audit.dispatch_count,
            "verdicts": dict(verdicts),
            "planned_int8_not_integer": [v.layer for v in quantized.audit.failures(int8)],
            "layers": [{"layer": v.layer, "verdict": v.verdict, "instructions": list(v.instructions),
                        "contraction": v.contraction} for v in quantized.audit.layers]}


def tool_versions(packages: tuple[str, ...] = ("quantune-mlir", "iree-base-compiler", "iree-base-runtime", "torch",
                                               "torch-mlir", "onnx", "numpy")) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
