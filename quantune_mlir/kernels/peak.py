"""The int8 multiply-accumulate peak of one core, measured with the kernel library's own peak loop linked into
an IREE module like the conv kernels are: what a model's MACs per second are compared with."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import build, get_library, target_config
from ..compile import compile_file, get_target
from ..rewrite.extern_conv import executable
from ..runtime import CompiledModule

ITERATIONS = 2_000_000


def peak_program(library_name: str, key: str, iterations: int = ITERATIONS) -> str:
    library = get_library(library_name)
    built = build(library_name, "peak")
    exe = executable("quantune_peak", library, key, str(built.object), (1, 1), ["tensor<2xi32>", "tensor<1xi32>"],
                     library.peak_symbol, [("%p0", "memref<i32>"), ("%o0", "index"), ("%p1", "memref<i32>"),
                                           ("%o1", "index"), ("%n", "i64")],
                     [f"%n = arith.constant {iterations} : i64"])
    return (f"{exe}\nfunc.func @main(%in: tensor<2xi32>) -> tensor<1xi32> {{\n"
            "  %r = flow.dispatch @quantune_peak::@quantune_peak(%in) : (tensor<2xi32>) -> tensor<1xi32>\n"
            "  return %r : tensor<1xi32>\n}\n")


def measure_peak_gmacs(library_name: str, folder: Path, repetitions: int = 5) -> float:
    """Single-core int8 MACs per second (billions) of this machine, for library_name's instruction."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "peak.mlir"
    source.write_text(peak_program(library_name, target_config(get_target("x86_64").flag_file).object_key()))
    vmfb = compile_file(source, get_target("x86_64"), folder / "peak.vmfb")
    timing = CompiledModule(vmfb).benchmark(np.array([1, 2], np.int32), iterations=repetitions, warmup=1)
    return ITERATIONS * get_library(library_name).macs_per_peak_iteration / (timing.median_ms * 1e-3) / 1e9
