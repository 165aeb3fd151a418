"""An independent PyTorch reference of the quantized graph a plan defines, layer by layer.

Each int8 layer is recomputed (quantune_mlir.analysis.int8_layer, PyTorch in float64, no MLIR) from the int8
tensors the IREE build returned for its inputs, so that one rounding tie upstream does not propagate; max pools
and concatenations between int8 layers from their int8 inputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from quantune_mlir.analysis.int8_layer import int8_layer_output
from quantune_mlir.build_dir import IMPORT_MLIR, BuildDir
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.mlir import ir, parse_module
from quantune_mlir.quantize import rounded_weights
from quantune_mlir.rewrite.chains import PASS_THROUGH_OPS, int8_region, pass_through_inputs
from quantune_mlir.rewrite.graph import Constants, int_array, pad_of, producer


def reference_int8_outputs(build_dir: Path, plan: PrecisionPlan, tensors: dict[str, np.ndarray]
                           ) -> dict[str, np.ndarray]:
    """For every int8 layer whose output is int8: that output (keyed like `tensors`, by the plan entry whose
    parameters the tensor takes) computed from `tensors`, the int8 tensors of a build of build_dir's import (with
    the int8 weights the plan's calibration rounded there)."""
    module = parse_module((Path(build_dir) / IMPORT_MLIR).read_bytes(), ir.Context())
    rounded = rounded_weights(BuildDir(build_dir), plan)
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
            layer_plan = plan.layers[chain.layer.id]
            expected[point_name[chain.end]] = int8_layer_output(chain, layer_plan.weight_scales, constants, x,
                                                                residual, params(chain.end), layer_plan.bias_correction,
                                                                rounded)
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
