"""Which tensors of a model become int8 under a plan: the quantization points.

An int8 layer reads one int8 tensor (its activation before padding) and, when its consumers want int8, writes
one: the end of its epilogue chain, which folds the ops that follow the contraction into its requantization:
an optional residual add (whose other operand must itself be an int8 tensor), then any number of clamps
(ReLU, ReLU6, Clip). Consecutive int8 layers share the tensor between them, so nothing is dequantized and
requantized there: the producer's epilogue writes the consumer's input directly.

Max pools and channel concatenations between int8 layers run on int8 too ("pass-through" ops): quantization
is monotonic and elementwise, so quantize(max(x)) = max(quantize(x)) and quantize(concat(a, b)) =
concat(quantize(a), quantize(b)) for one set of parameters; a constant spatial padding before a max pool (-inf,
or the zeros of a Caffe-style ceil-mode pool exported as Pad + MaxPool) becomes that constant quantized. When
int8 layers' outputs reach an int8 layer's input only through such ops, every tensor on the way is a point and
takes that input's parameters (`QuantPoint.params_from`): the producers' epilogues write the consumer's scale and
the ops move int8 values.

Points are named after the plan entries that hold their parameters: `<layer>.input` and `<layer>.output`.
One tensor can carry both names (the output of one layer is the input of the next); the producer's output
parameters then rule.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import QuantuneError
from ..mlir import ir
from .graph import (Constants, Layer, clamp_bounds, layer_of, match_layer, pad_of, producer, residual_add,
                    tensor_shape, unpadded, users)
from .tag_layers import contraction_ops

log = logging.getLogger(__name__)


NO_CLAMP = (-math.inf, math.inf)


@dataclass(frozen=True)
class Epilogue:
    """The elementwise ops after a layer that its requantization can take over."""

    residual: ir.Value | None  # added before the clamp
    clamp: tuple[float, float]  # NO_CLAMP when there is none
    ops: tuple[ir.Operation, ...]
    end: ir.Value


@dataclass(frozen=True)
class Chain:
    layer: Layer
    residual: ir.Value | None
    clamp: tuple[float, float]
    ops: tuple[ir.Operation, ...]
    end: ir.Value


@dataclass
class QuantPoint:
    value: ir.Value
    names: list[str] = field(default_factory=list)
    params_from: "QuantPoint | None" = None  # the point after the pass-through ops this tensor feeds

    @property
    def name(self) -> str:
        """The plan entry naming the tensor: a producer's output before a consumer's input."""
        outputs = [n for n in self.names if n.endswith(".output")]
        return (outputs or self.names)[0]

    @property
    def params_name(self) -> str:
        """The plan entry whose parameters the tensor takes."""
        return self.params_from.params_name if self.params_from is not None else self.name


@dataclass(frozen=True)
class Int8Region:
    chains: dict[str, Chain]  # int8 layer id -> its chain (cut after the contraction when its end stays fp32)
    points: tuple[QuantPoint, ...]  # in program order of first use


def layers_by_id(module: ir.Module, constants: Constants) -> dict[str, Layer | str]:
    """Every tagged contraction, matched as a Layer or with the reason it cannot be int8."""
    found: dict[str, Layer | str] = {}
    for op in contraction_ops(module):
        layer = match_layer(op, constants)
        key = layer.id if isinstance(layer, Layer) else layer_of(op)
        if key is not None:
            found[key] = layer
    return found


def int8_region(module: ir.Module, int8_layers: set[str] | frozenset[str], constants: Constants, *,
                strict: bool = False) -> Int8Region:
    """The chains and points of the layers planned int8. A layer that cannot run int8 stays fp32 with a
    warning naming it and why, or, in strict mode, is an error."""
    layers = layers_by_id(module, constants)
    chains: dict[str, Chain] = {}
    for layer_id in layers:
        if layer_id not in int8_layers:
            continue
        layer = layers[layer_id]
        if isinstance(layer, str):
            message = f"layer '{layer_id}' cannot run int8: {layer}"
            if strict:
                raise QuantuneError(message + " (drop --strict to keep it fp32 instead)")
            log.warning("%s; it stays fp32", message)
            continue
        chains[layer_id] = _full_chain(layer, constants)
    # Both branches of a residual block can reach the same add; the later layer (the block's main path, which
    # the importers emit after the shortcut) takes it, and the other branch becomes its int8 residual operand.
    for layer_id, chain in list(chains.items()):
        if chain.residual is not None and any(
                other is not chain and other.ops and other.ops[0] == chain.ops[0]
                and chain.layer.op.is_before_in_block(other.layer.op) for other in chains.values()):
            chains[layer_id] = _cut(chain)

    # A residual operand must be int8 already (an int8 layer's input or the int8 end of another chain), and a
    # chain folds its epilogue only when its end is int8; each cut can undo another chain's int8 residual.
    changed = True
    while changed:
        int8_tensors = _int8_tensors(chains)
        uncut = {layer_id: chain for layer_id, chain in chains.items() if chain.ops}
        changed = False
        for layer_id, chain in uncut.items():
            if chain.end not in int8_tensors or (chain.residual is not None and chain.residual not in int8_tensors):
                chains[layer_id] = _cut(chain)
                changed = True

    points: list[QuantPoint] = []

    def name(value: ir.Value, point_name: str) -> None:
        point = next((p for p in points if p.value == value), None)
        if point is None:
            point = QuantPoint(value)
            points.append(point)
        if point_name not in point.names:
            point.names.append(point_name)

    for layer_id, chain in chains.items():
        name(chain.layer.activation, f"{layer_id}.input")
        if chain.end in int8_tensors:
            name(chain.end, f"{layer_id}.output")
    for chain in chains.values():
        path = _pass_through_path(chain.end, chains)
        if path is None or len(path) < 2:
            continue
        consumer = next(p for p in points if p.value == path[-1])
        for value in path[1:-1]:
            name(value, f"{consumer.name}.before_{producer(value).name.split('.')[-1]}")
        for point in points:
            if point.value in path[:-1]:
                point.params_from = consumer
    return Int8Region(chains, tuple(points))


def output_layers(region: Int8Region) -> list[str]:
    """The int8 layers that write FP32 and whose result reaches a model output without passing another layer
    (a classifier's logits, through a softmax or a reshape at most)."""
    contractions = {chain.layer.op.operation for chain in region.chains.values()}

    def reaches_return(value: ir.Value, seen: set) -> bool:
        for user in (op.operation for op in users(value)):
            if user in seen or user in contractions:
                continue
            seen.add(user)
            if user.name.endswith(".return") or any(reaches_return(r, seen) for r in user.results):
                return True
        return False

    int8_tensors = _int8_tensors(region.chains)
    return [layer_id for layer_id, chain in region.chains.items()
            if chain.end not in int8_tensors and reaches_return(chain.end, set())]


def downstream_consumers(region: Int8Region) -> dict[str, tuple[tuple[str, str | None], ...]]:
    """Per int8 layer, where its end's values go next, through any op that is not another int8 layer:
    ("input", j) where they reach layer j's contraction, ("residual", j) where they reach j's epilogue (its
    residual add), ("output", None) where they reach the function's return."""
    contraction_of = {chain.layer.op.operation: layer_id for layer_id, chain in region.chains.items()}
    epilogue_of = {op.operation: layer_id for layer_id, chain in region.chains.items() for op in chain.ops}
    consumers = {}
    for layer_id, chain in region.chains.items():
        found: list[tuple[str, str | None]] = []
        seen: set = set()
        frontier = [chain.end]
        while frontier:
            for user in (op.operation for op in users(frontier.pop())):
                if user in seen:
                    continue
                seen.add(user)
                if user in contraction_of:
                    found.append(("input", contraction_of[user]))
                elif user in epilogue_of:
                    found.append(("residual", epilogue_of[user]))
                elif user.name.endswith(".return"):
                    found.append(("output", None))
                else:
                    frontier.extend(user.results)
        consumers[layer_id] = tuple(found)
    return consumers


def _int8_tensors(chains: dict[str, Chain]) -> set[ir.Value]:
    """Layer inputs, and chain ends that an int8 layer reads as its input or residual operand, or reaches as
    its input through pass-through ops."""
    inputs = {c.layer.activation for c in chains.values()}
    residuals = {c.residual for c in chains.values() if c.residual is not None}
    return inputs | {c.end for c in chains.values()
                     if c.end in inputs or c.end in residuals or _pass_through_path(c.end, chains) is not None}


def _pass_through_path(value: ir.Value, chains: dict[str, Chain]) -> list[ir.Value] | None:
    """[value, ..., an int8 layer's input] through pass-through ops whose operands are all int8 chain ends or
    pass-through results; None when value does not get there."""
    inputs = {c.layer.activation for c in chains.values()}
    ends = {c.end for c in chains.values()}
    path = [value]
    while path[-1] not in inputs:
        result = pass_through_result(path[-1])
        if result is None:
            return None
        if any(source != path[-1] and source not in ends for source in pass_through_inputs(producer(result))):
            return None
        path.append(result)
    return path


PASS_THROUGH_OPS = ("linalg.pooling_nchw_max", "tensor.concat")


def pass_through_inputs(op: ir.Operation) -> list[ir.Value]:
    """The tensors a pass-through op moves: a max pool's input before its padding, a concat's operands."""
    return [unpadded(op.operands[0])] if op.name == "linalg.pooling_nchw_max" else list(op.operands)


def pass_through_result(value: ir.Value) -> ir.Value | None:
    """The result of the max pool (through a spatial padding with a constant, or none) or channel concatenation
    that alone reads value."""
    followers = users(value)
    if len(followers) != 1:
        return None
    op, operand = followers[0], value
    if op.name == "tensor.pad":
        # any constant padding: quantize(pad(x, v)) = pad(quantize(x), quantize(v)); the lowering pads the int8
        # tensor with quantize(v) (-inf: the int8 minimum), e.g. the zeros a Caffe-style ceil-mode pool adds
        padding = pad_of(op.results[0])
        if padding is None or any(padding[1][:2]) or any(padding[2][:2]) or len(users(op.results[0])) != 1:
            return None
        op, operand = users(op.results[0])[0], op.results[0]
        if op.name != "linalg.pooling_nchw_max":
            return None
    if op.name == "linalg.pooling_nchw_max" and op.operands[0] == operand:
        return op.results[0]
    if op.name == "tensor.concat" and ir.IntegerAttr(op.attributes["dim"]).value == 1 and \
            len(tensor_shape(value.type)) == 4:
        return op.results[0]
    return None


def follow_epilogue(value: ir.Value, constants: Constants, *,
                    residual_of: Callable[[ir.Value], ir.Value | None] = lambda v: v,
                    until: Callable[[ir.Operation], bool] = lambda op: False) -> Epilogue:
    """Walk the single-use elementwise ops after value: at most one residual add (first, and accepted when
    residual_of maps its other operand to the residual), then clamps; stop before an op for which until holds."""
    residual, clamp, ops = None, NO_CLAMP, []
    while len(followers := users(value)) == 1 and not until(followers[0]):
        op = followers[0]
        bounds = clamp_bounds(op, value, constants)
        other = residual_add(op, value) if bounds is None and not ops else None
        if bounds is not None:
            clamp = (max(clamp[0], bounds[0]), min(clamp[1], bounds[1]))
        elif other is not None and residual_of(other) is not None:
            residual = residual_of(other)
        else:
            break
        ops.append(op)
        value = op.results[0]
    return Epilogue(residual, clamp, tuple(ops), value)


def _full_chain(layer: Layer, constants: Constants) -> Chain:
    epilogue = follow_epilogue(layer.result, constants)
    return Chain(layer, epilogue.residual, epilogue.clamp, epilogue.ops, epilogue.end)


def _cut(chain: Chain) -> Chain:
    """The chain without its epilogue ops: the layer then writes fp32 and the ops stay as they are."""
    return Chain(chain.layer, None, NO_CLAMP, (), chain.layer.result)
