"""quantune-tag-layers: mark each layer's contraction op with the layer id its location carries.

The importers give every op that comes from a quantizable layer a NameLoc holding the layer id. Locations
do not survive every rewrite, attributes do; later passes and the layer table read `quantune.layer`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..mlir import LAYER_ATTR, ir, layer_names_in_location
from .base import Pass, PassFailure

CONTRACTION_OPS = frozenset({
    "linalg.conv_2d_nchw_fchw",
    "linalg.conv_2d_nhwc_hwcf",
    "linalg.conv_2d_ngchw_gfchw",
    "linalg.depthwise_conv_2d_nchw_chw",
    "linalg.depthwise_conv_2d_nhwc_hwc",
    "linalg.matmul",
    "linalg.batch_matmul",
})


def contraction_ops(module: ir.Module) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op):
        if op.name in CONTRACTION_OPS:
            found.append(op.operation)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


@dataclass(frozen=True)
class TagLayers(Pass):
    name = "quantune-tag-layers"
    summary = "set quantune.layer on each contraction op from the layer id in its location"

    def run(self, module: ir.Module) -> None:
        owner: dict[str, ir.Operation] = {}
        for op in contraction_ops(module):
            names = layer_names_in_location(op.location)
            if not names:
                continue
            layer = names[0]
            if layer in owner:
                raise PassFailure(f"layer '{layer}' lowered to two contraction ops ({owner[layer].name} and "
                                  f"{op.name}); quantune expects one per layer: report this model")
            owner[layer] = op
            op.attributes[LAYER_ATTR] = ir.StringAttr.get(layer, module.context)
