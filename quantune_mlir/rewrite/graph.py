"""What the quantization passes need to know about the imported linalg: the value behind a constant, the shape
of a layer (its activation, weight and bias operands) and the elementwise ops that can fold into its epilogue.

Both frontends converge on the same forms (checked on the zoo through torch-mlir's FX and ONNX importers):
a conv or depthwise conv takes a zero `tensor.pad` of its input and a `linalg.broadcast` of its bias as init;
a linear layer is `linalg.matmul` of the input with a `linalg.transpose`d weight, then a bias-add generic;
ReLU, ReLU6 and Clip are elementwise generics of compare/select (or max/min) against constants.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..mlir import LAYER_ATTR, ir

_RESOURCE_ENTRY = re.compile(r'^\s*([\w.$-]+|"[^"]*"): "0x([0-9A-Fa-f]*)",?$', re.M)
_DTYPES = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i8": np.int8, "i16": np.int16,
           "i32": np.int32, "i64": np.int64}


class Constants:
    """numpy values of `arith.constant`s, `dense_resource` blobs included (the bindings cannot read those:
    they are taken from the module's printed resource section once)."""

    def __init__(self, module: ir.Module):
        self._module = module
        self._blobs: dict[str, bytes] | None = None

    def value_of(self, value: ir.Value) -> np.ndarray | None:
        op = producer(value)
        if op is not None and op.name in ("tensor.collapse_shape", "tensor.expand_shape"):
            source = self.value_of(op.operands[0])
            return None if source is None else source.reshape(tensor_shape(value.type))
        if op is None or op.name != "arith.constant":
            return None
        attr = op.attributes["value"]
        shape, dtype = tensor_shape(value.type), element_dtype(value.type)
        if isinstance(attr, ir.DenseElementsAttr):
            if attr.is_splat:
                return np.full(shape, _scalar(attr.get_splat_value()), dtype)
            return np.array(attr).astype(dtype).reshape(shape)
        text = str(attr)
        if text.startswith("dense_resource<"):
            blob = self._resource(text[len("dense_resource<"):text.index(">")])
            return np.frombuffer(blob, dtype).reshape(shape).copy()
        if isinstance(attr, ir.FloatAttr):
            return np.asarray(ir.FloatAttr(attr).value, dtype)
        return None

    def _resource(self, key: str) -> bytes:
        if self._blobs is None:
            text = self._module.operation.get_asm(large_elements_limit=None)
            section = text[text.rfind("{-#"):]
            # The first 4 bytes of a printed blob are its alignment, not data.
            self._blobs = {m.group(1).strip('"'): bytes.fromhex(m.group(2))[4:]
                           for m in _RESOURCE_ENTRY.finditer(section)}
        return self._blobs[key]


def is_constant_like(value: ir.Value) -> bool:
    """A constant, possibly reshaped or carried through quant casts (the weights of a quantized layer)."""
    op = producer(value)
    if op is None:
        return False
    if op.name in ("tensor.collapse_shape", "tensor.expand_shape", "quant.dcast", "quant.scast"):
        return is_constant_like(op.operands[0])
    return op.name == "arith.constant"


def _scalar(attr: ir.Attribute) -> float:
    return attr.value


def producer(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return owner.operation if isinstance(owner, (ir.OpView, ir.Operation)) else None


def tensor_shape(t: ir.Type) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(t).shape)


def element_dtype(t: ir.Type):
    return _DTYPES[str(ir.RankedTensorType(t).element_type)]


def users(value: ir.Value) -> list[ir.Operation]:
    return [use.owner for use in value.uses]


def layer_of(op: ir.Operation) -> str | None:
    return ir.StringAttr(op.attributes[LAYER_ATTR]).value if LAYER_ATTR in op.attributes else None


def int_array(op: ir.Operation, name: str) -> tuple[int, ...]:
    if name not in op.attributes:
        return (1, 1)
    attr = op.attributes[name]
    return tuple(int(v) for v in (np.array(attr) if isinstance(attr, ir.DenseElementsAttr) else attr))


def pad_of(value: ir.Value) -> tuple[ir.Value, tuple[int, ...], tuple[int, ...], float] | None:
    """(source, low, high, padding value) when value is a `tensor.pad` with a constant padding value."""
    op = producer(value)
    if op is None or op.name != "tensor.pad":
        return None
    yielded = op.regions[0].blocks[0].operations[0].operands[0]
    pad_value = scalar_constant(yielded)
    if pad_value is None:
        return None
    low, high = tuple(op.attributes["static_low"]), tuple(op.attributes["static_high"])
    return op.operands[0], low, high, pad_value


def unpadded(value: ir.Value) -> ir.Value:
    """value before its `tensor.pad`, if it has one."""
    op = producer(value)
    return op.operands[0] if op is not None and op.name == "tensor.pad" else value


def scalar_constant(value: ir.Value) -> float | None:
    op = producer(value)
    if op is None or op.name != "arith.constant":
        return None
    attr = op.attributes["value"]
    if isinstance(attr, ir.FloatAttr) or isinstance(attr, ir.IntegerAttr):
        return float(_scalar(attr))
    return None


def _is_zero_splat(value: ir.Value) -> bool:
    """A constant tensor of zeros: what canonicalization makes of an all-zero bias's broadcast (ONNX Conv with a
    zero bias input)."""
    op = producer(value)
    if op is None or op.name != "arith.constant" or not isinstance(op.attributes["value"], ir.DenseElementsAttr):
        return False
    attr = ir.DenseElementsAttr(op.attributes["value"])
    return attr.is_splat and float(_scalar(attr.get_splat_value())) == 0.0


@dataclass(frozen=True)
class Layer:
    """A quantizable layer as the passes see it: `op` multiplies `activation` by `weight`; a conv adds its
    bias through its init (`bias_init`), a linear layer through the elementwise op `bias_add` after it."""

    id: str
    op: ir.Operation
    kind: str  # conv | depthwise | linear
    activation: ir.Value  # before padding
    padding: tuple[int, ...]  # low[0..3] + high[0..3] (convs)
    weight: ir.Value  # the constant (a linear layer's before its transpose)
    bias: ir.Value | None
    bias_add: ir.Operation | None

    @property
    def result(self) -> ir.Value:
        return (self.bias_add or self.op).results[0]


_KINDS = {"linalg.conv_2d_nchw_fchw": "conv", "linalg.depthwise_conv_2d_nchw_chw": "depthwise",
          "linalg.matmul": "linear"}


def match_layer(op: ir.Operation, constants: Constants) -> Layer | str:
    """The layer op is the contraction of, or a reason why the quantization passes cannot take it."""
    layer = layer_of(op)
    kind = _KINDS.get(op.name)
    if kind is None:
        return f"{op.name} is not a supported int8 contraction (supported: {', '.join(_KINDS)})"
    activation, weight = op.operands[0], op.operands[1]
    padding: tuple[int, ...] = (0,) * 8
    padded = pad_of(activation)
    if kind != "linear" and padded is not None:
        if padded[3] != 0.0:
            return f"its input is padded with {padded[3]}, not zero"
        activation, padding = padded[0], padded[1] + padded[2]
    transposed = False
    transpose = producer(weight)
    if kind == "linear" and transpose is not None and transpose.name == "linalg.transpose":
        weight, transposed = transpose.operands[0], True
    if not is_constant_like(weight):
        return "its weights are not a constant"
    if kind == "linear" and not transposed:
        return "its weight is not a transposed constant (expected the form both importers give nn.Linear)"
    bias, bias_add = None, None
    init = producer(op.operands[2])
    if kind != "linear":
        if init is not None and init.name == "linalg.broadcast" and \
                constants.value_of(init.operands[0]) is not None:
            bias = init.operands[0]
        elif not (init is not None and init.name == "linalg.fill" and scalar_constant(init.operands[0]) == 0.0
                  or _is_zero_splat(op.operands[2])):
            return "its accumulator init is neither a bias broadcast nor zero"
    else:
        if init is None or init.name != "linalg.fill" or scalar_constant(init.operands[0]) != 0.0:
            return "its accumulator init is not zero"
        followers = users(op.results[0])
        if len(followers) == 1 and (found := bias_of(followers[0], op.results[0], constants)) is not None:
            bias, bias_add = found, followers[0]
    if kind == "conv" and (int_array(op, "dilations") != (1, 1)):
        return "dilated convolutions are not supported in int8"
    return Layer(layer or op.name, op, kind, activation, padding, weight, bias, bias_add)


def layer_bias(layer: Layer, constants: Constants, correction: tuple[float, ...] | None = None) -> np.ndarray:
    """The layer's FP32 bias (zeros where it has none), plus a plan's bias correction (quantune-apply-plan writes
    the sum in float32; the numpy references compute it here the same way)."""
    channels = constants.value_of(layer.weight).shape[0]
    bias = constants.value_of(layer.bias) if layer.bias is not None else np.zeros(channels, np.float32)
    return bias if correction is None else (bias.astype(np.float64) + np.asarray(correction)).astype(np.float32)


def bias_of(op: ir.Operation, value: ir.Value, constants: Constants) -> ir.Value | None:
    """The 1-D constant op adds along the last axis of value, if op is such a bias add."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or _body_ops(op) != ["arith.addf", "linalg.yield"]:
        return None
    if op.operands[0] != value:
        return None
    bias = op.operands[1]
    if constants.value_of(bias) is None or len(tensor_shape(bias.type)) != 1:
        return None
    return bias


def _body_ops(op: ir.Operation) -> list[str]:
    return [o.operation.name for o in op.regions[0].blocks[0].operations]


def is_elementwise(op: ir.Operation) -> bool:
    if op.name != "linalg.generic":
        return False
    iterators = str(op.attributes["iterator_types"])
    return "reduction" not in iterators


def residual_add(op: ir.Operation, value: ir.Value) -> ir.Value | None:
    """The other operand when op adds two tensors of value's shape elementwise."""
    if not is_elementwise(op) or len(op.operands) != 3 or _body_ops(op) != ["arith.addf", "linalg.yield"]:
        return None
    a, b = op.operands[0], op.operands[1]
    if a.type != b.type or str(op.attributes["indexing_maps"]).count("(d0, d1, d2, d3) -> (d0, d1, d2, d3)") != 3:
        return None
    block = op.regions[0].blocks[0]
    add = block.operations[0]
    if {add.operands[0], add.operands[1]} != {block.arguments[0], block.arguments[1]}:
        return None
    return b if a == value else a if b == value else None


def clamp_bounds(op: ir.Operation, value: ir.Value, constants: Constants) -> tuple[float, float] | None:
    """(lo, hi) when op computes min(max(value, lo), hi) elementwise (ReLU, ReLU6, Clip), else None.

    The body is evaluated symbolically: every value is either a clamp of the input, tracked as its bounds,
    or a constant. Compare-and-select pairs and max/min ops are the only ops allowed."""
    inputs = list(op.operands)[:-1]
    if not is_elementwise(op) or inputs.count(value) != 1 or len(set(map(str, op.attributes["indexing_maps"]))) > 2:
        return None
    env: dict = {}
    for operand, arg in zip(inputs, op.regions[0].blocks[0].arguments):
        if operand == value:
            env[arg] = (-math.inf, math.inf)
            continue
        c = constants.value_of(operand)
        if c is None or c.size != 1:
            return None
        env[arg] = float(c.reshape(()))
    block = op.regions[0].blocks[0]
    compares: dict = {}
    for inner in block.operations:
        name = inner.operation.name
        if name == "linalg.yield":
            result = env.get(inner.operands[0])
            return result if isinstance(result, tuple) else None
        values = [env[v] if v in env else scalar_constant(v) for v in inner.operands]
        if name == "arith.constant":
            env[inner.results[0]] = scalar_constant(inner.results[0])
        elif name == "arith.cmpf":
            predicate = str(inner.attributes["predicate"])
            compares[inner.results[0]] = (_cmpf_greater(predicate), inner.operands[0], inner.operands[1])
        elif name == "arith.select" and inner.operands[0] in compares:
            greater, lhs, rhs = compares[inner.operands[0]]
            picks = (inner.operands[1], inner.operands[2])
            if picks == (lhs, rhs):
                combined = _combine(values[1], values[2], greater)
            elif picks == (rhs, lhs):
                combined = _combine(values[1], values[2], not greater)
            else:
                return None
            if combined is None:
                return None
            env[inner.results[0]] = combined
        elif name in ("arith.maximumf", "arith.maxnumf", "arith.minimumf", "arith.minnumf"):
            combined = _combine(values[0], values[1], "max" in name)
            if combined is None:
                return None
            env[inner.results[0]] = combined
        else:
            return None
    return None


def _cmpf_greater(predicate: str) -> bool | None:
    # arith.cmpf predicates print as integers: ogt=2 oge=3 olt=4 ole=5 ugt=9 uge=10 ult=11 ule=12.
    code = int(predicate.split(":")[0])
    return {2: True, 3: True, 4: False, 5: False, 9: True, 10: True, 11: False, 12: False}.get(code)


def _combine(a, b, take_max: bool | None):
    """max(a, b) or min(a, b) where one side is the clamped input (lo, hi) and the other a constant."""
    if take_max is None:
        return None
    if isinstance(a, tuple) and isinstance(b, float):
        bounds, c = a, b
    elif isinstance(b, tuple) and isinstance(a, float):
        bounds, c = b, a
    else:
        return None
    pick = max if take_max else min
    return pick(bounds[0], c), pick(bounds[1], c)
