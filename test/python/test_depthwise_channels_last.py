"""quantune-depthwise-channels-last keeps an FP32 depthwise conv's values: the rewritten conv, compiled by
iree-compile for each target and run (aarch64 under qemu), against PyTorch's grouped conv2d."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from quantune_mlir import api
from quantune_mlir.compile import compile_file, get_target
from quantune_mlir.mlir import ir
from quantune_mlir.rewrite import run_passes
from quantune_mlir.rewrite.depthwise_channels_last import DepthwiseChannelsLast


def _dims(shape) -> str:
    return "x".join(map(str, shape))


def depthwise_source(weight: np.ndarray, bias: np.ndarray, size: int, stride: int, dilation: int) -> str:
    """A depthwise conv as torch-mlir writes it: NCHW input, CHW weights, the bias broadcast into the init."""
    channels, kernel = weight.shape[0], weight.shape[1]
    out = (size - dilation * (kernel - 1) - 1) // stride + 1
    x, y = (1, channels, size, size), (1, channels, out, out)
    w = ", ".join(map(repr, weight.astype(np.float32).ravel().tolist()))
    b = ", ".join(map(repr, bias.astype(np.float32).ravel().tolist()))
    return f"""
func.func @main(%x: tensor<{_dims(x)}xf32>) -> tensor<{_dims(y)}xf32> {{
  %w = arith.constant dense<[{w}]> : tensor<{channels * kernel * kernel}xf32>
  %ws = tensor.expand_shape %w [[0, 1, 2]] output_shape [{channels}, {kernel}, {kernel}] : tensor<{channels * kernel * kernel}xf32> into tensor<{channels}x{kernel}x{kernel}xf32>
  %b = arith.constant dense<[{b}]> : tensor<{channels}xf32>
  %e = tensor.empty() : tensor<{_dims(y)}xf32>
  %i = linalg.broadcast ins(%b : tensor<{channels}xf32>) outs(%e : tensor<{_dims(y)}xf32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {{dilations = dense<{dilation}> : vector<2xi64>, strides = dense<{stride}> : vector<2xi64>}} ins(%x, %ws : tensor<{_dims(x)}xf32>, tensor<{channels}x{kernel}x{kernel}xf32>) outs(%i : tensor<{_dims(y)}xf32>) -> tensor<{_dims(y)}xf32>
  return %y : tensor<{_dims(y)}xf32>
}}"""


@pytest.mark.parametrize("target", ["x86_64", pytest.param("aarch64", marks=pytest.mark.qemu), "vmvx"])
@pytest.mark.parametrize("channels, size, kernel, stride, dilation", [
    (32, 18, 3, 1, 1), (24, 17, 3, 2, 1), (5, 12, 5, 1, 2)])
def test_the_channels_last_conv_equals_pytorchs(tmp_path, target, channels, size, kernel, stride, dilation):
    rng = np.random.default_rng(channels + size)
    weight = rng.standard_normal((channels, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    with ir.Context() as context:
        module = ir.Module.parse(depthwise_source(weight, bias, size, stride, dilation), context)
        run_passes(module, [DepthwiseChannelsLast()])
        text = str(module)
    assert "linalg.depthwise_conv_2d_nhwc_hwc" in text and "depthwise_conv_2d_nchw_chw" not in text
    source = tmp_path / "depthwise.mlir"
    source.write_text(text)
    vmfb = compile_file(source, get_target(target), tmp_path / "depthwise.vmfb")
    (result,) = api.load_module(vmfb, target=target)(x)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight)[:, None],
                                          torch.from_numpy(bias), stride=stride, dilation=dilation,
                                          groups=channels).numpy()
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
