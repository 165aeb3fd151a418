"""PyTorch nn.Module -> linalg-on-tensors through torch.export and torch-mlir's FX importer.

Batch norm is folded into the preceding conv before export (torch.fx's conv-bn fusion), and every FX node
that belongs to a Conv2d or Linear module gets a NameLoc with that module's path: the layer id.
"""
from __future__ import annotations

import logging
import re
import warnings

import torch
from torch import nn

from ..errors import QuantuneError
from ..layers import LayerInfo
from ..mlir import ir, torch_mlir_modules
from ..tensor_spec import TensorSpec
from .common import TORCH_TO_LINALG, Diagnostics, ImportedModel, finish_import, lower_to_linalg

log = logging.getLogger(__name__)

_LAYER_CALLS = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default, torch.ops.aten.convolution.default)


def fold_batch_norm(model: nn.Module, name: str) -> nn.Module:
    from torch.fx.experimental.optimization import fuse
    try:
        return fuse(model, inplace=False)
    except Exception as e:  # symbolic tracing rejects data-dependent Python control flow
        log.warning("%s: batch norm left unfolded, torch.fx could not trace the model (%s)", name,
                    str(e).splitlines()[0])
        return model


def _innermost_layer(node: torch.fx.Node, layer_modules: dict[str, nn.Module]) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path if path in layer_modules else None


def _layer_info(layer_id: str, module: nn.Module, node: torch.fx.Node) -> LayerInfo:
    weight = module.weight
    params = weight.numel() + (module.bias.numel() if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        kind = "linear"
    else:
        depthwise = module.groups > 1 and module.groups == module.in_channels
        kind = "depthwise_conv" if depthwise else "conv"
    return LayerInfo(layer_id, kind, tuple(node.args[0].meta["val"].shape), tuple(node.meta["val"].shape),
                     tuple(weight.shape), params)


def _source_of(program: torch.export.ExportedProgram, op_name: str) -> str | None:
    """'torch.aten.median.dim' -> where the model calls it: the module path and the last source line."""
    wanted = op_name.removeprefix("torch.")
    for node in program.graph.nodes:
        target = getattr(node.target, "name", lambda: "")()
        if node.op != "call_function" or f"aten.{target.removeprefix('aten::')}" != wanted:
            continue
        stack = node.meta.get("nn_module_stack") or {}
        module = list(stack.values())[-1][0] if stack else ""
        frames = re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace") or "")
        place = f"{frames[-1][0]}:{frames[-1][1]}" if frames else ""
        return ", ".join(p for p in (f"module {module}" if module else "forward()", place) if p)
    return None


def _check_inputs(name: str, example_inputs: tuple[torch.Tensor, ...]) -> tuple[TensorSpec, ...]:
    specs = []
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise QuantuneError(f"{name}: example input {i} is a {type(x).__name__}, expected a torch.Tensor")
        if x.dtype != torch.float32:
            raise QuantuneError(f"{name}: example input {i} has dtype {x.dtype}; quantune imports float32 "
                                "models (call .float() on the input and the model)")
        specs.append(TensorSpec(tuple(x.shape), "float32"))
    return tuple(specs)


# A frame of a torch.fx node's stack trace, as torch-mlir's FX importer reads it
_STACK_FRAME = re.compile(r"""File "([^"]+)", line ([0-9]+),""")


def _portable_path(path: str) -> str:
    """A source file as the locations name it: from its package on (torch/nn/modules/conv.py), or its file name,
    never the folder it lies in here, so that the MLIR and the modules built from it are the same on any
    machine and in any virtual environment."""
    _, marker, inside = path.rpartition("-packages/")
    return inside if marker else path.rpartition("/")[2]


def _check_finite_parameters(model: nn.Module, name: str) -> None:
    """A NaN or Inf weight makes every output NaN; the analysis would fail on it later without naming the layer."""
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            layer, _, what = key.rpartition(".")
            raise QuantuneError(f"{name}: layer '{layer or key}': its {what} holds NaN or Inf; fix the checkpoint (or "
                                "the training run that wrote it)")


def import_torch(model: nn.Module, example_inputs: tuple[torch.Tensor, ...], name: str,
                 context: ir.Context) -> ImportedModel:
    with warnings.catch_warnings():
        # torch's own pytree deprecation noise (LeafSpec), raised inside torch.export: nothing a user can act on
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        return _import_torch(model, example_inputs, name, context)


def _import_torch(model: nn.Module, example_inputs: tuple[torch.Tensor, ...], name: str,
                  context: ir.Context) -> ImportedModel:
    inputs = _check_inputs(name, example_inputs)
    _check_finite_parameters(model, name)
    log.info("importing %s through torch.export and torch-mlir", name)
    model = model.eval()
    folded = fold_batch_norm(model, name)
    try:
        with torch.no_grad():
            program = torch.export.export(folded, example_inputs, strict=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QuantuneError(f"{name}: torch.export failed ({first}); make forward() traceable for these "
                            "example inputs, or export the model to ONNX and import that") from None
    layer_modules = {path: m for path, m in folded.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    framework_layers = {}
    for node in program.graph.nodes:
        layer_id = _innermost_layer(node, layer_modules) if node.target in _LAYER_CALLS else None
        if layer_id is not None:
            framework_layers[layer_id] = _layer_info(layer_id, layer_modules[layer_id], node)

    def locate(op_name: str) -> str | None:
        return _source_of(program, op_name)

    tm_ir, tm_fx, fx_importer = torch_mlir_modules()

    class LayerNameLocations(fx_importer.ContextCache):
        def get_node_location(self, node):
            frames = [tm_ir.Location.file(_portable_path(path), int(line), col=0, context=self._c)
                      for path, line in _STACK_FRAME.findall(node.stack_trace or "")]
            loc = tm_ir.Location.callsite(frames[-1], frames[-2::-1], context=self._c) if len(frames) > 1 else \
                frames[0] if frames else tm_ir.Location.unknown(context=self._c)
            layer_id = _innermost_layer(node, layer_modules)
            return tm_ir.Location.name(layer_id, childLoc=loc, context=self._c) if layer_id else loc

    tm_context = tm_ir.Context()
    from torch_mlir.dialects import torch as torch_dialect
    torch_dialect.register_dialect(tm_context)
    importer = fx_importer.FxImporter(context=tm_context)
    # FxImporter offers no hook for locations; its ContextCache is where they are made.
    importer._cc = LayerNameLocations(importer._c, py_attr_tracker=importer._py_attr_tracker)
    diagnostics = Diagnostics(tm_context)
    from torch_mlir.compiler_utils import TorchMlirCompilerError
    try:
        tm_module = tm_fx.export_and_import(program, output_type="torch", fx_importer=importer)
    except TorchMlirCompilerError:
        raise QuantuneError(diagnostics.describe(name, locate)) from None
    except Exception as e:
        raise QuantuneError(f"{name}: torch-mlir's FX importer failed: {str(e).strip().splitlines()[0]}") from None
    lower_to_linalg(tm_module, TORCH_TO_LINALG, name, diagnostics, locate)
    return finish_import(tm_module, name, inputs, framework_layers, context)
