"""What both frontends share: the imported model, and the step from torch-mlir's IR to a tagged IREE module."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable

from ..errors import QuantuneError
from ..layers import LayerInfo, LayerTable
from ..mlir import LAYER_ATTR, ir, layer_names_in_location_text, to_iree_module
from ..rewrite import run_passes
from ..rewrite.tag_layers import TagLayers, contraction_ops
from ..tensor_spec import TensorSpec

log = logging.getLogger(__name__)

TORCH_TO_LINALG = "torch-backend-to-linalg-on-tensors-backend-pipeline"
# Ops that only make operands (scalars, lists) for another op: they stay illegal when that op is not lowered,
# and the legality check may name them first.
_OPERAND_MAKERS = ("torch.constant.", "torch.prim.ListConstruct")


@dataclass(frozen=True)
class ImportedModel:
    """linalg-on-tensors MLIR (in IREE's bindings) with every layer's contraction tagged, and its table."""

    name: str
    module: ir.Module
    layers: LayerTable
    inputs: tuple[TensorSpec, ...]


class Diagnostics:
    """Collects a torch-mlir context's diagnostics instead of letting them go to stderr unexplained."""

    def __init__(self, tm_context):
        self.messages: list[tuple[str, str]] = []
        tm_context.attach_diagnostic_handler(self._handle)

    def _handle(self, diagnostic) -> bool:
        self.messages.append((str(diagnostic.location), str(diagnostic.message)))
        return True

    def describe(self, model_name: str, locate: Callable[[str], str | None] = lambda op: None,
                 unlowered: tuple[str, str] | None = None) -> str:
        """One line: the operator that could not be lowered and where it comes from. locate maps an op name
        to a place in the model when the IR location does not tell; unlowered is (op name, location) of the
        first op left unlowered, named instead of an operand maker."""
        for location, message in self.messages:
            op = re.search(r"failed to legalize operation '([^']+)'", message)
            if op is None:
                continue
            name = op.group(1)
            if name.startswith(_OPERAND_MAKERS) and unlowered:
                name, location = unlowered
            elif name == "torch.operator":
                name = (re.search(r'name = "([^"]+)"', message) or op).group(1)
            where = locate(name) or describe_location(location)
            return (f"{model_name}: operator {name} is not supported by torch-mlir's lowering to linalg "
                    f"(at {where}); replace or decompose it before import")
        first = self.messages[0][1].splitlines()[0] if self.messages else "no diagnostic"
        return f"{model_name}: torch-mlir could not lower the model: {first}"


def describe_location(location: str) -> str:
    names = [name for name in layer_names_in_location_text(location) if name]
    file_line = re.search(r'"([^"]+)":(\d+)', location)
    parts = names[:1]
    parts += [f"{file_line.group(1)}:{file_line.group(2)}"] if file_line else []
    return ", ".join(parts) or location


def lower_to_linalg(tm_module, pipeline: str, model_name: str, diagnostics: Diagnostics,
                    locate: Callable[[str], str | None] = lambda op: None) -> None:
    from torch_mlir.compiler_utils import TorchMlirCompilerError, run_pipeline_with_repro_report
    try:
        run_pipeline_with_repro_report(tm_module, f"builtin.module({pipeline})", f"lowering {model_name}")
    except TorchMlirCompilerError:
        raise QuantuneError(diagnostics.describe(model_name, locate, _first_unlowered_op(tm_module))) from None


def _first_unlowered_op(tm_module) -> tuple[str, str] | None:
    """(name, location) of the first op that a failed lowering left in the torch dialect, operand makers aside;
    a torch.operator is named by the ONNX op it holds."""
    from torch_mlir import ir as tm_ir
    found = []

    def visit(op):
        if not op.name.startswith("torch.") or op.name.startswith(_OPERAND_MAKERS):
            return tm_ir.WalkResult.ADVANCE
        name = tm_ir.StringAttr(op.attributes["name"]).value if op.name == "torch.operator" else op.name
        found.append((name, str(op.location)))
        return tm_ir.WalkResult.INTERRUPT

    tm_module.operation.walk(visit)
    return found[0] if found else None


def finish_import(tm_module, name: str, inputs: tuple[TensorSpec, ...],
                  framework_layers: dict[str, LayerInfo], context: ir.Context) -> ImportedModel:
    """Move the lowered module into IREE's bindings, tag each layer's contraction and build the table,
    in the order the layers appear in the IR."""
    module = to_iree_module(tm_module, context)
    run_passes(module, [TagLayers()])
    table: list[LayerInfo] = []
    for op in contraction_ops(module):
        if LAYER_ATTR not in op.attributes:
            continue
        layer_id = ir.StringAttr(op.attributes[LAYER_ATTR]).value
        info = framework_layers.get(layer_id)
        if info is None:  # a contraction between activations: no weights to quantize
            del op.attributes[LAYER_ATTR]
            continue
        table.append(LayerInfo(**{**info.__dict__, "mlir_op": op.name}))
    missing = sorted(set(framework_layers) - {layer.id for layer in table})
    if missing:
        log.warning("%s: %d layers left no contraction op in the IR (unused or folded away): %s",
                    name, len(missing), ", ".join(missing[:5]))
    log.info("%s: %d quantizable layers", name, len(table))
    return ImportedModel(name, module, LayerTable(name, tuple(table)), inputs)
