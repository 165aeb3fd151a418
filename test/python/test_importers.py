"""Importers and the layer table: ids from the model's names, kinds, shapes, the MLIR op each layer became,
batch-norm folding, and the same ids from the PyTorch and the ONNX frontend."""
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from quantune_mlir import api
from quantune_mlir.build_dir import IMPORT_MLIR, LAYER_TABLE
from quantune_mlir.importers.onnx_frontend import fold_batch_norm
from quantune_mlir.layers import LayerTable
from quantune_mlir.mlir import LAYER_ATTR, ir
from quantune_mlir.rewrite.tag_layers import contraction_ops


def test_resnet18_layer_table(tmp_path):
    imported = api.import_model("resnet18-small", build_dir=tmp_path)
    table = imported.layers
    assert len(table) == 21  # 17 convs on the main path, 3 downsample convs, fc
    assert table.ids[:3] == ("conv1", "layer1.0.conv1", "layer1.0.conv2")
    assert "layer2.0.downsample.0" in table.ids and table.ids[-1] == "fc"
    conv = table["layer2.0.conv1"]
    assert (conv.kind, conv.mlir_op) == ("conv", "linalg.conv_2d_nchw_fchw")
    assert conv.weight_shape == (64, 32, 3, 3) and conv.input_shape == (1, 32, 14, 14)
    assert conv.output_shape == (1, 64, 7, 7)
    assert conv.params == 64 * 32 * 9 + 64  # batch norm folded into a bias
    fc = table["fc"]
    assert (fc.kind, fc.mlir_op, fc.weight_shape) == ("linear", "linalg.matmul", (10, 256))
    # the artifacts hold the same table and a module whose contractions carry the ids
    assert LayerTable.load(tmp_path / LAYER_TABLE) == table
    module = ir.Module.parse((tmp_path / IMPORT_MLIR).read_bytes(), ir.Context())
    tags = [ir.StringAttr(op.attributes[LAYER_ATTR]).value for op in contraction_ops(module)]
    assert tags == list(table.ids)


def test_batch_norm_is_folded_away(tmp_path):
    imported = api.import_model("resnet18-small")
    text = imported.module.operation.get_asm(large_elements_limit=4)
    assert "rsqrt" not in text and "math.sqrt" not in text  # the BN normalisation is gone from the graph


def test_mobilenet_kinds():
    table = api.import_model("mobilenet_v2-small").layers
    kinds = {layer.kind for layer in table.layers}
    assert kinds == {"conv", "depthwise_conv", "linear"}
    dw = table["features.2.conv.1.0"]
    assert dw.kind == "depthwise_conv" and dw.mlir_op == "linalg.depthwise_conv_2d_nchw_chw"
    assert len(table) == 53


def test_onnx_ids_match_torch_ids(zoo_onnx):
    onnx_table = api.import_model(zoo_onnx("mobilenet_v2-small")).layers
    torch_table = api.import_model("mobilenet_v2-small").layers
    assert onnx_table.ids == torch_table.ids
    assert [l.kind for l in onnx_table.layers] == [l.kind for l in torch_table.layers]
    assert [l.weight_shape for l in onnx_table.layers] == [l.weight_shape for l in torch_table.layers]


def _conv_bn_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("stem.weight", rng.standard_normal((4, 2, 3, 3))), ("bn.scale", rng.uniform(0.5, 2, 4)),
        ("bn.bias", rng.standard_normal(4)), ("bn.mean", rng.standard_normal(4)), ("bn.var", rng.uniform(0.5, 2, 4))]]
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["y"],
                              epsilon=1e-3)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_batch_norm_folding_is_exact():
    from onnx.reference import ReferenceEvaluator
    model = _conv_bn_model()
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    assert fold_batch_norm(folded) == 1
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    (actual,) = ReferenceEvaluator(folded).run(None, {"x": x})
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_onnx_import_folds_and_compiles(tmp_path):
    path = tmp_path / "conv_bn.onnx"
    onnx.save(_conv_bn_model(), path)
    imported = api.import_model(path, build_dir=tmp_path)
    assert imported.layers.ids == ("stem",)
    vmfb = api.compile_model(tmp_path, "x86_64")
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    (actual,) = api.load_module(vmfb)(x)
    (expected,) = api.reference_outputs(path, (x,))
    assert api.relative_l2(actual, expected) < 1e-6


def test_layer_table_json_round_trip():
    table = api.import_model("squeezenet1_1-small").layers
    assert LayerTable.from_json(table.to_json()) == table


def test_torch_module_import_uses_module_paths():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8))
            self.head = torch.nn.Linear(8, 5)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    table = api.import_model(Net(), example_inputs=(torch.randn(1, 3, 9, 9),)).layers
    assert table.ids == ("body.0", "body.2", "head")
    assert [l.kind for l in table.layers] == ["conv", "depthwise_conv", "linear"]
