"""QuantuneV2's analysis: exactly two inferences of the calibration batch, FP32 and all-int8, then the local
metrics of every layer and the sensitivity list.

1. The FP32 run (quantize.run_fp32): one pass over the batch of a build that returns every tensor the all-int8
   plan quantizes; it also calibrates the plan.
2. The int8 run: the calibrated all-int8 plan lowered as for deployment, returning every int8 tensor (and
   the fp32 output of int8 layers whose consumers are fp32), one pass.
A pass is one runtime call where the batch's tensors are small (the 28x28 zoo), else a few samples per call
(quantize.CALL_RESULT_BYTES).
3. Per layer: SQNR and MSE of its weights against their int8 round trip, and of its output in the int8 run
   against the FP32 run (the error accumulated from every layer up to it), plus its local error: its own int8
   arithmetic applied to the FP32 run's input, quantized. The score and the list: analysis/metrics.py.
4. The output layers' bias: the mean error the int8 run leaves at each model output, per channel, goes into the
   plan as that layer's output shift (decision/plan.py), the one bias correction that sees what every layer
   upstream adds.

Artifacts: 12_/13_ (the FP32 run's build), 21_int8_run.mlirbc, 22_int8_run_<host>.vmfb, 20_sensitivity.json
and 20_sensitivity.png.

The result is kept in quantune's cache (analyses/), keyed by the imported model, the calibration samples, the
options and quantune's own code: a second build of the same model and data with another policy or target
reuses it instead of running the two inferences again.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis.int8_layer import fp32_result, int8_layer_output
from .analysis.metrics import (LayerMetrics, MetricRatios, activation_metrics, mse, power_sqnr_db, sqnr_db,
                               weight_metrics)
from .analysis.noise_gain import output_gains, output_referred
from .analysis.sensitivity import ACTIVATION_ERRORS, SensitivityList
from .build_dir import (IMPORT_MLIR, INT8_RUN_MLIR, LAYER_TABLE, ONE_AT_A_TIME, ONE_AT_A_TIME_MLIR, SENSITIVITY,
                        SENSITIVITY_PLOT, BuildDir, int8_run_vmfb_name, one_at_a_time_vmfb_name,
                        rounded_weights_name)
from .cache import cache_dir
from .decision.plan import PrecisionPlan
from .errors import QuantuneError
from .layers import LayerTable
from .quantization import AffineParams, dequantize, quantize
from .quantize import FP32Run, QuantizeOptions, compile_plan, load_import, rounded_weights, run_fp32
from .report.plots import sensitivity_bars
from .rewrite.chains import QuantPoint, downstream_consumers, int8_region, output_layers
from .rewrite.graph import Constants
from .runtime import CompiledModule, run_over_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisOptions:
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)  # calibration method, strict
    ratios: MetricRatios = field(default_factory=MetricRatios)  # of the four metrics in the score
    host_target: str = "x86_64"  # both runs happen on this machine
    # which activation error the score reads (ACTIVATION_ERRORS): the output-referred one ranked best of the four
    # on the real-model bench (docs/benchmarks/2026-12-04-output-referred-score-and-weight-rounding.md)
    activation_error: str = "output"

    def __post_init__(self):
        if self.activation_error not in ACTIVATION_ERRORS:
            raise QuantuneError(f"activation error '{self.activation_error}': choose "
                                f"{', '.join(ACTIVATION_ERRORS[:-1])} or {ACTIVATION_ERRORS[-1]}")


@dataclass(frozen=True)
class Analysis:
    sensitivity: SensitivityList
    plan: PrecisionPlan  # all-int8, calibrated on the FP32 run
    fp32_only: dict[str, str]  # layers that cannot run int8, and why: not in the list, always FP32
    widened_channels: dict[str, list[int]]  # weight scales widened for the int32 bias to fit (quantize.run_fp32)
    range_methods: dict[str, int]  # how many tensors each activation range method calibrated
    # per variant ("local", "added", "output"; sensitivity.ACTIVATION_ERRORS), each layer's activation (SQNR, MSE)
    activation_errors: dict[str, dict[str, tuple[float, float]]]
    samples: int
    inferences: int  # passes over the calibration batch: one per run
    # Wall time of each phase; "ranking": up to the written list, what the one-at-a-time baseline's time
    # compares with (it draws no chart); "total": with the chart.
    seconds: dict[str, float]
    sensitivity_path: Path
    plot_path: Path
    reused_from: Path | None = None  # the cache entry this analysis was read from, when it was not run here

    def to_json(self) -> str:
        return json.dumps({"schema_version": CACHE_SCHEMA, "sensitivity": json.loads(self.sensitivity.to_json()),
                           "plan": json.loads(self.plan.to_json()), "fp32_only": self.fp32_only,
                           "widened_channels": self.widened_channels, "range_methods": self.range_methods,
                           "activation_errors": self.activation_errors, "samples": self.samples,
                           "inferences": self.inferences, "seconds": self.seconds})


CACHE_SCHEMA = 2


def analysis_cache() -> Path:
    """QUANTUNE_ANALYSIS_CACHE, else analyses/ in quantune's cache."""
    return Path(os.environ.get("QUANTUNE_ANALYSIS_CACHE") or cache_dir("analyses"))


@functools.cache
def _code_digest() -> bytes:
    """quantune's own code: an analysis cached by other code is never read back."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.digest()


def _cache_entry(build: BuildDir, samples: np.ndarray, options: AnalysisOptions) -> Path:
    digest = hashlib.sha256(_code_digest())
    digest.update((build / IMPORT_MLIR).read_bytes())
    samples = np.ascontiguousarray(samples)
    digest.update(f"{samples.dtype} {samples.shape} {options!r}".encode())
    digest.update(samples.tobytes())
    return analysis_cache() / f"{digest.hexdigest()[:40]}.json"


def _read_cached(entry: Path, build: BuildDir, table: LayerTable) -> Analysis | None:
    try:
        data = json.loads(entry.read_text())
        if data.get("schema_version") != CACHE_SCHEMA:
            return None
        sensitivity = SensitivityList.from_json(json.dumps(data["sensitivity"]), str(entry))
        plan = PrecisionPlan.from_json(json.dumps(data["plan"]), table.ids, str(entry))
        errors = {variant: {layer: (float(s), float(m)) for layer, (s, m) in by_layer.items()}
                  for variant, by_layer in data["activation_errors"].items()}
        fields = (data["fp32_only"], data["widened_channels"], data["range_methods"], errors, int(data["samples"]),
                  int(data["inferences"]), data["seconds"])
        if plan.rounded_weights is not None:
            rounded = entry.with_suffix(".npz").read_bytes()
    except (OSError, ValueError, KeyError, TypeError, QuantuneError) as e:
        log.warning("ignoring the cached analysis %s (%s): running the analysis", entry, e)
        return None
    if plan.rounded_weights is not None:
        with build.atomic(rounded_weights_name(plan.rounded_weights)) as path:
            path.write_bytes(rounded)
    with build.atomic(SENSITIVITY) as path:
        path.write_text(sensitivity.to_json())
    plot = sensitivity_bars(sensitivity, build / SENSITIVITY_PLOT)
    return Analysis(sensitivity, plan, *fields, build / SENSITIVITY, plot, reused_from=entry)


def analyze(build_dir: Path | str, samples: np.ndarray, options: AnalysisOptions = AnalysisOptions(), *,
            reuse: bool = False) -> Analysis:
    """The sensitivity list of an imported build folder from two inferences of samples (model-ready inputs).
    reuse: read a cached analysis of the same model, samples, options and code instead, where there is one;
    either way the result is cached."""
    build = BuildDir(build_dir)
    started = time.perf_counter()
    table = _layer_table(build)
    entry = _cache_entry(build, samples, options)
    if reuse and entry.is_file():
        cached = _read_cached(entry, build, table)
        if cached is not None:
            log.info("analysis reused from %s (the same model, samples, options and quantune code; "
                     "--fresh-analysis runs it again)", entry)
            return cached
    log.info("analysis 1/2: the FP32 run on %d samples", len(samples))
    fp32 = run_fp32(build.path, PrecisionPlan.uniform(table, "int8"), samples, options.quantize,
                    options.host_target)
    seconds = {f"fp32 {phase}": s for phase, s in fp32.seconds.items()}
    log.info("analysis 2/2: the all-int8 run")
    int8, int8_seconds = _int8_run(build, fp32, samples[:fp32.samples], options)
    seconds.update({f"int8 {phase}": s for phase, s in int8_seconds.items()})
    phase = time.perf_counter()
    metrics, errors = layer_metrics(build, fp32.plan, fp32.tensors, int8)
    plan = fp32.plan.with_output_shifts(output_shifts(build, fp32.plan, fp32.tensors, int8))
    sensitivity = SensitivityList.from_metrics(table.model, metrics, options.ratios, errors, options.activation_error)
    seconds["metrics"] = time.perf_counter() - phase
    with build.atomic(SENSITIVITY) as path:
        path.write_text(sensitivity.to_json())
    seconds["ranking"] = time.perf_counter() - started
    log.info("sensitivity list of %d layers from 2 inferences in %.1f s: %s", len(metrics), seconds["ranking"],
             build / SENSITIVITY)
    phase = time.perf_counter()
    plot = sensitivity_bars(sensitivity, build / SENSITIVITY_PLOT)
    seconds["plot"] = time.perf_counter() - phase
    seconds["total"] = time.perf_counter() - started
    analysis = Analysis(sensitivity, plan, fp32.fp32_only, fp32.widened_channels, fp32.range_methods, errors,
                        fp32.samples, fp32.inferences + 1, seconds, build / SENSITIVITY, plot)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = entry.with_suffix(f".{os.getpid()}.tmp")
        if plan.rounded_weights is not None:  # before the entry, which names it
            scratch.write_bytes((build / rounded_weights_name(plan.rounded_weights)).read_bytes())
            os.replace(scratch, entry.with_suffix(".npz"))
        scratch.write_text(analysis.to_json())
        os.replace(scratch, entry)  # whole or absent, also with two builds writing at once
    except OSError as e:
        log.warning("could not cache the analysis in %s (%s): the next build runs it again", entry.parent, e)
    return analysis


def _layer_table(build: BuildDir) -> LayerTable:
    path = build / LAYER_TABLE
    if not path.is_file():
        raise QuantuneError(f"{build.path} holds no {LAYER_TABLE}; run `quantune import ... -o {build.path}` first")
    return LayerTable.load(path)


def _int8_run(build: BuildDir, fp32: FP32Run, samples: np.ndarray, options: AnalysisOptions
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    started = time.perf_counter()
    vmfb, names = compile_plan(build, fp32.plan, INT8_RUN_MLIR, int8_run_vmfb_name(options.host_target),
                               target=options.host_target,
                               options=dataclasses.replace(options.quantize, expose_int8=True), batch=len(samples))
    seconds = {"rewrite and compile": time.perf_counter() - started}
    started = time.perf_counter()
    outputs = run_over_batch(CompiledModule(vmfb), samples)
    seconds["inference"] = time.perf_counter() - started
    return dict(zip(names, outputs[len(outputs) - len(names):])), seconds


def layer_metrics(build: BuildDir, plan: PrecisionPlan, fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray]
                  ) -> tuple[list[LayerMetrics], dict[str, dict[str, tuple[float, float]]]]:
    """Every int8 layer's four metrics (its output in the int8 run against the FP32 run), and its activation
    (SQNR, MSE) by the other measures of ACTIVATION_ERRORS: "local", its own int8 arithmetic on the FP32 run's
    input; "added", the accumulated error less the error its FP32 arithmetic carries over from the int8 run's
    input (noise powers subtract: the layer's own error is nearly uncorrelated with what it inherits); "output",
    the local error times the noise gain from the layer's output to the model's (analysis/noise_gain.py)."""
    import torch
    module = load_import(build)
    rounded = rounded_weights(build, plan)
    metrics, local, added = [], {}, {}
    accumulated, inherited, output_power = {}, {}, {}
    with module.context:
        constants = Constants(module)
        region = int8_region(module, set(plan.int8_layers()), constants)
        point_of = {p.value: p for p in region.points}
        consumers = downstream_consumers(region)

        def params(point: QuantPoint) -> AffineParams:
            layer_id, role = point.params_name.rsplit(".", 1)
            return getattr(plan.layers[layer_id], role)

        def fp32_int8_input(value) -> tuple[np.ndarray, AffineParams]:
            point = point_of[value]
            return quantize(fp32[point.name], params(point)), params(point)

        def int8_run_input(value) -> np.ndarray:
            point = point_of[value]
            return dequantize(int8[point.name], params(point)).astype(np.float32)

        for layer_id, chain in region.chains.items():
            scales = np.asarray(plan.layers[layer_id].weight_scales, np.float64)
            weight = constants.value_of(chain.layer.weight)
            weight_sqnr, weight_mse = weight_metrics(weight, scales, rounded.int8(layer_id, weight, scales))
            end = point_of.get(chain.end)
            carried = fp32_result(chain.layer, constants, torch.from_numpy(int8_run_input(chain.layer.activation)))
            if end is not None:  # the layer writes int8
                reference, out = fp32[end.name], params(end)
                act_sqnr, act_mse = activation_metrics(reference, int8[end.name], out)
                if chain.residual is not None:
                    input_only = _epilogue(carried, fp32[point_of[chain.residual].name], chain.clamp)
                    carried = _epilogue(carried, int8_run_input(chain.residual), chain.clamp)
                else:
                    carried = input_only = _epilogue(carried, None, chain.clamp)
            else:
                reference, out = fp32[f"{layer_id}.output"], None
                restored = int8[f"{layer_id}.output"]
                act_sqnr, act_mse = sqnr_db(reference, restored), mse(reference, restored)
                input_only = carried
            residual = fp32_int8_input(chain.residual) if chain.residual is not None else None
            alone = int8_layer_output(chain, scales, constants, fp32_int8_input(chain.layer.activation), residual,
                                      out, plan.layers[layer_id].bias_correction, rounded)
            alone = dequantize(alone, out) if out is not None else alone
            local[layer_id] = (sqnr_db(reference, alone), mse(reference, alone))
            added[layer_id] = _noise_less(reference, act_mse, mse(reference, carried))
            accumulated[layer_id], inherited[layer_id] = act_mse, mse(reference, input_only)
            if ("output", None) in consumers[layer_id]:
                output_power[layer_id] = float(np.mean(reference.astype(np.float64) ** 2))
            metrics.append(LayerMetrics(layer_id, weight_sqnr, weight_mse, act_sqnr, act_mse))
    gains = output_gains(consumers, accumulated, inherited)
    referred = output_referred(local, gains, float(np.mean(list(output_power.values()))) if output_power else 1.0)
    return metrics, {"local": local, "added": added, "output": referred}


def _epilogue(result: np.ndarray, residual: np.ndarray | None, clamp: tuple[float, float]) -> np.ndarray:
    return np.clip(result if residual is None else result + residual, *clamp)


def output_shifts(build: BuildDir, plan: PrecisionPlan, fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray]
                  ) -> dict[str, tuple[float, ...]]:
    """Per output layer (rewrite.chains.output_layers), minus the int8 run's mean error at its result, per
    channel, over the samples and positions."""
    module = load_import(build)
    with module.context:
        layers = output_layers(int8_region(module, set(plan.int8_layers()), Constants(module)))
    shifts = {}
    for layer_id in layers:
        error = int8[f"{layer_id}.output"].astype(np.float64) - fp32[f"{layer_id}.output"]
        shifts[layer_id] = tuple(float(v) for v in -error.mean(axis=(0, *range(2, error.ndim))))
        log.info("layer '%s' writes a model output: its bias takes the int8 run's mean error there (RMS %.3g of "
                 "an error RMS %.3g)", layer_id, float(np.sqrt(np.mean(np.square(shifts[layer_id])))),
                 float(np.sqrt(np.mean(error ** 2))))
    return shifts


def _noise_less(reference: np.ndarray, total_mse: float, inherited_mse: float) -> tuple[float, float]:
    """(SQNR, MSE) of the noise power total_mse less inherited_mse (at least 0) against reference's power."""
    own = max(total_mse - inherited_mse, 0.0)
    return power_sqnr_db(float(np.mean(reference.astype(np.float64) ** 2)), own), own


@dataclass(frozen=True)
class OneAtATime:
    """The baseline QuantuneV2 replaces: quantize one layer at a time and measure the model's output, n + 1
    inferences (and n compiles) for n layers."""

    ranked: tuple[str, ...]  # most sensitive first: the lowest output SQNR with that layer alone int8
    output_sqnr_db: dict[str, float]
    inferences: int
    seconds: float

    def to_json(self) -> str:
        return json.dumps({"ranked": list(self.ranked), "output_sqnr_db": self.output_sqnr_db,
                           "inferences": self.inferences, "seconds": self.seconds}, indent=1)


def one_layer_at_a_time(build_dir: Path | str, samples: np.ndarray, options: AnalysisOptions = AnalysisOptions()
                        ) -> OneAtATime:
    """Rank the layers by the output SQNR (against FP32, on samples) of the model with only that layer int8."""
    build = BuildDir(build_dir)
    started = time.perf_counter()
    table = _layer_table(build)
    fp32 = run_fp32(build.path, PrecisionPlan.uniform(table, "int8"), samples, options.quantize,
                    options.host_target)
    samples = samples[:fp32.samples]
    layers = fp32.plan.int8_layers()
    all_fp32 = dataclasses.replace(PrecisionPlan.uniform(table, "fp32"), rounded_weights=fp32.plan.rounded_weights)
    scores = {}
    for i, layer in enumerate(layers):
        plan = dataclasses.replace(all_fp32, layers={**all_fp32.layers, layer: fp32.plan.layers[layer]})
        vmfb, _ = compile_plan(build, plan, ONE_AT_A_TIME_MLIR, one_at_a_time_vmfb_name(options.host_target),
                               target=options.host_target, options=options.quantize, batch=len(samples))
        scores[layer] = sqnr_db(fp32.outputs[0], run_over_batch(CompiledModule(vmfb), samples)[0])
        log.info("one layer at a time: %d/%d %s alone int8: output SQNR %.1f dB", i + 1, len(layers), layer,
                 scores[layer])
    result = OneAtATime(tuple(sorted(layers, key=lambda layer: scores[layer])), scores, len(layers) + 1,
                        time.perf_counter() - started)
    with build.atomic(ONE_AT_A_TIME) as path:
        path.write_text(result.to_json())
    return result
