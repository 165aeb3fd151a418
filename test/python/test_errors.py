"""Every bad input named in issue 2 gets a one-line error naming the culprit, and leaves no artifact behind."""
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from quantune_mlir import QuantuneError, api
from quantune_mlir.build_dir import IMPORT_MLIR, LAYER_TABLE
from quantune_mlir.compile import CompileError


def _assert_clean(build_dir):
    leftovers = sorted(p.name for p in build_dir.glob("*") if p.suffix in (".partial", ".vmfb", ".mlirbc"))
    assert not any(name.endswith(".partial") or name.endswith(".vmfb") for name in leftovers), leftovers


def test_missing_onnx_file(tmp_path):
    with pytest.raises(QuantuneError, match=r"nope\.onnx: no such ONNX file"):
        api.import_model(tmp_path / "nope.onnx", build_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_corrupt_onnx_file(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    with pytest.raises(QuantuneError, match=r"broken\.onnx: not a valid ONNX model .*re-export it"):
        api.import_model(path, build_dir=tmp_path / "b")
    assert not (tmp_path / "b" / IMPORT_MLIR).exists()


def test_truncated_onnx_file(tmp_path, zoo_onnx):
    full = zoo_onnx("squeezenet1_1-small").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(QuantuneError, match=r"truncated\.onnx: not a valid ONNX model"):
        api.import_model(path)


def test_onnx_operator_torch_mlir_cannot_lower(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("LpPool", ["c"], ["y"], kernel_shape=[1, 1])]
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 1, 1], [1.0, 2.0])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], [w])
    path = tmp_path / "lppool.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(QuantuneError, match=r"lppool: operator onnx\.LpPool is not supported by torch-mlir's "
                                            r"lowering to linalg \(at LpPool_1\); replace or decompose"):
        api.import_model(path, build_dir=tmp_path / "b")
    assert not (tmp_path / "b" / IMPORT_MLIR).exists()


def test_torch_operator_torch_mlir_cannot_lower():
    class Median(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return torch.median(self.conv(x), dim=3).values

    with pytest.raises(QuantuneError, match=r"Median: operator torch\.aten\.median\.dim is not supported .*forward"):
        api.import_model(Median(), example_inputs=(torch.randn(1, 1, 8, 8),))


def test_model_that_fails_to_export():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1

    with pytest.raises(QuantuneError, match=r"DataDependent: torch\.export failed .*make forward\(\) traceable"):
        api.import_model(DataDependent(), example_inputs=(torch.randn(1, 3),))


def test_non_float_model_input():
    with pytest.raises(QuantuneError, match=r"example input 0 has dtype torch.int64.*float32"):
        api.import_model(torch.nn.Identity(), example_inputs=(torch.ones(1, 3, dtype=torch.int64),))


def test_unknown_zoo_model_and_target(tmp_path):
    with pytest.raises(QuantuneError, match=r"unknown zoo model 'resnet19': choose one of resnet18, "):
        api.import_model("resnet19")
    with pytest.raises(QuantuneError, match=r"unknown target 'arm64': choose one of x86_64, aarch64, "):
        api.compile_model(tmp_path, "arm64")


def test_compile_without_import(tmp_path):
    with pytest.raises(QuantuneError, match=r"holds no 00_import.mlirbc; run `quantune import"):
        api.compile_model(tmp_path, "x86_64")


def test_iree_compile_failure_leaves_reproducer_and_no_vmfb(tmp_path):
    # IREE has no lowering for a lone quant.qcast (see DESIGN.md): a realistic compile failure.
    source = tmp_path / "elsewhere" / "lone_qcast.mlir"
    source.parent.mkdir()
    source.write_text("func.func @main(%x: tensor<4xf32>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {\n"
                      "  %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1>>\n"
                      "  return %q : tensor<4x!quant.uniform<i8:f32, 0.1>>\n}\n")
    build = tmp_path / "build"
    build.mkdir()
    with pytest.raises(CompileError, match=r"iree-compile failed for target x86_64: .*error: .*reproduce with: "
                                           r"iree-compile @.*x86_64\.flags"):
        api.compile_model(source, "x86_64", output=build / "out.vmfb")
    assert not (build / "out.vmfb").exists() and not list(build.glob("*.partial"))
    failure_dir = source.parent
    repro = (failure_dir / "failed_compile_x86_64.sh").read_text()
    assert "lone_qcast.mlir" in repro and "x86_64.flags" in repro
    assert "error" in (failure_dir / "failed_compile_x86_64.log").read_text()


def test_iree_compile_failure_copies_ir_into_build_folder(tmp_path):
    source = tmp_path / "bad.mlir"
    source.write_text("func.func @main( {")
    build = tmp_path / "build"
    with pytest.raises(CompileError):
        api.compile_model(source, "x86_64", output=build / "out.vmfb")
    # the source lies outside the failure folder only when output goes elsewhere: then IR is copied beside it
    assert (tmp_path / "failed_compile_x86_64.sh").exists()


def test_pass_through_flag_must_be_iree_spelling(tmp_path):
    source = tmp_path / "x.mlir"
    source.write_text("func.func @main() { return }")
    with pytest.raises(QuantuneError, match=r"pass-through flag 'O3' is not in iree-compile's spelling"):
        api.compile_model(source, "x86_64", extra_flags=("O3",))


def test_failed_import_keeps_previous_artifacts_whole(tmp_path):
    api.import_model("squeezenet1_1-small", build_dir=tmp_path)
    before = (tmp_path / LAYER_TABLE).read_text()
    with pytest.raises(QuantuneError):
        api.import_model(tmp_path / "missing.onnx", build_dir=tmp_path)
    assert (tmp_path / LAYER_TABLE).read_text() == before
    assert not list(tmp_path.glob("*.partial"))
