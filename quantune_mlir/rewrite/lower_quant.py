"""quantune-lower-quant: lower the quant-dialect form that quantune-apply-plan writes to integer linalg.

- int8 tensors are stored channels-last (NHWC), the layout IREE's fast int8 kernels read; fp32 tensors keep
  the model's layout, and the conversions at int8/fp32 boundaries transpose as they convert.
- An int8 layer becomes one i8 x i8 -> i32 contraction on zero-point padded int8 input and constant int8
  weights, in the form IREE runs fastest for it: `linalg.matmul` for linear and 1x1 conv layers,
  `linalg.depthwise_conv_2d_nhwc_hwc` for depthwise convs, and for other convs IREE's own im2col (run on that
  layer alone) giving an im2col `linalg.generic` and a `linalg.matmul`. Then one `linalg.generic` epilogue
  adds the i32 bias (the input zero point folded in), requantizes in float32 with a per-channel multiplier
  (and the rescaled residual), clamps (ReLU, ReLU6 and saturation in one), rounds half to even and writes i8. When the layer's result stays fp32 the epilogue writes f32 instead (the dequantize fused,
  not a dispatch of its own).
- A lone `quant.qcast` becomes an elementwise quantize and a `quant.dcast` whose value fp32 ops still read an
  elementwise dequantize; IREE fuses both into the neighbouring dispatch.
- Afterwards no quant op or type is left (checked: a leftover is an error naming it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..kernels import cost_model
from ..mlir import LAYER_ATTR, POINT_ATTR, ir
from ..quantization import INT_RANGES, quantize, requantize_multipliers
from . import extern_conv
from .base import Pass, PassFailure
from .expose_layer_outputs import append_results
from .chains import NO_CLAMP, PASS_THROUGH_OPS, follow_epilogue, pass_through_inputs
from .graph import (Constants, Layer, element_dtype, int_array, layer_of, match_layer, pad_of, producer,
                    tensor_shape, unpadded, users)
from .quant_types import UniformType, is_quantized, uniform_type
from .splice import Splicer, dense
from .tag_layers import CONTRACTION_OPS



# IREE's own conv-to-im2col rewrite (what --iree-global-opt-use-im2col-for-convs runs), applied to each dense
# int8 conv alone: the flag would also turn depthwise convs into batch_matvec (3x slower MobileNetV2, measured)
# and the fp32 convs of a mixed plan into im2col (slower than IREE's channels-last direct convs). Batch 1 only:
# on a batched i8 conv IREE 3.13's rewrite writes an invalid body (arith.addi of i8 and i32).
IM2COL = "builtin.module(func.func(iree-global-opt-convert-conv2d-to-img2col))"


@dataclass(frozen=True)
class QuantChain:
    layer: Layer
    input: ir.Value  # the quantized activation (operand of the activation's quant.dcast)
    weight: np.ndarray  # int8, in the constant's layout
    weight_scales: np.ndarray  # one per output channel
    residual: ir.Value | None  # quantized
    clamp: tuple[float, float]
    output: ir.Operation | None  # the quant.qcast that ends the chain; None when the layer writes f32


@dataclass(frozen=True)
class LowerQuant(Pass):
    name = "quantune-lower-quant"
    summary = "lower quant types and casts to integer linalg with fused requantize epilogues"
    # Also return every int8 tensor, in the model's layout, and the fp32 output of each int8 layer whose output
    # stays fp32: the analysis compares them with the FP32 run's.
    expose_int8: bool = False
    # The project's micro-kernel library (quantune_mlir/kernels) for the layers it runs, and the target
    # configuration its objects are keyed by (cpu=NAME or cpu_features=LIST, as iree-compile resolves the target's
    # flags): a module compiled for another CPU then fails to link instead of faulting on it.
    kernels: str = ""
    kernel_target: str = ""
    # choose per layer between the kernel and IREE's codegen by the library's calibrated cost model
    # (kernels/cost_model.py); false: the kernel for every layer it can run
    cost_model: bool = True

    def run(self, module: ir.Module) -> None:
        if self.kernels and not self.kernel_target.startswith(("cpu=", "cpu_features=")):
            raise PassFailure(f"{self.name}: kernels={self.kernels} needs kernel-target=cpu=NAME (x86-64: the LLVM "
                              "CPU the module is compiled for, e.g. znver4) or kernel-target=cpu_features=LIST "
                              "(aarch64: the target's features as iree-compile resolves them)")
        library = kernels.get_library(self.kernels) if self.kernels else None
        lowering = _Lowering(module, library, self.kernel_target,
                             cost_model.load(library.name) if library and self.cost_model else None)
        for op in module.body.operations:
            if op.operation.name == "func.func":
                lowering.lower_function(op.operation, expose=self.expose_int8)
        lowering.splicer.finish()
        _check_nothing_quantized_left(module)


class _Lowering:
    def __init__(self, module: ir.Module, library: kernels.KernelLibrary | None = None, key: str = "",
                 costs: cost_model.CostModel | None = None):
        self.constants = Constants(module)
        self.splicer = Splicer(module)
        self.storage: dict[ir.Value, ir.Value] = {}
        self.library, self.key, self.costs = library, key, costs
        self.kernel_count = 0
        # the int8 tensors between a depthwise layer and the 1x1 conv that runs with it in one dispatch, and,
        # once such a depthwise chain is reached, its kernel call and input
        self.fused: set[ir.Value] = set()
        # a model input's int8 storage -> the same with its channels padded to the kernels' reduction step
        self.channel_padded: dict[ir.Value, ir.Value] = {}
        self.pending_depthwise: dict[ir.Value, tuple[extern_conv.ConvCall, ir.Value]] = {}
        # the int8 outputs of fused 1x1 convs that the next block's 1x1 expansion reads in the same dispatch, and,
        # once such a 1x1 conv is reached, what its dispatch needs: (its input, residual, result type, call)
        self.expanded: set[ir.Value] = set()
        self.pending_pointwise: dict[ir.Value, tuple[ir.Value, list[ir.Value], str, extern_conv.ConvCall]] = {}

    def lower_function(self, function: ir.Operation, *, expose: bool) -> None:
        block = function.regions[0].blocks[0]
        ops = [op.operation for op in block.operations]
        chains = [c for op in ops if op.name in CONTRACTION_OPS and (c := self._chain(op)) is not None]
        chain_ending_at = {c.output.results[0]: c for c in chains if c.output is not None}
        # none when the analysis reads every int8 tensor, the one between fused layers too
        self.fused = set() if expose else {pw.input for pw in chains if pw.input in chain_ending_at and
                                           self._fuses(chain_ending_at[pw.input], pw)}
        position = {op: i for i, op in enumerate(ops)}
        self.expanded = {ex.input for ex in chains if ex.input in chain_ending_at and
                         chain_ending_at[ex.input].input in self.fused and
                         self._expands(chain_ending_at[ex.input], ex, position)}
        fp32_chain_at = {c.layer.result: c for c in chains if c.output is None}
        exposed: dict[str, ir.Value] = {}
        for op in ops:
            if op.name == "quant.qcast":
                chain = chain_ending_at.get(op.results[0])
                passing = _int8_pass_through(op)
                self.storage[op.results[0]] = (self._emit_chain(chain, op) if chain else
                                               self._emit_pass_through(passing, op) if passing else
                                               self._emit_quantize(op))
                exposed[_point_name(op)] = self.storage[op.results[0]]
            elif op.name == "quant.scast":
                self.storage[op.results[0]] = op.operands[0]
            elif op.results and op.results[0] in fp32_chain_at:
                chain = fp32_chain_at[op.results[0]]
                result = self._emit_chain(chain, _next(op))
                chain.layer.result.replace_all_uses_with(result)
                exposed[f"{chain.layer.id}.output"] = result
        # the int8 values that only a dcast still to be lowered reads (a model's int8 output) stay
        _erase_dead(block, keep={v for v in self.storage.values() if v is not None})
        for op in [o.operation for o in block.operations]:
            # A weight's dcast is still read here only by the fp32 op its layer replaced, which a residual
            # add or activation that stays fp32 keeps alive until this loop has run.
            # The tensor between fused layers (storage None) is read only by the 1x1 conv the fusion replaced.
            if op.name == "quant.dcast" and list(op.results[0].uses) and not _is_weight(op) and \
                    self.storage.get(op.operands[0]) is not None:
                if op.operands[0] in self.expanded:  # written by the dispatch at the expansion's place, later
                    op.move_after(self.storage[op.operands[0]].owner)
                op.results[0].replace_all_uses_with(self._emit_dequantize(op))
        if expose and exposed:
            append_results(function, [self._in_model_layout(v, block) for v in exposed.values()], list(exposed))
        _erase_dead(block)

    def _chain(self, op: ir.Operation) -> QuantChain | None:
        layer = match_layer(op, self.constants)
        if isinstance(layer, str):
            if _dcast_source(unpadded(op.operands[0])) is not None:
                raise PassFailure(f"layer '{layer_of(op) or op.name}' has quantized operands but cannot be "
                                  f"lowered: {layer}")
            return None
        source = _dcast_source(layer.activation)
        weight = _quantized_constant(layer.weight)
        if weight is None:
            return None  # fp32, also when it reads an int8 tensor another layer reads (dequantized for it)
        if source is None:
            raise PassFailure(f"layer '{layer.id}': quantize both operands of a contraction or neither "
                              "(its weight alone is quantized)")
        values, weight_type = weight
        int8_values = self.constants.value_of(values)
        scales = np.broadcast_to(weight_type.scales, (int8_values.shape[0],)).astype(np.float64)
        if weight_type.axis not in (None, 0) or (weight_type.zero_points != 0).any():
            raise PassFailure(f"layer '{layer.id}': weights must be symmetric, per tensor or along axis 0")
        epilogue = follow_epilogue(layer.result, self.constants, residual_of=_dcast_source,
                                   until=lambda follower: follower.name == "quant.qcast")
        followers = users(epilogue.end)
        if len(followers) == 1 and followers[0].name == "quant.qcast":
            return QuantChain(layer, source, int8_values, scales, epilogue.residual, epilogue.clamp, followers[0])
        return QuantChain(layer, source, int8_values, scales, None, NO_CLAMP, None)

    def _emit_chain(self, chain: QuantChain, before: ir.Operation) -> ir.Value:
        layer = chain.layer
        x = _activation(chain.input.type, layer.id)
        acc_shape = channels_last(tensor_shape(layer.op.results[0].type))
        args = [self.storage[chain.input]]
        combined = x.scale * chain.weight_scales
        bias = self.constants.value_of(layer.bias) if layer.bias is not None else np.zeros(len(combined))
        bias_q = np.rint(bias.astype(np.float64) / combined) - x.zero_point * _channel_sums(chain.weight)
        if np.abs(bias_q).max(initial=0) >= 2 ** 31:
            raise PassFailure(f"layer '{layer.id}': the quantized bias overflows int32 (input scale {x.scale:.3g} "
                              "is too small for its bias); recalibrate or keep the layer fp32")
        bias_line = f"%bias = arith.constant {dense(bias_q.astype(np.int32))}"
        if chain.output is None:
            result = f"tensor<{_dims(_model_layout(acc_shape))}f32>"
            if self._kernel_runs(layer, requantizes=False):
                return self._call_kernel(layer, before, args, result, extern_conv.ConvCall(
                    layer.id, (), acc_shape, (), 1, chain.weight, bias_q.astype(np.int32), combined.astype(np.float32),
                    0, (0, 0), None, dequantize=True), x.zero_point)
            body = [*_contraction(layer, chain.weight, x.zero_point), bias_line,
                    *_dequantizing_epilogue(acc_shape, combined)]
            return self._call(layer, before, args, result, body)
        y = _activation(chain.output.results[0].type, layer.id)
        residual = _activation(chain.residual.type, layer.id) if chain.residual is not None else None
        if chain.residual is not None:
            args.append(self.storage[chain.residual])
        multipliers = requantize_multipliers(combined / y.scale)
        residual_multiplier = requantize_multipliers(residual.scale / y.scale) if residual else None
        result = f"tensor<{_dims(acc_shape)}i8>"
        if self._kernel_runs(layer, with_residual=residual is not None):
            call = extern_conv.ConvCall(
                layer.id, (), acc_shape, (), 1, chain.weight, bias_q.astype(np.int32), multipliers, y.zero_point,
                _clamp_bounds(y, chain.clamp), (residual.zero_point, residual_multiplier) if residual else None)
            if chain.output.results[0] in self.fused:  # emitted with the 1x1 conv that reads it
                self.pending_depthwise[chain.output.results[0]] = (self._depthwise_call(layer, call, x.zero_point),
                                                                   args[0])
                return None
            if chain.input in self.pending_depthwise:
                if chain.output.results[0] in self.expanded:  # emitted with the expansion that reads it
                    self.pending_pointwise[chain.output.results[0]] = (chain.input, args[1:], result, call)
                    return None
                return self._call_fused(chain.input, layer, before, args[1:], [result], call)[0]
            if chain.input in self.pending_pointwise:
                between, residual, pointwise_result, pointwise = self.pending_pointwise.pop(chain.input)
                self.storage[chain.input], expanded = self._call_fused(
                    between, layer, before, residual, [pointwise_result, result], pointwise, call)
                return expanded
            return self._call_kernel(layer, before, args, result, call, x.zero_point)
        body = [*_contraction(layer, chain.weight, x.zero_point), bias_line,
                *_requantizing_epilogue(acc_shape, multipliers, y, chain.clamp, residual, residual_multiplier)]
        return self._call(layer, before, args, result, body)

    def _call(self, layer: Layer, before: ir.Operation, args: list[ir.Value], result: str, body: list[str]
              ) -> ir.Value:
        batch = tensor_shape(layer.activation.type)[0]
        (value,) = self.splicer.call(before, args, [result], "\n".join([*body, f"return %y : {result}"]),
                                     layer.op.location, IM2COL if layer.kind == "conv" and batch == 1 else None)
        return value

    def _kernel_runs(self, layer: Layer, *, requantizes: bool = True, with_residual: bool = False) -> bool:
        """Whether the kernel library runs this layer: dense convs and linear layers in every form, depthwise
        convs with an int8 output and no residual add."""
        if self.library is None or layer.kind not in ("conv", "linear", "depthwise"):
            return False
        if layer.kind == "depthwise" and (not requantizes or with_residual or self.library.depthwise_symbol is None):
            return False
        shape = tensor_shape(layer.activation.type)
        geometry = ((1, 1), (1, 1)) if layer.kind == "linear" else \
            (tuple(int_array(layer.op, "strides")), tuple(int_array(layer.op, "dilations")))
        if extern_conv.supports(layer.kind, shape[1], shape[0], *geometry, self.library) is not None:
            return False
        work = cost_model.LayerWork.of(layer.kind, tensor_shape(layer.weight.type), tensor_shape(layer.op.results[0].type))
        return self.costs is None or self.costs.prefers_kernel(work)

    def _call_kernel(self, layer: Layer, before: ir.Operation, args: list[ir.Value], result: str,
                     call: extern_conv.ConvCall, zero_point: int) -> ir.Value:
        """The layer as one dispatch of the project's conv kernel (rewrite/extern_conv.py)."""
        x_shape = channels_last(tensor_shape(layer.activation.type))
        out_shape = call.output_shape
        if layer.kind == "conv" and args[0] in self.channel_padded:  # the model input, padded by its quantize
            args = [self.channel_padded[args[0]], *args[1:]]
            x_shape = tensor_shape(args[0].type)
            call = dataclasses.replace(call, weight=_zero_channels(call.weight, x_shape[3]))
        if layer.kind == "depthwise":
            body, executable = extern_conv.emit_depthwise(self._depthwise_call(layer, call, zero_point), self.library,
                                                          self.key, self._kernel_symbol(), "%arg0")
            return self._splice_kernel(before, args, result, [*body, f"return %y : {result}"], executable,
                                       layer.op.location)
        if layer.kind == "linear":  # a 1x1 conv on a 1x1 image
            lines = [f"%x = tensor.expand_shape %arg0 [[0, 1, 2], [3]] output_shape [1, 1, 1, {x_shape[1]}] : "
                     f"tensor<{_dims(x_shape)}i8> into tensor<1x1x1x{x_shape[1]}xi8>"]
            x, x_shape, out_shape, kernel, stride = "%x", (1, 1, 1, x_shape[1]), (1, 1, 1, out_shape[1]), (1, 1), 1
        elif x_shape[3] % self.library.reduction_group == 0:  # padded in the kernel: no pad dispatch
            lines, x, kernel, stride = [], "%arg0", tuple(call.weight.shape[2:]), int_array(layer.op, "strides")[0]
            call = dataclasses.replace(call, padding=(layer.padding[2], layer.padding[3]), input_zero_point=zero_point)
        else:  # the channels padded to the kernel's reduction group by a copy, zero weights there
            extra_channels = -x_shape[3] % self.library.reduction_group
            lines, x, x_shape = _padded(layer, x_shape, zero_point, extra_channels)
            call = dataclasses.replace(call, weight=_zero_channels(call.weight, x_shape[3]))
            kernel, stride = tuple(call.weight.shape[2:]), int_array(layer.op, "strides")[0]
        residual = None
        if len(args) > 1:
            residual = "%arg1"
            if layer.kind == "linear":
                lines.append(f"%res = tensor.expand_shape %arg1 [[0, 1, 2], [3]] output_shape {list(out_shape)} : "
                             f"{result} into tensor<{_dims(out_shape)}i8>")
                residual = "%res"
        call = dataclasses.replace(call, input_shape=x_shape, output_shape=out_shape, kernel_size=kernel,
                                   stride=stride)
        body, executable = extern_conv.emit(call, self.library, self.key, self._kernel_symbol(), x, residual)
        lines += body
        if layer.kind == "linear":  # back to [batch][features] from NHWC (int8) or NCHW (f32) with 1x1 pixels
            element, groups = ("f32", "[[0], [1, 2, 3]]") if call.dequantize else ("i8", "[[0, 1, 2], [3]]")
            kernel_shape = (1, out_shape[3], 1, 1) if call.dequantize else out_shape
            lines += [f"%y4 = tensor.collapse_shape %y {groups} : tensor<{_dims(kernel_shape)}{element}> into "
                      f"{result}", f"return %y4 : {result}"]
        else:
            lines.append(f"return %y : {result}")
        return self._splice_kernel(before, args, result, lines, executable, layer.op.location)

    def _depthwise_call(self, layer: Layer, call: extern_conv.ConvCall, zero_point: int) -> extern_conv.ConvCall:
        """A depthwise layer's kernel call, padded in the kernel: no pad dispatch (0.16 ms of MobileNetV2's 3.3)."""
        return dataclasses.replace(call, input_shape=channels_last(tensor_shape(layer.activation.type)),
                                   kernel_size=tuple(call.weight.shape[1:]), stride=int_array(layer.op, "strides")[0],
                                   padding=(layer.padding[2], layer.padding[3]), input_zero_point=zero_point)

    def _fuses(self, depthwise: QuantChain, pointwise: QuantChain) -> bool:
        """Whether a depthwise layer and the 1x1 conv reading its int8 output run in one kernel dispatch: the
        library has the fused entry, both layers go to the kernels, nothing else reads the tensor between them,
        and one row of it fits the kernel's buffer."""
        if self.library is None or self.library.depthwise_conv_symbol is None:
            return False
        layer, between = pointwise.layer, depthwise.output.results[0]
        readers = users(between)
        if depthwise.layer.kind != "depthwise" or depthwise.residual is not None or layer.kind != "conv" \
                or pointwise.output is None or len(readers) != 1 or len(users(readers[0].results[0])) != 1:
            return False
        _, channels, _, width = tensor_shape(between.type)
        one_by_one = tuple(tensor_shape(layer.weight.type)[2:]) == (1, 1) and not any(layer.padding) and \
            set(int_array(layer.op, "strides")) == {1}
        return one_by_one and channels % self.library.reduction_group == 0 and \
            width * channels <= kernels.FUSED_ROW_BYTES and self._kernel_runs(depthwise.layer) and \
            self._kernel_runs(layer, with_residual=pointwise.residual is not None)

    def _expands(self, pointwise: QuantChain, expansion: QuantChain, position: dict[ir.Operation, int]) -> bool:
        """Whether a fused 1x1 conv's dispatch also runs the 1x1 conv reading its int8 output (MobileNetV2's next
        expansion), row by row: the library has the entry, the second conv goes to the kernels with no
        residual and reads the first's output as it is, and nothing reads that output before the second conv's
        lowered (it is written by the dispatch that the second conv's place emits)."""
        if self.library is None or self.library.depthwise_conv_expand_symbol is None:
            return False
        layer, between = expansion.layer, pointwise.output.results[0]
        if layer.kind != "conv" or expansion.output is None or expansion.residual is not None or \
                tuple(tensor_shape(layer.weight.type)[2:]) != (1, 1) or any(layer.padding) or \
                set(int_array(layer.op, "strides")) != {1} or \
                tensor_shape(between.type)[1] % self.library.reduction_group or not self._kernel_runs(layer):
            return False
        lowered_at = position[expansion.output.operation]
        readers = [reader.operation for dcast in users(between) for reader in users(dcast.results[0])]
        return layer.op.operation in readers and \
            all(reader == layer.op.operation or position.get(reader, -1) > lowered_at for reader in readers)

    def _call_fused(self, between: ir.Value, layer: Layer, before: ir.Operation, residual: list[ir.Value],
                    results: list[str], call: extern_conv.ConvCall, expansion: extern_conv.ConvCall | None = None
                    ) -> list[ir.Value]:
        """A 1x1 conv and the depthwise layer before it (deferred by _emit_chain) as one kernel dispatch, and with
        expansion the 1x1 conv after them too (results: the types of the 1x1 convs' outputs)."""
        depthwise, x = self.pending_depthwise.pop(between)
        call = dataclasses.replace(call, input_shape=depthwise.output_shape, kernel_size=(1, 1), stride=1)
        if expansion is not None:
            expansion = dataclasses.replace(expansion, input_shape=call.output_shape, kernel_size=(1, 1), stride=1)
        body, executable = extern_conv.emit_depthwise(depthwise, self.library, self.key, self._kernel_symbol(),
                                                      "%arg0", call, "%arg1" if residual else None, expansion)
        names = ", ".join(["%y", "%y2"][:len(results)])
        return self.splicer.call(before, [x, *residual], results,
                                 "\n".join([*body, f"return {names} : {', '.join(results)}"]), layer.op.location,
                                 symbols=executable)

    def _kernel_symbol(self) -> str:
        self.kernel_count += 1
        return f"quantune_kernel_{self.kernel_count}"

    def _splice_kernel(self, before: ir.Operation, args: list[ir.Value], result: str, lines: list[str],
                       executable: str, location: ir.Location) -> ir.Value:
        (value,) = self.splicer.call(before, args, [result], "\n".join(lines), location, symbols=executable)
        return value

    def _in_model_layout(self, value: ir.Value, block: ir.Block) -> ir.Value:
        """An int8 tensor transposed back to the model's NCHW (fp32 ones are stored that way already)."""
        shape = tensor_shape(value.type)
        if len(shape) != 4 or element_dtype(value.type) != np.int8:
            return value
        model = _model_layout(shape)
        (transposed,) = self.splicer.call(
            block.operations[len(block.operations) - 1], [value], [f"tensor<{_dims(model)}i8>"],
            f"%out = tensor.empty() : tensor<{_dims(model)}i8>\n"
            f"%y = linalg.transpose ins(%arg0 : tensor<{_dims(shape)}i8>) outs(%out : tensor<{_dims(model)}i8>) "
            f"permutation = [0, 3, 1, 2]\nreturn %y : tensor<{_dims(model)}i8>", value.owner.location)
        return transposed

    def _emit_pass_through(self, op: ir.Operation, qcast: ir.Operation) -> ir.Value:
        """A max pool or channel concatenation on the int8 values of its inputs, channels-last."""
        y_shape = channels_last(tensor_shape(op.results[0].type))
        y_type = f"tensor<{_dims(y_shape)}i8>"
        sources = [_dcast_source(v) for v in pass_through_inputs(op)]
        if op.name == "tensor.concat":
            types = ", ".join(f"tensor<{_dims(channels_last(tensor_shape(v.type)))}i8>" for v in sources)
            body = (f"%y = tensor.concat dim(3) {', '.join(f'%arg{i}' for i in range(len(sources)))} : "
                    f"({types}) -> {y_type}\nreturn %y : {y_type}")
        else:
            x_shape = channels_last(tensor_shape(sources[0].type))
            padding = pad_of(op.operands[0])
            fill = int(quantize(padding[3], _activation(qcast.results[0].type, _point_name(qcast)))) \
                if padding is not None else INT_RANGES["int8"][0]
            if self._max_pool_kernel_runs(op, fill):
                return self._call_max_pool(op, qcast, self.storage[sources[0]], x_shape, y_shape)
            body = _max_pool(op, x_shape, y_type, fill)
        (value,) = self.splicer.call(qcast, [self.storage[v] for v in sources], [y_type], body, op.location)
        return value

    def _max_pool_kernel_runs(self, pool: ir.Operation, fill: int) -> bool:
        """The kernel skips the taps in the padding: right for a padding with the int8 minimum (-inf, or a ReLU
        output's zeros at zero point -128)."""
        strides, dilations = int_array(pool, "strides"), int_array(pool, "dilations")
        return fill == INT_RANGES["int8"][0] and self.library is not None \
            and self.library.max_pool_symbol is not None and len(set(strides)) == 1 and all(d == 1 for d in dilations)

    def _call_max_pool(self, pool: ir.Operation, qcast: ir.Operation, x: ir.Value, x_shape: tuple[int, ...],
                       y_shape: tuple[int, ...]) -> ir.Value:
        """The max pool as one dispatch of the library's kernel, which skips the taps in the padding: no padded
        copy (a dispatch IREE runs on one thread)."""
        padding = pad_of(pool.operands[0])
        low = channels_last(padding[1]) if padding is not None else (0, 0, 0, 0)
        window = tensor_shape(pool.operands[1].type)
        lines, executable = extern_conv.emit_max_pool(x_shape, y_shape, window, int_array(pool, "strides")[0],
                                                      (low[1], low[2]), self.library, self.key, self._kernel_symbol(),
                                                      "%arg0", _point_name(qcast))
        y_type = f"tensor<{_dims(y_shape)}i8>"
        return self._splice_kernel(qcast, [x], y_type, [*lines, f"return %y : {y_type}"], executable, pool.location)

    def _emit_quantize(self, qcast: ir.Operation) -> ir.Value:
        params = _activation(qcast.results[0].type, _point_name(qcast))
        shape = tensor_shape(qcast.operands[0].type)
        qmin, qmax = INT_RANGES[params.dtype]
        if self.library is not None and len(shape) == 4 and shape[0] == 1 and \
                producer(qcast.operands[0]) is None:
            # A model input's quantize is a dispatch of its own, where IREE's codegen spends about 2 ns an
            # element on the transpose (measured: 0.30 ms of ResNet18's 10 ms at 224x224); inside the model IREE
            # fuses it into the fp32 producer's dispatch instead
            result = channels_last(shape)
            # channels padded to the conv kernel's reduction step here, so that a stem reads the input as it is
            # (_call_kernel) instead of through a padded copy, a dispatch that IREE does not even parallelise
            wide = (*result[:3], -(-result[3] // self.library.reduction_group) * self.library.reduction_group)
            lines, executable = extern_conv.emit_quantize(shape, params.scale, params.zero_point, (qmin, qmax),
                                                          self.library, self.key, self._kernel_symbol(), "%arg0",
                                                          _point_name(qcast), wide[3])
            if wide == result:
                return self._splice_kernel(qcast, [qcast.operands[0]], f"tensor<{_dims(result)}i8>",
                                           [*lines, f"return %y : tensor<{_dims(result)}i8>"], executable,
                                           qcast.location)
            # what any other reader gets: the real channels (erased as dead where nothing reads them)
            narrow_type, wide_type = f"tensor<{_dims(result)}i8>", f"tensor<{_dims(wide)}i8>"
            lines += [f"%narrow = tensor.extract_slice %y[0, 0, 0, 0] [{', '.join(map(str, result))}] [1, 1, 1, 1] "
                      f": {wide_type} to {narrow_type}", f"return %y, %narrow : {wide_type}, {narrow_type}"]
            wide_value, narrow = self.splicer.call(qcast, [qcast.operands[0]], [wide_type, narrow_type],
                                                   "\n".join(lines), qcast.location, symbols=executable)
            self.channel_padded[narrow] = wide_value
            return narrow
        body = _elementwise(shape, "f32", "i8", [
            "%d = arith.divf %in, %c_scale : f32", "%r = math.roundeven %d : f32",
            "%z = arith.addf %r, %c_zp : f32", "%lo = arith.maximumf %z, %c_qmin : f32",
            "%hi = arith.minimumf %lo, %c_qmax : f32", "%q = arith.fptosi %hi : f32 to i8"], "%q",
            {"c_scale": f"{float(np.float32(params.scale))!r} : f32", "c_zp": f"{float(params.zero_point)!r} : f32",
             "c_qmin": f"{float(qmin)!r} : f32", "c_qmax": f"{float(qmax)!r} : f32"})
        (value,) = self.splicer.call(qcast, [qcast.operands[0]], [f"tensor<{_dims(channels_last(shape))}i8>"], body,
                                     qcast.location)
        return value

    def _emit_dequantize(self, dcast: ir.Operation) -> ir.Value:
        params = _activation(dcast.operands[0].type, _point_name(dcast))
        shape = tensor_shape(dcast.results[0].type)
        body = _elementwise(shape, "i8", "f32", [
            "%e = arith.extsi %in : i8 to i32", "%z = arith.subi %e, %c_zp : i32",
            "%f = arith.sitofp %z : i32 to f32", "%y = arith.mulf %f, %c_scale : f32"], "%y",
            {"c_scale": f"{float(np.float32(params.scale))!r} : f32", "c_zp": f"{params.zero_point} : i32"})
        (value,) = self.splicer.call(dcast, [self.storage[dcast.operands[0]]], [f"tensor<{_dims(shape)}f32>"],
                                     body, dcast.location)
        return value


def _activation(t: ir.Type, where: str):
    params = uniform_type(t).activation
    if params.dtype != "int8":
        raise PassFailure(f"'{where}': {params.dtype} activations are not lowered; use int8 (IREE 3.13 has "
                          "no u8 x s8 integer kernels, so uint8 would leave the fast named-op path)")
    return params


def _contraction(layer: Layer, weight: np.ndarray, zero_point: int) -> list[str]:
    """Lines computing %acc, the layer's i32 accumulator in storage layout (channels last), from %arg0 (int8,
    channels last), in the op form IREE 3.13 runs fastest for that layer (pipelines/README.md): a 1x1 conv is
    a matmul [H*W, C] x [C, F], which reaches the data-tiled int8 mmt4d kernels without im2col; a depthwise
    conv is `depthwise_conv_2d_nhwc_hwc`, which IREE vectorises (NCHW gets no vector multiply) and never
    turns into im2col; other convs are `conv_2d_nhwc_hwcf`, which IREE's im2col makes a data-tiled matmul."""
    x_shape = channels_last(tensor_shape(layer.activation.type))
    acc_shape = channels_last(tensor_shape(layer.op.results[0].type))
    acc_type = f"tensor<{_dims(acc_shape)}i32>"
    lines, x = ["%zero = arith.constant 0 : i32"], "%arg0"
    attrs, where = f'{LAYER_ATTR} = "{layer.id}"', f'loc("{layer.id}")'
    if layer.kind == "linear":
        weight = np.ascontiguousarray(weight.T)
        return lines + [f"%w = arith.constant {dense(weight)}"] + _matmul(("%arg0", x_shape), ("%w", weight.shape),
                                                                         attrs, where)
    padding, x, x_shape = _padded(layer, x_shape, zero_point)
    lines += padding
    strides = tuple(int_array(layer.op, "strides"))
    conv_attrs = f"{attrs}, dilations = dense<1> : tensor<2xi64>, strides = dense<{list(strides)}> : tensor<2xi64>"
    if layer.kind == "conv" and weight.shape[2:] == (1, 1) and x_shape[0] == 1:
        _, height, width, filters = acc_shape
        channels = x_shape[3]
        if strides != (1, 1):
            sliced = (1, height, width, channels)
            lines.append(f"%strided = tensor.extract_slice {x}[0, 0, 0, 0] [{', '.join(map(str, sliced))}] "
                         f"[1, {strides[0]}, {strides[1]}, 1] : tensor<{_dims(x_shape)}i8> to "
                         f"tensor<{_dims(sliced)}i8>")
            x, x_shape = "%strided", sliced
        pixels = height * width
        weight = np.ascontiguousarray(weight.reshape(filters, channels).T)
        return lines + [
            f"%columns = tensor.collapse_shape {x} [[0, 1, 2], [3]] : tensor<{_dims(x_shape)}i8> into "
            f"tensor<{pixels}x{channels}xi8>", f"%w = arith.constant {dense(weight)}",
            *_matmul(("%columns", (pixels, channels)), ("%w", weight.shape), attrs, where, "%flat"),
            f"%acc = tensor.expand_shape %flat [[0, 1, 2], [3]] output_shape {list(acc_shape)} : "
            f"tensor<{pixels}x{filters}xi32> into {acc_type}"]
    if layer.kind == "depthwise":
        op, weight = "linalg.depthwise_conv_2d_nhwc_hwc", np.ascontiguousarray(weight.transpose(1, 2, 0))
    else:
        op, weight = "linalg.conv_2d_nhwc_hwcf", np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    return lines + [
        f"%w = arith.constant {dense(weight)}", f"%init = tensor.empty() : {acc_type}",
        f"%acc0 = linalg.fill ins(%zero : i32) outs(%init : {acc_type}) -> {acc_type}",
        f"%acc = {op} {{{conv_attrs}}} ins({x}, %w : tensor<{_dims(x_shape)}i8>, "
        f"tensor<{_dims(weight.shape)}i8>) outs(%acc0 : {acc_type}) -> {acc_type} {where}"]


def _padded(layer: Layer, x_shape: tuple[int, ...], zero_point: int, extra_channels: int = 0
            ) -> tuple[list[str], str, tuple[int, ...]]:
    """(lines, value, shape) of the layer's channels-last int8 input %arg0 padded with its zero point (and
    with extra_channels more channels)."""
    if not any(layer.padding) and not extra_channels:
        return [], "%arg0", x_shape
    low = channels_last(layer.padding[:4])
    high = tuple(p + (extra_channels if i == 3 else 0) for i, p in enumerate(channels_last(layer.padding[4:])))
    padded = tuple(d + lo + hi for d, lo, hi in zip(x_shape, low, high))
    return [f"%zx = arith.constant {zero_point} : i8",
            f"%padded = tensor.pad %arg0 low{list(low)} high{list(high)} {{",
            "^bb0(%i0: index, %i1: index, %i2: index, %i3: index):", "  tensor.yield %zx : i8",
            f"}} : tensor<{_dims(x_shape)}i8> to tensor<{_dims(padded)}i8>"], "%padded", padded


def _zero_channels(weight: np.ndarray, channels: int) -> np.ndarray:
    """Conv weights [F][C][KH][KW] with zeros for input channels C .. channels - 1."""
    return np.pad(weight, ((0, 0), (0, channels - weight.shape[1]), (0, 0), (0, 0)))


def channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The storage layout of an int8 tensor: NCHW becomes NHWC (what IREE's fast int8 kernels read), lower
    ranks stay as they are."""
    return (shape[0], *shape[2:], shape[1]) if len(shape) == 4 else tuple(shape)


def _matmul(lhs: tuple[str, tuple[int, ...]], rhs: tuple[str, tuple[int, ...]], attrs: str, where: str,
            result: str = "%acc") -> list[str]:
    acc_type = f"tensor<{lhs[1][0]}x{rhs[1][1]}xi32>"
    return [f"%init = tensor.empty() : {acc_type}",
            f"%acc0 = linalg.fill ins(%zero : i32) outs(%init : {acc_type}) -> {acc_type}",
            f"{result} = linalg.matmul {{{attrs}}} ins({lhs[0]}, {rhs[0]} : tensor<{_dims(lhs[1])}i8>, "
            f"tensor<{_dims(rhs[1])}i8>) outs(%acc0 : {acc_type}) -> {acc_type} {where}"]


def _channel_sums(weight: np.ndarray) -> np.ndarray:
    return weight.reshape(weight.shape[0], -1).astype(np.int64).sum(1)


def _maps(rank: int) -> tuple[str, str]:
    """(identity, storage-to-model) affine maps over a storage-layout iteration space."""
    dims = [f"d{i}" for i in range(rank)]
    model = [dims[0], dims[-1], *dims[1:-1]] if rank == 4 else dims
    return f"affine_map<({', '.join(dims)}) -> ({', '.join(dims)})>", \
        f"affine_map<({', '.join(dims)}) -> ({', '.join(model)})>"


def _model_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) == 4 else tuple(shape)


def _per_channel_generic(shape: tuple[int, ...], inputs: list[tuple[str, str, bool]], out_element: str,
                         body: list[str], result: str) -> list[str]:
    """A generic over the accumulator's storage shape; inputs are (value, element type, per channel): %b<i> in
    the body is input i. An i8 result keeps the storage layout, an f32 one goes back to the model's."""
    rank = len(shape)
    identity, to_model = _maps(rank)
    dims = ", ".join(f"d{i}" for i in range(rank))
    channel = f"affine_map<({dims}) -> (d{rank - 1})>"
    maps = [channel if per_channel else identity for _, _, per_channel in inputs]
    out_shape = shape if out_element == "i8" else _model_layout(shape)
    maps.append(identity if out_element == "i8" else to_model)
    out_type = f"tensor<{_dims(out_shape)}{out_element}>"
    types = [f"tensor<{shape[-1]}x{e}>" if per_channel else f"tensor<{_dims(shape)}{e}>" for _, e, per_channel in inputs]
    block_args = ", ".join(f"%b{i}: {e}" for i, (_, e, _) in enumerate(inputs))
    iterators = ", ".join(['"parallel"'] * rank)
    return [f"%out = tensor.empty() : {out_type}",
            f"%y = linalg.generic {{indexing_maps = [{', '.join(maps)}], iterator_types = [{iterators}]}} "
            f"ins({', '.join(v for v, _, _ in inputs)} : {', '.join(types)}) "
            f"outs(%out : {out_type}) {{",
            f"^bb0({block_args}, %o: {out_element}):", *[f"  {line}" for line in body],
            f"  linalg.yield {result} : {out_element}", f"}} -> {out_type}"]


def _dequantizing_epilogue(shape: tuple[int, ...], scales: np.ndarray) -> list[str]:
    return [f"%scale = arith.constant {dense(scales.astype(np.float32))}"] + _per_channel_generic(
        shape, [("%acc", "i32", False), ("%bias", "i32", True), ("%scale", "f32", True)], "f32",
        ["%t = arith.addi %b0, %b1 : i32", "%f = arith.sitofp %t : i32 to f32", "%v = arith.mulf %f, %b2 : f32"],
        "%v")


def _clamp_bounds(y, clamp: tuple[float, float]) -> tuple[int, int]:
    """The int8 bounds of the output: the activation's clamp (ReLU, ReLU6) within the type's range."""
    qmin, qmax = INT_RANGES[y.dtype]
    lo = qmin if clamp[0] == -math.inf else max(qmin, int(np.rint(clamp[0] / y.scale)) + y.zero_point)
    hi = qmax if clamp[1] == math.inf else min(qmax, int(np.rint(clamp[1] / y.scale)) + y.zero_point)
    return lo, hi


def _requantizing_epilogue(shape, multipliers: np.ndarray, y, clamp: tuple[float, float], residual,
                           residual_multiplier) -> list[str]:
    """acc + bias in float32 times the per-channel multiplier (plus the rescaled residual), clamped, rounded half
    to even, plus the output zero point: quantization.requantize, op for op. float32 beats a 64-bit fixed-point
    multiply on every CPU (the int64 epilogue was most of MobileNetV2's time) and is what the kernels compute."""
    lo, hi = _clamp_bounds(y, clamp)
    inputs = [("%acc", "i32", False), ("%bias", "i32", True), ("%mult", "f32", True)]
    body = ["%t = arith.addi %b0, %b1 : i32", "%f = arith.sitofp %t : i32 to f32", "%p0 = arith.mulf %f, %b2 : f32"]
    product = "%p0"
    if residual is not None:
        inputs.append(("%arg1", "i8", False))
        body += ["%r = arith.extsi %b3 : i8 to i32", f"%rzp = arith.constant {residual.zero_point} : i32",
                 "%rz = arith.subi %r, %rzp : i32", "%rf = arith.sitofp %rz : i32 to f32",
                 f"%rm = arith.constant {float(residual_multiplier)!r} : f32", "%rp = arith.mulf %rf, %rm : f32",
                 "%p1 = arith.addf %p0, %rp : f32"]
        product = "%p1"
    body += [f"%lo = arith.constant {float(lo - y.zero_point)!r} : f32",
             f"%hi = arith.constant {float(hi - y.zero_point)!r} : f32",
             f"%c1 = arith.maximumf {product}, %lo : f32", "%c2 = arith.minimumf %c1, %hi : f32",
             "%rd = math.roundeven %c2 : f32", "%qi = arith.fptosi %rd : f32 to i32",
             f"%zy = arith.constant {y.zero_point} : i32", "%q = arith.addi %qi, %zy : i32",
             "%v = arith.trunci %q : i32 to i8"]
    return [f"%mult = arith.constant {dense(multipliers)}"] + _per_channel_generic(shape, inputs, "i8", body, "%v")


def _elementwise(model_shape, in_element: str, out_element: str, body: list[str], result: str,
                 scalars: dict[str, str]) -> str:
    """A function body converting %arg0 between f32 in the model's layout and i8 in storage layout."""
    shape = channels_last(model_shape)
    identity, to_model = _maps(len(shape))
    in_shape, out_shape = (model_shape, shape) if in_element == "f32" else (shape, model_shape)
    in_map, out_map = (to_model, identity) if in_element == "f32" else (identity, to_model)
    in_type, out_type = f"tensor<{_dims(in_shape)}{in_element}>", f"tensor<{_dims(out_shape)}{out_element}>"
    iterators = ", ".join(['"parallel"'] * len(shape))
    return "\n".join([*(f"%{k} = arith.constant {v}" for k, v in scalars.items()),
                      f"%out = tensor.empty() : {out_type}",
                      f"%y = linalg.generic {{indexing_maps = [{in_map}, {out_map}], iterator_types = "
                      f"[{iterators}]}} ins(%arg0 : {in_type}) outs(%out : {out_type}) {{",
                      f"^bb0(%in: {in_element}, %o: {out_element}):", *[f"  {line}" for line in body],
                      f"  linalg.yield {result} : {out_element}", f"}} -> {out_type}",
                      f"return %y : {out_type}"])


def _dims(shape) -> str:
    return "".join(f"{d}x" for d in shape)


def _next(op: ir.Operation) -> ir.Operation:
    block_ops = [o.operation for o in op.block.operations]
    return block_ops[block_ops.index(op) + 1]


def _dcast_source(value: ir.Value) -> ir.Value | None:
    op = producer(value)
    return op.operands[0] if op is not None and op.name == "quant.dcast" else None


def _max_pool(pool: ir.Operation, x_shape: tuple[int, ...], y_type: str, fill: int) -> str:
    """The body of an int8 channels-last max pool, padded with fill (the fp32 padding value quantized)."""
    window = tensor_shape(pool.operands[1].type)
    lines, x = ["%lowest = arith.constant -128 : i8", f"%fill = arith.constant {fill} : i8"], "%arg0"
    padding = pad_of(pool.operands[0])
    if padding is not None:
        low, high = channels_last(padding[1]), channels_last(padding[2])
        padded = tuple(d + lo + hi for d, lo, hi in zip(x_shape, low, high))
        lines += [f"%padded = tensor.pad %arg0 low{list(low)} high{list(high)} {{",
                  "^bb0(%i0: index, %i1: index, %i2: index, %i3: index):", "  tensor.yield %fill : i8",
                  f"}} : tensor<{_dims(x_shape)}i8> to tensor<{_dims(padded)}i8>"]
        x, x_shape = "%padded", padded
    lines += [f"%window = tensor.empty() : tensor<{_dims(window)}i8>", f"%init = tensor.empty() : {y_type}",
              f"%lows = linalg.fill ins(%lowest : i8) outs(%init : {y_type}) -> {y_type}",
              f"%y = linalg.pooling_nhwc_max {{dilations = dense<{list(int_array(pool, 'dilations'))}> : "
              f"tensor<2xi64>, strides = dense<{list(int_array(pool, 'strides'))}> : tensor<2xi64>}} "
              f"ins({x}, %window : tensor<{_dims(x_shape)}i8>, tensor<{_dims(window)}i8>) outs(%lows : {y_type}) "
              f"-> {y_type}", f"return %y : {y_type}"]
    return "\n".join(lines)


def _int8_pass_through(qcast: ir.Operation) -> ir.Operation | None:
    """The max pool or concatenation whose result qcast quantizes, when it reads dequantized tensors with the
    same parameters as its result (quantune-apply-plan ties them, see chains.py): it then runs on int8."""
    op = producer(qcast.operands[0])
    if op is None or op.name not in PASS_THROUGH_OPS:
        return None
    wanted = uniform_type(qcast.results[0].type).activation
    for source in map(_dcast_source, pass_through_inputs(op)):
        if source is None or uniform_type(source.type).activation != wanted:
            return None
    return op


def _is_weight(dcast: ir.Operation) -> bool:
    return _quantized_constant(dcast.results[0]) is not None


def _quantized_constant(weight: ir.Value) -> tuple[ir.Value, UniformType] | None:
    """(the i8 constant, its quant type) when weight is dcast(scast(constant))."""
    source = _dcast_source(weight)
    scast = producer(source) if source is not None else None
    if scast is None or scast.name != "quant.scast":
        return None
    constant = producer(scast.operands[0])
    if constant is None or constant.name != "arith.constant":
        return None
    return scast.operands[0], uniform_type(source.type)


def _point_name(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes[POINT_ATTR]).value if POINT_ATTR in op.attributes else str(op.location)


def _erase_dead(block: ir.Block, keep: set[ir.Value] = frozenset()) -> None:
    """Erase ops whose results nobody reads (all ops here are free of side effects), last first, but those
    defining a value in keep."""
    changed = True
    while changed:
        changed = False
        for op in reversed([o.operation for o in block.operations]):
            if not op.results or any(r in keep for r in op.results):
                continue
            if all(not list(r.uses) for r in op.results):
                op.erase()
                changed = True


def _check_nothing_quantized_left(module: ir.Module) -> None:
    left: list[str] = []

    def visit(op):
        if op.name.startswith("quant.") or any(is_quantized(r.type) for r in op.results):
            left.append(f"{op.name} at {op.location}")
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if left:
        raise PassFailure(f"quantune-lower-quant left {len(left)} quantized op(s), first {left[0]}: this form is "
                          "not lowered yet; keep that layer fp32 in the plan")
