"""quantune-apply-plan: carry a calibrated precision plan into the IR as quant-dialect types.

Every quantization point (see chains.py) gets `quant.qcast` to its `!quant.uniform` type and `quant.dcast`
back, and every use of the tensor reads the dequantized value; each int8 layer's weight constant becomes
an i8 constant with a per-axis (or per-tensor) `quant.scast` and a `quant.dcast`. The fp32 ops are left as
they are, so the result means exactly the fake-quantized model: the reference the integer lowering
(quantune-lower-quant) must reproduce. Biases stay fp32 here; the lowering quantizes them.

The output still holds quant ops, which iree-compile must never see (it folds dcast(qcast(x)) to x).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.weight_rounding import NEAREST, RoundedWeights, plan_rounded_weights
from ..decision.plan import LayerPlan, PrecisionPlan
from ..errors import QuantuneError
from ..mlir import POINT_ATTR, ir
from ..quantization import weight_scales
from .base import Pass, PassFailure
from .chains import int8_region, layers_by_id
from .graph import Constants, Layer, element_dtype, layer_bias, producer, tensor_shape
from .quant_types import activation_type, weight_type

def load_plan(path: str, module: ir.Module, constants: Constants) -> PrecisionPlan:
    if not path:
        raise PassFailure("quantune-apply-plan needs plan=PATH (a calibrated plan JSON)")
    plan_path = Path(path)
    if not plan_path.is_file():
        raise PassFailure(f"{plan_path}: no such plan file")
    return PrecisionPlan.from_json(plan_path.read_text(), tuple(layers_by_id(module, constants)),
                                   source=str(plan_path))


@dataclass(frozen=True)
class ApplyPlan(Pass):
    name = "quantune-apply-plan"
    summary = "quant-dialect types at the quantization points and on int8 weights, from a calibrated plan"
    plan: str = ""
    strict: bool = False

    def run(self, module: ir.Module) -> None:
        constants = Constants(module)
        plan = load_plan(self.plan, module, constants)
        apply_plan(module, plan, constants, strict=self.strict,
                   rounded=plan_rounded_weights(plan.rounded_weights, Path(self.plan).parent))


def apply_plan(module: ir.Module, plan: PrecisionPlan, constants: Constants, *, strict: bool = False,
               rounded: RoundedWeights = NEAREST) -> None:
    """rounded: the int8 weights calibration rounded, for the layers whose plan scales they were rounded at."""
    region = int8_region(module, set(plan.int8_layers()), constants, strict=strict)
    for point in region.points:
        layer_id, role = point.params_name.rsplit(".", 1)
        params = getattr(plan.layers[layer_id], role)
        if params is None:
            raise PassFailure(f"layer '{layer_id}' has no {role} quantization parameters in the plan: calibrate "
                              f"it first (quantune quantize does, or api.calibrate_plan)")
        _insert_fake_quant(point.value, activation_type(tensor_shape(point.value.type), params), point.name)
    for layer_id, chain in region.chains.items():
        _quantize_weight(chain.layer.weight, plan.layers[layer_id], constants, layer_id, rounded)
        _correct_bias(chain.layer, plan.layers[layer_id].bias_correction, constants)


def _correct_bias(layer: Layer, correction: tuple[float, ...] | None, constants: Constants) -> None:
    """The bias the layer adds becomes a new constant, its FP32 bias plus the plan's correction (a constant
    other layers share keeps its value for them)."""
    if correction is None:
        return
    if layer.bias is None:
        raise PassFailure(f"layer '{layer.id}': the plan corrects the bias of a layer that adds none; drop its "
                          "bias_correction")
    channels = constants.value_of(layer.weight).shape[0]
    if len(correction) != channels:
        raise PassFailure(f"layer '{layer.id}': the plan gives {len(correction)} bias corrections for {channels} "
                          "output channels")
    user, index = (layer.bias_add, 1) if layer.bias_add is not None else (producer(layer.op.operands[2]), 0)
    with ir.InsertionPoint(user), user.location:
        constant = ir.Operation.create("arith.constant", results=[layer.bias.type], attributes={
            "value": ir.DenseElementsAttr.get(layer_bias(layer, constants, correction), type=layer.bias.type)})
    user.operands[index] = constant.result


def _insert_fake_quant(value: ir.Value, quant_type: str, point_name: str) -> None:
    first_user = min((use.owner for use in value.uses),
                     key=functools.cmp_to_key(lambda a, b: -1 if a.is_before_in_block(b) else 1))
    with ir.InsertionPoint(first_user), value.location:
        qcast = ir.Operation.create("quant.qcast", results=[ir.Type.parse(quant_type)], operands=[value],
                                    attributes={POINT_ATTR: ir.StringAttr.get(point_name)})
        dcast = ir.Operation.create("quant.dcast", results=[value.type], operands=[qcast.result])
    value.replace_all_uses_except(dcast.result, qcast)


def _quantize_weight(weight: ir.Value, layer_plan: LayerPlan, constants: Constants, layer_id: str,
                     rounded: RoundedWeights) -> None:
    values = constants.value_of(weight)
    if element_dtype(weight.type) != np.float32:
        raise PassFailure(f"layer '{layer_id}': weights are {weight.type}, expected f32")
    try:
        scales = np.asarray(layer_plan.weight_scales, np.float64) if layer_plan.weight_scales is not None \
            else weight_scales(values)
    except QuantuneError as e:
        raise PassFailure(f"layer '{layer_id}': {e}") from None
    if scales.size not in (1, values.shape[0]):
        raise PassFailure(f"layer '{layer_id}': the plan gives {scales.size} weight scales for "
                          f"{values.shape[0]} output channels")
    shape = tensor_shape(weight.type)
    with ir.InsertionPoint(weight.owner), weight.location:
        storage = ir.RankedTensorType.get(shape, ir.IntegerType.get_signless(8))
        constant = ir.Operation.create("arith.constant", results=[storage], attributes={
            "value": ir.DenseElementsAttr.get(rounded.int8(layer_id, values, scales), type=storage)})
        scast = ir.Operation.create("quant.scast", results=[ir.Type.parse(weight_type(shape, scales))],
                                    operands=[constant.result])
        dcast = ir.Operation.create("quant.dcast", results=[weight.type], operands=[scast.result])
    weight.replace_all_uses_with(dcast.result)
