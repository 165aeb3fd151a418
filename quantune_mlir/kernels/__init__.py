"""The project's int8 micro-kernels: C sources in src/, built into freestanding objects that iree-compile links
into dispatch libraries (`hal.executable.objects`), and the packing of weights into their layouts.

The compiler is `zig cc` from the `ziglang` wheel (a dependency), so the objects build on a fresh machine from
`pip install` alone, for x86-64 and aarch64 alike. Objects are cached by a digest of the source, the flags and
the compiler version; each build writes the object and its assembly (the kernel audit counts instructions in
the assembly).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import cache_dir
from ..errors import QuantuneError
from .. import children

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).resolve().parent / "src"
VECTOR_CHANNELS = 16  # output channels per vector register: packed weights pad the channel count to this
CHANNEL_BLOCK = 64  # output channels of one conv workgroup, whose packed weights lie together
FUSED_ROW_BYTES = 16384  # the fused depthwise + 1x1 entries' row buffer (src/depthwise_entries.h)


@dataclass(frozen=True)
class KernelLibrary:
    name: str
    arch: str  # the Target.arch it runs on
    source: str  # file in src/: the conv kernels
    depthwise_source: str | None  # file in src/: the depthwise kernel, if the library has one
    peak_source: str | None  # file in src/: the multiply-accumulate peak loop the benchmark measures
    quantize_source: str  # file in src/: the fp32 -> int8 channels-last quantize of a model's input
    zig_target: str
    zig_cpu: str  # zig's -mcpu: baseline CPU plus the features the kernels use
    executable_format: str  # IREE's embedded-ELF format for the architecture
    conv_symbol: str
    conv_residual_symbol: str
    conv_f32_symbol: str
    depthwise_symbol: str | None
    peak_symbol: str | None
    quantize_symbol: str
    macs_per_peak_iteration: int
    required_features: tuple[str, ...]  # LLVM feature names the target must have to run the object
    # the dot product multiplies unsigned by signed bytes (x86 vpdpbusd): int8 activations enter as x ^ 0x80
    # and the bias carries -128 * sum(w); aarch64's sdot multiplies signed bytes as they are
    unsigned_activations: bool
    # how the depthwise kernel's dot product lays taps into a 32-bit lane (pack_depthwise_weights): "columns",
    # four rows of a kernel column in 64-channel blocks (x86), or "taps", four taps in row-major order in
    # 16-channel blocks (aarch64)
    depthwise_layout: str
    # a depthwise layer and the 1x1 conv reading its output in one dispatch (in the depthwise object), int8 out,
    # without and with a residual add: None where the library has no such entry
    depthwise_conv_symbol: str | None = None
    depthwise_conv_residual_symbol: str | None = None
    # the same two, followed in the dispatch by the 1x1 conv that reads the output (the next inverted-residual
    # block's expansion), whose output is a second result
    depthwise_conv_expand_symbol: str | None = None
    depthwise_conv_residual_expand_symbol: str | None = None
    # the bytes of one step of the conv kernel's reduction (4 for vpdpbusd and sdot, 8 for smmla): a conv's input
    # channels and a linear layer's features are a multiple of it, and pack_conv_weights groups K by it
    reduction_group: int = 4
    # file in src/ and entry point of the int8 max pool, if the library has one
    pool_source: str | None = None
    max_pool_symbol: str | None = None

    def sources(self) -> dict[str, str | None]:
        """Each part of the library (conv, depthwise, quantize, pool, and peak: the loop the benchmark measures
        the machine's peak with) -> its file in src/, None where the library has no such part."""
        return {"conv": self.source, "depthwise": self.depthwise_source, "peak": self.peak_source,
                "quantize": self.quantize_source, "pool": self.pool_source}

    def flags(self) -> list[str]:
        return ["-target", self.zig_target, f"-mcpu={self.zig_cpu}", "-std=c17", "-O3", "-ffreestanding",
                "-fPIC", "-fno-stack-protector", "-fvisibility=hidden", "-fno-builtin", "-g0",
                "-ffp-contract=off"]


# fastest first: library_for takes the first one a target has the features for
LIBRARIES: dict[str, KernelLibrary] = {lib.name: lib for lib in (
    KernelLibrary("x86_64-avx512vnni", "x86_64", "conv_x86_64_avx512vnni.c", "depthwise_x86_64_avx512.c",
                  "peak_x86_64_avx512vnni.c", "quantize_x86_64_avx512.c", "x86_64-freestanding-none",
                  "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx512vnni", "embedded-elf-x86_64",
                  "quantune_conv_s8_avx512vnni", "quantune_conv_residual_s8_avx512vnni",
                  "quantune_conv_f32_avx512vnni", "quantune_depthwise_s8_avx512vnni", "quantune_peak_avx512vnni",
                  "quantune_quantize_s8_avx512",
                  12 * 64, ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni"), True, "columns",
                  "quantune_depthwise_conv_s8_avx512vnni", "quantune_depthwise_conv_residual_s8_avx512vnni",
                  "quantune_depthwise_conv_expand_s8_avx512vnni",
                  "quantune_depthwise_conv_residual_expand_s8_avx512vnni",
                  pool_source="pool_x86_64_avx512.c", max_pool_symbol="quantune_max_pool_s8_avx512"),
    # smmla for the convs; depthwise layers gain nothing from a matrix multiply and keep sdot (the same
    # depthwise kernel as aarch64-dotprod, its fused entries on this library's conv kernel)
    KernelLibrary("aarch64-i8mm", "aarch64", "conv_aarch64_i8mm.c", "depthwise_aarch64_i8mm.c", None,
                  "quantize_aarch64_neon.c", "aarch64-freestanding-none", "generic+dotprod+i8mm",
                  "embedded-elf-arm_64", "quantune_conv_s8_i8mm", "quantune_conv_residual_s8_i8mm",
                  "quantune_conv_f32_i8mm", "quantune_depthwise_s8_i8mm", None, "quantune_quantize_s8_neon", 0,
                  ("dotprod", "i8mm"), False, "taps", "quantune_depthwise_conv_s8_i8mm",
                  "quantune_depthwise_conv_residual_s8_i8mm", "quantune_depthwise_conv_expand_s8_i8mm",
                  "quantune_depthwise_conv_residual_expand_s8_i8mm", reduction_group=8,
                  pool_source="pool_aarch64_neon.c", max_pool_symbol="quantune_max_pool_s8_neon"),
    KernelLibrary("aarch64-dotprod", "aarch64", "conv_aarch64_dotprod.c", "depthwise_aarch64_dotprod.c", None,
                  "quantize_aarch64_neon.c", "aarch64-freestanding-none", "generic+dotprod", "embedded-elf-arm_64",
                  "quantune_conv_s8_dotprod", "quantune_conv_residual_s8_dotprod", "quantune_conv_f32_dotprod",
                  "quantune_depthwise_s8_dotprod", None, "quantune_quantize_s8_neon", 0, ("dotprod",), False, "taps",
                  "quantune_depthwise_conv_s8_dotprod", "quantune_depthwise_conv_residual_s8_dotprod",
                  "quantune_depthwise_conv_expand_s8_dotprod", "quantune_depthwise_conv_residual_expand_s8_dotprod",
                  pool_source="pool_aarch64_neon.c", max_pool_symbol="quantune_max_pool_s8_neon"),
)}


@dataclass(frozen=True)
class BuiltLibrary:
    library: KernelLibrary
    object: Path
    assembly: Path


def multiplies(symbol: str) -> bool:
    """Whether a kernel entry point is a contraction (conv, depthwise), not the input quantize or a max pool."""
    return all(symbol not in (library.quantize_symbol, library.max_pool_symbol) for library in LIBRARIES.values())


def fused_layers(symbol: str) -> bool:
    """Whether a kernel entry point runs several layers (a depthwise conv, the 1x1 conv after it and maybe the
    next block's 1x1 expansion)."""
    return any(symbol in (library.depthwise_conv_symbol, library.depthwise_conv_residual_symbol,
                          library.depthwise_conv_expand_symbol, library.depthwise_conv_residual_expand_symbol)
               for library in LIBRARIES.values())


def get_library(name: str) -> KernelLibrary:
    if name not in LIBRARIES:
        raise QuantuneError(f"unknown kernel library '{name}': choose one of {', '.join(LIBRARIES)}")
    return LIBRARIES[name]



def _zig_version() -> str:
    return _zig("version").strip()


def _zig(*args: str) -> str:
    result = children.run([sys.executable, "-m", "ziglang", *args], capture_output=True, text=True)
    if result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        if "No module named ziglang" in message:
            message = "the ziglang package is missing: pip install -e . installs it"
        raise QuantuneError(f"zig {' '.join(args[:1])} failed: {message[:2000]}")
    return result.stdout


@functools.cache
def build(name: str, part: str = "conv") -> BuiltLibrary:
    """The object and assembly of one part of library `name` (KernelLibrary.sources), built into the cache
    unless already there."""
    library = get_library(name)
    file = library.sources()[part]
    if file is None:
        raise QuantuneError(f"kernel library {library.name} has no {part} kernel")
    source = SOURCE_DIR / file
    flags = library.flags()
    headers = [h.read_text() for h in sorted(SOURCE_DIR.glob("*.h"))]  # what the sources may include
    digest = hashlib.sha256("\0".join([source.read_text(), *headers, *flags, _zig_version()]).encode()).hexdigest()[:16]
    folder = cache_dir("kernels", f"{source.stem}-{digest}")
    built = BuiltLibrary(library, folder / f"{source.stem}.o", folder / f"{source.stem}.s")
    if built.object.is_file() and built.assembly.is_file():
        return built
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the %s kernels with zig cc", library.name)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        scratch = Path(scratch)
        _zig("cc", *flags, "-c", str(source), "-o", str(scratch / built.object.name))
        _zig("cc", *flags, "-S", str(source), "-o", str(scratch / built.assembly.name))
        _check_freestanding(scratch / built.assembly.name, library)
        try:
            os.replace(scratch, folder)  # atomic: a concurrent or failed build never leaves half a folder
            scratch.mkdir()  # for TemporaryDirectory's clean-up
        except OSError:
            if not built.object.is_file():  # not another process winning the race
                raise
    return built


# Where a build folder keeps the objects its lowered MLIR links, with their assembly (which the kernel audit reads)
LINKED_OBJECT_DIR = "kernels"


def linked_path(built: BuiltLibrary) -> str:
    """How lowered MLIR names an object: relative to its build folder, where place_linked_objects puts it and
    iree-compile finds it through --iree-hal-executable-object-search-path, so that the MLIR compiles from
    the folder alone, on any machine, after quantune's cache is gone."""
    return f"{LINKED_OBJECT_DIR}/{built.object.name}"


def place_linked_objects(paths: list[str], folder: Path) -> None:
    """Copies the objects that lowered MLIR names by linked_path (and their assembly) into folder."""
    for path in dict.fromkeys(paths):
        built = _built_object(Path(path).name)
        for file in (built.object, built.assembly):
            placed = folder / LINKED_OBJECT_DIR / file.name
            if placed.is_file() and placed.read_bytes() == file.read_bytes():
                continue
            placed.parent.mkdir(parents=True, exist_ok=True)
            partial = placed.with_name(f"{placed.name}.{os.getpid()}.partial")
            try:
                shutil.copyfile(file, partial)
                os.replace(partial, placed)
            finally:
                partial.unlink(missing_ok=True)


def _built_object(name: str) -> BuiltLibrary:
    for library in LIBRARIES.values():
        for part, file in library.sources().items():
            if file is not None and f"{Path(file).stem}.o" == name:
                return build(library.name, part)
    raise QuantuneError(f"the lowered MLIR links {name}, which no kernel library of this quantune builds: "
                        "lower the plan again with this version")


def _check_freestanding(assembly: Path, library: KernelLibrary) -> None:
    """The object must call nothing: IREE's dispatch libraries have no libc to resolve memset or memcpy."""
    calls = set(re.findall(r"^\s+(?:call|jmp|bl|b)\s+([A-Za-z_][\w.@]*)", assembly.read_text(), re.MULTILINE))
    local = set(re.findall(r"^([A-Za-z_][\w.]*):", assembly.read_text(), re.MULTILINE))
    outside = sorted(c.split("@")[0] for c in calls if c.split("@")[0] not in local)
    if outside:
        raise QuantuneError(f"kernel library {library.name}: the object calls {', '.join(outside)}, which no "
                            f"IREE dispatch library provides; rewrite src/{assembly.stem}.c without it")


def pack_conv_weights(weight: np.ndarray, group: int) -> np.ndarray:
    """int8 weights [F][C][KH][KW] (or [F][C] of a linear layer) in the conv kernels' layout, flat: blocks of
    CHANNEL_BLOCK output channels (the last one narrower), each [K/group][width][group] with K = KH*KW*C in
    (kh, kw, c) order and group the library's reduction_group, the channels F padded with zeros to a multiple
    of 16. A block is what one workgroup reads, as one
    contiguous stream; one [K/4][F][4] array strides 4*F bytes a step, which ran ResNet18's 512-channel convs
    at 60 % of the kernel's rate against 90 % for its 64-channel ones."""
    filters = weight.shape[0]
    columns = weight.reshape(filters, weight.shape[1], -1).transpose(2, 1, 0).reshape(-1, filters)  # [K][F]
    padded = padded_channels(filters)
    columns = np.pad(columns, ((0, 0), (0, padded - filters)))
    blocks = (columns[:, start:start + CHANNEL_BLOCK] for start in range(0, padded, CHANNEL_BLOCK))
    return np.concatenate([block.reshape(-1, group, block.shape[1]).transpose(0, 2, 1).reshape(-1)
                           for block in blocks]).astype(np.int8)


DEPTHWISE_BLOCK = 64  # channels of one "columns" depthwise block: one zmm of int8


def pack_depthwise_weights(weight: np.ndarray, layout: str) -> np.ndarray:
    """int8 weights [C][KH][KW] in a depthwise kernel's layout (KernelLibrary.depthwise_layout), flat:
    "columns": [C64/64][KW][row groups of 4][4 vectors][16 lanes][4 rows], vector k lane 4L + j holding channel
    16L + 4k + j of its block (src/depthwise_x86_64_avx512.c), rows past KH zero; "taps": [Cp/16][groups of 4
    taps in row-major order][16 channels][4 taps], the last group padded with zero taps."""
    channels, height, width = weight.shape
    if layout == "columns":
        groups = -(-height // 4)
        blocks = -(-channels // DEPTHWISE_BLOCK)
        padded = np.zeros((blocks * DEPTHWISE_BLOCK, groups * 4, width), np.int8)
        padded[:channels, :height] = weight
        # channel 64b + 16L + 4k + j, row 4g + r, column kw -> [b][kw][g][k][L][j][r]
        shaped = padded.reshape(blocks, 4, 4, 4, groups, 4, width)  # b, L, k, j, g, r, kw
        return np.ascontiguousarray(shaped.transpose(0, 6, 4, 2, 1, 3, 5)).reshape(-1)
    taps = weight.reshape(channels, -1).T  # [T][C]
    taps = np.pad(taps, ((0, -taps.shape[0] % 4), (0, padded_channels(channels) - channels)))
    groups = taps.reshape(taps.shape[0] // 4, 4, -1, 16)  # [group][tap][block][16]
    return np.ascontiguousarray(groups.transpose(2, 0, 3, 1)).reshape(-1)


def depthwise_channel_values(values: np.ndarray, layout: str) -> np.ndarray:
    """Per-channel values (bias, multipliers) as a depthwise kernel reads them: padded to its blocks, and for
    "columns" in its lane order within each block of 64."""
    if layout != "columns":
        return pad_channels(values)
    padded = np.pad(values, (0, -len(values) % DEPTHWISE_BLOCK))
    return np.ascontiguousarray(padded.reshape(-1, 4, 4, 4).transpose(0, 2, 1, 3).reshape(-1))


def padded_channels(filters: int) -> int:
    return -(-filters // VECTOR_CHANNELS) * VECTOR_CHANNELS


def pad_channels(values: np.ndarray) -> np.ndarray:
    return np.pad(values, (0, padded_channels(len(values)) - len(values)))


def library_for(target) -> KernelLibrary | None:
    """The kernel library for a compile target (compile.targets.Target) whose CPU features it needs, if any."""
    if target.arch == "any":
        return None
    features = target_config(target.for_int8().flag_file).features
    return next((lib for lib in LIBRARIES.values()
                 if lib.arch == target.arch and set(lib.required_features) <= features), None)


@dataclass(frozen=True)
class TargetConfig:
    """What iree-compile makes of a flag file's CPU: the executable target's `cpu` and `cpu_features`."""

    cpu: str
    cpu_features: str

    @property
    def features(self) -> frozenset[str]:
        return frozenset(f[1:] for f in self.cpu_features.split(",") if f.startswith("+"))

    def object_key(self) -> str:
        """The executable target configuration an object is keyed by, as `cpu=NAME` or `cpu_features=LIST`
        (quantune-lower-quant's kernel-target): the CPU where the flags name one (the x86_64 target's host CPU),
        else the exact feature list. IREE links an object only into a target whose configuration matches, so a
        module compiled for another CPU fails to link instead of faulting on it."""
        return f"cpu={self.cpu}" if self.cpu else f"cpu_features={self.cpu_features}"


@functools.cache
def target_config(flag_file: Path) -> TargetConfig:
    from iree.compiler.tools.binaries import find_tool
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "probe.mlir"
        probe.write_text("func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n"
                         "  %0 = arith.addf %a, %a : tensor<4xf32>\n  return %0 : tensor<4xf32>\n}\n")
        result = children.run([find_tool("iree-compile"), f"@{flag_file}", str(probe), "--compile-to=hal"],
                              capture_output=True, text=True)
    cpu = re.search(r'cpu = \\22([^\\]*)\\22', result.stdout)
    features = re.search(r'cpu_features = \\22([^\\]*)\\22', result.stdout)
    if result.returncode != 0 or not cpu or not features:
        raise QuantuneError(f"could not read the CPU of {flag_file} from iree-compile: {result.stderr.strip()[:500]}")
    return TargetConfig(cpu.group(1), features.group(1))
