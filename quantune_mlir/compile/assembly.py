"""Counting the instructions that tell which kernel a dispatch got, in the assembly IREE dumps for llvm-cpu.

IREE links all dispatches of a module into one library per target and writes its assembly (`*.s`) among the
executable intermediates: one function per dispatch, named like the dispatch's entry point. Micro-kernels
(`--iree-llvmcpu-enable-ukernels`) are bitcode inlined into the dispatch, so a dispatch's own function holds
its inner loop.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path

# Family -> the mnemonics it stands for (AT&T syntax for x86, as LLVM prints it; aarch64 as is).
FAMILIES: dict[str, re.Pattern] = {name: re.compile(pattern) for name, pattern in {
    # x86: VNNI dot products (u8 x s8 and s16 x s16, 4 and 2 products per i32 lane), their AVX2 forerunners,
    # the widened 32-bit multiply of a plain integer loop, float fused multiply-adds
    "vpdpbusd": r"vpdpbusds?",
    "vpdpwssd": r"vpdpwssds?",
    "vpmaddubsw": r"vpmaddubsw",
    "vpmaddwd": r"vpmaddwd",
    "vpmulld": r"vpmulld",
    "vfmadd": r"vfmadd(132|213|231)[ps][sdh]",
    # aarch64: dotprod and i8mm dot products, NEON widening multiply-accumulates, float multiply-adds
    "sdot": r"sdot",
    "udot": r"udot",
    "usdot": r"usdot|sudot",
    "smmla": r"smmla",
    "ummla": r"ummla",
    "usmmla": r"usmmla",
    "smlal": r"smlal2?",
    "smull": r"smull2?",
    "fmla": r"fmla",
}.items()}

# The families that make an integer contraction a dot-product kernel, with the CPU feature they come from.
DOT_FEATURES = {"vpdpbusd": "vnni", "vpdpwssd": "vnni", "vpmaddubsw": "avx2", "vpmaddwd": "avx2",
                "sdot": "dotprod", "udot": "dotprod", "usdot": "i8mm", "smmla": "i8mm", "ummla": "i8mm",
                "usmmla": "i8mm"}
WIDENED_MULTIPLIES = ("vpmulld", "smlal", "smull")
FLOAT_MULTIPLY_ADDS = ("vfmadd", "fmla")

_FUNCTION_START = re.compile(r"^\s*\.type\s+([^,\s]+)\s*,\s*[@%]function")
_FUNCTION_END = re.compile(r"^\s*\.size\s+([^,\s]+)")
_INSTRUCTION = re.compile(r"^\s+([a-z][a-z0-9]*)\b")


@functools.cache  # a library has a few hundred distinct mnemonics and up to millions of lines
def family_of(mnemonic: str) -> str | None:
    return next((name for name, pattern in FAMILIES.items() if pattern.fullmatch(mnemonic)), None)


def instruction_counts(assembly_files: list[Path]) -> dict[str, dict[str, int]]:
    """function name -> {family: count} for every function in the files (families with no hit left out)."""
    functions: dict[str, Counter] = {}
    for path in assembly_files:
        current: Counter | None = None
        with open(path) as lines:
            for line in lines:
                if start := _FUNCTION_START.match(line):
                    current = functions.setdefault(start.group(1), Counter())
                elif current is not None and _FUNCTION_END.match(line):
                    current = None
                elif current is not None and (instruction := _INSTRUCTION.match(line)):
                    if family := family_of(instruction.group(1)):
                        current[family] += 1
    return {name: dict(counts) for name, counts in functions.items()}
