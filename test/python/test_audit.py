"""The kernel audit on real compiles of test/data/int8_layers.mlir: which kernel each layer's multiply-accumulate
reached on x86-64 (this machine: Zen 4, AVX-512 VNNI) and aarch64 (compiled only), with quantune's flags and with
im2col + global-opt data tiling + micro-kernels. Five compiles of about 2 s each."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.compile import compile_file, get_target
from quantune_mlir.compile.audit import (FLOAT, INT8, INT8_NO_DOT, NOT_FOUND, Dispatch, KernelAudit, LayerVerdict,
                                         audit_dump, compile_and_audit)
from quantune_mlir.compile.profile import layer_costs
from quantune_mlir.errors import QuantuneError
from quantune_mlir.quantize import report_audit_failures

SOURCE = Path(__file__).parents[1] / "data" / "int8_layers.mlir"
LAYERS = ("conv1", "layer1.conv", "layer1.dw", "layer1.pw", "layer2.mix1", "layer2.mix2", "fc")
PLANNED_INT8 = LAYERS[1:]
MATMULS = ("layer1.pw", "layer2.mix1", "layer2.mix2", "fc")
IM2COL_DATA_TILING = ("--iree-global-opt-use-im2col-for-convs", "--iree-global-opt-data-tiling",
                      "--iree-llvmcpu-enable-ukernels=all")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """(target, flags) -> (audit, vmfb), each compiled once."""
    built = {}

    def make(target: str, flags: tuple[str, ...] = ()):
        if (target, flags) not in built:
            vmfb = tmp_path_factory.mktemp(target) / f"50_{target}.vmfb"
            built[target, flags] = compile_and_audit(SOURCE, get_target(target), vmfb, layers=LAYERS,
                                                     extra_flags=flags), vmfb
        return built[target, flags]
    return make


def verdicts(audit):
    """Each layer's verdict and its strongest instruction class: on some x86 CPUs (seen on a Xeon with AMX and
    AVX-512 FP16) IREE's int8 tiles hold avx2 vpmaddwd beside the vnni vpdpwssd."""
    return {v.layer: (v.verdict, v.instructions[:1]) for v in audit.layers}


def test_x86_quantune_flags_give_vnni_matmuls_and_direct_integer_convs(build):
    audit, vmfb = build("x86_64")
    assert verdicts(audit) == {
        "conv1": (FLOAT, ("vfmadd",)),
        "layer1.conv": (INT8_NO_DOT, ("vpmulld",)),  # direct conv: data tiling alone leaves convs alone
        "layer1.dw": (INT8_NO_DOT, ()),  # an NCHW depthwise conv stays a scalar loop
        **{layer: (INT8, ("vnni: vpdpwssd",)) for layer in MATMULS}}
    assert audit.verdict("layer1.conv").contraction == "linalg.generic i8 x i8 -> i32"
    assert audit.verdict("layer1.pw").contraction == "linalg.matmul i8 x i8 -> i32"
    assert audit.dispatch_count == 11
    # IREE names the pooling reduction, which multiplies by a per-channel factor, like a contraction
    (pool,) = [d for d in audit.dispatches if "_matvec_like_" in d.name]
    assert pool.contractions == () and audit.unattributed == ()
    (logits,) = api.load_module(vmfb)(np.ones((1, 8, 16, 16), np.float32))  # the dumping build is a real module
    assert logits.shape == (1, 10) and np.isfinite(logits).all()


def test_x86_im2col_and_data_tiling_judge_the_mmt4d_dispatch(build):
    audit, _ = build("x86_64", IM2COL_DATA_TILING)
    assert verdicts(audit) == {"conv1": (FLOAT, ("vfmadd",)), "layer1.dw": (INT8_NO_DOT, ()),
                               **{layer: (INT8, ("vnni: vpdpwssd",)) for layer in ("layer1.conv", *MATMULS)}}
    conv = audit.verdict("layer1.conv")
    assert conv.contraction == "linalg.mmt4d i8 x i8 -> i32" and "_mmt4d_" in conv.dispatches[0]
    assert [name.split("_", 3)[3] for name in conv.related] == ["generic_16x16x3x3x8_i8_pack",  # im2col + pack
                                                                "unpack_elementwise_16x16x16_i32xi32xi64xi8"]
    # one executable for the two identical layers, launched once for each
    mix1, mix2 = audit.verdict("layer2.mix1"), audit.verdict("layer2.mix2")
    assert mix1.dispatches == mix2.dispatches
    assert next(d for d in audit.dispatches if d.name == mix1.dispatches[0]).launches == 2
    assert audit.dispatch_count == sum(d.launches for d in audit.dispatches) == 17


def test_aarch64_i8mm_and_dotprod(build):
    audit, _ = build("aarch64")
    assert verdicts(audit) == {"conv1": (FLOAT, ("fmla",)), "layer1.conv": (INT8_NO_DOT, ("smlal",)),
                               "layer1.dw": (INT8_NO_DOT, ()),
                               **{layer: (INT8, ("i8mm: smmla",)) for layer in MATMULS}}
    tiled, _ = build("aarch64", IM2COL_DATA_TILING)
    assert verdicts(tiled)["layer1.conv"] == (INT8, ("i8mm: smmla",))
    dotprod, _ = build("aarch64-dotprod")
    assert {layer: verdicts(dotprod)[layer] for layer in MATMULS} == {
        layer: (INT8, ("dotprod: sdot",)) for layer in MATMULS}


def test_planned_int8_layers_that_compiled_to_float_or_vanished_are_failures(build):
    audit, _ = build("x86_64")
    assert audit.failures(PLANNED_INT8) == ()
    assert [v.layer for v in audit.failures(PLANNED_INT8, require_dot_instructions=True)] == ["layer1.conv",
                                                                                            "layer1.dw"]
    failures = audit.failures(["conv1", "layer1.pw", "layer9.conv"])
    assert [(v.layer, v.verdict) for v in failures] == [("conv1", FLOAT), ("layer9.conv", NOT_FOUND)]


def test_quantize_reports_layers_planned_int8_that_compiled_to_float(build, caplog):
    audit, _ = build("x86_64")  # conv1 is an fp32 conv in this module
    message = (r"2 layer\(s\) planned int8 did not compile to an integer kernel: conv1 \(float\), layer9\.conv "
               r"\(not found\); see a\.json, and keep them fp32 in the plan")
    with pytest.raises(QuantuneError, match=message):
        report_audit_failures(audit, ("conv1", "layer1.pw", "layer9.conv"), Path("a.json"), strict=True)
    report_audit_failures(audit, ("conv1", "layer1.pw", "layer9.conv"), Path("a.json"), strict=False)
    assert [r.levelname for r in caplog.records] == ["ERROR"] and "conv1 (float)" in caplog.records[0].message
    report_audit_failures(audit, PLANNED_INT8, Path("a.json"), strict=True)  # every int8 layer is integer


def test_json_and_table(build):
    audit, _ = build("x86_64", IM2COL_DATA_TILING)
    data = json.loads(audit.to_json())
    assert data["target"] == "x86_64" and data["dispatch_count"] == 17
    assert [layer["layer"] for layer in data["layers"]] == list(LAYERS)
    mmt4d = next(d for d in data["dispatches"] if d["name"] == audit.verdict("layer1.conv").dispatches[0])
    assert mmt4d["instructions"]["vpdpwssd"] > 0 and mmt4d["contractions"][0]["element_types"] == ["i8", "i8", "i32"]
    table = audit.describe().splitlines()
    assert table[0] == "kernel audit, x86_64: 17 dispatches per inference, 16 distinct"
    assert table[1].split() == ["layer", "verdict", "instructions", "contraction", "dispatch"]
    assert re.match(r"layer1\.conv +int8 +vnni: vpdpwssd\b.* linalg\.mmt4d i8 x", table[3]), table[3]
    assert table[3].endswith("(+2 related)")


def test_layers_default_to_every_contraction_in_launch_order(build):
    _, vmfb = build("x86_64")
    dump = vmfb.with_name(f"{vmfb.stem}_dump")
    assert [v.layer for v in audit_dump(dump, "x86_64").layers] == list(LAYERS)
    only_conv = audit_dump(dump, "x86_64", ["layer1.conv"])
    assert [v.layer for v in only_conv.layers] == ["layer1.conv"]
    assert len(only_conv.unattributed) == 6  # every other contraction dispatch


def test_dump_errors_name_the_way_out(tmp_path):
    with pytest.raises(QuantuneError, match=r"no dump of one compiled module .* compile with "
                                            r"quantune_mlir.compile.compile_file\(..., dump_dir=...\)"):
        audit_dump(tmp_path, "x86_64")
    (tmp_path / "executables").mkdir()
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "module.8.executable-sources.mlir").write_text("")
    (tmp_path / "phases" / "module.7.stream.mlir").write_text("")
    with pytest.raises(QuantuneError, match=r"no assembly \(\*\.s\) to read; the audit needs an llvm-cpu target "
                                            r"such as x86_64 or aarch64 \(vmvx bytecode has no machine code\)"):
        audit_dump(tmp_path, "vmvx")


def test_a_module_without_layer_locations_cannot_be_audited(tmp_path):
    source = tmp_path / "plain.mlir"
    source.write_text("""func.func @main(%a: tensor<4x8xi8>, %b: tensor<8x4xi8>) -> tensor<4x4xi32> {
  %zero = arith.constant 0 : i32
  %e = tensor.empty() : tensor<4x4xi32>
  %f = linalg.fill ins(%zero : i32) outs(%e : tensor<4x4xi32>) -> tensor<4x4xi32>
  %y = linalg.matmul ins(%a, %b : tensor<4x8xi8>, tensor<8x4xi8>) outs(%f : tensor<4x4xi32>) -> tensor<4x4xi32>
  return %y : tensor<4x4xi32>
}
""")
    stale = tmp_path / "dump" / "executables" / "old_module.s"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    compile_file(source, get_target("x86_64"), tmp_path / "plain.vmfb", dump_dir=tmp_path / "dump")
    assert not stale.exists()  # an earlier module's files would be read as this one's
    with pytest.raises(QuantuneError, match=r"no launch site carries a layer's location"):
        audit_dump(tmp_path / "dump", "x86_64")


def test_layer_costs_share_a_fused_launch_among_its_layers():
    """A launch that runs three layers (depthwise, 1x1, expansion) charges each a third; an executable launched
    once per layer charges each layer one launch; related dispatches are charged in full."""
    audit = KernelAudit("x86_64", (
        LayerVerdict("dw", "int8", dispatches=("fused",)), LayerVerdict("pw", "int8", dispatches=("fused",)),
        LayerVerdict("ex", "int8", dispatches=("fused",)),
        LayerVerdict("conv1", "int8", dispatches=("shared",), related=("pad",)),
        LayerVerdict("conv2", "int8", dispatches=("shared",))),
        (Dispatch("fused", (), {}, 1), Dispatch("shared", (), {}, 2), Dispatch("pad", (), {}, 1)))
    costs = layer_costs(audit, {"fused": 0.3, "shared": 0.2, "pad": 0.05})
    assert costs == pytest.approx({"dw": 0.1, "pw": 0.1, "ex": 0.1, "conv1": 0.25, "conv2": 0.2})
