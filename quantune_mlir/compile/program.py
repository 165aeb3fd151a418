"""Reading what IREE dumped of a compilation: which contraction ops each dispatch holds (the executable sources)
and which dispatches the host program launches (the stream phase).

Both carry locations (with `--mlir-print-debuginfo`): a contraction keeps its layer's NameLoc through
generalization, channels-last conversion, im2col and data tiling; a launch site carries the location of its
dispatch's root op, which stays right when IREE folds identical dispatches of several layers into one.
The executables are read from the executable-sources phase file, not from per-executable source files: dumping
those would point the executables' locations into them, and so change the module's bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import kernels
from ..errors import QuantuneError
from ..mlir import LAYER_ATTR, ir, layer_names_in_location_text

# Named linalg ops that multiply and accumulate; generic ones are recognised by their body.
_NAMED_CONTRACTION = re.compile(r"linalg\.(\w*matmul\w*|\w*matvec|vecmat|\w*mmt4d|conv_\w+|depthwise_conv_\w+|"
                                r"contract|dot)")


@dataclass(frozen=True)
class Contraction:
    op: str
    element_types: tuple[str, str, str]  # lhs, rhs, result
    names: tuple[str, ...]  # its quantune.layer attribute if it kept it, then the NameLocs of its location
    kernel: str = ""  # the linked object's function it calls (quantune_mlir/kernels), for an extern kernel

    @property
    def is_float(self) -> bool:
        return any(t.startswith(("f", "bf")) for t in self.element_types[:2])

    def describe(self) -> str:
        lhs, rhs, result = self.element_types
        return f"{self.op} {lhs} x {rhs} -> {result}"


@dataclass(frozen=True)
class Launch:
    entry_point: str
    names: tuple[str, ...]  # the NameLocs of the launch site's location


def read_contractions(source_files: list[Path]) -> dict[str, tuple[Contraction, ...]]:
    """Every dispatch entry point of the executables in source_files -> its contraction ops."""
    context = ir.Context()
    found: dict[str, tuple[Contraction, ...]] = {}
    for path in source_files:
        for op in _parse(path, context).body.operations:
            if op.operation.name == "hal.executable":
                found.update(_entry_point_contractions(op.operation))
    return found


def read_launches(stream_phase: Path) -> tuple[Launch, ...]:
    """The dispatches one call of the module's functions launches, in program order."""
    launches: list[Launch] = []
    for op in _parse(stream_phase, ir.Context()).body.operations:
        if op.operation.name == "util.func":  # initializers run once at load time: not part of an inference
            # @executable::@entry_point; all of an executable's variants have the same entry points
            launches += [Launch(ir.SymbolRefAttr(ir.ArrayAttr(site.attributes["entry_points"])[0]).value[-1],
                                tuple(layer_names_in_location_text(str(site.location))))
                         for site in _find(op.operation, lambda o: o.name == "stream.cmd.dispatch")]
    return tuple(launches)


def _parse(path: Path, context: ir.Context) -> ir.Module:
    try:
        return ir.Module.parse(Path(path).read_text(), context)
    except Exception as e:
        raise QuantuneError(f"{path}: not readable by quantune's IREE ({str(e).splitlines()[0]}); compile with "
                            "the IREE version quantune pins") from None


def read_kernel_objects(source_files: list[Path]) -> tuple[Path, ...]:
    """The object files the executables link in (`hal.executable.objects`)."""
    found = (re.findall(r'#hal\.executable\.object<\{path = "([^"]+)"', Path(p).read_text()) for p in source_files)
    return tuple(dict.fromkeys(Path(path) for paths in found for path in paths))


def _entry_point_contractions(executable: ir.Operation) -> dict[str, tuple[Contraction, ...]]:
    found = {_symbol(export): () for export in _find(executable, lambda op: op.name == "hal.executable.export")}
    functions = _find(executable, lambda op: op.name == "func.func")
    # functions of a linked object: the project's kernels multiply int8 (quantune_mlir/kernels)
    imported = {_symbol(f): f for f in functions if "hal.import.static" in f.attributes}
    for function in functions:
        if _symbol(function) in imported:
            continue
        candidates = ((op, _multiplied_inputs(op)) for op in _find(function, lambda op: op.name.startswith("linalg.")))
        calls = _find(function, lambda op: op.name == "func.call" and _callee(op) in imported
                      and kernels.multiplies(_callee(op)))
        found[_symbol(function)] = (
            *(_contraction(op, multiplied) for op, multiplied in candidates if multiplied),
            *(_kernel_call(call, imported[_callee(call)]) for call in calls))
    return found


def _callee(call: ir.Operation) -> str:
    return ir.FlatSymbolRefAttr(call.attributes["callee"]).value


def _kernel_call(call: ir.Operation, declaration: ir.Operation) -> Contraction:
    """An extern kernel's call: its first two buffers are the multiplied ones, its last buffer the result."""
    memrefs = [str(ir.MemRefType(t).element_type) for t in ir.FunctionType(
        ir.TypeAttr(declaration.attributes["function_type"]).value).inputs if t.typeid == ir.MemRefType.static_typeid]
    return Contraction(f"call @{_callee(call)}", (memrefs[0], memrefs[1], memrefs[-1]),
                       tuple(layer_names_in_location_text(str(call.location))), kernel=_callee(call))


def _find(root: ir.Operation, keep) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op):
        if keep(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit)
    return found


def _symbol(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes["sym_name"]).value


def _multiplied_inputs(op: ir.Operation) -> tuple[int, int] | None:
    """The two input operands a contraction op multiplies, None for any other op."""
    if _NAMED_CONTRACTION.fullmatch(op.name):
        return 0, 1
    if op.name != "linalg.generic":
        return None
    # A contraction multiplies two inputs that are both read along a reduced dimension. Pooling reduces without
    # multiplying, and a requantize epilogue fused into a reduction multiplies by per-channel scales.
    reduced = {i for i, t in enumerate(ir.ArrayAttr(op.attributes["iterator_types"])) if "reduction" in str(t)}
    block = op.regions[0].blocks[0]
    input_count = len(op.operands) - len(op.results)
    inputs = zip(list(block.arguments)[:input_count], ir.ArrayAttr(op.attributes["indexing_maps"]))
    reads: dict[ir.Value, set[int]] = {arg: {i} for i, (arg, indexing) in enumerate(inputs)
                                       if _dims(indexing) & reduced}
    for inner in block.operations:
        if inner.name in ("arith.muli", "arith.mulf"):
            lhs, rhs = (reads.get(v, set()) for v in inner.operands)
            if lhs and rhs and len(lhs | rhs) > 1:
                first = min(lhs)
                return first, min(rhs - {first})
        read = set().union(*(reads.get(v, set()) for v in inner.operands))  # through casts and arithmetic
        for result in inner.results:
            reads[result] = read
    return None


def _dims(indexing: ir.Attribute) -> set[int]:
    """The loop dimensions an indexing map reads along: (d0, d1, d2) -> (d0 + d2, d1) gives {0, 1, 2}."""
    return {int(d) for d in re.findall(r"d(\d+)", str(indexing).split("->")[1])}


def _contraction(op: ir.Operation, multiplied: tuple[int, int]) -> Contraction:
    lhs, rhs = (_element_type(op.operands[i].type) for i in multiplied)
    names = layer_names_in_location_text(str(op.location))
    if LAYER_ATTR in op.attributes:
        names.insert(0, ir.StringAttr(op.attributes[LAYER_ATTR]).value)
    return Contraction(op.name, (lhs, rhs, _element_type(op.results[0].type)), tuple(dict.fromkeys(names)))


def _element_type(type_: ir.Type) -> str:
    return str(ir.ShapedType(type_).element_type)
