"""An int8 layer as a dispatch to the project's conv micro-kernel (quantune_mlir/kernels) instead of integer
linalg: a `stream.executable` whose `hal.executable.objects` names the kernel object, keyed by the target CPU,
and a `flow.dispatch` of it with the packed weights, the bias, the multipliers and the int8 input.

The kernel computes exactly what the linalg form's contraction and requantize epilogue compute (same
multiplier, shift, rounding and clamp), in one dispatch per layer, reading the channels-last input directly (no
im2col buffer, no padded copy: a tap in the padding reads a row of the input zero point).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .. import kernels
from .splice import dense

# Workgroups a layer is split into, so that both of a 2-core board's threads (and more) have work: output
# pixels in row blocks, output channels in blocks of kernels.CHANNEL_BLOCK (one x86 register tile wide).
_TARGET_WORKGROUPS = 16
_ROW_TILE = 6


@dataclass(frozen=True)
class ConvCall:
    """One layer's geometry (channels-last, batch 1) and requantization, as the kernel takes them."""

    layer: str
    input_shape: tuple[int, int, int, int]  # 1, H, W, C: the input the kernel reads, without `padding`
    output_shape: tuple[int, int, int, int]  # 1, OH, OW, N
    kernel_size: tuple[int, int]
    stride: int
    weight: np.ndarray  # int8 [N][C][KH][KW] or [N][C]
    bias: np.ndarray  # int32 [N], the input zero point folded in
    multipliers: np.ndarray  # float32 [N]: requantize multipliers, or with dequantize the scales of acc + bias
    output_zero_point: int
    clamp: tuple[int, int]
    residual: tuple[int, np.float32] | None  # (zero point, multiplier) of the residual input, if any
    # An int8 -> fp32 boundary: the output is float(acc + bias) * multiplier in the model's layout (N, C, H, W);
    # zero point, clamp and residual are then unused.
    dequantize: bool = False
    # The padding rows above the input and columns left of it, which the kernel reads as input_zero_point (the
    # padding below and right follows from the output shape).
    padding: tuple[int, int] = (0, 0)
    input_zero_point: int = 0


def supports(kind: str, input_channels: int, batch: int, stride: tuple[int, ...], dilations: tuple[int, ...],
             library: kernels.KernelLibrary) -> str | None:
    """Why the kernel cannot run a layer, or None when it can. A conv's input channels are padded to a
    multiple of the library's reduction group by the rewrite; a linear layer's are taken as they are."""
    if batch != 1:
        return "batch > 1"
    if kind == "linear" and input_channels % library.reduction_group:
        return f"{input_channels} input features, not a multiple of {library.reduction_group}"
    if len(set(stride)) > 1:
        return f"unequal strides {tuple(stride)}"
    if any(d != 1 for d in dilations):
        return "dilated"
    return None


def emit(call: ConvCall, library: kernels.KernelLibrary, key: str, symbol: str, x: str, residual: str | None
         ) -> tuple[list[str], str]:
    """(body lines computing %y from the input value x and the residual value, the executable)."""
    linked = kernels.linked_path(kernels.build(library.name))
    filters = call.output_shape[3]
    zero_row = np.full(call.input_shape[3], call.input_zero_point, np.int8)
    _, out_h, out_w, _ = call.output_shape
    y_type = _tensor((1, filters, out_h, out_w), "f32") if call.dequantize else _tensor(call.output_shape, "i8")
    conv_operands, lines, padded = _conv_constants(call, library)
    operands = [(x, _tensor(call.input_shape, "i8")), ("%kzero", _tensor(zero_row.shape, "i8")), *conv_operands]
    if residual is not None:
        operands.append((residual, y_type))
    lines = [f"%kzero = arith.constant {dense(zero_row)}", *lines,
             _dispatch(symbol, operands, [y_type], f'"{call.layer}"')]
    return lines, _executable(call, library, key, symbol, linked, [t for _, t in operands], y_type, padded)


def emit_depthwise(call: ConvCall, library: kernels.KernelLibrary, key: str, symbol: str, x: str,
                   pointwise: ConvCall | None = None, residual: str | None = None, expand: ConvCall | None = None
                   ) -> tuple[list[str], str]:
    """A depthwise layer (call.weight [C][KH][KW], int8 out, no residual) as one dispatch of the library's
    depthwise kernel, which reads the unpadded input x and a row of the input zero point where a tap lies in
    call.padding: (body lines computing %y, the executable). With pointwise, the 1x1 conv that reads the
    depthwise output (int8 out, with the residual value if any) runs in the same dispatch, row by row
    (library.depthwise_conv_symbol), and %y is its output. With expand too, the 1x1 conv that reads pointwise's
    output runs after each of its rows (library.depthwise_conv_expand_symbol), and %y2 is its output."""
    linked = kernels.linked_path(kernels.build(library.name, "depthwise"))
    _, height, width, channels = call.input_shape
    layout = library.depthwise_layout
    weight = kernels.pack_depthwise_weights(call.weight, layout)
    bias = kernels.depthwise_channel_values(_kernel_bias(call, library), layout)
    multipliers = kernels.depthwise_channel_values(call.multipliers.astype(np.float32), layout)
    zero_row = np.full(len(bias), call.input_zero_point, np.int8)
    operands = [(x, _tensor(call.input_shape, "i8")), ("%kzero", _tensor(zero_row.shape, "i8")),
                ("%dww", _tensor(weight.shape, "i8")),
                ("%dwbias", _tensor(bias.shape, "i32")), ("%dwmult", _tensor(multipliers.shape, "f32"))]
    lines = [f"%kzero = arith.constant {dense(zero_row)}", f"%dww = arith.constant {dense(weight)}",
             f"%dwbias = arith.constant {dense(bias)}", f"%dwmult = arith.constant {dense(multipliers)}"]
    _, out_h, out_w, _ = call.output_shape
    scalars = {"H": height, "W": width, "C": channels, "OW": out_w, "KH": call.kernel_size[0],
               "KW": call.kernel_size[1], "stride": call.stride, "pad_top": call.padding[0],
               "pad_left": call.padding[1]}
    requantize = {"y_zp": call.output_zero_point, "lo": call.clamp[0], "hi": call.clamp[1]}
    function, layers, results, body = library.depthwise_symbol, [call.layer], [_tensor(call.output_shape, "i8")], []
    if pointwise is not None:
        conv_operands, conv_lines, padded = _conv_constants(pointwise, library)
        operands += conv_operands
        lines += conv_lines
        results = [_tensor(pointwise.output_shape, "i8")]
        layers.append(pointwise.layer)
        requantize = {"dw_zp": call.output_zero_point, "dw_lo": call.clamp[0], "dw_hi": call.clamp[1],
                      "N": pointwise.output_shape[3], "Np": padded,
                      "y_zp": pointwise.output_zero_point, "lo": pointwise.clamp[0], "hi": pointwise.clamp[1]}
        function = library.depthwise_conv_residual_symbol if residual else library.depthwise_conv_symbol
    expand_scalars = {}
    if expand is not None:
        conv_operands, conv_lines, padded = _conv_constants(expand, library, "2")
        operands += conv_operands
        lines += conv_lines
        results.append(_tensor(expand.output_shape, "i8"))
        layers.append(expand.layer)
        expand_scalars = {"N2": expand.output_shape[3], "Np2": padded, "y2_zp": expand.output_zero_point,
                          "lo2": expand.clamp[0], "hi2": expand.clamp[1]}
        function = library.depthwise_conv_residual_expand_symbol if residual else library.depthwise_conv_expand_symbol
    args = [a for i, (_, t) in enumerate(operands) for a in _buffer_arg(i, t)]
    if residual is not None:
        residual_lines, residual_args = _residual(pointwise, len(operands), results[0])
        operands.append((residual, results[0]))
        body += residual_lines
        args += residual_args
    quoted = ", ".join(f'"{layer}"' for layer in layers)
    where = quoted if len(layers) == 1 else f"fused[{quoted}]"
    lines.append(_dispatch(symbol, operands, results, where))
    scalars.update(requantize)
    row_blocks, rows = _blocks(out_h, 1, _TARGET_WORKGROUPS)
    buffers = [t for _, t in operands] + results
    body += [f"%{k} = arith.constant {v} : i64" for k, v in {**scalars, **expand_scalars}.items()]
    body += _workgroup_range("r", 0, rows, out_h)
    args += _buffer_arg(len(operands), results[0])
    args += [(f"%{k}", "i64") for k in scalars] + [("%r0", "i64"), ("%rc", "i64")]
    if expand is not None:
        args += _buffer_arg(len(operands) + 1, results[1]) + [(f"%{k}", "i64") for k in expand_scalars]
    return lines, executable(symbol, library, key, linked, (row_blocks, 1), buffers, function, args, body)


def emit_quantize(shape: tuple[int, int, int, int], scale: float, zero_point: int, bounds: tuple[int, int],
                  library: kernels.KernelLibrary, key: str, symbol: str, x: str, where: str,
                  channels_out: int | None = None) -> tuple[list[str], str]:
    """The quantize of an fp32 tensor x of the model's layout `shape` (1, C, H, W) into int8 channels-last, as
    one dispatch of the library's quantize kernel: (body lines computing %y, the executable). With
    channels_out > C, %y has channels_out channels, the ones past C holding the zero point."""
    linked = kernels.linked_path(kernels.build(library.name, "quantize"))
    _, channels, height, width = shape
    channels_out = channels_out or channels
    pixels = height * width
    blocks, block = _blocks(pixels, 16, _TARGET_WORKGROUPS)  # the kernel's vectors hold 16 pixels
    x_type, y_type = _tensor(shape, "f32"), _tensor((1, height, width, channels_out), "i8")
    scalars = {"C": (channels, "i64"), "Cp": (channels_out, "i64"), "pixels": (pixels, "i64"),
               "scale": (f"{np.float32(scale):.9e}", "f32"), "zp": (zero_point, "i64"), "lo": (bounds[0], "i64"),
               "hi": (bounds[1], "i64")}
    body = [f"%{k} = arith.constant {v} : {t}" for k, (v, t) in scalars.items()]
    body += _workgroup_range("px", 0, block, pixels)
    args = [*_buffer_arg(0, x_type), *_buffer_arg(1, y_type), *((f"%{k}", t) for k, (_, t) in scalars.items()),
            ("%px0", "i64"), ("%pxc", "i64")]
    lines = [_dispatch(symbol, [(x, x_type)], [y_type], f'"{where}"')]
    return lines, executable(symbol, library, key, linked, (blocks, 1), [x_type, y_type],
                             library.quantize_symbol, args, body)


def emit_max_pool(x_shape: tuple[int, int, int, int], y_shape: tuple[int, int, int, int], window: tuple[int, int],
                  stride: int, padding: tuple[int, int], library: kernels.KernelLibrary, key: str, symbol: str,
                  x: str, where: str) -> tuple[list[str], str]:
    """An int8 channels-last max pool of x (shape x_shape, unpadded; padding: the rows above and columns left of
    it, whose taps the kernel skips) as one dispatch of the library's max-pool kernel: (body lines computing %y,
    the executable)."""
    linked = kernels.linked_path(kernels.build(library.name, "pool"))
    _, height, width, channels = x_shape
    _, out_h, out_w, _ = y_shape
    row_blocks, rows = _blocks(out_h, 1, _TARGET_WORKGROUPS)
    x_type, y_type = _tensor(x_shape, "i8"), _tensor(y_shape, "i8")
    scalars = {"H": height, "W": width, "C": channels, "OW": out_w, "KH": window[0], "KW": window[1],
               "stride": stride, "pad_top": padding[0], "pad_left": padding[1]}
    body = [f"%{k} = arith.constant {v} : i64" for k, v in scalars.items()] + _workgroup_range("r", 0, rows, out_h)
    args = [*_buffer_arg(0, x_type), *_buffer_arg(1, y_type), *((f"%{k}", "i64") for k in scalars),
            ("%r0", "i64"), ("%rc", "i64")]
    return [_dispatch(symbol, [(x, x_type)], [y_type], f'"{where}"')], executable(
        symbol, library, key, linked, (row_blocks, 1), [x_type, y_type], library.max_pool_symbol, args, body)


def _executable(call: ConvCall, library, key: str, symbol: str, object_path: str, operand_types: list[str],
                y_type: str, padded: int) -> str:
    _, height, width, channels = call.input_shape
    _, out_h, out_w, filters = call.output_shape
    pixels = out_h * out_w
    # int8 channels-last: unless N is a multiple of 64, one pixel's channel blocks share 64-byte lines, and two
    # cores writing them would pass the lines back and forth; such layers are split by pixels alone
    block = kernels.CHANNEL_BLOCK if call.dequantize or filters % kernels.CHANNEL_BLOCK == 0 else padded
    channel_blocks = -(-padded // block)
    row_blocks, rows = _blocks(pixels, _ROW_TILE, _TARGET_WORKGROUPS // channel_blocks)
    buffers = [*operand_types, y_type]
    scalars = {"H": height, "W": width, "C": channels, "OW": out_w, "N": filters, "Np": padded,
               "KH": call.kernel_size[0], "KW": call.kernel_size[1], "stride": call.stride,
               "pad_top": call.padding[0], "pad_left": call.padding[1]}
    scalars.update({"pixels": pixels} if call.dequantize else
                   {"y_zp": call.output_zero_point, "lo": call.clamp[0], "hi": call.clamp[1]})
    lines = [f"%{k} = arith.constant {v} : i64" for k, v in scalars.items()]
    lines += _workgroup_range("m", 0, rows, pixels) + _workgroup_range("n", 1, block, padded)
    args = [a for i in range(5) for a in _buffer_arg(i, buffers[i])]
    if call.residual is not None:
        residual_lines, residual_args = _residual(call, 5, y_type)
        lines += residual_lines
        args += residual_args
    args += _buffer_arg(len(buffers) - 1, y_type)
    args += [(f"%{k}", "i64") for k in scalars] + [(f"%{v}", "i64") for v in ("m0", "mc", "n0", "nc")]
    function = library.conv_f32_symbol if call.dequantize else \
        library.conv_residual_symbol if call.residual is not None else library.conv_symbol
    return executable(symbol, library, key, object_path, (row_blocks, channel_blocks), buffers, function, args,
                      lines)


_OBJECT_PATH = re.compile(r'#hal\.executable\.object<\{path = "([^"]+)"')


def linked_objects(module) -> list[str]:
    """The object paths that the executables of a lowered module link (as `executable` wrote them)."""
    return [path for op in module.body.operations
            if op.operation.name == "stream.executable" and "hal.executable.objects" in op.operation.attributes
            for path in _OBJECT_PATH.findall(str(op.operation.attributes["hal.executable.objects"]))]


def linked_objects_in_text(text: str) -> list[str]:
    """linked_objects of printed MLIR."""
    return _OBJECT_PATH.findall(text)


def _blocks(total: int, unit: int, most: int) -> tuple[int, int]:
    """(workgroups, items each): total items split into at most `most` workgroups of a multiple of unit items."""
    count = max(1, min(-(-total // unit), most))
    size = -(-(-(-total // count)) // unit) * unit
    return -(-total // size), size


def _workgroup_range(name: str, dimension: int, size: int, total: int) -> list[str]:
    """Lines setting %<name>0 and %<name>c (i64): the first item and the number of items of this workgroup along
    grid dimension `dimension`, `size` items a workgroup out of `total`."""
    return [f"%{name}_size = arith.constant {size} : index", f"%{name}_total = arith.constant {total} : index",
            f"%{name}_id = stream.dispatch.workgroup.id[{dimension}] : index",
            f"%{name}0i = arith.muli %{name}_id, %{name}_size : index",
            f"%{name}_left = arith.subi %{name}_total, %{name}0i : index",
            f"%{name}ci = arith.minsi %{name}_left, %{name}_size : index",
            f"%{name}0 = arith.index_cast %{name}0i : index to i64",
            f"%{name}c = arith.index_cast %{name}ci : index to i64"]


def executable(symbol: str, library, key: str, object_path: str, workgroups: tuple[int, int], buffers: list[str],
               function: str, args: list[tuple[str, str]], lines: list[str]) -> str:
    """A `stream.executable` @symbol whose one export, on a workgroups[0] x workgroups[1] grid, calls
    `function` of the linked object with args; binding i holds buffers[i] (a tensor type), its base pointer
    and offset are %p<i> and %o<i> for lines and args."""
    bindings = ", ".join(f"%b{i}: !stream.binding" for i in range(len(buffers)))
    views = ["%c0 = arith.constant 0 : index"]
    for i, t in enumerate(buffers):
        size, elem = _elements(t), _element(t)
        views += [f"%buf{i} = stream.binding.subspan %b{i}[%c0] : !stream.binding -> memref<{size}x{elem}>",
                  f"%p{i}, %o{i}, %s{i}, %t{i} = iree_codegen.extract_strided_metadata %buf{i} : "
                  f"memref<{size}x{elem}> -> memref<{elem}>, index, index, index"]
    signature = ", ".join(t for _, t in args)
    body = "\n        ".join([*views, *lines,
                                f"func.call @{function}({', '.join(v for v, _ in args)}) : ({signature}) -> ()",
                                "return"])
    return f"""stream.executable private @{symbol} attributes {{hal.executable.objects = #hal.executable.objects<{{
    #hal.executable.target<"llvm-cpu", "{library.executable_format}", {{{_attribute(key)}}}> = [
      #hal.executable.object<{{path = "{object_path}"}}>]}}>}} {{
  stream.executable.export public @{symbol} workgroups() -> (index, index, index) {{
    %x = arith.constant {workgroups[0]} : index
    %y = arith.constant {workgroups[1]} : index
    %one = arith.constant 1 : index
    stream.return %x, %y, %one : index, index, index
  }}
  builtin.module {{
    func.func private @{function}({signature}) attributes {{hal.import.static, llvm.bareptr = true}}
    func.func @{symbol}({bindings}) {{
        {body}
    }}
  }}
}}"""


def _conv_constants(call: ConvCall, library: kernels.KernelLibrary, suffix: str = ""
                    ) -> tuple[list[tuple[str, str]], list[str], int]:
    """The conv kernel's packed weights, bias and multipliers: their (value, type) operands (named with suffix),
    the lines defining them, and the output channels padded (kernels.VECTOR_CHANNELS)."""
    packed = kernels.pack_conv_weights(call.weight, library.reduction_group)
    bias = kernels.pad_channels(_kernel_bias(call, library))
    multipliers = kernels.pad_channels(call.multipliers.astype(np.float32))
    names = [f"%w{suffix}", f"%kbias{suffix}", f"%kmult{suffix}"]
    operands = list(zip(names, [_tensor(packed.shape, "i8"), _tensor(bias.shape, "i32"),
                                _tensor(multipliers.shape, "f32")]))
    lines = [f"{name} = arith.constant {dense(values)}" for name, values in zip(names, (packed, bias, multipliers))]
    return operands, lines, len(multipliers)


def _residual(call: ConvCall, binding: int, tensor_type: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(lines, kernel arguments) of a residual add: the residual buffer at `binding`, its zero point and
    multiplier."""
    lines = [f"%rzp = arith.constant {call.residual[0]} : i64",
             f"%rmult = arith.constant {float(call.residual[1])!r} : f32"]
    return lines, [*_buffer_arg(binding, tensor_type), ("%rzp", "i64"), ("%rmult", "f32")]


def _dispatch(symbol: str, operands: list[tuple[str, str]], results: list[str], where: str) -> str:
    """The `flow.dispatch` of executable @symbol on operands ((value, type) pairs) at location `where`: its
    results (types) are %y (and %y2)."""
    names = ", ".join(["%y", "%y2"][:len(results)])
    types = results[0] if len(results) == 1 else f"({', '.join(results)})"
    return (f"{names} = flow.dispatch @{symbol}::@{symbol}({', '.join(v for v, _ in operands)}) : "
            f"({', '.join(t for _, t in operands)}) -> {types} loc({where})")


def _kernel_bias(call: ConvCall, library: kernels.KernelLibrary) -> np.ndarray:
    """The int32 bias a kernel adds: where it reads x ^ 0x80 = x + 128 as u8 (x86), less 128 * sum(w)."""
    bias = call.bias.astype(np.int64)
    if library.unsigned_activations:
        bias = bias - 128 * call.weight.reshape(call.weight.shape[0], -1).astype(np.int64).sum(1)
    return bias.astype(np.int32)


def _attribute(key: str) -> str:
    """`cpu=znver4` as the attribute `cpu = "znver4"` (kernels.TargetConfig.object_key)."""
    name, _, value = key.partition("=")
    return f'{name} = "{value}"'


def _buffer_arg(i: int, tensor_type: str) -> list[tuple[str, str]]:
    return [(f"%p{i}", f"memref<{_element(tensor_type)}>"), (f"%o{i}", "index")]


def _element(tensor_type: str) -> str:
    return tensor_type.rsplit("x", 1)[1].rstrip(">")


def _tensor(shape, element: str) -> str:
    return f"tensor<{''.join(f'{d}x' for d in shape)}{element}>"


def _elements(tensor_type: str) -> int:
    return int(np.prod([int(d) for d in tensor_type[len("tensor<"):].split("x")[:-1]]))
