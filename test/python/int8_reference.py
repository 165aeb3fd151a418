"""An independent PyTorch reference of the quantized graph a plan defines, layer by layer.

Each int8 layer is recomputed from the int8 tensors the IREE build returned for its inputs (so that one
rounding tie upstream does not propagate): an exact integer convolution (float64 holds these sums exactly),
the bias quantized at input scale x weight scale, the residual rescaled, then round half to even in float64,
zero point, clamp, saturate. The lowering computes the same with a fixed-point multiplier; the two may differ
by one unit where a value lies within 2^-30 of a rounding tie.
"""
from __future__ import annotations

import numpy as np
import torch

from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.mlir import ir, parse_module
from quantune_mlir.quantization import INT_RANGES, quantize_weight
from quantune_mlir.rewrite.chains import PASS_THROUGH_OPS, Chain, int8_region, pass_through_inputs
from quantune_mlir.rewrite.graph import Constants, int_array, pad_of, producer


def reference_int8_outputs(import_mlir: bytes, plan: PrecisionPlan, tensors: dict[str, np.ndarray]
                           ) -> dict[str, np.ndarray]:
    """For every int8 layer whose output is int8: that output (keyed like `tensors`, by the plan entry whose
    parameters the tensor takes) computed from `tensors`, the int8 tensors of a build."""
    module = parse_module(import_mlir, ir.Context())
    expected = {}
    with module.context:
        constants = Constants(module)
        region = int8_region(module, set(plan.int8_layers()), constants)
        point_name = {p.value: p.name for p in region.points}

        def params(value):
            layer_id, role = point_name[value].rsplit(".", 1)
            return getattr(plan.layers[layer_id], role)

        for chain in region.chains.values():
            if chain.end not in point_name:
                continue
            x = (tensors[point_name[chain.layer.activation]], params(chain.layer.activation))
            residual = (tensors[point_name[chain.residual]], params(chain.residual)) \
                if chain.residual is not None else None
            expected[point_name[chain.end]] = _layer(chain, plan, constants, x, residual, params(chain.end))
        for point in region.points:  # pass-through ops between int8 layers run on int8
            op = producer(point.value)
            if op is None or op.name not in PASS_THROUGH_OPS:
                continue
            sources = pass_through_inputs(op)
            if all(s in point_name for s in sources):
                inputs = [tensors[point_name[s]] for s in sources]
                expected[point.name] = np.concatenate(inputs, axis=1) if op.name == "tensor.concat" else \
                    _max_pool(op, inputs[0])
    return expected


def _max_pool(pool: ir.Operation, x: np.ndarray) -> np.ndarray:
    """A max pool between int8 layers, on the int8 values (their parameters are the same on both sides)."""
    padded = torch.from_numpy(x.astype(np.float64))
    padding = pad_of(pool.operands[0])
    if padding is not None:
        (_, _, top, left), (_, _, bottom, right) = padding[1], padding[2]
        padded = torch.nn.functional.pad(padded, (left, right, top, bottom), value=-np.inf)
    window = tuple(ir.RankedTensorType(pool.operands[1].type).shape)
    pooled = torch.nn.functional.max_pool2d(padded, window, stride=int_array(pool, "strides"),
                                            dilation=int_array(pool, "dilations"))
    height, width = ir.RankedTensorType(pool.results[0].type).shape[2:]
    return pooled.numpy()[..., :height, :width].astype(np.int8)  # ceil-mode pools pad more than they read


def _layer(chain: Chain, plan: PrecisionPlan, constants: Constants, x, residual, out) -> np.ndarray:
    layer = chain.layer
    scales = np.asarray(plan.layers[layer.id].weight_scales, np.float64)
    weight = quantize_weight(constants.value_of(layer.weight), scales).astype(np.float64)
    x, (xs, xz) = x[0], (x[1].scale, x[1].zero_point)
    combined = xs * np.broadcast_to(scales, (weight.shape[0],))
    centred = torch.from_numpy(x.astype(np.float64) - xz)
    if layer.kind == "linear":
        acc = centred @ torch.from_numpy(weight).T
    else:
        top, left, bottom, right = layer.padding[2], layer.padding[3], layer.padding[6], layer.padding[7]
        padded = torch.nn.functional.pad(centred, (left, right, top, bottom))
        groups = weight.shape[0] if layer.kind == "depthwise" else 1
        w = torch.from_numpy(weight if layer.kind != "depthwise" else weight[:, None])
        acc = torch.nn.functional.conv2d(padded, w, stride=int_array(layer.op, "strides"), groups=groups)
    acc = acc.numpy()
    bias = constants.value_of(layer.bias) if layer.bias is not None else np.zeros(len(combined))
    bias_q = np.rint(bias.astype(np.float64) / combined)
    channel = (1, -1) + (1,) * (acc.ndim - 2)
    real = (acc + bias_q.reshape(channel)) * combined.reshape(channel)
    if residual is not None:
        values, r_params = residual
        real = real + (values.astype(np.float64) - r_params.zero_point) * r_params.scale
    q = np.rint(real / out.scale) + out.zero_point
    lo, hi = chain.clamp
    qmin, qmax = INT_RANGES[out.dtype]
    q_lo = qmin if lo == -np.inf else max(qmin, np.rint(lo / out.scale) + out.zero_point)
    q_hi = qmax if hi == np.inf else min(qmax, np.rint(hi / out.scale) + out.zero_point)
    return np.clip(q, q_lo, q_hi).astype(np.int8)
