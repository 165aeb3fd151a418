"""The one module that imports MLIR Python bindings.

The rest of the tool works in IREE's bindings (`ir`, `passmanager`): they know every dialect iree-compile
knows. torch-mlir's bindings are a separate MLIR build with their own context; the importers use them only
to produce linalg-on-tensors, which crosses over to IREE's context as bytecode.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from types import ModuleType

from iree.compiler import ir, passmanager  # noqa: F401  (re-exported)
from iree.compiler.dialects import linalg, tensor, util  # noqa: F401  (re-exported: typed op builders)

from .errors import QuantuneError

LAYER_ATTR = "quantune.layer"
POINT_ATTR = "quantune.point"  # on quant.qcast: the plan entry (`<layer>.input|output`) of the tensor
EXPOSED_ATTR = "quantune.exposed"  # on the entry function: the names of the results appended after the model's

# A NameLoc prints as `"name"(child)` or `"name"`; a file location as `"file":line:col`. Every string literal is
# matched whole, so that in `callsite("f.mlir":3:1 at "f.mlir":1:1)` the text between two literals is not taken
# for a name.
_STRING_IN_LOC = re.compile(r'"((?:[^"\\]|\\.)*)"(:?)')


def layer_names_in_location(location: ir.Location) -> list[str]:
    """Names of the NameLocs in a location, outermost first (the bindings expose no NameLoc accessor)."""
    return layer_names_in_location_text(str(location))


def layer_names_in_location_text(location: str) -> list[str]:
    return [m.group(1) for m in _STRING_IN_LOC.finditer(location) if not m.group(2)]


def torch_mlir_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """(torch_mlir.ir, torch_mlir.fx, torch_mlir.extras.fx_importer), imported on first use: they pull in torch."""
    from torch_mlir import fx, ir as tm_ir
    from torch_mlir.extras import fx_importer
    return tm_ir, fx, fx_importer


def to_iree_module(foreign_module, context: ir.Context) -> ir.Module:
    """Move a module from another MLIR build (torch-mlir's) into IREE's bindings through bytecode."""
    buffer = io.BytesIO()
    foreign_module.operation.write_bytecode(buffer)
    return ir.Module.parse(buffer.getvalue(), context)


def parse_module(source: str | bytes | Path, context: ir.Context) -> ir.Module:
    """MLIR text or bytecode, or a file of either: then a file that does not parse (truncated by a full disk or a
    stopped copy, or written by another MLIR) is named with the way out."""
    path = source if isinstance(source, Path) else None
    try:
        return ir.Module.parse(path.read_bytes() if path else source, context)
    except ir.MLIRError as e:
        first = e.error_diagnostics[0].message if e.error_diagnostics else str(e).splitlines()[0]
        if path is None:
            raise QuantuneError(f"the MLIR does not parse ({first})") from None
        raise QuantuneError(f"{path}: not readable MLIR ({first}); it is truncated or damaged: write it again "
                            f"(`quantune import MODEL -o {path.parent}` for a build folder's import)") from None


def write_module(module: ir.Module, path, *, bytecode: bool) -> None:
    if bytecode:
        with open(path, "wb") as f:
            module.operation.write_bytecode(f)
    else:
        with open(path, "w") as f:
            f.write(module.operation.get_asm(large_elements_limit=None, enable_debug_info=True))
