"""Running iree-compile: the target's flag file plus pass-through flags, atomically, with a reproducer."""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import time
from pathlib import Path

from iree.compiler.tools.binaries import find_tool

from ..errors import QuantuneError
from .targets import Target
from .. import children

log = logging.getLogger(__name__)


# Sub-folders of a dump folder (compile_file(dump_dir=...)), read by the kernel audit (audit.py).
DUMPED_EXECUTABLES = "executables"
DUMPED_PHASES = "phases"


class CompileError(QuantuneError):
    """iree-compile rejected the module; the message holds its first error and where the reproducer is."""


def check_extra_flags(flags: list[str]) -> None:
    for flag in flags:
        if not flag.startswith("--"):
            raise QuantuneError(f"pass-through flag '{flag}' is not in iree-compile's spelling "
                                "(--iree-...=value)")


def dump_flags(dump_dir: Path) -> list[str]:
    """Flags that make iree-compile write, beside the module, every executable (sources, configurations,
    benchmarks, LLVM IR, assembly) and the program at each compilation phase, with locations, which name the
    layers. They change no generated instruction; the module only gains tables of source locations."""
    return [f"--iree-hal-dump-executable-files-to={dump_dir / DUMPED_EXECUTABLES}",
            f"--dump-compilation-phases-to={dump_dir / DUMPED_PHASES}",
            "--mlir-print-debuginfo",
            # weights would fill every phase file; IREE inlines constants of at most 256 bytes into dispatches,
            # which stay printed so that the dumped executables and benchmarks still compile
            "--mlir-elide-elementsattrs-if-larger=256",
            "--mlir-elide-resource-strings-if-larger=1024"]


def compile_command(target: Target, source: Path, output: Path, extra_flags: list[str]) -> list[str]:
    return ["iree-compile", f"@{target.flag_file}", *extra_flags, str(source), "-o", str(output)]


def compile_file(source: Path, target: Target, output: Path, *, extra_flags: tuple[str, ...] = (),
                 failure_dir: Path | None = None, dump_dir: Path | None = None) -> Path:
    """Compile an MLIR file (text or bytecode) to a .vmfb. On failure nothing is left at `output`; the
    diagnostics, a copy of the input (if it lies outside failure_dir) and a one-line reproducer go to
    failure_dir (default: beside output). With dump_dir, also dump what `dump_flags` says into it, replacing
    an earlier dump there."""
    source, output = Path(source).absolute(), Path(output).absolute()
    if not source.is_file():
        raise QuantuneError(f"{source}: no such MLIR file")
    check_extra_flags(list(extra_flags))
    working_dir = None
    if dump_dir is not None:
        dump_dir = Path(dump_dir).absolute()
        for folder in (DUMPED_EXECUTABLES, DUMPED_PHASES):  # stale files of another module would be read too
            shutil.rmtree(dump_dir / folder, ignore_errors=True)
        # The module records where its executables were dumped: relative to iree-compile's working folder, so
        # that its bytes do not depend on the build folder's path
        working_dir = dump_dir.parent
        extra_flags = (*extra_flags, *dump_flags(Path(dump_dir.name)))
    output.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, so that two processes compiling to the same output never move each other's file
    partial = output.with_name(f"{output.name}.{os.getpid()}.partial")
    try:
        partial.touch()
    except OSError as e:
        raise QuantuneError(f"cannot write {output} ({e.strerror}): choose another output (-o)") from None
    command = compile_command(target, source, partial, list(extra_flags))
    command[0] = find_tool("iree-compile")
    log.info("compiling %s for %s", source.name, target.name)
    started = time.perf_counter()
    try:
        result = children.run(command, capture_output=True, text=True, cwd=working_dir)
        if result.returncode != 0:
            raise _failure(result.stderr, source, target, output, list(extra_flags), failure_dir or output.parent,
                           working_dir)
        os.replace(partial, output)
    finally:  # also on Ctrl-C and SIGTERM, which stop iree-compile first
        partial.unlink(missing_ok=True)
    log.info("compiled %s in %.1f s (%.1f MB)", output.name, time.perf_counter() - started,
             output.stat().st_size / 1e6)
    return output


def _failure(stderr: str, source: Path, target: Target, output: Path, extra_flags: list[str],
             failure_dir: Path, working_dir: Path | None) -> CompileError:
    failure_dir.mkdir(parents=True, exist_ok=True)
    stem = f"failed_compile_{target.name}"
    kept_source = source
    if source.resolve().parent != failure_dir.resolve():
        kept_source = failure_dir / f"{stem}{''.join(source.suffixes) or '.mlir'}"
        shutil.copyfile(source, kept_source)
    log_path = failure_dir / f"{stem}.log"
    log_path.write_text(stderr)
    repro = " ".join(shlex.quote(a) for a in compile_command(target, kept_source, output, extra_flags))
    if working_dir is not None:
        repro = f"cd {shlex.quote(str(working_dir))} && {repro}"
    (failure_dir / f"{stem}.sh").write_text(repro + "\n")
    first_error = next((line.strip() for line in stderr.splitlines() if "error:" in line),
                       stderr.strip().splitlines()[0] if stderr.strip() else "no diagnostics")
    return CompileError(f"iree-compile failed for target {target.name}: {first_error} "
                        f"(full log {log_path}; reproduce with: {repro})")
