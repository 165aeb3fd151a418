"""What both frontends share: the imported model, and the step from torch-mlir's IR to a tagged IREE module."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import QuantuneError
from ..layers import LayerInfo, LayerTable
from ..mlir import LAYER_ATTR, ir, to_iree_module
from ..rewrite import run_passes
from ..rewrite.tag_layers import TagLayers, contraction_ops

log = logging.getLogger(__name__)

TORCH_TO_LINALG = "torch-backend-to-linalg-on-tensors-backend-pipeline"


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.shape))}x{self.dtype}"


@dataclass(frozen=True)
class ImportedModel:
    """linalg-on-tensors MLIR (in IREE's bindings) with every layer's contraction tagged, and its table."""

    name: str
    module: ir.Module
    layers: LayerTable
    inputs: tuple[TensorSpec, ...]

    def signature_json(self) -> str:
        return json.dumps({"model": self.name, "inputs": [{"shape": list(s.shape), "dtype": s.dtype}
                                                         for s in self.inputs]}, indent=1)


def read_signature(path: Path) -> tuple[TensorSpec, ...]:
    data = json.loads(Path(path).read_text())
    return tuple(TensorSpec(tuple(i["shape"]), i["dtype"]) for i in data["inputs"])


def lower_to_linalg(tm_module, pipeline: str, model_name: str) -> None:
    """Run a torch-mlir pipeline; on failure name the op that could not be lowered and the layer it is in."""
    from torch_mlir.compiler_utils import TorchMlirCompilerError, run_pipeline_with_repro_report
    try:
        run_pipeline_with_repro_report(tm_module, f"builtin.module({pipeline})", f"lowering {model_name}")
    except TorchMlirCompilerError as e:
        raise QuantuneError(f"{model_name}: {describe_lowering_failure(str(e))}") from None


def describe_lowering_failure(diagnostics: str) -> str:
    op = re.search(r"failed to legalize operation '([^']+)'", diagnostics)
    op = op or re.search(r"unsupported by backend contract: module initializers|'(torch\.[\w.]+)'", diagnostics)
    where = re.search(r'loc\("([^"]+)"\)?', diagnostics)
    first_error = next((line.strip() for line in diagnostics.splitlines() if "error:" in line), "")
    what = f"operator {op.group(1)} is not supported by torch-mlir's linalg lowering" if op and op.group(1) \
        else f"torch-mlir could not lower the model ({first_error or 'no diagnostic'})"
    at = f" (at {where.group(1)})" if where else ""
    return f"{what}{at}; replace or decompose it in the model before import"


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
