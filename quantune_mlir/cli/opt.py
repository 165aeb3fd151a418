"""`quantune-opt`: parse MLIR, run quantune (and IREE) passes, print. The driver for lit tests.

    quantune-opt --quantune-tag-layers in.mlir
    quantune-opt --pass-pipeline='quantune-tag-layers,canonicalize' --split-input-file in.mlir
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import kernels
from ..errors import QuantuneError
from ..mlir import ir
from ..rewrite import PASS_REGISTRY, parse_pipeline, run_passes
from ..rewrite.extern_conv import linked_objects_in_text
from .common import run_guarded, setup_logging

SPLIT_MARKER = "// -----"


def _parser() -> argparse.ArgumentParser:
    passes = "\n".join(f"  --{name}[=OPTIONS]  {cls.summary}" for name, cls in sorted(PASS_REGISTRY.items()))
    parser = argparse.ArgumentParser(prog="quantune-opt", description=__doc__, epilog=f"passes:\n{passes}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", default="-", help="MLIR text or bytecode; - for stdin")
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--pass-pipeline", default="", help="comma-separated passes, name{opt=value}")
    parser.add_argument("--split-input-file", action="store_true")
    parser.add_argument("--mlir-print-debuginfo", action="store_true")
    parser.add_argument("--elide-large-elements", type=int, metavar="N", default=None,
                        help="print constants of more than N elements as dense_resource handles")
    parser.add_argument("--list-passes", action="store_true")
    return parser


def _split_pass_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Pass flags (`--name` or `--name='opt=value ...'`) in the order given, as in mlir-opt; the rest."""
    passes, rest = [], []
    for token in argv:
        name, _, options = token[2:].partition("=") if token.startswith("--") else ("", "", "")
        if name in PASS_REGISTRY:
            passes.append(f"{name}{{{options}}}" if options else name)
        else:
            rest.append(token)
    return passes, rest


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    if not Path(path).is_file():
        raise QuantuneError(f"{path}: no such file")
    return Path(path).read_bytes()


def _process(chunk: bytes | str, pipeline: str, args: argparse.Namespace, context: ir.Context) -> str:
    try:
        module = ir.Module.parse(chunk, context)
    except ir.MLIRError as e:
        raise QuantuneError(f"{args.input}: cannot parse: {e}") from None
    run_passes(module, parse_pipeline(pipeline) if pipeline else [])
    return module.operation.get_asm(enable_debug_info=args.mlir_print_debuginfo,
                                    large_elements_limit=args.elide_large_elements)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pass_flags, argv = _split_pass_flags(argv)
    args = _parser().parse_args(argv)
    setup_logging(-1)

    def run() -> int:
        if args.list_passes:
            for name, cls in sorted(PASS_REGISTRY.items()):
                print(f"{name}: {cls.summary}")
            return 0
        data = _read(args.input)
        pipeline = ",".join(([args.pass_pipeline] if args.pass_pipeline else []) + pass_flags)
        context = ir.Context()
        if args.split_input_file:
            chunks = data.decode().split(SPLIT_MARKER)
            text = f"\n{SPLIT_MARKER}\n".join(_process(c, pipeline, args, context) for c in chunks)
        else:
            text = _process(data, pipeline, args, context)
        if args.output:
            args.output.write_text(text)
            # lowered MLIR names its kernel objects relative to its own folder (kernels.linked_path)
            kernels.place_linked_objects(linked_objects_in_text(text), args.output.parent)
        else:
            sys.stdout.write(text)
        return 0

    return run_guarded("quantune-opt", run)


if __name__ == "__main__":
    sys.exit(main())
