"""Quantize an imported model: calibrate the plan's int8 tensors on FP32 activations, rewrite, compile.
The artifacts it writes into the build folder are named in build_dir.py (12_ to 50_..._quantized)."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import kernels
from .analysis.bias_correction import bias_correction
from .analysis.calibration import CalibrationOptions, activation_params
from .analysis.range_choice import CANDIDATES as RANGE_CANDIDATES, Consumer, least_error_range
from .analysis.weight_rounding import NEAREST, RoundedWeights, plan_rounded_weights, round_layer
from .build_dir import (CALIBRATION_MLIR, IMPORT_MLIR, LOWERED_MLIR, PLAN, QUANTIZED_MLIR, BuildDir,
                        audit_dump_name, audit_name, calibration_vmfb_name, quantized_vmfb_name, rounded_weights_name)
from .compile import CompileError, compile_file, get_target
from .compile.audit import KernelAudit, compile_and_audit
from .decision.plan import LayerPlan, PrecisionPlan
from .errors import QuantuneError
from .mlir import ir, parse_module, write_module
from .quantization import AffineParams, bias_fitting_scales, weight_scales
from .rewrite import run_passes
from .rewrite.apply_plan import apply_plan
from .rewrite.chains import Chain, int8_region, layers_by_id
from .rewrite.batch_loop import BatchLoop
from .rewrite.depthwise_channels_last import DepthwiseChannelsLast
from .rewrite.expose_layer_outputs import append_results, entry_function, exposed_names
from .rewrite.extern_conv import linked_objects
from .rewrite.graph import Constants, Layer, element_dtype
from .rewrite.lower_quant import LowerQuant
from .runtime import CompiledModule, run_over_batch

log = logging.getLogger(__name__)

KERNEL_CHOICES = ("auto", "none")
# A batch-loop build copies its loop-carried results once per loop trip (IREE 3.13 elides no copy through scf.for),
# so a call's cost grows with the square of its samples: MobileNetV2 at 224x224 returns 28 MB of tensors per
# sample, and 142 samples in one call took 495 s. A pass over the batch makes as many calls as keep each call's
# results under this size.
CALL_RESULT_BYTES = 64 << 20
# The FP32 run keeps every tensor the plan quantizes, of every sample, for the calibration, the bias correction and
# the metrics (which make float64 copies of one layer's at a time): EfficientNet-Lite1 at 240x240 returns about
# 46 MB per sample, and 142 samples (held twice while the calls' results were joined) ran a 24 GB machine out of
# memory. Samples beyond this budget are left out, with a warning.
KEPT_TENSOR_BYTES = 4 << 30


@dataclass(frozen=True)
class QuantizeOptions:
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)
    strict: bool = False  # a layer planned int8 that cannot be lowered is an error, not an fp32 fallback
    expose_int8: bool = False  # the build also returns every int8 tensor (for the analysis and the tests)
    # "auto": the project's micro-kernels (quantune_mlir/kernels) for the layers they run, where the target's
    # CPU has them; "none": IREE's own codegen of the integer linalg for every layer
    kernels: str = "auto"
    cost_model: bool = True  # with kernels: per layer, the calibrated cost model chooses kernel or IREE codegen

    def __post_init__(self):
        if self.kernels not in KERNEL_CHOICES:
            raise QuantuneError(f"kernels '{self.kernels}': choose one of {', '.join(KERNEL_CHOICES)}")


@dataclass(frozen=True)
class QuantizedBuild:
    plan: PrecisionPlan
    plan_path: Path
    lowered_mlir: Path
    vmfb: Path
    int8_tensors: tuple[str, ...]  # names of the extra results when expose_int8, in program order
    seconds: dict[str, float]
    audit: KernelAudit | None  # which kernel each layer reached (None for vmvx, which has no machine code)
    audit_path: Path | None


def load_import(build: BuildDir) -> ir.Module:
    source = build / IMPORT_MLIR
    if not source.is_file():
        raise QuantuneError(f"{build.path} holds no {IMPORT_MLIR}; run `quantune import ... -o {build.path}` first")
    return parse_module(source, ir.Context())


@dataclass(frozen=True)
class FP32Run:
    """The one FP32 inference of the calibration batch: the calibrated plan and every tensor it exposed."""

    plan: PrecisionPlan
    tensors: dict[str, np.ndarray]  # point name (and `<layer>.output` of int8 layers writing fp32) -> values
    outputs: list[np.ndarray]  # the model's own results
    fp32_only: dict[str, str]  # layers that cannot run int8, and why
    widened_channels: dict[str, list[int]]  # per layer, the channels whose weight scale grew for the bias to fit
    range_methods: dict[str, int]  # how many tensors each activation range method calibrated
    samples: int  # how many it ran: the samples given, down to a multiple of the model's batch
    inferences: int
    seconds: dict[str, float]


def calibrate(build_dir: Path | str, plan: PrecisionPlan, samples: np.ndarray,
              options: QuantizeOptions = QuantizeOptions(), host_target: str = "x86_64") -> PrecisionPlan:
    """The plan with every int8 layer's weight scales and input/output parameters (see run_fp32)."""
    return run_fp32(build_dir, plan, samples, options, host_target).plan


def run_fp32(build_dir: Path | str, plan: PrecisionPlan, samples: np.ndarray,
             options: QuantizeOptions = QuantizeOptions(), host_target: str = "x86_64") -> FP32Run:
    """One FP32 inference over all the samples of a build that returns every tensor the plan makes int8 (and
    the output of each int8 layer that writes fp32), and the plan calibrated on those tensors. The build runs
    here, so it is compiled for host_target whatever the target of the quantized build."""
    if not get_target(host_target).runs_on_host:
        raise QuantuneError(f"calibration runs on this machine, which cannot run {host_target} code: pass a "
                            "host target (x86_64 here)")
    build = BuildDir(build_dir)
    module = load_import(build)
    started = time.perf_counter()
    with module.context:
        constants = Constants(module)
        region = int8_region(module, set(plan.int8_layers()), constants, strict=options.strict)
        found = layers_by_id(module, constants)
        layers = {k: v for k, v in found.items() if isinstance(v, Layer)}
        fp32_only = {k: v for k, v in found.items() if isinstance(v, str)}
        scales, channels, biases = {}, {}, {}
        for layer_id in region.chains:
            weight = constants.value_of(layers[layer_id].weight)
            try:
                scales[layer_id] = weight_scales(weight, options.calibration.per_channel_weights)
            except QuantuneError as e:
                raise QuantuneError(f"layer '{layer_id}': {e}; fix the model's weights, or keep the layer fp32 in "
                                    "the plan") from None
            channels[layer_id] = weight.shape[0]
            if layers[layer_id].bias is not None:
                biases[layer_id] = constants.value_of(layers[layer_id].bias)
        exposed = {p.name: p.value for p in region.points}
        exposed.update({f"{layer_id}.output": chain.end for layer_id, chain in region.chains.items()
                        if chain.end not in exposed.values()})
        append_results(entry_function(module, "main"), list(exposed.values()), list(exposed))
        aliases = {p.name: p.names for p in region.points}
        tied = [(p.names, p.params_name) for p in region.points if p.params_from is not None]
        point_name = {p.value: p.name for p in region.points}
        consumer_chains: dict[str, list[Chain]] = {}  # per tensor, the int8 layers that read it
        for chain in region.chains.values():
            consumer_chains.setdefault(point_name[chain.layer.activation], []).append(chain)
        # the names of one tensor and of the tensors max pools and concatenations pass its int8 values to
        families: dict[str, list[str]] = {}
        for point in region.points:
            families.setdefault(point.params_name, []).extend(point.names)
        model_batch = ir.RankedTensorType(ir.FunctionType(ir.TypeAttr(
            entry_function(module, "main").attributes["function_type"]).value).inputs[0]).shape[0]
    if len(samples) < model_batch:
        raise QuantuneError(f"calibration needs at least {model_batch} samples (the model's batch), got {len(samples)}")
    kept = _samples_within(module, len(samples), KEPT_TENSOR_BYTES)
    if kept < len(samples) // model_batch * model_batch:
        log.warning("calibrating on the first %d of the %d samples: the tensors the analysis keeps take %.0f MB per "
                    "sample for this model, and %d fill %.0f GB", kept, len(samples),
                    _result_bytes(module)[1] / model_batch / 1e6, kept, KEPT_TENSOR_BYTES / 1e9)
    samples = samples[:kept]
    run_passes(module, [BatchLoop(samples_per_call(module, len(samples)))], failure_dir=build.path)
    with build.atomic(CALIBRATION_MLIR) as path:
        write_module(module, path, bytecode=True)
    seconds = {"instrument": time.perf_counter() - started}
    started = time.perf_counter()
    vmfb = compile_file(build / CALIBRATION_MLIR, get_target(host_target).for_analysis(int8=False),
                        build / calibration_vmfb_name(host_target), failure_dir=build.path)
    seconds["compile"] = time.perf_counter() - started
    started = time.perf_counter()
    outputs = run_over_batch(CompiledModule(vmfb), samples)
    seconds["inference"] = time.perf_counter() - started
    tensors = dict(zip(exposed, outputs[len(outputs) - len(exposed):]))
    started = time.perf_counter()
    params, range_methods = {}, Counter()
    with module.context:
        for name, point_names in aliases.items():
            consumers = [Consumer(chain, None if chain.residual is None else tensors[point_name[chain.residual]])
                         for chain in consumer_chains.get(name, [])]
            found, method = _tensor_params(tensors[name], options.calibration, f"tensor {' = '.join(point_names)}",
                                           consumers, constants)
            params.update({n: found for n in point_names})
            range_methods[method] += 1
    params.update(_given_activation_params(plan, families))
    for point_names, source in tied:
        params.update({n: params[source] for n in point_names})
    layers_plan = dict(plan.layers)
    widened: dict[str, list[int]] = {}
    for layer_id in plan.int8_layers():
        if layer_id not in region.chains:
            layers_plan[layer_id] = LayerPlan("fp32")
            continue
        given = plan.layers[layer_id].weight_scales
        if given is not None:
            _check_weight_scales(layer_id, given, channels[layer_id])
            log.info("layer '%s': weight scales as the plan gives them", layer_id)
            chosen = np.asarray(given, np.float64)
        else:
            chosen = _fit_bias(layer_id, scales[layer_id], biases.get(layer_id), params[f"{layer_id}.input"],
                               widened)
        layers_plan[layer_id] = LayerPlan("int8", tuple(float(s) for s in chosen),
                                          params[f"{layer_id}.input"], params.get(f"{layer_id}.output"))
    seconds["calibrate"] = time.perf_counter() - started
    rounded = NEAREST
    if options.calibration.weight_rounding == "gptq":
        started = time.perf_counter()
        with module.context:
            rounded = _round_weights(region.chains, layers_plan, constants, tensors, point_name)
        with build.atomic(rounded_weights_name(rounded.digest)) as path:
            rounded.save(path)
        seconds["weight rounding"] = time.perf_counter() - started
    if options.calibration.bias_correction:
        started = time.perf_counter()
        with module.context:
            for layer_id, chain in region.chains.items():
                if chain.layer.bias is None:
                    continue  # nothing to shift; zero-bias layers are rare (a conv without batch norm)
                correction = plan.layers[layer_id].bias_correction
                layer_plan = layers_plan[layer_id]
                if correction is None:
                    residual = None if chain.residual is None else tensors[point_name[chain.residual]]
                    shift = bias_correction(chain, constants, np.asarray(layer_plan.weight_scales),
                                            tensors[point_name[chain.layer.activation]], layer_plan.input, residual,
                                            layer_plan.output, rounded)
                    correction = None if shift is None else tuple(float(c) for c in shift)
                layers_plan[layer_id] = dataclasses.replace(layer_plan, bias_correction=correction)
        seconds["bias correction"] = time.perf_counter() - started
    plan = PrecisionPlan(plan.model, layers_plan, plan.output_shifts, rounded.digest if rounded.layers else None)
    return FP32Run(plan, tensors,
                   outputs[:len(outputs) - len(exposed)], fp32_only, widened, dict(range_methods), len(samples), 1,
                   seconds)


def _round_weights(chains: dict[str, Chain], layers_plan: dict[str, LayerPlan], constants: Constants,
                   tensors: dict[str, np.ndarray], point_name: dict) -> RoundedWeights:
    """Every int8 layer's weights rounded on its input in the FP32 run (analysis/weight_rounding.py)."""
    rounded = {}
    for i, (layer_id, chain) in enumerate(chains.items()):
        scales = np.asarray(layers_plan[layer_id].weight_scales, np.float64)
        rounded[layer_id] = (round_layer(chain.layer, constants.value_of(chain.layer.weight), scales,
                                         tensors[point_name[chain.layer.activation]]), scales.reshape(-1))
        if (i + 1) % 10 == 0 or i + 1 == len(chains):
            log.info("weights rounded on the calibration data: %d/%d layers", i + 1, len(chains))
    return RoundedWeights(rounded)


def rounded_weights(build: BuildDir, plan: PrecisionPlan) -> RoundedWeights:
    """The int8 weights the plan's calibration rounded, from the build folder (NEAREST for a plan naming none)."""
    return plan_rounded_weights(plan.rounded_weights, build.path)


def _tensor_params(values: np.ndarray, calibration: CalibrationOptions, label: str, consumers: list[Consumer],
                   constants: Constants) -> tuple[AffineParams, str]:
    """One tensor's parameters, and the range method that gave them (auto: the least error at its consumers)."""
    if calibration.method != "auto":
        return activation_params(values, calibration, name=label), calibration.method
    candidates = {method: activation_params(values, dataclasses.replace(calibration, method=method), name=label)
                  for method in RANGE_CANDIDATES}
    method = least_error_range(values, candidates, consumers, constants)
    return candidates[method], method


def _result_bytes(module: ir.Module) -> tuple[int, int]:
    """(the model's batch, the bytes of everything its entry function returns for one batch)."""
    with module.context:
        function_type = ir.FunctionType(ir.TypeAttr(entry_function(module, "main").attributes["function_type"]).value)
        model_batch = ir.RankedTensorType(function_type.inputs[0]).shape[0]
        return model_batch, sum(int(np.prod(ir.RankedTensorType(t).shape)) * np.dtype(element_dtype(t)).itemsize
                                for t in function_type.results)


def _samples_within(module: ir.Module, samples: int, budget_bytes: int) -> int:
    """All the samples, or as many whole model batches as keep everything module's entry function returns for
    them under budget_bytes (at least one batch)."""
    model_batch, result_bytes = _result_bytes(module)
    return max(1, min(samples // model_batch, budget_bytes // max(result_bytes, 1))) * model_batch


def samples_per_call(module: ir.Module, samples: int) -> int:
    """How many samples one call of the batch-loop build of module (its entry function at the model's batch)
    takes: all of them, or as many as keep its results under CALL_RESULT_BYTES."""
    return _samples_within(module, samples, CALL_RESULT_BYTES)


def _given_activation_params(plan: PrecisionPlan, families: dict[str, list[str]]) -> dict[str, AffineParams]:
    """The input and output parameters a plan states, spread over every name of their tensor (a layer's output
    is the next one's input, and a max pool passes its int8 values on unchanged): they replace calibration there.
    Two different values for one tensor are refused."""
    chosen: dict[str, AffineParams] = {}
    for names in families.values():
        stated = {name: getattr(plan.layers[layer], side) for name in names
                  for layer, _, side in [name.rpartition(".")] if layer in plan.layers and side in ("input", "output")
                  and getattr(plan.layers[layer], side) is not None}
        if len(set(stated.values())) > 1:
            raise QuantuneError("the plan gives one tensor two sets of parameters: " + ", ".join(
                f"{name} {p.scale:g}:{p.zero_point} {p.dtype}" for name, p in stated.items())
                + "; give them once, or the same in both places")
        if stated:
            log.info("%s: quantization parameters as the plan gives them", " = ".join(names))
            chosen.update({name: next(iter(stated.values())) for name in names})
    return chosen


def _fit_bias(layer_id: str, scales: np.ndarray, bias: np.ndarray | None, x: AffineParams,
              widened: dict[str, list[int]]) -> np.ndarray:
    if bias is None:
        return scales
    fitted, channels = bias_fitting_scales(scales, bias, x.scale)
    if len(channels):
        widened[layer_id] = [int(c) for c in channels]
        log.warning("layer '%s': the weight scale of %d channel(s) (%s) widened so that the int32 bias fits at input "
                    "scale %.3g", layer_id, len(channels), ", ".join(map(str, channels[:8])) +
                    (", ..." if len(channels) > 8 else ""), x.scale)
    return fitted


def _check_weight_scales(layer_id: str, given: tuple[float, ...], channels: int) -> None:
    if len(given) not in (1, channels):
        raise QuantuneError(f"the plan gives layer '{layer_id}' {len(given)} weight scales, but it has {channels} "
                            f"output channel(s): give one per channel or a single one")


def lower_plan(build: BuildDir, plan: PrecisionPlan, options: QuantizeOptions, target: str, *,
               quantized_mlir: str | None = None) -> tuple[ir.Module, tuple[str, ...]]:
    """The imported model with the calibrated plan applied (written to quantized_mlir, if given) and lowered to
    integer linalg for target; with the names of the tensors it exposes (options.expose_int8)."""
    module = load_import(build)
    with module.context:
        apply_plan(module, plan, Constants(module), strict=options.strict, rounded=rounded_weights(build, plan))
    if quantized_mlir is not None:
        with build.atomic(quantized_mlir) as path:
            write_module(module, path, bytecode=True)
    library = kernels.library_for(get_target(target)) if options.kernels == "auto" else None
    key = kernels.target_config(get_target(target).for_int8().flag_file).object_key() if library else ""
    lowering = LowerQuant(expose_int8=options.expose_int8, kernels=library.name if library else "",
                          kernel_target=key, cost_model=options.cost_model)
    run_passes(module, [lowering, DepthwiseChannelsLast()], failure_dir=build.path)
    kernels.place_linked_objects(linked_objects(module), build.path)
    with module.context:
        return module, tuple(exposed_names(entry_function(module, "main")))


def lower_fp32(build: BuildDir) -> ir.Module:
    """The imported model with its layers in the form the FP32 layers of a mixed plan take (what the latency
    policy's FP32 costs are measured on)."""
    module = load_import(build)
    run_passes(module, [DepthwiseChannelsLast()], failure_dir=build.path)
    return module


class PlanCompileError(CompileError):
    """iree-compile rejected a plan's module, even without its speed-only flags; names the plan's FP32 layers,
    which a policy can change."""

    def __init__(self, message: str, fp32_layers: tuple[str, ...]):
        super().__init__(message)
        self.fp32_layers = fp32_layers


@contextlib.contextmanager
def naming_the_plan(plan: PrecisionPlan, target: str):
    try:
        yield
    except PlanCompileError:
        raise
    except CompileError as e:
        fp32 = tuple(layer for layer, chosen in plan.layers.items() if chosen.precision == "fp32")
        shown = ", ".join(fp32[:6]) + (f" and {len(fp32) - 6} more" if len(fp32) > 6 else "")
        kept = f"keeping {len(fp32)} layer(s) FP32 ({shown})" if fp32 else "with every layer int8"
        raise PlanCompileError(f"the plan {kept} does not compile for {target}: {e}", fp32) from None


def compile_plan(build: BuildDir, plan: PrecisionPlan, mlir_name: str, vmfb_name: str, *, target: str = "x86_64",
                 options: QuantizeOptions = QuantizeOptions(), batch: int | None = None) -> tuple[Path, tuple[str, ...]]:
    """A calibrated plan lowered and compiled without the audit, for the builds this machine runs: with the
    target's int8 flags (the variants quantune build measures), or, with batch, as an analysis build over a
    whole batch per call (quantune-batch-loop, the target's analysis flags). Returns the .vmfb and the names of
    the tensors it exposes."""
    module, exposed = lower_plan(build, plan, options, target)
    if batch is not None:
        run_passes(module, [BatchLoop(samples_per_call(module, batch))], failure_dir=build.path)
    with build.atomic(mlir_name) as path:
        write_module(module, path, bytecode=True)
    flags = get_target(target).for_analysis(int8=True) if batch is not None else get_target(target).for_int8()
    with naming_the_plan(plan, target):
        return compile_file(build / mlir_name, flags, build / vmfb_name, failure_dir=build.path,
                            object_dir=build.path), exposed


def rewrite_and_compile(build_dir: Path | str, plan: PrecisionPlan, target: str = "x86_64",
                        options: QuantizeOptions = QuantizeOptions(), extra_flags: tuple[str, ...] = ()
                        ) -> QuantizedBuild:
    """Apply a calibrated plan, lower it to integer linalg, compile and audit the kernels: 30_plan.json,
    40_quantized.mlirbc, 41_lowered.mlirbc, 50_<target>_quantized.vmfb and 51_<target>_audit.json. A layer
    planned int8 that compiled to float (or cannot be found) is logged as an error, or raised under strict."""
    build = BuildDir(build_dir)
    seconds = {}
    with build.atomic(PLAN) as path:
        path.write_text(plan.to_json())
    started = time.perf_counter()
    module, exposed = lower_plan(build, plan, options, target, quantized_mlir=QUANTIZED_MLIR)
    seconds["rewrite"] = time.perf_counter() - started
    with build.atomic(LOWERED_MLIR) as path:
        write_module(module, path, bytecode=True)
    started = time.perf_counter()
    compile_target, output = get_target(target).for_int8(), build / quantized_vmfb_name(target)
    audit = audit_path = None
    with naming_the_plan(plan, target):
        # beside the module, the flags that made it: `iree-compile @50_<target>_quantized.flags
        # --iree-hal-executable-object-search-path=<the folder> 41_lowered.mlirbc` gives the same bytes
        where = {"failure_dir": build.path, "object_dir": build.path, "flags_file": output.with_suffix(".flags")}
        if compile_target.arch == "any":
            vmfb = compile_file(build / LOWERED_MLIR, compile_target, output, extra_flags=extra_flags, **where)
        else:
            audit = compile_and_audit(build / LOWERED_MLIR, compile_target, output, layers=tuple(plan.layers),
                                      extra_flags=extra_flags, dump_dir=build / audit_dump_name(target), **where)
            vmfb = output
    if audit is not None:
        with build.atomic(audit_name(target)) as path:
            path.write_text(audit.to_json())
        audit_path = build / audit_name(target)
    seconds["compile"] = time.perf_counter() - started
    log.info("quantized %s: %d int8 layers, rewrite %.1f s, compile %.1f s", build.path,
             len(plan.int8_layers()), seconds["rewrite"], seconds["compile"])
    if audit is not None:
        report_audit_failures(audit, plan.int8_layers(), audit_path, strict=options.strict)
    return QuantizedBuild(plan, build / PLAN, build / LOWERED_MLIR, vmfb,
                          exposed, seconds, audit, audit_path)


def report_audit_failures(audit: KernelAudit, planned_int8: tuple[str, ...], audit_path: Path, *,
                          strict: bool) -> None:
    """A layer planned int8 that compiled to float, or that the audit cannot find, is never silent: an error
    in the log, or raised under strict."""
    failed = audit.failures(planned_int8)
    if not failed:
        return
    message = (f"{len(failed)} layer(s) planned int8 did not compile to an integer kernel: "
               + ", ".join(f"{v.layer} ({v.verdict})" for v in failed)
               + f"; see {audit_path}, and keep them fp32 in the plan")
    if strict:
        raise QuantuneError(message)
    log.error(message)
