"""ONNX file -> linalg-on-tensors through torch-mlir's ONNX importer.

Before import, BatchNormalization nodes that follow a Conv are folded into its weights, and each layer node
(Conv, Gemm, MatMul with a constant weight) is renamed to its layer id, which the importer turns into the
NameLoc that quantune-tag-layers reads. The id is the weight initializer's name without `.weight` (PyTorch's
exporters keep module paths there), else the node's own name. Other contractions (weights that are graph inputs,
integer ops such as QLinearConv) are no layers: a model of only those has an empty layer table.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import QuantuneError
from ..layers import LayerInfo
from ..mlir import ir, torch_mlir_modules
from ..tensor_spec import TensorSpec
from .common import TORCH_TO_LINALG, Diagnostics, ImportedModel, finish_import, lower_to_linalg

log = logging.getLogger(__name__)

ONNX_TO_TORCH = "torch-onnx-to-torch-backend-pipeline"
_LAYER_OPS = ("Conv", "Gemm", "MatMul")
# torch-mlir's importer names every node onnx.<op_type> whatever its domain, so a custom operator would reach the
# lowering as a standard one of that name, or fail at one of its users: refuse it up front, by name.
_STANDARD_DOMAINS = ("", "ai.onnx")
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
# QuantizeLinear results torch-mlir has a torch dtype for; for any other it aborts the whole process
# (getScalarTypeForType), so the importer must refuse those models before handing them over.
_TORCH_MLIR_QUANTIZED_TYPES = {onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT16,
                               onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ,
                               onnx.TensorProto.FLOAT8E5M2, onnx.TensorProto.FLOAT8E5M2FNUZ}


def load_onnx(path: Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise QuantuneError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # protobuf DecodeError, ValidationError, missing external data
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise QuantuneError(f"{path}: not a valid ONNX model ({first}); re-export it, or check the file "
                            "was copied whole") from None
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise QuantuneError(f"{path}: ONNX shape inference failed ({str(e).strip().splitlines()[0]})") from None


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in graph.initializer}


def fold_batch_norm(model: onnx.ModelProto) -> int:
    """Fold BatchNormalization into the Conv feeding it when that Conv has no other user. Returns the count."""
    graph = model.graph
    inits = _initializers(graph)
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    producer = {out: node for node in graph.node for out in node.output}
    folded = []
    for bn in graph.node:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        conv = producer.get(bn.input[0])
        params = bn.input[1:5]
        if conv is None or conv.op_type != "Conv" or users.get(conv.output[0]) != 1 \
                or not all(p in inits for p in params) or conv.input[1] not in inits:
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[p]).astype(np.float64) for p in params)
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 \
            else np.zeros(w.shape[0])
        scale = gamma / np.sqrt(var + eps)
        new_w = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        new_b = ((b - mean) * scale + beta).astype(np.float32)
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(new_w, conv.input[1]))
        bias_name = conv.input[2] if len(conv.input) > 2 else f"{conv.input[1].removesuffix('.weight')}.bias"
        if len(conv.input) > 2:
            inits[bias_name].CopyFrom(numpy_helper.from_array(new_b, bias_name))
        else:
            graph.initializer.append(numpy_helper.from_array(new_b, bias_name))
            conv.input.append(bias_name)
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    return len(folded)


def matmul_as_gemm(model: onnx.ModelProto) -> int:
    """Turn MatMul(X, W) of a 2-D input and a constant 2-D weight [K, N] (PaddlePaddle's and tf2onnx's dense
    layers) into Gemm(X, W^T, transB=1), the form nn.Linear exports to and the int8 layer matcher takes. The
    weight's transpose is a new initializer; W itself stays for any other reader. Returns the count."""
    graph = model.graph
    inits = _initializers(graph)
    changed = 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or len(inits[node.input[1]].dims) != 2 \
                or len(_shape(model, node.input[0])) != 2:
            continue
        transposed = f"{node.input[1]}.transposed"
        if transposed not in inits:
            weight = numpy_helper.to_array(inits[node.input[1]])
            inits[transposed] = numpy_helper.from_array(np.ascontiguousarray(weight.T), transposed)
            graph.initializer.append(inits[transposed])
        node.op_type = "Gemm"
        node.input[1] = transposed
        node.attribute.append(onnx.helper.make_attribute("transB", 1))
        changed += 1
    return changed


def _layer_id(node: onnx.NodeProto, weight_name: str, index: int) -> str:
    if weight_name.endswith(".weight"):
        return weight_name.removesuffix(".weight")
    if node.name:
        return re.sub(r"^/|/(Conv|Gemm|MatMul)$", "", node.name).replace("/", ".")
    return f"{node.op_type.lower()}_{index}"


def _tensor_type(model: onnx.ModelProto, value_name: str) -> onnx.TypeProto.Tensor | None:
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        if vi.name == value_name:
            return vi.type.tensor_type
    return None


def _shape(model: onnx.ModelProto, value_name: str) -> tuple[int, ...]:
    tensor_type = _tensor_type(model, value_name)
    return tuple(d.dim_value for d in tensor_type.shape.dim) if tensor_type else ()


def name_layers(model: onnx.ModelProto) -> dict[str, LayerInfo]:
    inits = _initializers(model.graph)
    layers: dict[str, LayerInfo] = {}
    for index, node in enumerate(model.graph.node):
        if node.op_type not in _LAYER_OPS or len(node.input) < 2 or node.input[1] not in inits:
            node.name = node.name or f"{node.op_type}_{index}"  # named, so that errors can point at it
            continue
        weight = inits[node.input[1]]
        layer_id = _layer_id(node, node.input[1], index)
        while layer_id in layers:
            layer_id += "_"
        weight_shape = tuple(weight.dims)
        params = int(np.prod(weight_shape)) + sum(int(np.prod(inits[n].dims)) for n in node.input[2:] if n in inits)
        if node.op_type == "Conv":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            in_channels = _shape(model, node.input[0])[1:2]
            kind = "depthwise_conv" if group > 1 and (group,) == in_channels else "conv"
        else:
            kind = "linear"
        node.name = layer_id
        layers[layer_id] = LayerInfo(layer_id, kind, _shape(model, node.input[0]), _shape(model, node.output[0]),
                                     weight_shape, params)
    return layers


def _input_dtype(vi: onnx.ValueInfoProto, path: Path) -> str:
    """numpy's name for an input's element type (ml_dtypes' for float8 and int4)."""
    from torch_mlir.extras.onnx_importer import ELEM_TYPE_TO_IR_TYPE_CB
    elem_type = vi.type.tensor_type.elem_type
    if elem_type not in ELEM_TYPE_TO_IR_TYPE_CB:
        raise QuantuneError(f"{path}: input '{vi.name}' has ONNX element type "
                            f"{onnx.TensorProto.DataType.Name(elem_type)}, which torch-mlir's ONNX importer does "
                            "not take; convert it to a float, 8- to 64-bit integer or float8 type before import")
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name


def _input_specs(model: onnx.ModelProto, path: Path) -> tuple[TensorSpec, ...]:
    inits = _initializers(model.graph)
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dtype = _input_dtype(vi, path)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if None in dims:
            raise QuantuneError(f"{path}: input '{vi.name}' has a dynamic shape "
                                f"{[d if d is not None else '?' for d in dims]}; fix it with --input-shape "
                                f"{vi.name}=1x3x224x224 (its real sizes), or export the model with static shapes")
        specs.append(TensorSpec(tuple(dims), dtype))
    return tuple(specs)


def _check_quantize_types(model: onnx.ModelProto, path: Path) -> None:
    for node in model.graph.node:
        tensor_type = _tensor_type(model, node.output[0]) if node.op_type == "QuantizeLinear" else None
        if tensor_type and tensor_type.elem_type not in _TORCH_MLIR_QUANTIZED_TYPES:
            raise QuantuneError(f"{path}: QuantizeLinear '{node.name}' quantizes to "
                                f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}, for which torch-mlir "
                                "has no torch dtype (its lowering would abort the process); quantize to int8, "
                                "uint8 or int16")


def _check_domains(model: onnx.ModelProto, path: Path) -> None:
    for index, node in enumerate(model.graph.node):
        if node.domain not in _STANDARD_DOMAINS:
            raise QuantuneError(f"{path}: node '{node.name or f'{node.op_type}_{index}'}' is the custom operator "
                                f"{node.op_type} of domain {node.domain}, which torch-mlir's ONNX importer cannot "
                                "lower (it takes the standard ai.onnx operators); replace it with standard operators "
                                "before import")


def _check_finite_weights(model: onnx.ModelProto, path: Path) -> None:
    """A NaN or Inf weight makes every output NaN; the analysis would fail on it later without naming the layer."""
    inits = _initializers(model.graph)
    bad = {name for name, tensor in inits.items()
           if tensor.data_type in _FLOAT_TYPES and not np.isfinite(numpy_helper.to_array(tensor)).all()}
    for index, node in enumerate(model.graph.node):
        weight = next((name for name in node.input if name in bad), None)
        if weight is None:
            continue
        is_layer = node.op_type in _LAYER_OPS and len(node.input) > 1 and node.input[1] in inits
        where = f"layer '{_layer_id(node, node.input[1], index)}'" if is_layer else \
            f"node '{node.name or f'{node.op_type}_{index}'}' ({node.op_type})"
        raise QuantuneError(f"{path}: {where}: its weights ({weight}) hold NaN or Inf; fix the checkpoint the "
                            "model was exported from")


def fix_input_shape(model: onnx.ModelProto, path: Path, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """The model with its input's dynamic dimensions fixed: as `shapes` (input name -> shape) says, else a
    dynamic batch (the first dimension) to 1, with a note. Shapes are inferred again from there. Models of several
    inputs import as they are (they compile and run; only quantizing needs one input)."""
    inits = _initializers(model.graph)
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if len(inputs) != 1 and not shapes:
        return model
    if len(inputs) != 1:
        raise QuantuneError(f"{path}: --input-shape fixes the input of a one-input model; this one has "
                            f"{len(inputs)} ({', '.join(vi.name for vi in inputs)})")
    unknown = sorted(set(shapes) - {inputs[0].name})
    if unknown:
        raise QuantuneError(f"--input-shape {unknown[0]}: the model has no input of that name; its input is "
                            f"'{inputs[0].name}'")
    dims = inputs[0].type.tensor_type.shape.dim
    given = shapes.get(inputs[0].name)
    if given is not None and len(given) != len(dims):
        raise QuantuneError(f"--input-shape {inputs[0].name}={'x'.join(map(str, given))}: the input has {len(dims)} "
                            f"dimensions, not {len(given)}")
    dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
    if given is None and dynamic == [0]:
        given = (1, *(d.dim_value for d in dims[1:]))
        log.warning("%s: input '%s' has a dynamic batch dimension: fixed to 1 (--input-shape %s=%s to choose)", path,
                    inputs[0].name, inputs[0].name, "x".join(map(str, given)))
    if given is None:
        return model  # static, or dynamic beyond the batch: _input_specs names it
    for dim, size in zip(dims, given):
        dim.Clear()
        dim.dim_value = size
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise QuantuneError(f"{path}: ONNX shape inference failed for input shape {'x'.join(map(str, given))} "
                            f"({str(e).strip().splitlines()[0]})") from None


def import_onnx(path: Path, name: str, context: ir.Context,
                input_shapes: dict[str, tuple[int, ...]] | None = None) -> ImportedModel:
    log.info("importing %s through torch-mlir's ONNX importer", path)
    model = fix_input_shape(load_onnx(path), Path(path), input_shapes or {})
    inputs = _input_specs(model, Path(path))
    _check_domains(model, Path(path))
    _check_finite_weights(model, Path(path))
    folded = fold_batch_norm(model)
    if folded:
        log.info("%s: folded %d batch norms into convs", name, folded)
    if matmul_as_gemm(model):
        log.info("%s: dense MatMul layers read as Gemm with a transposed weight", name)
    framework_layers = name_layers(model)
    _check_quantize_types(model, Path(path))
    model.graph.name = "main"  # the importer names the entry function after the graph; the runtime calls main

    tm_ir, _, _ = torch_mlir_modules()
    from torch_mlir.dialects import torch as torch_dialect
    from torch_mlir.extras import onnx_importer
    tm_context = tm_ir.Context()
    torch_dialect.register_dialect(tm_context)
    diagnostics = Diagnostics(tm_context)
    try:
        info = onnx_importer.ModelInfo(model)
        tm_module = info.create_module(context=tm_context)
        onnx_importer.NodeImporter.define_function(info.main_graph, tm_module.operation).import_all()
    except onnx_importer.OnnxImportError as e:
        raise QuantuneError(f"{path}: torch-mlir's ONNX importer rejected the model ({e})") from None
    lower_to_linalg(tm_module, f"{ONNX_TO_TORCH},{TORCH_TO_LINALG}", name, diagnostics)
    return finish_import(tm_module, name, inputs, framework_layers, context)
