"""What trained third-party networks hold and a build must survive: near-dead channels whose folded bias would
overflow the int32 accumulator, all-zero channels, ONNX convs with an all-zero bias. Real ONNX imports, IREE
compiles and runs, checked against onnxruntime."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantune_mlir import QuantuneError, api
from quantune_mlir.analysis.metrics import sqnr_db
from quantune_mlir.quantization import BIAS_BOUND, bias_fitting_scales, weight_scales


def two_conv_net(path, w1: np.ndarray, b1: np.ndarray) -> None:
    """input 1x3x16x16 -> Conv 'conv1' (w1, b1) -> Relu -> Conv 'conv2' -> GlobalAveragePool -> Flatten."""
    rng = np.random.default_rng(1)
    w2 = (rng.standard_normal((4, w1.shape[0], 3, 3)) * 0.3).astype(np.float32)
    b2 = rng.standard_normal(4).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["out"], name="flatten")]
    weights = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def quantize_and_compare(tmp_path, w1, b1, input_scale: float = 1.0):
    """The all-int8 build's plan and audit, and its output SQNR against onnxruntime on held-out inputs."""
    model = tmp_path / "net.onnx"
    two_conv_net(model, w1, b1)
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "calibration.npz",
             inputs=(rng.standard_normal((32, 3, 16, 16)) * input_scale).astype(np.float32))
    build = tmp_path / "build"
    api.import_model(model, build_dir=build)
    result = api.quantize_model(build, calibration_data=str(tmp_path / "calibration.npz"), calibration_images=32)
    held_out = (rng.standard_normal((8, 3, 16, 16)) * input_scale).astype(np.float32)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    module = api.load_module(result.vmfb)
    expected = np.concatenate([session.run(None, {"input": x[None]})[0] for x in held_out])
    actual = np.concatenate([module(x[None])[0] for x in held_out])
    plan = json.loads(result.plan_path.read_text())["layers"]
    return plan, result.audit, sqnr_db(expected, actual)


def test_bias_fitting_widens_only_the_channels_that_need_it():
    scales = np.array([1e-9, 0.01, 0.02])
    bias = np.array([3.0, 3.0, -1e-3])
    fitted, widened = bias_fitting_scales(scales, bias, input_scale=0.01)
    assert widened.tolist() == [0]
    assert fitted[0] == pytest.approx(3.0 / (0.01 * BIAS_BOUND)) and fitted[1:].tolist() == [0.01, 0.02]
    assert np.abs(bias / (0.01 * fitted)).max() <= BIAS_BOUND
    per_tensor, widened = bias_fitting_scales(np.array([1e-9]), bias, input_scale=0.01)
    assert per_tensor.shape == (1,) and widened.tolist() == [0] and per_tensor[0] >= 3.0 / (0.01 * BIAS_BOUND)


def test_a_near_dead_channel_with_a_large_bias_builds_and_stays_faithful(tmp_path):
    """Channel 0: weights of 1e-9 and a bias of 3 (a batch norm folded into a dead filter). At the calibrated input
    scale its int32 bias would be about 1e11: the channel's weight scale widens instead of the build aborting."""
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    w1[0] = 1e-9
    b1 = rng.standard_normal(8).astype(np.float32)
    b1[0] = 3.0
    assert 3.0 / (0.02 * weight_scales(w1)[0]) > 2 ** 31  # it would overflow with the plain scale
    plan, audit, sqnr = quantize_and_compare(tmp_path, w1, b1)
    scales = plan["conv1"]["weight_scales"]
    assert scales[0] > 1e3 * weight_scales(w1)[0] and scales[1:] == pytest.approx(weight_scales(w1)[1:].tolist())
    assert audit.verdict("conv1").verdict == "int8"
    assert sqnr > 25.0


def test_an_all_zero_channel_gets_a_valid_scale(tmp_path):
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    w1[3] = 0.0
    b1 = rng.standard_normal(8).astype(np.float32)
    plan, audit, sqnr = quantize_and_compare(tmp_path, w1, b1)
    assert all(np.isfinite(plan["conv1"]["weight_scales"])) and min(plan["conv1"]["weight_scales"]) > 0
    assert audit.verdict("conv1").verdict == "int8" and sqnr > 25.0


def test_an_onnx_conv_with_an_all_zero_bias_runs_int8(tmp_path):
    """ONNX exporters keep a zero bias input; canonicalization folds its broadcast into a zero constant, which the
    layer matcher once refused, leaving the layer float."""
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    plan, audit, sqnr = quantize_and_compare(tmp_path, w1, np.zeros(8, np.float32))
    assert plan["conv1"]["precision"] == "int8" and audit.verdict("conv1").verdict == "int8"
    assert sqnr > 25.0


def test_an_onnx_matmul_with_an_untransposed_constant_weight_runs_int8(tmp_path):
    """PaddlePaddle and tf2onnx export dense layers as MatMul(x, W[K, N]) (+ Add): read as Gemm(x, W^T, transB=1),
    the layer runs int8 (PP-OCR's text classifier kept its last layer FP32 before)."""
    rng = np.random.default_rng(0)
    weights = {"w": (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32),
               "dense": (rng.standard_normal((4, 5)) * 0.5).astype(np.float32),
               "dense_bias": rng.standard_normal(5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "dense"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "dense_bias"], ["out"], name="fc_bias")]
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = tmp_path / "dense.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    calibration = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "calibration.npz", inputs=calibration)
    imported = api.import_model(model, build_dir=tmp_path / "build")
    assert [(layer_id, imported.layers[layer_id].kind, imported.layers[layer_id].weight_shape)
            for layer_id in imported.layers.ids] == [
        ("conv", "conv", (4, 3, 3, 3)), ("fc", "linear", (5, 4))]
    result = api.quantize_model(tmp_path / "build", calibration_data=str(tmp_path / "calibration.npz"),
                                calibration_images=16)
    assert result.plan.layers["fc"].precision == "int8" and result.audit.verdict("fc").verdict == "int8"
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"input": x[None]})[0] for x in calibration[:8]])
    actual = np.concatenate([api.load_module(result.vmfb)(x[None])[0] for x in calibration[:8]])
    assert sqnr_db(expected, actual) > 25.0


def _with_dynamic_dims(path, out, dims: dict[int, str]) -> None:
    model = onnx.load(str(path))
    for index, name in dims.items():
        model.graph.input[0].type.tensor_type.shape.dim[index].dim_param = name
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = dims.get(0, "N")
    onnx.save(model, str(out))


def test_a_dynamic_batch_is_fixed_to_one_with_a_note(tmp_path, caplog):
    rng = np.random.default_rng(0)
    two_conv_net(tmp_path / "static.onnx", (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32),
                 rng.standard_normal(8).astype(np.float32))
    _with_dynamic_dims(tmp_path / "static.onnx", tmp_path / "dynamic.onnx", {0: "batch"})
    imported = api.import_model(tmp_path / "dynamic.onnx", build_dir=tmp_path / "build")
    assert imported.inputs[0].shape == (1, 3, 16, 16)
    assert "input 'input' has a dynamic batch dimension: fixed to 1 (--input-shape input=1x3x16x16" in caplog.text
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    (expected,) = onnxruntime.InferenceSession(str(tmp_path / "dynamic.onnx")).run(None, {"input": x})
    (actual,) = api.load_module(api.compile_model(tmp_path / "build"))(x)
    assert api.relative_l2(actual, expected) < 1e-5


def test_other_dynamic_dimensions_need_the_input_shape(tmp_path):
    rng = np.random.default_rng(0)
    two_conv_net(tmp_path / "static.onnx", (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32),
                 rng.standard_normal(8).astype(np.float32))
    _with_dynamic_dims(tmp_path / "static.onnx", tmp_path / "dynamic.onnx", {0: "N", 2: "H", 3: "W"})
    with pytest.raises(QuantuneError, match=r"input 'input' has a dynamic shape \['\?', 3, '\?', '\?'\]; fix it "
                                            r"with --input-shape input=1x3x224x224"):
        api.import_model(tmp_path / "dynamic.onnx")
    with pytest.raises(QuantuneError, match=r"--input-shape image: the model has no input of that name; its input "
                                            r"is 'input'"):
        api.import_model(tmp_path / "dynamic.onnx", input_shapes={"image": (1, 3, 16, 16)})
    imported = api.import_model(tmp_path / "dynamic.onnx", input_shapes={"input": (1, 3, 20, 12)})
    assert imported.inputs[0].shape == (1, 3, 20, 12)


def test_a_model_of_two_inputs_imports_but_is_refused_before_calibration(tmp_path):
    weight = numpy_helper.from_array(np.ones((4, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["s"], name="add"),
                               helper.make_node("Conv", ["s", "w"], ["out"], name="conv")], "two",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 4, 4]) for n in ("a", "b")],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 4, 4])],
                              initializer=[weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "two.onnx")
    np.savez(tmp_path / "calibration.npz", inputs=np.zeros((4, 1, 4, 4), np.float32))
    api.import_model(tmp_path / "two.onnx", build_dir=tmp_path / "build")
    with pytest.raises(QuantuneError, match=r"two has 2 inputs: quantune quantizes models of one input tensor "
                                            r"\(import, compile and run take any\)"):
        api.quantize_model(tmp_path / "build", calibration_data=str(tmp_path / "calibration.npz"))
    with pytest.raises(QuantuneError, match=r"--input-shape fixes the input of a one-input model; this one has 2 "
                                            r"\(a, b\)"):
        api.import_model(tmp_path / "two.onnx", input_shapes={"a": (1, 1, 4, 4)})
