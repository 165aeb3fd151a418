"""Splicing new IR written as text into a module.

A replacement is written as the body of a private function, called where it belongs; one `inline` run at the
end puts every body in place. IR stays readable in the code that writes it, and every op is checked by the
parser and the verifier, which builders from the bindings would not give for `linalg.generic` regions.
"""
from __future__ import annotations

import numpy as np

from ..mlir import ir, passmanager

_MLIR_INT = {np.dtype(np.int8): "i8", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
             np.dtype(np.float32): "f32"}


def dense(array: np.ndarray) -> str:
    """An `arith.constant` value for array: hex for anything but a splat, so that big weights parse fast."""
    array = np.ascontiguousarray(array)
    t = f"tensor<{''.join(f'{d}x' for d in array.shape)}{_MLIR_INT[array.dtype]}>"
    flat = array.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return f"dense<{_scalar_text(flat[0])}> : {t}"
    return f'dense<"0x{array.astype(array.dtype.newbyteorder("<")).tobytes().hex().upper()}"> : {t}'


def _scalar_text(value) -> str:
    return repr(float(value)) if isinstance(value, np.floating) else str(int(value))


class Splicer:
    def __init__(self, module: ir.Module):
        self.module = module
        self._count = 0

    def call(self, before: ir.Operation, args: list[ir.Value], result_types: list[str], body: str,
             location: ir.Location, pipeline: str | None = None, symbols: str = "") -> list[ir.Value]:
        """Insert, before `before`, a call to a new function taking args (%arg0, ...) whose body is `body`,
        after running pipeline (a pass pipeline on the new function's module) on that body alone. symbols:
        module-level ops the body refers to (executables), added to the module."""
        name = f"__quantune_splice_{self._count}"
        self._count += 1
        params = ", ".join(f"%arg{i}: {a.type}" for i, a in enumerate(args))
        text = f"{symbols}\nfunc.func private @{name}({params}) -> ({', '.join(result_types)}) {{\n{body}\n}}"
        try:
            helper = ir.Module.parse(text, self.module.context)
        except ir.MLIRError as e:
            raise RuntimeError(f"quantune wrote invalid IR ({e}):\n{text[:4000]}") from None
        if pipeline:
            passmanager.PassManager.parse(pipeline, self.module.context).run(helper.operation)
        for op in list(helper.body.operations):
            op.operation.move_before(self.module.body.operations[0].operation)
        with ir.InsertionPoint(before), location:
            call = ir.Operation.create("func.call", results=[ir.Type.parse(t) for t in result_types],
                                       operands=args, attributes={"callee": ir.FlatSymbolRefAttr.get(name)})
        return list(call.results)

    def finish(self) -> None:
        """Inline every spliced body and drop the helper functions."""
        passmanager.PassManager.parse("builtin.module(inline,symbol-dce)", self.module.context).run(
            self.module.operation)
