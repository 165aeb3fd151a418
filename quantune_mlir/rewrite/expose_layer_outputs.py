"""quantune-expose-layer-outputs: return every tagged layer's output from the entry function, after the
model's own results, in the order the layers appear in the IR.

This is the instrumentation of the analysis: one run of the instrumented module gives every layer's
activation. A layer's output is its contraction's result, or, when the contraction feeds only an
elementwise op of the same layer (the bias add of a linear layer), that op's result.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..mlir import EXPOSED_ATTR, LAYER_ATTR, ir, layer_names_in_location
from .base import Pass, PassFailure
from .tag_layers import contraction_ops


def layer_output(op: ir.Operation, layer: str) -> ir.Value:
    value = op.results[0]
    uses = list(value.uses)
    if len(uses) == 1:
        user = uses[0].owner
        if user.name == "linalg.generic" and layer in layer_names_in_location(user.location):
            return user.results[0]
    return value


def entry_function(module: ir.Module, name: str) -> ir.Operation:
    for op in module.body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op.operation
    raise PassFailure(f"the module has no function @{name}")


@dataclass(frozen=True)
class ExposeLayerOutputs(Pass):
    name = "quantune-expose-layer-outputs"
    summary = "return each tagged layer's output from the entry function, after the model's results"
    function: str = "main"

    def run(self, module: ir.Module) -> None:
        func = entry_function(module, self.function)
        outputs = {}
        for op in contraction_ops(module):
            if LAYER_ATTR in op.attributes:
                layer = ir.StringAttr(op.attributes[LAYER_ATTR]).value
                outputs[layer] = layer_output(op, layer)
        if not outputs:
            raise PassFailure(f"@{self.function} has no tagged layers to expose; run quantune-tag-layers first")
        append_results(func, list(outputs.values()), list(outputs))


def exposed_names(function: ir.Operation) -> list[str]:
    """The names of the results appended by append_results, in order."""
    if EXPOSED_ATTR not in function.attributes:
        return []
    return [ir.StringAttr(a).value for a in ir.ArrayAttr(function.attributes[EXPOSED_ATTR])]


def append_results(function: ir.Operation, values: list[ir.Value], names: list[str]) -> None:
    """Return values from function after its own results, and record their names (EXPOSED_ATTR), so that
    whoever runs the module knows what each extra result is."""
    if len(values) != len(names):
        raise ValueError(f"{len(values)} values but {len(names)} names")
    all_names = [*exposed_names(function), *names]
    function.attributes[EXPOSED_ATTR] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in all_names])
    block = function.regions[0].blocks[0]
    old_return = block.operations[len(block.operations) - 1]
    operands = [*old_return.operands, *values]
    with ir.InsertionPoint(old_return), old_return.location:
        ir.Operation.create("func.return", operands=operands)
    old_return.erase()
    signature = ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value)
    function.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get(signature.inputs, [v.type for v in operands]))
