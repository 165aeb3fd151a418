"""The kernel audit: after a compile, whether each layer's multiply-accumulate reached an integer kernel, read
from what iree-compile dumped (`compile_file(..., dump_dir=...)`).

A layer's verdict comes from the dispatch holding its contraction op: the conv or matmul, or after im2col and
data tiling the mmt4d. Its other dispatches (im2col, pack, unpack + epilogue, encodings) are listed as related.
A dispatch maps to a layer through locations (program.py): a contraction's own NameLoc, or, for an executable
IREE launches for several identical layers, each launch site's. Dispatch names are no way to map: after data
tiling they carry tile shapes, and identical layers share one.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .. import kernels
from ..errors import QuantuneError
from .assembly import DOT_FEATURES, FLOAT_MULTIPLY_ADDS, WIDENED_MULTIPLIES, instruction_counts
from .iree_compile import DUMPED_EXECUTABLES, DUMPED_PHASES, compile_file
from .program import Contraction, Launch, read_contractions, read_kernel_objects, read_launches
from .targets import Target

INT8 = "int8"
INT8_NO_DOT = "int8-no-dot-instructions"  # integer, but only widened multiplies (vpmulld, smlal)
FLOAT = "float"
NOT_FOUND = "not found"
_WORST_LAST = (INT8, INT8_NO_DOT, FLOAT)  # a layer split over several dispatches gets its worst one's verdict


@dataclass(frozen=True)
class Dispatch:
    name: str  # the entry point, as in the assembly: main_dispatch_5_mmt4d_1x16x36x16x16x2_i8xi8xi32
    contractions: tuple[Contraction, ...]
    instructions: dict[str, int]  # telling instruction families (assembly.FAMILIES) -> count in its function
    launches: int  # per inference; 0 for the ones only initializers launch (weight encodings)


@dataclass(frozen=True)
class LayerVerdict:
    layer: str
    verdict: str
    instructions: tuple[str, ...] = ()  # what the verdict rests on: "vnni: vpdpwssd", "vpmulld", "vfmadd"
    contraction: str = ""  # "linalg.mmt4d i8 x i8 -> i32"
    dispatches: tuple[str, ...] = ()  # the ones doing its multiply-accumulate
    related: tuple[str, ...] = ()  # the others launched for it


@dataclass(frozen=True)
class KernelAudit:
    target: str
    layers: tuple[LayerVerdict, ...]
    dispatches: tuple[Dispatch, ...]
    unattributed: tuple[str, ...] = ()  # contraction dispatches launched for no listed layer

    @property
    def dispatch_count(self) -> int:
        """Dispatches launched per inference."""
        return sum(d.launches for d in self.dispatches)

    def verdict(self, layer: str) -> LayerVerdict:
        for v in self.layers:
            if v.layer == layer:
                return v
        return LayerVerdict(layer, NOT_FOUND)

    def failures(self, planned_int8: Iterable[str], *, require_dot_instructions: bool = False
                 ) -> tuple[LayerVerdict, ...]:
        """The layers planned int8 that compiled to float or were not found (with require_dot_instructions,
        also those left without dot-product instructions)."""
        bad = {FLOAT, NOT_FOUND} | ({INT8_NO_DOT} if require_dot_instructions else set())
        return tuple(v for v in map(self.verdict, planned_int8) if v.verdict in bad)

    def to_json(self) -> str:
        return json.dumps({"target": self.target, "dispatch_count": self.dispatch_count,
                           "layers": [asdict(v) for v in self.layers],
                           "dispatches": [asdict(d) for d in self.dispatches],
                           "unattributed": list(self.unattributed)}, indent=1)

    def describe(self) -> str:
        rows = [("layer", "verdict", "instructions", "contraction", "dispatch")]
        rows += [(v.layer, v.verdict, ", ".join(v.instructions), v.contraction,
                  ", ".join(v.dispatches) + (f" (+{len(v.related)} related)" if v.related else ""))
                 for v in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"kernel audit, {self.target}: {self.dispatch_count} dispatches per inference, "
                 f"{len(self.dispatches)} distinct"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4] for row in rows]
        if self.unattributed:
            lines.append(f"contractions of no listed layer: {', '.join(self.unattributed)}")
        return "\n".join(line.rstrip() for line in lines)


def compile_and_audit(source: Path, target: Target, output: Path, *, layers: Sequence[str] = (),
                      extra_flags: tuple[str, ...] = (), dump_dir: Path | None = None,
                      failure_dir: Path | None = None, object_dir: Path | None = None,
                      flags_file: Path | None = None) -> KernelAudit:
    """Compile as compile_file does, dumping into dump_dir (default: <output stem>_dump beside output), and audit
    the dump. layers: the ids to judge, in this order (default: every layer a contraction names)."""
    output = Path(output)
    dump_dir = Path(dump_dir) if dump_dir else output.with_name(f"{output.stem}_dump")
    compile_file(source, target, output, extra_flags=extra_flags, failure_dir=failure_dir, dump_dir=dump_dir,
                 object_dir=object_dir, flags_file=flags_file)
    return audit_dump(dump_dir, target.name, layers, object_dir=object_dir)


def audit_dump(dump_dir: Path, target: str, layers: Sequence[str] = (), object_dir: Path | None = None
               ) -> KernelAudit:
    """object_dir: where the module's relative kernel object paths lie (default: the folder holding the dump,
    as in a build folder; kernels.linked_path)."""
    executables, phases = Path(dump_dir) / DUMPED_EXECUTABLES, Path(dump_dir) / DUMPED_PHASES
    how = "compile with quantune_mlir.compile.compile_file(..., dump_dir=...) or compile_and_audit"
    sources = sorted(phases.glob("*.executable-sources.mlir"))
    stream = sorted(phases.glob("*.stream.mlir"))
    if len(sources) != 1 or len(stream) != 1:
        raise QuantuneError(f"{dump_dir}: no dump of one compiled module (one {DUMPED_PHASES}/*.stream.mlir and "
                            f"one {DUMPED_PHASES}/*.executable-sources.mlir); {how}")
    assembly = sorted(executables.glob("*.s"))
    if not assembly:
        raise QuantuneError(f"{executables}: no assembly (*.s) to read; the audit needs an llvm-cpu target such "
                            "as x86_64 or aarch64 (vmvx bytecode has no machine code)")
    launches = read_launches(stream[0])
    if not any(launch.names for launch in launches):
        raise QuantuneError(f"{stream[0]}: no launch site carries a layer's location, so no layer can be "
                            f"found; was the module compiled without --mlir-print-debuginfo? {how}")
    # a linked kernel object comes with its assembly (quantune_mlir/kernels): its functions are counted too
    objects = (Path(object_dir or Path(dump_dir).parent) / path for path in read_kernel_objects(sources))
    kernel_assembly = [path.with_suffix(".s") for path in objects if path.with_suffix(".s").is_file()]
    dispatches = _dispatches(read_contractions(sources), instruction_counts(assembly),
                             instruction_counts(kernel_assembly), launches)
    return _judge_layers(target, dispatches, launches, layers)


def _dispatches(contractions: dict[str, tuple[Contraction, ...]], instructions: dict[str, dict[str, int]],
                kernel_instructions: dict[str, dict[str, int]], launches: tuple[Launch, ...]) -> tuple[Dispatch, ...]:
    launched = Counter(launch.entry_point for launch in launches)
    order = list(launched) + sorted(set(contractions) - set(launched))
    missing = [name for name in order if name not in instructions]
    if missing:
        raise QuantuneError(f"dispatch {missing[0]} has no function in the dumped assembly (*.s), so the audit "
                            "cannot judge it: is it a kernel linked in as an object file?")
    called = {name: [c.kernel for c in contractions.get(name, ()) if c.kernel] for name in order}
    unreadable = [k for kernels in called.values() for k in kernels if k not in kernel_instructions]
    if unreadable:
        raise QuantuneError(f"the linked kernel {unreadable[0]} has no assembly beside its object, so the audit "
                            "cannot judge it; quantune_mlir/kernels builds both")
    return tuple(Dispatch(name, contractions.get(name, ()),
                          dict(sum((Counter(instructions[name]), *(Counter(kernel_instructions[k]) for k in called[name])),
                                   Counter())), launched[name])
                 for name in order)


def _judge_layers(target: str, dispatches: tuple[Dispatch, ...], launches: tuple[Launch, ...],
                  layers: Sequence[str]) -> KernelAudit:
    by_name = {d.name: d for d in dispatches}
    wanted = set(layers)

    def first_layer(names: tuple[str, ...]) -> str | None:
        return next((n for n in names if not wanted or n in wanted), None)

    def layers_of(contraction: Contraction, names: tuple[str, ...]) -> list[str]:
        """A kernel that runs several layers (kernels.fused_layers) is the contraction of each."""
        if contraction.kernel and kernels.fused_layers(contraction.kernel):
            return list(dict.fromkeys(n for n in names if not wanted or n in wanted))
        return [layer] if (layer := first_layer(names)) else []

    judged: dict[str, list[tuple[Dispatch, Contraction]]] = {}
    related: dict[str, list[str]] = {}
    unattributed: list[str] = []
    for launch in launches:
        dispatch = by_name[launch.entry_point]
        site = first_layer(launch.names)
        if not dispatch.contractions and site:
            related.setdefault(site, []).append(dispatch.name)
        for contraction in dispatch.contractions:
            own, at_site = layers_of(contraction, contraction.names), layers_of(contraction, launch.names)
            # a shared executable's source names only the first of its layers; each launch site names its own
            for layer in (at_site or own) if dispatch.launches > 1 else (own or at_site):
                judged.setdefault(layer, []).append((dispatch, contraction))
            if not own and not at_site:
                unattributed.append(dispatch.name)
    verdicts = tuple(_verdict(layer, judged.get(layer, []), related.get(layer, []))
                     for layer in (layers or list(judged)))
    return KernelAudit(target, verdicts, dispatches, tuple(dict.fromkeys(unattributed)))


def _verdict(layer: str, contractions: list[tuple[Dispatch, Contraction]], related: list[str]) -> LayerVerdict:
    if not contractions:
        return LayerVerdict(layer, NOT_FOUND, related=tuple(dict.fromkeys(related)))
    judged = [(*_judge(dispatch, contraction), contraction) for dispatch, contraction in contractions]
    verdict = max((v for v, _, _ in judged), key=_WORST_LAST.index)
    return LayerVerdict(layer, verdict,
                        instructions=tuple(dict.fromkeys(i for v, found, _ in judged if v == verdict for i in found)),
                        contraction="; ".join(dict.fromkeys(c.describe() for v, _, c in judged if v == verdict)),
                        dispatches=tuple(dict.fromkeys(d.name for d, _ in contractions)),
                        related=tuple(dict.fromkeys(related)))


def _judge(dispatch: Dispatch, contraction: Contraction) -> tuple[str, tuple[str, ...]]:
    found = dispatch.instructions
    if contraction.is_float:
        return FLOAT, tuple(f for f in FLOAT_MULTIPLY_ADDS if f in found)
    dots = tuple(f"{feature}: {family}" for family, feature in DOT_FEATURES.items() if family in found)
    if dots:
        return INT8, dots
    return INT8_NO_DOT, tuple(f for f in WIDENED_MULTIPLIES if f in found)
