"""Bad input a user can hand the CLI (data files, flags, models, build folders): each gives one line that names
the culprit and the way out, exit status 1 (2 for a bad flag, as argparse does), and no traceback."""
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from quantune_mlir import api
from quantune_mlir.build_dir import IMPORT_MLIR, LAYER_TABLE
from quantune_mlir.cli.main import main
from quantune_mlir.compile import compile_file, get_target
from quantune_mlir.layers import LayerTable
from quantune_mlir.zoo import parse_zoo_id

TINY_MLIR = """
func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x16xf32> {
  %0 = tensor.collapse_shape %x [[0], [1, 2, 3]] : tensor<1x1x4x4xf32> into tensor<1x16xf32>
  return %0 : tensor<1x16xf32>
}
"""


def quantune(capsys, *args) -> tuple[int, str]:
    """main() in this process (no interpreter start per case): its exit status and stderr."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        status = e.code
    return status, capsys.readouterr().err


def assert_fails(result: tuple[int, str], pattern: str, status: int = 1) -> None:
    code, stderr = result
    assert "Traceback" not in stderr
    assert code == status, stderr
    prefix = r"quantune: error: (\S*/)?" if status == 1 else r"quantune \w+: error: "  # (the folder of a file)
    assert re.search(prefix + pattern, stderr), stderr


def _onnx_model(nodes, weights: dict[str, np.ndarray], domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 6, 6])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 1, 1])],
                              initializer=[numpy_helper.from_array(w, name) for name, w in weights.items()])
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=opsets)


def _conv_net(path, *, weight: np.ndarray | None = None, custom: bool = False):
    """input -> Conv 'conv1' [-> com.acme MyFancyOp 'fancy1'] -> GlobalAveragePool -> out, 1x1x6x6 in."""
    w = np.random.default_rng(0).standard_normal((4, 1, 3, 3)).astype(np.float32) if weight is None else weight
    nodes = [helper.make_node("Conv", ["input", "conv1.weight"], ["c"], name="conv1", pads=[1, 1, 1, 1])]
    if custom:
        nodes.append(helper.make_node("MyFancyOp", ["c"], ["d"], name="fancy1", domain="com.acme"))
    nodes.append(helper.make_node("GlobalAveragePool", [nodes[-1].output[0]], ["out"], name="gap"))
    onnx.save(_onnx_model(nodes, {"conv1.weight": w}, ("com.acme",) if custom else ()), str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny module, an imported ONNX model, and data files good and bad."""
    root = tmp_path_factory.mktemp("faults")
    (root / "tiny.mlir").write_text(TINY_MLIR)
    compile_file(root / "tiny.mlir", get_target("x86_64"), root / "tiny.vmfb")
    onnx_file = _conv_net(root / "net.onnx")
    api.import_model(onnx_file, build_dir=root / "net")
    zoo = root / "zoo"  # what `quantune analyze` and `quantune quantize` read before any work: the layer table
    zoo.mkdir()
    (zoo / LAYER_TABLE).write_text(LayerTable("resnet18-small", ()).to_json())
    rng = np.random.default_rng(0)
    np.savez(root / "net_inputs.npz", inputs=rng.standard_normal((4, 1, 6, 6)).astype(np.float32))
    np.savez(root / "truncated.npz", inputs=rng.standard_normal((8, 1, 28, 28)).astype(np.float32))
    whole = (root / "truncated.npz").read_bytes()
    (root / "truncated.npz").write_bytes(whole[:len(whole) // 2])
    np.savez(root / "objects.npz", inputs=np.array([np.zeros(3), "a", None], dtype=object))
    np.savez(root / "strings.npz", inputs=np.array(["shirt", "shoe"]))
    np.savez(root / "int32.npz", inputs=np.zeros((2, 1, 28, 28), np.int32), labels=np.array([0, 1]))
    np.savez(root / "int64.npz", inputs=np.zeros((2, 1, 28, 28), np.int64))
    np.savez(root / "u8_32.npz", inputs=rng.integers(0, 256, (3, 32, 32), dtype=np.uint8), labels=[0, 1, 2])
    np.savez(root / "u8_6.npz", inputs=rng.integers(0, 256, (3, 6, 6), dtype=np.uint8))
    return root


DATA_FAULTS = {
    "truncated.npz": r"truncated\.npz: not a readable \.npy/\.npz file \(File is not a zip file\); it may be truncated",
    "objects.npz": r"objects\.npz: holds an object array, which quantune does not load .*; save numeric arrays",
    "strings.npz": r"strings\.npz: 'inputs' has dtype <U5 \(text\); pass float32 model-ready inputs or uint8 images",
    "int32.npz": r"int32\.npz: 'inputs' has dtype int32; pass float32 model-ready inputs or uint8 images",
    "int64.npz": r"int64\.npz: 'inputs' has dtype int64; pass float32 model-ready inputs or uint8 images",
}


@pytest.mark.parametrize("name", list(DATA_FAULTS))
@pytest.mark.parametrize("flag", ["--calibration-data (ONNX model)", "--calibration-data (zoo model)", "--eval-data",
                                  "eval --data"])
def test_a_bad_data_file_is_named(files, tmp_path, capsys, name, flag):
    data = files / name
    command = {
        "--calibration-data (ONNX model)": ["analyze", files / "net", "--calibration-data", data],
        "--calibration-data (zoo model)": ["quantize", files / "zoo", "--calibration-data", data],
        "--eval-data": ["build", files / "net.onnx", "-o", tmp_path / "b", "--calibration-data",
                        files / "net_inputs.npz", "--eval-data", data, "--curve", "0"],
        "eval --data": ["eval", "resnet18-small", "--data", data],
    }[flag]
    assert_fails(quantune(capsys, *command), re.escape(str(files)) + "/" + DATA_FAULTS[name])


def test_a_truncated_npz_from_the_command_line(files):
    result = subprocess.run([sys.executable, "-m", "quantune_mlir.cli.main", "eval", "resnet18-small", "--data",
                             files / "truncated.npz"], capture_output=True, text=True)
    assert_fails((result.returncode, result.stderr), re.escape(str(files)) + "/" + DATA_FAULTS["truncated.npz"])
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("command", ["eval", "quantize"])
def test_images_of_the_wrong_size_for_a_zoo_model(files, capsys, command):
    args = ["eval", "resnet18-small", "--data"] if command == "eval" else ["quantize", files / "zoo",
                                                                            "--calibration-data"]
    assert_fails(quantune(capsys, *args, files / "u8_32.npz"),
                 r"u8_32\.npz: inputs of shape \(1, 32, 32\) do not fit the model's input \(1, 28, 28\) .*; give "
                 r"images of the model's size, or float32 model-ready inputs of shape \(N, 1, 28, 28\)")


def test_uint8_images_are_not_guessed_a_preprocessing_for_an_onnx_model(files, capsys):
    assert_fails(quantune(capsys, "analyze", files / "net", "--calibration-data", files / "u8_6.npz"),
                 r"u8_6\.npz: uint8 images need the model's preprocessing, which quantune knows only for zoo "
                 r"models; for any other model \(an ONNX file\) save float32 model-ready inputs")


def test_uint8_images_for_a_module_of_an_onnx_model(files, tmp_path, capsys):
    build = tmp_path / "net"
    shutil.copytree(files / "net", build)
    shutil.copy(files / "tiny.vmfb", build / "50_x86_64.vmfb")  # its build folder names the (ONNX) model
    assert_fails(quantune(capsys, "eval", build / "50_x86_64.vmfb", "--data", files / "u8_6.npz"),
                 r"u8_6\.npz: uint8 images need the model's preprocessing, which quantune knows only for zoo models")


@pytest.mark.parametrize("args, message", [
    (["build", "resnet18-small", "--calibration-images", "-5"], r"argument --calibration-images: must be at least 1, "
                                                                 r"got -5"),
    (["build", "resnet18-small", "--calibration-images", "many"], r"argument --calibration-images: expected a whole "
                                                                   r"number >= 1, got 'many'"),
    (["build", "resnet18-small", "--eval-images", "0"], r"argument --eval-images: must be at least 1, got 0"),
    (["build", "resnet18-small", "--curve", "-1"], r"argument --curve: must be at least 0, got -1"),
    (["build", "resnet18-small", "--random-draws", "0"], r"argument --random-draws: must be at least 1, got 0"),
    (["build", "resnet18-small", "--threads", "0"], r"argument --threads: must be at least 1, got 0"),
    (["build", "resnet18-small", "--ratios", "1,-1,1,1"], r"argument --ratios: metric ratios must be finite, "
                                                          r"non-negative and not all zero"),
    (["run", "{vmfb}", "--benchmark", "-1"], r"argument --benchmark: must be at least 0, got -1"),
    (["run", "{vmfb}", "--threads", "-2"], r"argument --threads: must be at least 1, got -2"),
    (["run", "{vmfb}", "--seed", "-1"], r"argument --seed: must be at least 0, got -1"),
    (["eval", "resnet18-small", "--limit", "-3"], r"argument --limit: must be at least 1, got -3"),
    (["eval", "resnet18-small", "--batch", "0"], r"argument --batch: must be at least 1, got 0"),
    (["analyze", "{net}", "--calibration-images", "0"], r"argument --calibration-images: must be at least 1, got 0"),
    (["quantize", "{net}", "--calibration-images", "-1"], r"argument --calibration-images: must be at least 1, got -1"),
])
def test_a_count_out_of_range_is_refused_at_parsing(files, capsys, args, message):
    args = [a.format(vmfb=files / "tiny.vmfb", net=files / "net") for a in args]
    assert_fails(quantune(capsys, *args), message, status=2)


def test_a_negative_benchmark_from_the_command_line(files):
    result = subprocess.run([sys.executable, "-m", "quantune_mlir.cli.main", "run", files / "tiny.vmfb",
                             "--benchmark", "-1"], capture_output=True, text=True)
    assert_fails((result.returncode, result.stderr), r"argument --benchmark: must be at least 0, got -1", status=2)


@pytest.mark.parametrize("policy, message", [
    ("fraction:2", r"fraction takes a share of the layers in \(0, 1\]"),
    ("fraction:0", r"fraction takes a share of the layers in \(0, 1\], .*\(all-int8 keeps none\)"),
    ("top-k:1.5", r"top-k takes a whole number of layers"),
    ("size:0", r"size takes at least 1 byte"),
    ("accuracy:101", r"accuracy takes a drop of 0 to 100 percentage points"),
    ("latency:0", r"latency takes a positive number of milliseconds"),
    ("fraction:0..5", r"'0\.\.5' is not a number"),
    ("best:3", r"expected one of top-k:N, fraction:SHARE"),
])
def test_a_bad_policy_is_refused_before_any_work(tmp_path, capsys, policy, message):
    out = tmp_path / "b"
    assert_fails(quantune(capsys, "build", "resnet18-small", "-o", out, "--policy", policy),
                 rf"argument --policy: {re.escape(policy)}: {message}", status=2)
    assert not out.exists()


@pytest.mark.parametrize("array, message", [
    (np.zeros((1, 1, 5, 5), np.float32), r"input 0 has shape \(1, 1, 5, 5\) and dtype float32; tiny\.vmfb expects "
                                         r"\(1, 1, 4, 4\) float32: save an array of that shape and dtype"),
    (np.zeros((1, 1, 4, 4), np.float64), r"input 0 has shape \(1, 1, 4, 4\) and dtype float64; tiny\.vmfb expects "
                                         r"\(1, 1, 4, 4\) float32"),
])
def test_run_names_the_input_file_that_does_not_fit(files, tmp_path, capsys, array, message):
    np.save(tmp_path / "bad.npy", array)
    assert_fails(quantune(capsys, "run", files / "tiny.vmfb", "--input", tmp_path / "bad.npy"),
                 re.escape(str(tmp_path / "bad.npy")) + ": " + message)


def test_eval_names_the_data_file_that_does_not_fit(files, tmp_path, capsys):
    np.savez(tmp_path / "wide.npz", inputs=np.zeros((3, 1, 5, 5), np.float32), labels=[0, 1, 2])
    assert_fails(quantune(capsys, "eval", files / "tiny.vmfb", "--data", tmp_path / "wide.npz"),
                 r"wide\.npz: inputs of shape \(1, 5, 5\) do not fit the model's input \(1, 4, 4\)")


@pytest.mark.parametrize("save", [lambda path, x: np.savez(path, x), lambda path, x: np.savez(path, x=x),
                                  lambda path, x: np.savez(path, inputs=x, labels=[3])])
def test_run_takes_an_npz(files, tmp_path, capsys, save):
    save(tmp_path / "in.npz", np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    status, _ = quantune(capsys, "run", files / "tiny.vmfb", "--input", tmp_path / "in.npz", "-o", tmp_path / "y.npy")
    assert status == 0 and np.load(tmp_path / "y.npy").tolist() == [list(range(16))]


def test_run_counts_the_arrays_of_an_npz(files, tmp_path, capsys):
    np.savez(tmp_path / "two.npz", np.zeros((1, 1, 4, 4), np.float32), np.zeros((1, 1, 4, 4), np.float32))
    assert_fails(quantune(capsys, "run", files / "tiny.vmfb", "--input", tmp_path / "two.npz"),
                 r"tiny\.vmfb takes 1 input\(s\) \(1x1x4x4xfloat32\), --input gave 2 array\(s\)")


def test_run_names_a_truncated_input(files, capsys):
    assert_fails(quantune(capsys, "run", files / "tiny.vmfb", "--input", files / "truncated.npz"),
                 re.escape(str(files)) + "/" + DATA_FAULTS["truncated.npz"])


def test_a_custom_onnx_operator_is_named(tmp_path, capsys):
    model = _conv_net(tmp_path / "custom.onnx", custom=True)
    assert_fails(quantune(capsys, "import", model, "-o", tmp_path / "b"),
                 r"custom\.onnx: node 'fancy1' is the custom operator MyFancyOp of domain com\.acme, which "
                 r"torch-mlir's ONNX importer cannot lower .*; replace it with standard operators")


def test_nan_weights_of_an_onnx_model_name_the_layer(tmp_path, capsys):
    weight = np.ones((4, 1, 3, 3), np.float32)
    weight[2, 0, 1, 1] = np.nan
    model = _conv_net(tmp_path / "nan.onnx", weight=weight)
    assert_fails(quantune(capsys, "import", model, "-o", tmp_path / "b"),
                 r"nan\.onnx: layer 'conv1': its weights \(conv1\.weight\) hold NaN or Inf; fix the checkpoint")


def test_inf_weights_of_a_checkpoint_name_the_layer(tmp_path, capsys):
    state = api.zoo_reference(parse_zoo_id("resnet18-small")).state_dict()
    state["layer1.0.conv1.weight"][0, 0, 0, 0] = float("inf")
    torch.save(state, tmp_path / "inf.pt")
    assert_fails(quantune(capsys, "import", "resnet18-small", "--weights", tmp_path / "inf.pt", "-o", tmp_path / "b"),
                 r"resnet18-small: layer 'layer1\.0\.conv1': its weight holds NaN or Inf; fix the checkpoint")


@pytest.fixture
def truncated_build(files, tmp_path):
    build = tmp_path / "net"
    shutil.copytree(files / "net", build)
    whole = (build / IMPORT_MLIR).read_bytes()
    (build / IMPORT_MLIR).write_bytes(whole[:len(whole) // 2])
    return build


# Until quantize.load_import and api.instrument hand parse_module the file's path, not its bytes
@pytest.mark.parametrize("command", ["analyze", "quantize"])
def test_a_truncated_import_is_named(files, truncated_build, capsys, command):
    assert_fails(quantune(capsys, command, truncated_build, "--calibration-data", files / "net_inputs.npz"),
                 re.escape(str(truncated_build / IMPORT_MLIR)) + r": not readable MLIR \(missing data .*\); it is "
                 r"truncated or damaged: write it again \(`quantune import MODEL -o ")


@pytest.mark.parametrize("command", ["analyze", "quantize"])
def test_a_truncated_import_is_one_line(files, truncated_build, capsys, command):
    assert_fails(quantune(capsys, command, truncated_build, "--calibration-data", files / "net_inputs.npz"),
                 r".*\(missing data for top-level section: .*\)")


def test_a_truncated_import_is_named_by_compile(truncated_build, capsys):
    assert_fails(quantune(capsys, "compile", truncated_build),
                 re.escape(str(truncated_build / IMPORT_MLIR)) + r".*missing data.*quantune import")


@pytest.mark.parametrize("command", ["import", "build"])
def test_output_naming_a_file_is_refused(tmp_path, capsys, command):
    (tmp_path / "taken").write_text("")
    assert_fails(quantune(capsys, command, "resnet18-small", "-o", tmp_path / "taken"),
                 r"argument -o/--output: .*taken is a file, not a build folder: name a new or existing folder",
                 status=2)


@pytest.mark.parametrize("command", ["analyze", "quantize", "layers"])
def test_a_missing_build_folder_is_refused(tmp_path, capsys, command):
    assert_fails(quantune(capsys, command, tmp_path / "nowhere"),
                 r"argument build_dir: .*nowhere: no such build folder; run `quantune import MODEL -o ", status=2)


@pytest.mark.parametrize("inputs, labels, message", [
    (np.zeros((2, 1, 28, 28), np.uint8), None, r"uint8 images of shape \(2, 1, 28, 28\); expected \(N, H, W\) or "
                                               r"\(N, H, W, C\) with C 1 or 3 \(channels last"),
    (np.zeros((2, 1, 28, 28), np.float32), np.array([0.5, 1.0]), r"'labels' has dtype float64; save the labels as "
                                                                 r"integer class indices"),
    (np.zeros((2, 1, 28, 28), np.float32), np.eye(2, 10, dtype=np.int64), r"'labels' has shape \(2, 10\); save one "
                                                                           r"class index per input"),
    (np.zeros((2, 1, 28, 28), np.float32), np.array([0, -1]), r"'labels' holds the negative label -1"),
    (np.zeros((2, 1, 28, 28), np.float32), np.array([0, 12]), r"label 12 is out of range for a model with 10 classes"),
    (np.zeros((0, 1, 28, 28), np.float32), None, r"holds no inputs"),
    (np.zeros(5, np.float32), None, r"'inputs' has shape \(5,\); expected a batch of inputs"),
    (np.zeros((2, 1, 28, 28), bool), None, r"'inputs' has dtype bool; pass float32 model-ready inputs or uint8"),
])
def test_other_bad_arrays_are_named(tmp_path, capsys, inputs, labels, message):
    path = tmp_path / "data.npz"
    np.savez(path, inputs=inputs, **({} if labels is None else {"labels": labels}))
    assert_fails(quantune(capsys, "eval", "resnet18-small", "--data", path), r".*data\.npz.*" + message)


def test_a_pickle_named_npy_is_refused(tmp_path, capsys):
    import pickle
    (tmp_path / "data.npy").write_bytes(pickle.dumps({"inputs": [1, 2]}))
    assert_fails(quantune(capsys, "eval", "resnet18-small", "--data", tmp_path / "data.npy"),
                 r".*data\.npy: not a numpy array file \(numpy takes it for pickled Python data")
