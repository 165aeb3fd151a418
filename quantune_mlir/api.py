"""The Python API: import a model, compile it for a target, run it. The CLI is a thin layer over this."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .analyze import Analysis, AnalysisOptions, OneAtATime, analyze, one_layer_at_a_time
from .build_dir import (ANALYSIS_STAGES, EVERY_STAGE, IMPORT_MLIR, INSTRUMENTED_MLIR, LAYER_TABLE,
                        QUANTIZE_STAGES, BuildDir, instrumented_vmfb_name, vmfb_name)
from .compile import compile_file, get_target
from .compile.iree_compile import CompileError
from .data import FASHION_MNIST_PREPROCESS, Preprocess
from .data.resolve import load_data
from .errors import QuantuneError
from .evaluation import Evaluation, Predictor, evaluate, module_predictor, torch_predictor
from .importers import ImportedModel, import_onnx, import_torch
from .layers import LayerTable
from .mlir import ir, parse_module, write_module
from .decision.plan import PrecisionPlan
from .quantize import QuantizedBuild, QuantizeOptions, calibrate, rewrite_and_compile
from .rewrite import run_passes
from .rewrite.expose_layer_outputs import ExposeLayerOutputs
from .runtime import CompiledModule, QemuModule, RuntimeOptions
from .tensor_spec import TensorSpec
from .zoo import IMAGENET_PREPROCESS, ZooModel, load_weights, parse_zoo_id

if TYPE_CHECKING:
    from .pipeline import BuildOptions

log = logging.getLogger(__name__)


def import_model(source, *, example_inputs=None, name: str | None = None, build_dir: Path | str | None = None,
                 weights: Path | str | None = None, input_shapes: dict[str, tuple[int, ...]] | None = None,
                 context: ir.Context | None = None) -> ImportedModel:
    """source: a torch nn.Module (with example_inputs), a path to an .onnx file, or a zoo id such as
    'resnet18' or 'mobilenet_v2-small' (weights: a state_dict file for it; default the shipped trained
    weights, if any). input_shapes fixes an ONNX model's dynamic input dimensions (a dynamic batch alone
    becomes 1 without it). With build_dir, writes 00_import.mlirbc and 01_layers.json."""
    import torch
    context = context or ir.Context()
    if isinstance(source, torch.nn.Module):
        if example_inputs is None:
            raise QuantuneError("importing an nn.Module needs example_inputs (a tuple of tensors of the real "
                                "input shape)")
        inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        imported = import_torch(source, inputs, name or type(source).__name__, context)
    elif str(source).endswith(".onnx"):
        imported = import_onnx(Path(source), name or Path(source).stem, context, input_shapes)
    else:
        zoo = parse_zoo_id(str(source))
        if input_shapes:
            raise QuantuneError(f"--input-shape is for ONNX models with dynamic inputs; {zoo.id} takes "
                                f"{'x'.join(map(str, zoo.input_shape))}")
        imported = import_torch(zoo_reference(zoo, weights), (torch.randn(zoo.input_shape),), name or zoo.id,
                                context)
    if build_dir is not None:
        with BuildDir(build_dir).writing("quantune import", EVERY_STAGE) as build:
            save_import(imported, build)
    return imported


def zoo_reference(zoo: ZooModel, weights: Path | str | None = None):
    """The zoo model with weights: the given checkpoint, else the trained one quantune ships for it, else
    seeded random weights (the same on every call) whose batch norms get random statistics and affine
    parameters, as after training, so that folding them is exercised (freshly initialised ones are identities)."""
    import torch
    torch.manual_seed(0)
    model = zoo.build()
    checkpoint = weights or zoo.shipped_weights
    if checkpoint is not None:
        return load_weights(model, checkpoint, zoo.id)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def save_import(imported: ImportedModel, build: BuildDir) -> None:
    with build.atomic(IMPORT_MLIR) as path:
        write_module(imported.module, path, bytecode=True)
    with build.atomic(LAYER_TABLE) as path:
        data = json.loads(imported.layers.to_json())
        data["inputs"] = [spec.to_json() for spec in imported.inputs]
        path.write_text(json.dumps(data, indent=1))
    log.info("wrote %s and %s in %s", IMPORT_MLIR, LAYER_TABLE, build.path)


def build_calibration_samples(build_dir: Path | str, spec: str, limit: int) -> np.ndarray:
    """calibration_samples for the model imported into build_dir."""
    shape = model_input_shape(build_dir)
    return calibration_samples(load_layer_table(build_dir).model, spec, limit, shape)


def model_input_shape(build_dir: Path | str) -> tuple[int, ...] | None:
    """The shape of the imported model's one input, as the layer table records it (None in a layer table written
    without it). Calibration and evaluation feed one input tensor: a model of several is refused."""
    table = load_layer_table(build_dir)  # the error for a folder without one
    inputs = json.loads((BuildDir(build_dir) / LAYER_TABLE).read_text()).get("inputs") or []
    if len(inputs) > 1:
        raise QuantuneError(f"{table.model} has {len(inputs)} inputs: quantune quantizes models of one input tensor "
                            "(import, compile and run take any); export the model with one input")
    return tuple(inputs[0]["shape"]) if inputs else None


def load_layer_table(build_dir: Path | str) -> LayerTable:
    path = BuildDir(build_dir) / LAYER_TABLE
    if not path.is_file():
        raise QuantuneError(f"{path}: no layer table; run `quantune import` into {build_dir} first")
    return LayerTable.load(path)


def compile_model(source: Path | str, target: str = "x86_64", *, output: Path | str | None = None,
                  extra_flags: tuple[str, ...] = ()) -> Path:
    """source: an MLIR file, or a build folder (its 00_import.mlirbc). Default output: 50_<target>.vmfb in the
    build folder, or beside the MLIR file."""
    source = Path(source)
    target_spec = get_target(target)
    if source.is_dir():
        mlir = source / IMPORT_MLIR
        if not mlir.is_file():
            raise QuantuneError(f"{source} holds no {IMPORT_MLIR}; run `quantune import ... -o {source}` first")
        out_dir = source
    else:
        mlir, out_dir = source, source.parent
    output = Path(output) if output else out_dir / vmfb_name(target)
    if not source.is_dir():  # lowered MLIR names its kernel objects relative to its own folder
        return compile_file(mlir, target_spec, output, extra_flags=tuple(extra_flags), failure_dir=out_dir,
                            object_dir=mlir.parent)
    with BuildDir(out_dir).writing("quantune compile"):
        try:
            return compile_file(mlir, target_spec, output, extra_flags=tuple(extra_flags), failure_dir=out_dir,
                                flags_file=output.with_suffix(".flags"))
        except CompileError:
            parse_module(mlir, ir.Context())  # a damaged import is named with the way out, not by iree-compile
            raise


def instrument(build_dir: Path | str, target: str = "x86_64") -> Path:
    """The FP32 build that also returns every layer's output (10_instrumented.mlirbc, 11_instrumented_<target>.vmfb):
    one run of it gives all the activations the analysis needs."""
    build = BuildDir(build_dir)
    source = build / IMPORT_MLIR
    if not source.is_file():
        raise QuantuneError(f"{build.path} holds no {IMPORT_MLIR}; run `quantune import ... -o {build.path}` first")
    module = parse_module(source, ir.Context())
    run_passes(module, [ExposeLayerOutputs()], failure_dir=build.path)
    with build.atomic(INSTRUMENTED_MLIR) as path:
        write_module(module, path, bytecode=True)
    return compile_file(build / INSTRUMENTED_MLIR, get_target(target).for_analysis(int8=False),
                        build / instrumented_vmfb_name(target), failure_dir=build.path)


def layer_outputs(module: CompiledModule, table: LayerTable, inputs: tuple[np.ndarray, ...]
                  ) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Run an instrumented module: (the model's outputs, layer id -> that layer's output)."""
    outputs = module(*inputs)
    model_outputs = len(outputs) - len(table)
    if model_outputs < 1:
        raise QuantuneError(f"{module.path.name} returns {len(outputs)} results for {len(table)} layers: it is not "
                            "an instrumented build of this model (see `quantune_mlir.instrument`)")
    return outputs[:model_outputs], dict(zip(table.ids, outputs[model_outputs:]))


def load_module(vmfb: Path | str, threads: int = 1, target: str | None = None) -> CompiledModule | QemuModule:
    """target: the one vmfb was compiled for, default this machine. An aarch64 module on another machine runs
    under qemu-aarch64: outputs only, on one thread, never timed."""
    if target is not None and get_target(target).runs_under_qemu:
        if threads != 1:
            raise QuantuneError(f"{Path(vmfb).name} runs under qemu-aarch64 on one thread, not {threads}")
        return QemuModule(vmfb)
    return CompiledModule(Path(vmfb), RuntimeOptions.for_threads(threads))


def random_inputs(specs: tuple[TensorSpec, ...] | list[TensorSpec], seed: int = 0) -> tuple[np.ndarray, ...]:
    """Seeded standard-normal inputs of the given shapes and dtypes."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(spec.shape).astype(spec.dtype) for spec in specs)


def relative_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    denom = float(np.linalg.norm(expected.astype(np.float64)))
    diff = float(np.linalg.norm(actual.astype(np.float64) - expected.astype(np.float64)))
    return diff / denom if denom else diff


def _is_small_zoo_id(source) -> bool:
    return isinstance(source, str) and source.endswith("-small") and not source.endswith(".onnx")


def reference_outputs(source, inputs: tuple[np.ndarray, ...], weights: Path | str | None = None
                      ) -> list[np.ndarray] | None:
    """What the framework computes for inputs: PyTorch eager for modules and zoo ids, onnxruntime for ONNX
    files (None when onnxruntime is not installed)."""
    import torch
    if str(source).endswith(".onnx"):
        try:
            import onnxruntime
        except ImportError:
            log.warning("onnxruntime is not installed: no reference to check %s against", source)
            return None
        session = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return list(session.run(None, dict(zip(names, inputs))))
    model = source if isinstance(source, torch.nn.Module) else zoo_reference(parse_zoo_id(str(source)), weights)
    with torch.no_grad():
        out = model.eval()(*(torch.from_numpy(x) for x in inputs))
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def build(source, build_dir: Path | str = "build", options: "BuildOptions | None" = None) -> dict:
    """The whole pipeline (quantune_mlir.pipeline): import, the two-inference analysis, a policy's plan, rewrite,
    compile for options.target, evaluate, report (60_report.json and .md with plots). Returns the report."""
    from .pipeline import BuildOptions, build_model
    return build_model(source, build_dir, options or BuildOptions())


def analyze_model(build_dir: Path | str, *, calibration_data: str = "fashion-mnist", calibration_images: int = 64,
                  options: AnalysisOptions | None = None) -> Analysis:
    """The sensitivity list of an imported build folder from exactly two inferences (quantune_mlir.analyze)."""
    samples = build_calibration_samples(build_dir, calibration_data, calibration_images)
    with BuildDir(build_dir).writing("quantune analyze", ANALYSIS_STAGES):
        return analyze(build_dir, samples, options or AnalysisOptions())


def one_at_a_time(build_dir: Path | str, *, calibration_data: str = "fashion-mnist", calibration_images: int = 64,
                  options: AnalysisOptions | None = None) -> OneAtATime:
    """The baseline ranking: one build and inference per layer (n + 1 inferences)."""
    samples = build_calibration_samples(build_dir, calibration_data, calibration_images)
    with BuildDir(build_dir).writing("quantune analyze --one-at-a-time"):
        return one_layer_at_a_time(build_dir, samples, options or AnalysisOptions())


def predictor(source: str, *, weights: Path | str | None = None, threads: int = 1) -> "Predictor":
    """A zoo id (PyTorch eager) or a .vmfb, as something evaluate() can run."""
    if str(source).endswith(".vmfb"):
        return module_predictor(load_module(source, threads), Path(source).name)
    if str(source).endswith(".onnx"):
        raise QuantuneError(f"{source}: evaluate ONNX models after compiling them (`quantune build {source}`), "
                            "then pass the .vmfb")
    zoo = parse_zoo_id(str(source))
    return torch_predictor(zoo_reference(zoo, weights), zoo.id, zoo.input_shape, zoo.num_classes)


def preprocess_for(source: str) -> Preprocess:
    """The zoo model's preprocessing; for a .vmfb, that of the model its build folder was imported from (none
    for a model outside the zoo), else the one its input shape implies (1x28x28: Fashion-MNIST, 3x224x224:
    ImageNet). QuantuneError when none is known."""
    if not str(source).endswith(".vmfb"):
        return parse_zoo_id(str(source)).preprocess
    table = Path(source).parent / LAYER_TABLE
    if table.is_file():  # its build folder names the model: no guess from the shape for a model outside the zoo
        model = LayerTable.load(table).model
        try:
            return parse_zoo_id(model).preprocess
        except QuantuneError:
            raise QuantuneError(f"{source}: no preprocessing is known for {model}, which is not a zoo model; pass "
                                "float32 model-ready inputs in a .npy/.npz") from None
    shape = load_module(source).input_specs[0].shape[1:]
    by_shape = {(1, 28, 28): FASHION_MNIST_PREPROCESS, (3, 224, 224): IMAGENET_PREPROCESS}
    if shape not in by_shape:
        raise QuantuneError(f"{source}: no preprocessing known for inputs {shape}; pass float inputs in a .npz")
    return by_shape[shape]


def evaluate_model(source: str, data: str = "fashion-mnist", *, split: str = "test", limit: int | None = None,
                   compare: str | None = None, weights: Path | str | None = None, threads: int = 1,
                   batch_size: int = 100) -> Evaluation:
    model = predictor(source, weights=weights, threads=threads)  # first: a wrong model fails before the data load
    other = predictor(compare, threads=threads) if compare else None
    try:
        preprocess = preprocess_for(source)
    except QuantuneError:
        preprocess = None  # then load_data takes model-ready float arrays only, and says so for anything else
    dataset = load_data(data, preprocess, split=split, limit=limit)
    return evaluate(model, dataset, compare=other, batch_size=batch_size)


def quantize_model(build_dir: Path | str, target: str = "x86_64", *, plan: Path | str | None = None,
                   calibration_data: str = "fashion-mnist", calibration_images: int = 64,
                   options: QuantizeOptions = QuantizeOptions(), extra_flags: tuple[str, ...] = ()
                   ) -> QuantizedBuild:
    """Quantize an imported build folder: every layer int8 (plan None) or as a plan JSON says, calibrated on
    calibration_images inputs (Fashion-MNIST's train split by default), rewritten to integer linalg and
    compiled to 50_<target>_quantized.vmfb."""
    table = load_layer_table(build_dir)
    chosen = PrecisionPlan.load(Path(plan), table.ids) if plan else PrecisionPlan.uniform(table, "int8")
    samples = build_calibration_samples(build_dir, calibration_data, calibration_images)
    log.info("calibrating %d int8 layers on %d inputs of %s", len(chosen.int8_layers()), len(samples),
             calibration_data)
    with BuildDir(build_dir).writing("quantune quantize", QUANTIZE_STAGES):
        calibrated = calibrate(build_dir, chosen, samples, options)
        return rewrite_and_compile(build_dir, calibrated, target, options, extra_flags)


def calibration_samples(model: str, spec: str = "fashion-mnist", limit: int = 64,
                        input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The inputs quantize_model calibrates model on: a seeded subset of spec (Fashion-MNIST's train split by
    default) through the model's preprocessing, checked against its input shape (a zoo model's own, else
    input_shape) now rather than when the calibration build, compiled, refuses them."""
    try:
        zoo = parse_zoo_id(model)
    except QuantuneError:
        zoo = None  # no preprocessing known: model-ready float arrays only (uint8 images are refused, not guessed)
    if zoo is None and Path(spec).suffix not in (".npy", ".npz"):
        raise QuantuneError(f"no preprocessing is known for {model}: pass --calibration-data as a .npy/.npz of "
                            "model-ready float32 inputs")
    split = "train" if spec == "fashion-mnist" else "test"
    data = load_data(spec, zoo.preprocess if zoo else None, split=split, limit=limit)
    shape = zoo.input_shape if zoo else input_shape
    if shape is not None:
        data.check_fits(shape)
    return data.inputs
