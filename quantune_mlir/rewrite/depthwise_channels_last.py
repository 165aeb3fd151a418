"""quantune-depthwise-channels-last: run each FP32 depthwise conv channels-last, on an input laid out for it.

IREE 3.13's `iree-preprocessing-convert-conv-to-channels-last` turns dense NCHW convs channels-last, not
depthwise ones, and its CPU code for `linalg.depthwise_conv_2d_nchw_chw` is slow: MobileNetV2's first depthwise
conv (32 channels, 112x112, f32) takes 2.5 ms there against 0.14 ms for `linalg.depthwise_conv_2d_nhwc_hwc` on
an NHWC input (1 thread, x86-64 AVX-512). So an FP32 depthwise layer in a mixed build cost as much as the whole
int8 network. The conv becomes: its input transposed to NHWC, an optimization barrier, the NHWC conv on the
transposed weights and init, and its result transposed back. Without the barrier IREE fuses the transpose into
the conv's dispatch, which then reads its input across channels and is as slow as the NCHW conv (measured: 2.3
ms); with it, the transpose is a dispatch of its own (0.11 ms) and the result's transpose fuses into whatever
reads it (the next int8 layer's quantize, which writes NHWC anyway).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..mlir import LAYER_ATTR, ir, linalg, tensor, util
from .base import Pass
from .graph import int_array, tensor_shape
from .tag_layers import contraction_ops

_NCHW_TO_NHWC = (0, 2, 3, 1)
_NHWC_TO_NCHW = (0, 3, 1, 2)
_CHW_TO_HWC = (1, 2, 0)


@dataclass(frozen=True)
class DepthwiseChannelsLast(Pass):
    name = "quantune-depthwise-channels-last"
    summary = "run FP32 depthwise convs as linalg.depthwise_conv_2d_nhwc_hwc on a materialised NHWC input"

    def run(self, module: ir.Module) -> None:
        with module.context:
            for op in contraction_ops(module):
                if op.name == "linalg.depthwise_conv_2d_nchw_chw" and \
                        ir.RankedTensorType(op.results[0].type).element_type == ir.F32Type.get():
                    _channels_last(op)


def _channels_last(conv: ir.Operation) -> None:
    x, weight, init = conv.operands[0], conv.operands[1], conv.operands[2]
    with ir.InsertionPoint(conv), conv.location:
        transposed_x = _transposed(x, _NCHW_TO_NHWC)
        (x_nhwc,) = util.OptimizationBarrierOp([transposed_x.type], [transposed_x]).results
        y_nhwc = linalg.depthwise_conv_2d_nhwc_hwc(
            x_nhwc, _transposed(weight, _CHW_TO_HWC), outs=[_transposed(init, _NCHW_TO_NHWC)],
            strides=list(int_array(conv, "strides")), dilations=list(int_array(conv, "dilations")))
        if LAYER_ATTR in conv.attributes:
            y_nhwc.owner.attributes[LAYER_ATTR] = conv.attributes[LAYER_ATTR]
        y = _transposed(y_nhwc, _NHWC_TO_NCHW)
    conv.results[0].replace_all_uses_with(y)
    conv.erase()


def _transposed(value: ir.Value, permutation: tuple[int, ...]) -> ir.Value:
    shape = tensor_shape(value.type)
    element = ir.RankedTensorType(value.type).element_type
    empty = tensor.EmptyOp([shape[p] for p in permutation], element).result
    return linalg.transpose(value, outs=[empty], permutation=list(permutation)).results[0]
