"""The project's micro-kernels (quantune_mlir/kernels), linked into real IREE modules and run, x86-64 natively and
aarch64 under qemu-aarch64: bit-exact against numpy on random shapes, tails and extreme values; whole models
with the kernels equal to the integer-linalg path; objects that call nothing and link only for the CPU they are
keyed by."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from quantune_mlir import api, kernels
from quantune_mlir.compile import compile_file, get_target
from quantune_mlir.compile.iree_compile import CompileError
from quantune_mlir.data.resolve import load_data
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.quantization import requantize
from quantune_mlir.quantize import QuantizeOptions, calibrate, rewrite_and_compile
from quantune_mlir.rewrite import extern_conv
from quantune_mlir.runtime import CompiledModule
from quantune_mlir.zoo import parse_zoo_id

LIBRARY = "x86_64-avx512vnni"
# aarch64 runs under qemu-aarch64: its conv kernels smmla (aarch64, +i8mm) and sdot (aarch64-dotprod), which share
# the depthwise and quantize kernels
ON_QEMU = pytest.mark.qemu
CONV_TARGETS = ["x86_64", pytest.param("aarch64", marks=ON_QEMU), pytest.param("aarch64-dotprod", marks=ON_QEMU)]
TARGETS = ["x86_64", pytest.param("aarch64", marks=ON_QEMU)]
pytestmark = pytest.mark.skipif(kernels.library_for(get_target("x86_64")) is None,
                                reason="this CPU has no AVX-512 VNNI: the x86-64 kernels cannot run here")


def _library_and_key(target: str) -> tuple[kernels.KernelLibrary, str]:
    library = kernels.library_for(get_target(target))
    return library, kernels.target_config(get_target(target).for_int8().flag_file).object_key()


def _write_source(path, text: str):
    """The MLIR, with the kernel objects it links beside it (as a build folder holds them)."""
    path.write_text(text)
    kernels.place_linked_objects(re.findall(r'#hal\.executable\.object<\{path = "([^"]+)"', text), path.parent)
    return path


def _compile_and_run(tmp_path, source_text: str, target: str, inputs: list[np.ndarray]) -> np.ndarray:
    source = _write_source(tmp_path / f"kernel_{target}.mlir", source_text)
    vmfb = compile_file(source, get_target(target).for_int8(), tmp_path / f"kernel_{target}.vmfb",
                        object_dir=tmp_path)
    results = api.load_module(vmfb, target=target)(*inputs)
    return results[0] if len(results) == 1 else results


def _accumulators(x, w, stride) -> np.ndarray:
    """[OH][OW][N] int64 sums of x * w of a channels-last input and [N][C][KH][KW] weights."""
    _, height, width, _ = x.shape
    filters, _, kh, kw = w.shape
    out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
    acc = np.zeros((out_h, out_w, filters), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[0, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            acc += patch.astype(np.int64) @ w[:, :, i, j].T.astype(np.int64)
    return acc


def _depthwise_accumulators(x, w, stride) -> np.ndarray:
    """[OH][OW][C] int64 sums of a channels-last (padded) input times [C][KH][KW] weights, per channel."""
    _, height, width, channels = x.shape
    _, kh, kw = w.shape
    out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
    acc = np.zeros((out_h, out_w, channels), np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += x[0, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride] * \
                w[:, i, j].astype(np.int64)
    return acc


def reference_conv(x, w, bias, multipliers, y_zero_point, clamp, stride, residual=None):
    """What quantune-lower-quant's integer linalg computes: the exact int32 conv plus bias, then
    quantization.requantize (float32, op for op)."""
    acc = (_accumulators(x, w, stride) + bias).astype(np.int32)
    residual = (residual[0][0], *residual[1:]) if residual is not None else None
    return requantize(acc, multipliers, y_zero_point, clamp, residual)[None]


def run_kernel(tmp_path, x, w, bias, multipliers, y_zero_point, clamp, stride, residual=None, dequantize=False,
               target="x86_64", padding=((0, 0), (0, 0)), x_zero_point=0):
    """padding: ((top, bottom), (left, right)), which the kernel reads as x_zero_point. The input channels are
    padded to the library's reduction group as the rewrite pads them (zero weights there)."""
    library, key = _library_and_key(target)
    extra_channels = -x.shape[3] % library.reduction_group
    x = np.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra_channels)), constant_values=x_zero_point)
    w = np.pad(w, ((0, 0), (0, extra_channels), (0, 0), (0, 0)))
    _, height, width, channels = x.shape
    filters, _, kh, kw = w.shape
    (top, bottom), (left, right) = padding
    out_shape = (1, (height + top + bottom - kh) // stride + 1, (width + left + right - kw) // stride + 1, filters)
    call = extern_conv.ConvCall("layer", x.shape, out_shape, (kh, kw), stride, w, bias, multipliers, y_zero_point,
                                clamp, residual[1:] if residual is not None else None, dequantize,
                                padding=(top, left), input_zero_point=x_zero_point)
    body, executable = extern_conv.emit(call, library, key, "kernel", "%arg0",
                                        "%arg1" if residual is not None else None)
    y_type = f"tensor<1x{filters}x{out_shape[1]}x{out_shape[2]}xf32>" if dequantize else \
        f"tensor<{'x'.join(map(str, out_shape))}xi8>"
    args = f"%arg0: tensor<{'x'.join(map(str, x.shape))}xi8>" + (f", %arg1: {y_type}" if residual is not None else "")
    return _compile_and_run(tmp_path, f"{executable}\nfunc.func @main({args}) -> {y_type} {{\n" + "\n".join(body)
                            + f"\nreturn %y : {y_type}\n}}\n", target,
                            [x] + ([residual[0]] if residual is not None else []))


@pytest.mark.parametrize("target", CONV_TARGETS)
@pytest.mark.parametrize("height, width, channels, filters, kernel, stride, with_residual, padding", [
    (8, 8, 8, 16, 3, 1, False, ((0, 0), (0, 0))),  # one tile of 16 channels
    (8, 8, 8, 16, 3, 1, False, ((1, 1), (1, 1))),  # the same padded: every tile on the border
    (9, 11, 12, 20, 3, 2, True, ((1, 1), (1, 1))),  # stride 2, odd sizes (the last padding column unread), 20
    #                                                 channels: a masked 4-channel tail
    (7, 7, 64, 100, 1, 1, False, ((0, 0), (0, 0))),  # 1x1, 49 pixels: a 1-row tail after 8 tiles of 6
    (30, 30, 32, 64, 3, 1, True, ((1, 1), (1, 1))),  # several workgroups, border and inside tiles
    (1, 1, 96, 10, 1, 1, False, ((0, 0), (0, 0))),  # a linear layer: one pixel
    (16, 16, 4, 200, 5, 1, True, ((2, 2), (2, 2))),  # 200 channels: 3 blocks of 64 and a tail of 8
    (23, 23, 4, 64, 7, 2, False, ((3, 3), (3, 3))),  # a ResNet stem: 4 channels, 7x7, stride 2
    (10, 9, 8, 16, 3, 2, False, ((0, 1), (1, 0))),  # asymmetric (ONNX SAME_UPPER / SAME_LOWER-like) padding
])
def test_conv_kernel_is_bit_exact(tmp_path, height, width, channels, filters, kernel, stride, with_residual, padding,
                                  target):
    """Against numpy on the input padded with its zero point (9), which the kernel reads from a row of it."""
    rng = np.random.default_rng(height * 1000 + filters)
    x = rng.integers(-128, 128, (1, height, width, channels), dtype=np.int8)
    w = rng.integers(-127, 128, (filters, channels, kernel, kernel), dtype=np.int8)
    bias = rng.integers(-20000, 20000, filters).astype(np.int32)
    # outputs of about +-40: accumulators are about sqrt(K) * 74 * 74 (the standard deviations of x and w)
    scale = 40 / (np.sqrt(channels * kernel * kernel) * 74 * 74)
    multipliers = (rng.uniform(0.5, 1.5, filters) * scale).astype(np.float32)
    padded = np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=9)
    out_h, out_w = (padded.shape[1] - kernel) // stride + 1, (padded.shape[2] - kernel) // stride + 1
    residual = (rng.integers(-128, 128, (1, out_h, out_w, filters), dtype=np.int8), -7, np.float32(0.37)) \
        if with_residual else None
    args = (w, bias, multipliers, 5, (-128, 127), stride, residual)
    got = run_kernel(tmp_path, x, *args, target=target, padding=padding, x_zero_point=9)
    expected = reference_conv(padded, *args)
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
    # neither saturated nor constant: the comparison sees the rounding
    assert ((got > -128) & (got < 127)).mean() > 0.8 and len(np.unique(got)) >= min(got.size // 2, 20)


@pytest.mark.parametrize("target", CONV_TARGETS)
def test_conv_kernel_is_exact_at_the_extremes(tmp_path, target):
    """Inputs -128 and 127 (u8 0 and 255 after the kernel's x ^ 0x80), weights +-127, saturating outputs and a
    ReLU clamp: vpdpbusd never saturates its 32-bit sums, and neither may the epilogue."""
    x = np.full((1, 6, 6, 8), -128, np.int8)
    x[0, ::2] = 127
    w = np.full((33, 8, 3, 3), 127, np.int8)
    w[::2] = -127
    bias = np.arange(33, dtype=np.int32) * 1000 - 16000
    multipliers = np.full(33, 2.0 ** -7, np.float32)
    args = (x, w, bias, multipliers, -128, (-128, 100), 1, None)
    got = run_kernel(tmp_path, *args, target=target)
    expected = reference_conv(*args)
    assert np.array_equal(got, expected)
    assert {-128, 100} <= set(np.unique(got).tolist())  # both bounds reached


@pytest.mark.parametrize("target", CONV_TARGETS)
@pytest.mark.parametrize("with_residual", [False, True])
def test_conv_kernel_clamps_far_out_of_range_values_like_the_reference(tmp_path, target, with_residual):
    """Multipliers so large that float(acc) * mult leaves the int32 range both ways, a ReLU clamp at the zero
    point (-20) and a fixed-point-free residual: what the x86 epilogue's saturating packs rest on."""
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (1, 5, 5, 16), dtype=np.int8)
    w = rng.integers(-127, 128, (70, 16, 3, 3), dtype=np.int8)
    bias = rng.integers(-20000, 20000, 70).astype(np.int32)
    multipliers = np.where(np.arange(70) % 3 == 0, 2.0 ** 20, 2.0 ** -12).astype(np.float32)
    residual = (rng.integers(-128, 128, (1, 3, 3, 70), dtype=np.int8), 4, np.float32(0.5)) if with_residual else None
    args = (x, w, bias, multipliers, -20, (-20, 127), 1, residual)
    got = run_kernel(tmp_path, *args, target=target)
    expected = reference_conv(*args)
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
    assert {-20, 127} <= set(np.unique(got).tolist()) and len(np.unique(got)) > 10


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("height, channels, kernel, stride, pad", [(10, 32, 3, 1, 1), (11, 20, 3, 2, 1),
                                                                  (9, 16, 5, 1, 2), (8, 16, 3, 1, 0)])
def test_depthwise_kernel_is_bit_exact(tmp_path, height, channels, kernel, stride, pad, target):
    """Channels-last depthwise, padded in the kernel with the input zero point: 16 channels a vector, a channel
    tail (20 channels), stride 2 (whose last padding row and column no tap reaches), the generic (non-3x3) loop
    with an odd number of taps (25), no padding."""
    rng = np.random.default_rng(channels)
    x = rng.integers(-128, 128, (1, height, height, channels), dtype=np.int8)
    x[0, 0, :, :] = -128  # the extremes of both operands
    w = rng.integers(-127, 128, (channels, kernel, kernel), dtype=np.int8)
    w[0] = 127
    bias = rng.integers(-5000, 5000, channels).astype(np.int32)
    multipliers = (rng.uniform(0.5, 1.5, channels) * 40 / (kernel * 74 * 74)).astype(np.float32)
    x_zero_point = 9
    out = (height + 2 * pad - kernel) // stride + 1
    call = extern_conv.ConvCall("layer", x.shape, (1, out, out, channels), (kernel, kernel), stride, w, bias,
                                multipliers, -3, (-128, 127), None, padding=(pad, pad), input_zero_point=x_zero_point)
    body, executable = extern_conv.emit_depthwise(call, *_library_and_key(target), "kernel", "%arg0")
    y_type = f"tensor<1x{out}x{out}x{channels}xi8>"
    got = _compile_and_run(tmp_path, f"{executable}\nfunc.func @main(%arg0: tensor<1x{height}x{height}x{channels}xi8>) "
                           f"-> {y_type} {{\n" + "\n".join(body) + f"\nreturn %y : {y_type}\n}}\n", target, [x])
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=x_zero_point)
    expected = requantize((_depthwise_accumulators(padded, w, stride) + bias).astype(np.int32), multipliers, -3,
                          (-128, 127))[None]
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
    assert ((got > -128) & (got < 127)).mean() > 0.8


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("height, width, channels, kernel, stride, padding", [
    (11, 11, 64, 3, 2, ((1, 1), (1, 1))),  # ResNet's stem pool: 3x3, stride 2, padding 1
    (6, 7, 20, 3, 2, ((0, 1), (0, 0))),  # ceil mode: a last window past the bottom edge; a 4-channel tail
    (5, 5, 100, 2, 1, ((0, 0), (0, 0))),  # no padding, 64 + 36 channels
])
def test_max_pool_kernel_equals_the_padded_pool(tmp_path, height, width, channels, kernel, stride, padding, target):
    """The max pool skips taps in the padding: what a pool over the input padded with -128 gives, values at
    both extremes included."""
    rng = np.random.default_rng(height * width + channels)
    x = rng.integers(-128, 128, (1, height, width, channels), dtype=np.int8)
    x[0, 0, 0, :] = -128
    x[0, -1, -1, :] = 127
    padded = np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-128)
    out_h, out_w = (padded.shape[1] - kernel) // stride + 1, (padded.shape[2] - kernel) // stride + 1
    expected = np.full((1, out_h, out_w, channels), -128, np.int8)
    for i in range(kernel):
        for j in range(kernel):
            expected = np.maximum(expected, padded[:, i:i + stride * (out_h - 1) + 1:stride,
                                                   j:j + stride * (out_w - 1) + 1:stride])
    y_shape = (1, out_h, out_w, channels)
    body, executable = extern_conv.emit_max_pool(x.shape, y_shape, (kernel, kernel), stride,
                                                 (padding[0][0], padding[1][0]), *_library_and_key(target), "kernel",
                                                 "%arg0", "pool")
    y_type = f"tensor<{'x'.join(map(str, y_shape))}xi8>"
    got = _compile_and_run(tmp_path, f"{executable}\nfunc.func @main(%arg0: tensor<1x{height}x{width}x{channels}xi8>) "
                           f"-> {y_type} {{\n" + "\n".join(body) + f"\nreturn %y : {y_type}\n}}\n", target, [x])
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
    assert len(np.unique(got)) > 50


@pytest.mark.parametrize("target", CONV_TARGETS)
@pytest.mark.parametrize("height, channels, filters, stride, with_residual, expansion", [
    (12, 96, 24, 1, True, None),  # MobileNetV2's stride-1 block: 96 -> 24 with the residual add
    (13, 144, 40, 2, False, None),  # stride 2, odd size, a 16-channel depthwise tail, 40 output channels
    (12, 96, 24, 1, True, 144),  # and the next block's expansion 24 -> 144 in the same dispatch
    (13, 144, 40, 2, False, 88),  # an expansion whose channels end in a 24-channel block
])
def test_fused_depthwise_and_1x1_conv_equal_the_two_layers(tmp_path, height, channels, filters, stride,
                                                           with_residual, expansion, target):
    """One dispatch of the fused entry (the depthwise output row by row into the 1x1 conv, never in memory, and
    with an expansion each 1x1 conv output row into it) against numpy computing the layers one after the
    other; on aarch64 on either conv kernel."""
    library, key = _library_and_key(target)
    rng = np.random.default_rng(channels + filters)
    x = rng.integers(-128, 128, (1, height, height, channels), dtype=np.int8)
    dw_w = rng.integers(-127, 128, (channels, 3, 3), dtype=np.int8)
    dw_bias = rng.integers(-5000, 5000, channels).astype(np.int32)
    dw_mult = (rng.uniform(0.5, 1.5, channels) * 40 / (3 * 74 * 74)).astype(np.float32)
    out = (height + 2 - 3) // stride + 1
    depthwise = extern_conv.ConvCall("dw", x.shape, (1, out, out, channels), (3, 3), stride, dw_w, dw_bias, dw_mult,
                                     -7, (-7, 127), None, padding=(1, 1), input_zero_point=3)
    pw_w = rng.integers(-127, 128, (filters, channels, 1, 1), dtype=np.int8)
    pw_bias = rng.integers(-20000, 20000, filters).astype(np.int32)
    pw_mult = (rng.uniform(0.5, 1.5, filters) * 40 / (np.sqrt(channels) * 74 * 74)).astype(np.float32)
    residual = (rng.integers(-128, 128, (1, out, out, filters), dtype=np.int8), 2, np.float32(0.6)) \
        if with_residual else None
    pointwise = extern_conv.ConvCall("pw", (1, out, out, channels), (1, out, out, filters), (1, 1), 1, pw_w,
                                     pw_bias, pw_mult, 4, (-128, 127), residual[1:] if residual else None)
    expand = None
    if expansion:
        ex_w = rng.integers(-127, 128, (expansion, filters, 1, 1), dtype=np.int8)
        ex_bias = rng.integers(-20000, 20000, expansion).astype(np.int32)
        ex_mult = (rng.uniform(0.5, 1.5, expansion) * 40 / (np.sqrt(filters) * 74 * 74)).astype(np.float32)
        expand = extern_conv.ConvCall("ex", (1, out, out, filters), (1, out, out, expansion), (1, 1), 1, ex_w,
                                      ex_bias, ex_mult, -20, (-20, 127), None)
    body, executable = extern_conv.emit_depthwise(depthwise, library, key, "kernel", "%arg0", pointwise,
                                                  "%arg1" if residual else None, expand)
    y_type = f"tensor<1x{out}x{out}x{filters}xi8>"
    results, types = (["%y", "%y2"], [y_type, f"tensor<1x{out}x{out}x{expansion}xi8>"]) if expand else \
        (["%y"], [y_type])
    args = f"%arg0: tensor<1x{height}x{height}x{channels}xi8>" + (f", %arg1: {y_type}" if residual else "")
    got = _compile_and_run(tmp_path, f"{executable}\nfunc.func @main({args}) -> ({', '.join(types)}) {{\n"
                           + "\n".join(body) + f"\nreturn {', '.join(results)} : {', '.join(types)}\n}}\n", target,
                           [x] + ([residual[0]] if residual else []))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=3)
    between = requantize((_depthwise_accumulators(padded, dw_w, stride) + dw_bias).astype(np.int32), dw_mult, -7,
                         (-7, 127))[None]
    expected = reference_conv(between, pw_w, pw_bias, pw_mult, 4, (-128, 127), 1, residual)
    if expand:
        got, got_expanded = got
        expanded = reference_conv(expected, ex_w, ex_bias, ex_mult, -20, (-20, 127), 1)
        assert np.array_equal(got_expanded, expanded), f"{int((got_expanded != expanded).sum())} values differ"
        assert 0.2 < (expanded == -20).mean() < 0.8 and len(np.unique(expanded)) > 50  # its ReLU clamps some
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
    assert ((got > -128) & (got < 127)).mean() > 0.8 and len(np.unique(got)) > 20
    assert 0.2 < (between == -7).mean() < 0.8  # the depthwise layer's ReLU clamps some values, not all


@pytest.mark.parametrize("target", CONV_TARGETS)
def test_conv_kernel_writes_fp32_in_the_model_layout_at_a_boundary(tmp_path, target):
    """An int8 layer whose output stays fp32: float(acc + bias) * scale per channel, channels first (NCHW), as
    the integer-linalg epilogue computes it (sitofp, then one f32 multiply)."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (1, 9, 9, 12), dtype=np.int8)
    w = rng.integers(-127, 128, (40, 12, 3, 3), dtype=np.int8)
    bias = rng.integers(-20000, 20000, 40).astype(np.int32)
    scales = rng.uniform(1e-4, 1e-3, 40).astype(np.float32)
    got = run_kernel(tmp_path, x, w, bias, scales, 0, (0, 0), 2, dequantize=True, target=target)
    expected = ((_accumulators(x, w, 2) + bias).astype(np.float32) * scales).transpose(2, 0, 1)[None]
    assert got.shape == (1, 40, 4, 4) and got.dtype == np.float32
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("channels_out", [3, 4, 8])
def test_quantize_kernel_equals_the_elementwise_quantize(tmp_path, target, channels_out):
    """fp32 NCHW in, int8 NHWC out: roundeven(x / scale) + zp clamped, float32 op for op like the linalg
    quantize; values on rounding ties, beyond the int8 range, a pixel tail (7 x 9 = 63, not a multiple of 16);
    with channels_out 4 (x86: pixels interleaved in registers) and 8, the channels past the input's 3 hold the
    zero point (what a stem reads)."""
    rng = np.random.default_rng(3)
    scale, zero_point = np.float32(0.0213), -7
    x = (rng.standard_normal((1, 3, 7, 9)) * 2).astype(np.float32)
    x[0, 0, 0, :4] = np.array([0.5, 1.5, -2.5, 3.5], np.float32) * scale  # ties, after the division
    x[0, 1, 0, :2] = [1e4, -1e4]  # saturate
    library, key = _library_and_key(target)
    body, executable = extern_conv.emit_quantize(x.shape, float(scale), zero_point, (-128, 127), library, key,
                                                 "kernel", "%arg0", "input", channels_out)
    y_type = f"tensor<1x7x9x{channels_out}xi8>"
    got = _compile_and_run(tmp_path, f"{executable}\nfunc.func @main(%arg0: tensor<1x3x7x9xf32>) -> {y_type} {{\n"
                           + "\n".join(body) + f"\nreturn %y : {y_type}\n}}\n", target, [x])
    q = np.clip(np.round(x / scale) + np.float32(zero_point), -128, 127).astype(np.int8)  # np.round: half to even
    assert np.array_equal(got[..., :3], q.transpose(0, 2, 3, 1))
    assert (got[..., 3:] == zero_point).all()
    assert got.min() == -128 and got.max() == 127


@pytest.mark.parametrize("library, instruction, parts", [
    ("x86_64-avx512vnni", "vpdpbusd", ("conv", "depthwise", "quantize", "pool")),
    ("aarch64-i8mm", "smmla", ("conv", "depthwise")),
    ("aarch64-dotprod", "sdot", ("conv", "depthwise", "quantize", "pool"))])
def test_kernel_objects_call_nothing_and_keep_their_instructions(library, instruction, parts):
    nm = shutil.which("nm")
    assert nm, "binutils' nm checks the object's undefined symbols: apt-get install binutils"
    for part in parts:
        built = kernels.build(library, part)
        undefined = subprocess.run([nm, "-u", str(built.object)], capture_output=True, text=True, check=True).stdout
        assert undefined.strip() == "", (part, undefined)
    assert kernels.build(library).assembly.read_text().count(instruction) >= 24  # at least one full register tile


@pytest.mark.parametrize("filters, dequantize, grid", [
    (128, False, (8, 2)),  # int8, two whole 64-channel blocks: 8 pixel blocks x 2 channel blocks
    (96, False, (15, 1)),  # int8, blocks of 64 and 32 channels would share cache lines: pixels only
    (96, True, (8, 2)),  # fp32 channels-first: each channel block writes its own planes
])
def test_kernel_workgroups_never_share_an_int8_output_line(filters, dequantize, grid):
    """Two workgroups writing channel blocks of the same pixels run on different cores; unless each block is
    whole 64-byte lines (N a multiple of 64), the rewrite splits such a layer by pixels alone."""
    w = np.ones((filters, 16, 1, 1), np.int8)
    call = extern_conv.ConvCall("layer", (1, 28, 28, 16), (1, 28, 28, filters), (1, 1), 1, w,
                                np.zeros(filters, np.int32), np.ones(filters, np.float32), 0, (-128, 127), None,
                                dequantize)
    _, executable = extern_conv.emit(call, *_library_and_key("x86_64"), "kernel", "%arg0", None)
    assert f"%x = arith.constant {grid[0]} : index\n    %y = arith.constant {grid[1]} : index" in executable


@pytest.mark.parametrize("target, other_flags", [
    ("x86_64", ("--iree-llvmcpu-target-cpu=haswell",)),  # no AVX-512 VNNI
    ("aarch64", ("--iree-llvmcpu-target-cpu-features=+neon,+dotprod",)),  # a Cortex-A76: no i8mm
    ("aarch64-dotprod", ("--iree-llvmcpu-target-cpu-features=+neon",)),  # a Cortex-A53: no dotprod
])
def test_a_module_for_another_cpu_fails_to_link(tmp_path, target, other_flags):
    """The object is keyed by the CPU it was chosen for: compiling the same MLIR for one without the kernel's
    instructions fails at compile time (an undefined symbol), never with an illegal instruction on the device."""
    x = np.zeros((1, 4, 4, 8), np.int8)
    w = np.ones((16, 8, 1, 1), np.int8)
    call = extern_conv.ConvCall("layer", x.shape, (1, 4, 4, 16), (1, 1), 1, w, np.zeros(16, np.int32),
                                np.ones(16, np.float32), 0, (-128, 127), None)
    body, executable = extern_conv.emit(call, *_library_and_key(target), "kernel", "%arg0", None)
    source = _write_source(tmp_path / "kernel.mlir", f"{executable}\nfunc.func @main(%arg0: tensor<1x4x4x8xi8>) "
                           "-> tensor<1x4x4x16xi8> {\n" + "\n".join(body) + "\nreturn %y : tensor<1x4x4x16xi8>\n}\n")
    # links for its own target
    compile_file(source, get_target(target).for_int8(), tmp_path / "right.vmfb", object_dir=tmp_path)
    with pytest.raises(CompileError, match="undefined symbol"):
        compile_file(source, get_target(target).for_int8(), tmp_path / "kernel.vmfb", extra_flags=other_flags,
                     object_dir=tmp_path)
    assert not (tmp_path / "kernel.vmfb").exists()


def _int8_tensors(model_id: str, build_dir, plan_of, kernels_choice: str) -> tuple[dict[str, np.ndarray], object]:
    # the cost model off: every layer the kernels can run goes to them, so that all of them are compared
    options = QuantizeOptions(expose_int8=True, kernels=kernels_choice, cost_model=False)
    if not (build_dir / "00_import.mlirbc").exists():
        api.import_model(model_id, build_dir=build_dir)
    table = api.load_layer_table(build_dir)
    preprocess = parse_zoo_id(model_id).preprocess
    samples = load_data("fashion-mnist", preprocess, split="train", limit=16).inputs
    plan = calibrate(build_dir, plan_of(table), samples, options)
    build = rewrite_and_compile(build_dir, plan, "x86_64", options)
    outputs = CompiledModule(build.vmfb)(load_data("fashion-mnist", preprocess, limit=2).inputs[:1])
    tensors = dict(zip(build.int8_tensors, outputs[len(outputs) - len(build.int8_tensors):]))
    tensors["logits"] = outputs[0]
    return tensors, build


def _first_and_last_fp32(table):
    plan = PrecisionPlan.uniform(table, "int8")
    return plan.with_precision(table.ids[0], "fp32").with_precision(table.ids[-1], "fp32")


@pytest.mark.parametrize("plan_of", [lambda table: PrecisionPlan.uniform(table, "int8"), _first_and_last_fp32],
                         ids=["all-int8", "first-last-fp32"])
def test_resnet18_with_kernels_equals_the_integer_linalg_path(tmp_path, plan_of):
    with_kernels, build = _int8_tensors("resnet18-small", tmp_path, plan_of, "auto")
    without, _ = _int8_tensors("resnet18-small", tmp_path, plan_of, "none")
    assert with_kernels.keys() == without.keys()
    for name in with_kernels:
        assert np.array_equal(with_kernels[name], without[name]), name
    # every int8 layer runs on the kernel: the stem's one input channel padded to 4, the last conv and the
    # linear layer writing fp32
    for layer in build.plan.int8_layers():
        verdict = build.audit.verdict(layer)
        assert verdict.contraction.startswith("call @quantune_conv") and "vnni: vpdpbusd" in verdict.instructions


@pytest.mark.slow
def test_mobilenet_v2_with_kernels_equals_the_integer_linalg_path(tmp_path):
    with_kernels, _ = _int8_tensors("mobilenet_v2-small", tmp_path, lambda t: PrecisionPlan.uniform(t, "int8"),
                                    "auto")
    without, _ = _int8_tensors("mobilenet_v2-small", tmp_path, lambda t: PrecisionPlan.uniform(t, "int8"), "none")
    for name in with_kernels:
        assert np.array_equal(with_kernels[name], without[name]), name


def test_mobilenet_v2_with_fused_depthwise_kernels_equals_the_integer_linalg_path(tmp_path):
    """Deployment builds (no tensor exposed for the analysis) run each depthwise layer, the 1x1 conv after it and
    the next block's 1x1 expansion as one kernel dispatch: the logits equal the integer-linalg build's bit for
    bit."""
    api.import_model("mobilenet_v2-small", build_dir=tmp_path)
    table = api.load_layer_table(tmp_path)
    preprocess = parse_zoo_id("mobilenet_v2-small").preprocess
    samples = load_data("fashion-mnist", preprocess, split="train", limit=16).inputs
    images = load_data("fashion-mnist", preprocess, limit=4).inputs
    logits = {}
    for choice in ("auto", "none"):
        options = QuantizeOptions(kernels=choice, cost_model=False)
        plan = calibrate(tmp_path, PrecisionPlan.uniform(table, "int8"), samples, options)
        build = rewrite_and_compile(tmp_path, plan, "x86_64", options)
        module = CompiledModule(build.vmfb)
        logits[choice] = np.concatenate([module(image[None])[0] for image in images])
        if choice == "auto":
            fused = [layer for layer in table.ids if "depthwise_conv" in build.audit.verdict(layer).contraction]
            depthwise = [layer for layer in table.ids if table[layer].kind == "depthwise_conv"]
            # every depthwise layer with the 1x1 conv after it and, all but the first, with the 1x1 expansion
            # before it (fused with the block before), all judged int8 on vpdpbusd
            assert len(fused) == 3 * len(depthwise) - 1 == 50, fused
            assert all("vnni: vpdpbusd" in build.audit.verdict(layer).instructions for layer in fused)
    assert np.array_equal(logits["auto"], logits["none"])


def test_bad_kernel_choices_and_objects_that_call_out_are_errors(tmp_path):
    from quantune_mlir import QuantuneError
    with pytest.raises(QuantuneError, match=r"kernels 'fast': choose one of auto, none"):
        QuantizeOptions(kernels="fast")
    assembly = tmp_path / "conv.s"
    assembly.write_text("quantune_conv:\n\tvpdpbusd %zmm1, %zmm2, %zmm3\n\tcall\tmemset@PLT\n\tret\n")
    with pytest.raises(QuantuneError, match=r"the object calls memset, which no IREE dispatch library provides; "
                                            r"rewrite src/conv\.c without it"):
        kernels._check_freestanding(assembly, kernels.get_library(LIBRARY))
