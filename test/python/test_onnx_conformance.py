"""ONNX backend node conformance of the quantization operators.

Every node case that the installed onnx package generates for the operators below goes through quantune's ONNX
importer (torch-mlir to linalg), iree-compile for x86_64 and quantune's runtime, and must give the case's
outputs: bit for bit where they are integers, within the case's own tolerance (the onnx backend's) otherwise.
Cases that cannot pass are strict xfails with the exception they fail with and why, as measured with
torch-mlir 20261001 and IREE 3.13: a case that starts to pass fails the suite, so its entry gets removed.
"""
import itertools
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from quantune_mlir import api
from quantune_mlir.errors import QuantuneError
from quantune_mlir.tensor_spec import TensorSpec

OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")

_NO_ELEMENT_TYPE = "torch-mlir's ONNX importer has no {} element type (quantune names the input and stops)"
_ABORTS = ("torch-mlir has no torch dtype for a {} QuantizeLinear result: its lowering aborts the process (LLVM "
           "ERROR: Unhandled type in getScalarTypeForType), so quantune's importer refuses the model first")
_BLOCKED = "torch-mlir lowers per-tensor and per-axis {} only; block_size scales ({}) leave onnx.{} unlowered"
_NO_ZERO_POINT = ("torch-mlir's DequantizeLinear lowering binds exactly 3 operands and this case omits the optional "
                  "zero point, so onnx.DequantizeLinear stays unlowered (it imports once a zero point is given)")
_I4_SCALAR = ("iree-compile: 'stream.tensor.sizeof' op failed to calculate total byte count: 'tensor<i4>' does not "
              "have integral number of total bytes (the scalar zero point)")
_BATCHED_QLINEARMATMUL = ("torch-mlir lowers the batched (3-D) QLinearMatMul to linalg.batch_matmul without the a and "
                          "b zero points (uint8 read as signed too): the output is the zero-point-free product, off "
                          "by up to {}")

# case -> (the exception it fails with, why)
XFAIL = {
    "test_convinteger_with_padding": (QuantuneError, "torch-mlir's ConvInteger lowering has no per-channel weight "
                                      "zero point (w_zero_point of shape (2,), a TODO in its pattern), so "
                                      "onnx.ConvInteger stays unlowered"),
    "test_dequantizelinear_axis": (AssertionError, "torch-mlir's per-axis DequantizeLinear sign-extends the uint8 "
                                   "zero point (arith.extsi): 196 reads as -60, so channel 2 is off by 256 x scale 5 "
                                   "= 1280 (1525 for 245)"),
    "test_dequantizelinear_e4m3fn": (QuantuneError, _NO_ZERO_POINT),
    "test_dequantizelinear_e4m3fn_float16": (QuantuneError, _NO_ZERO_POINT),
    "test_dequantizelinear_e5m2": (QuantuneError, _NO_ZERO_POINT),
    "test_dequantizelinear_uint4": (QuantuneError, _I4_SCALAR),
    "test_dequantizelinear_int4": (QuantuneError, _I4_SCALAR),
    "test_dequantizelinear_uint2": (QuantuneError, _NO_ELEMENT_TYPE.format("UINT2")),
    "test_dequantizelinear_int2": (QuantuneError, _NO_ELEMENT_TYPE.format("INT2")),
    "test_dequantizelinear_float4e2m1": (QuantuneError, _NO_ELEMENT_TYPE.format("FLOAT4E2M1")),
    "test_dequantizelinear_blocked": (QuantuneError, _BLOCKED.format("dequantization", "x_scale (1, 2, 3, 2)",
                                                                     "DequantizeLinear")),
    "test_qlinearmatmul_3D_uint8_float32": (AssertionError, _BATCHED_QLINEARMATMUL.format(134)),
    "test_qlinearmatmul_3D_uint8_float16": (AssertionError, _BATCHED_QLINEARMATMUL.format(134)),
    "test_qlinearmatmul_3D_int8_float32": (AssertionError, _BATCHED_QLINEARMATMUL.format(27)),
    "test_qlinearmatmul_3D_int8_float16": (AssertionError, _BATCHED_QLINEARMATMUL.format(27)),
    "test_quantizelinear_axis": (QuantuneError, "torch-mlir has no linalg lowering for torch.aten.quantize_per_channel "
                                 "(per-axis QuantizeLinear)"),
    "test_quantizelinear_e4m3fn": (AssertionError, "x = 100000 becomes NaN where ONNX saturates to 448 (the "
                                   "saturate attribute, default 1): torch-mlir emits arith.truncf f32 -> f8E4M3FN, "
                                   "no clamp"),
    "test_quantizelinear_uint16": (QuantuneError, _ABORTS.format("ui16")),
    "test_quantizelinear_uint4": (QuantuneError, _ABORTS.format("ui4")),
    "test_quantizelinear_int4": (QuantuneError, _ABORTS.format("si4")),
    "test_quantizelinear_uint2": (QuantuneError, _NO_ELEMENT_TYPE.format("UINT2")),
    "test_quantizelinear_int2": (QuantuneError, _NO_ELEMENT_TYPE.format("INT2")),
    "test_quantizelinear_float4e2m1": (QuantuneError, _NO_ELEMENT_TYPE.format("FLOAT4E2M1")),
    "test_quantizelinear_blocked_asymmetric": (QuantuneError, _BLOCKED.format("quantization", "y_scale (3, 2)",
                                                                              "QuantizeLinear")),
    "test_quantizelinear_blocked_symmetric": (QuantuneError, _BLOCKED.format("quantization", "y_scale (3, 2)",
                                                                             "QuantizeLinear")
                                              + "; it also omits the zero point the lowering binds"),
}


def _node_cases():
    """The onnx package's generated cases that test one of OPS alone (function-expanded cases of other
    operators, such as DynamicQuantizeLinear's, test those operators)."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():  # other operators' generators overflow casts on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [case for case in cases if len(case.model.graph.node) == 1 and case.model.graph.node[0].op_type in OPS]


CASES = _node_cases()


def _param(case):
    if case.name not in XFAIL:
        return pytest.param(case, id=case.name)
    raises, reason = XFAIL[case.name]
    return pytest.param(case, id=case.name, marks=pytest.mark.xfail(strict=True, raises=raises, reason=reason))


def _saved(case, folder: Path) -> Path:
    path = folder / f"{case.name}.onnx"
    onnx.save(case.model, path)
    return path


def _array(value) -> np.ndarray:
    """Cases hold numpy arrays and scalars, and TensorProtos for float8 and sub-byte types."""
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)


def _as_declared(array: np.ndarray, spec: TensorSpec | None) -> np.ndarray:
    """IREE's integer tensors are signless and the runtime names them signed: pass unsigned data bit for bit."""
    if spec and array.dtype.kind == "u" and spec.dtype == f"int{8 * array.dtype.itemsize}":
        return array.view(spec.dtype)
    return array


def _runtime_inputs(inputs, specs: list[TensorSpec]) -> list[np.ndarray]:
    # all of them even where the module declares fewer, so that the runtime's own check speaks
    return [_as_declared(_array(x), spec) for x, spec in itertools.zip_longest(inputs, specs)]


def _check(actual: np.ndarray, expected: np.ndarray, case) -> None:
    assert actual.shape == expected.shape
    if expected.dtype.kind in "iu":
        assert actual.dtype.itemsize == expected.dtype.itemsize, f"{actual.dtype} returned for {expected.dtype}"
        # signless bits read in the ONNX type, compared as int64 so that the reported differences do not wrap
        np.testing.assert_array_equal(actual.view(expected.dtype).astype(np.int64), expected.astype(np.int64))
    else:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=case.rtol,
                                   atol=case.atol)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_node_case(case, tmp_path):
    imported = api.import_model(_saved(case, tmp_path), build_dir=tmp_path)
    assert len(imported.layers) == 0  # integer-domain operators: nothing left for quantune to quantize
    module = api.load_module(api.compile_model(tmp_path, "x86_64"))
    inputs, expected = case.data_sets[0]
    actual = module(*_runtime_inputs(inputs, module.input_specs))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        _check(a, _array(e), case)


def test_every_operator_and_xfail_has_cases():
    """An onnx release that drops or renames cases must not leave operators untested or xfails stale."""
    assert {case.model.graph.node[0].op_type for case in CASES} == set(OPS)
    assert set(XFAIL) <= {case.name for case in CASES}


@pytest.mark.parametrize("name, message", [
    ("test_quantizelinear_uint16", r"QuantizeLinear 'QuantizeLinear_0' quantizes to UINT16, .* abort the process\); "
                                   r"quantize to int8, uint8 or int16"),
    ("test_dequantizelinear_int2", r"input 'x' has ONNX element type INT2, which torch-mlir's ONNX importer does not "
                                   r"take; convert it"),
    # the lowering leaves torch.constant.int ahead of the op that failed, and the legality check names it first
    ("test_quantizelinear_axis", r"operator torch\.aten\.quantize_per_channel is not supported .* "
                                 r"\(at QuantizeLinear_0\)"),
])
def test_import_errors_name_the_culprit(name, message, tmp_path):
    (case,) = [case for case in CASES if case.name == name]
    with pytest.raises(QuantuneError, match=message):
        api.import_model(_saved(case, tmp_path))
