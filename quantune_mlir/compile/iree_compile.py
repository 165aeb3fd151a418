"""Running iree-compile: the target's flag file plus pass-through flags, atomically, with a reproducer."""
from __future__ import annotations

import contextlib
import json
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


# iree-compile's flag for the folders that relative `#hal.executable.object` paths are looked up in; a path
# given on the command line only, which changes no byte of the module
OBJECT_SEARCH_FLAG = "--iree-hal-executable-object-search-path"


class CompileError(QuantuneError):
    """iree-compile rejected the module; the message holds its first error and where the reproducer is."""


def check_extra_flags(flags: list[str]) -> None:
    for flag in flags:
        if not flag.startswith("--"):
            raise QuantuneError(f"pass-through flag '{flag}' is not in iree-compile's spelling "
                                "(--iree-...=value)")


def dump_flags(dump_dir: Path) -> list[str]:
    """Flags that make iree-compile write, beside the module, every executable's benchmark, LLVM IR, assembly
    and binary, and the program at each compilation phase (the executables' sources among them), with
    locations, which name the layers. They change no byte of the module: dumping the executables' sources or
    configurations one file each would (it points the executables' locations into those files)."""
    return [f"--iree-hal-dump-executable-{what}-to={dump_dir / DUMPED_EXECUTABLES}"
            for what in ("benchmarks", "intermediates", "binaries")] + [
            f"--dump-compilation-phases-to={dump_dir / DUMPED_PHASES}",
            "--mlir-print-debuginfo",
            # weights would fill every phase file; IREE inlines constants of at most 256 bytes into dispatches,
            # which stay printed so that the dumped executables and benchmarks still compile
            "--mlir-elide-elementsattrs-if-larger=256",
            "--mlir-elide-resource-strings-if-larger=1024"]


# Flags that only choose faster code (data layouts, im2col): when iree-compile rejects a module with them (e.g.
# "operations with large vector sizes" for some tile shapes of a mixed plan), the module is compiled again
# without them. Integer results are the same under every flag set (see docs/kernels.md); only speed changes.
SPEED_ONLY_FLAGS = ("--iree-dispatch-creation-data-tiling", "--iree-global-opt-data-tiling",
                    "--iree-global-opt-use-im2col-for-convs")


def compile_command(target: Target, source: Path, output: Path, extra_flags: list[str],
                    target_flags: list[str] | None = None) -> list[str]:
    """iree-compile with the target's flag file, or with target_flags (its flags as edited) in its place."""
    flags = [f"@{target.flag_file}"] if target_flags is None else target_flags
    return ["iree-compile", *flags, *extra_flags, str(source), "-o", str(output)]


def compile_file(source: Path, target: Target, output: Path, *, extra_flags: tuple[str, ...] = (),
                 failure_dir: Path | None = None, dump_dir: Path | None = None, object_dir: Path | None = None,
                 flags_file: Path | None = None) -> Path:
    """Compile an MLIR file (text or bytecode) to a .vmfb. If iree-compile rejects it, it is compiled again
    without SPEED_ONLY_FLAGS, with a warning. On failure nothing is left at `output`; the diagnostics, a copy of
    the input (if it lies outside failure_dir) and a one-line reproducer go to failure_dir (default: beside
    output). With dump_dir, also dump what `dump_flags` says into it, replacing an earlier dump there.
    object_dir: where the module's relative `#hal.executable.object` paths lie (its build folder). flags_file:
    write there, as a response file, the flags that made the module (those that change its bytes)."""
    source, output = Path(source).absolute(), Path(output).absolute()
    if not source.is_file():
        raise QuantuneError(f"{source}: no such MLIR file")
    check_extra_flags(list(extra_flags))
    made_by = [*target.flags(), *extra_flags]
    if object_dir is not None:
        extra_flags = (*extra_flags, f"{OBJECT_SEARCH_FLAG}={Path(object_dir).absolute()}")
    working_dir = None
    if dump_dir is not None:
        dump_dir = Path(dump_dir).absolute()
        # The module records where its executables were dumped: relative to iree-compile's working folder, so
        # that its bytes do not depend on the build folder's path
        working_dir = dump_dir.parent
        extra_flags = (*extra_flags, *dump_flags(Path(dump_dir.name)))
    output.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, so that two processes compiling to the same output never move each other's file
    partial = output.with_name(f"{output.name}.{os.getpid()}.partial")
    log.info("compiling %s for %s", source.name, target.name)
    started = time.perf_counter()
    failure_dir = failure_dir or output.parent
    fallback = fallback_note(output)
    try:  # from the partial file's creation on, so that an interrupt at any point removes it
        try:
            partial.touch()
        except OSError as e:
            raise QuantuneError(f"cannot write {output} ({e.strerror}): choose another output (-o)") from None
        stderr = _run(compile_command(target, source, partial, list(extra_flags)), dump_dir, working_dir)
        if stderr is not None:
            flags = target.flags()
            kept = [f for f in flags if f not in SPEED_ONLY_FLAGS]
            if len(kept) == len(flags):
                raise _failure(stderr, source, target, output, list(extra_flags), failure_dir, working_dir)
            dropped = [f for f in flags if f in SPEED_ONLY_FLAGS]
            log.warning("iree-compile rejected %s with %s's flags (%s); compiling it again without %s, which "
                        "changes its speed, not its values", source.name, target.name, _first_error(stderr),
                        " ".join(dropped))
            if _run(compile_command(target, source, partial, list(extra_flags), kept), dump_dir, working_dir):
                raise _failure(stderr, source, target, output, list(extra_flags), failure_dir, working_dir)
            fallback.write_text(json.dumps({"module": output.name, "dropped_flags": dropped,
                                            "error": _first_error(stderr)}, indent=1) + "\n")
            made_by = [f for f in made_by if f not in dropped]
        else:
            fallback.unlink(missing_ok=True)
        if flags_file is not None:
            _write_response_file(flags_file, made_by)
        os.replace(partial, output)
    finally:  # also on Ctrl-C and SIGTERM, which stop iree-compile first
        with contextlib.suppress(OSError):  # a read-only folder, where it was never made
            partial.unlink(missing_ok=True)
    log.info("compiled %s in %.1f s (%.1f MB)", output.name, time.perf_counter() - started,
             output.stat().st_size / 1e6)
    return output


def _write_response_file(path: Path, flags: list[str]) -> None:
    """One flag per line, as LLVM reads a response file (`iree-compile @path`); atomically."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text("".join(f"{flag}\n" for flag in flags))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def fallback_note(output: Path) -> Path:
    """Beside a module compiled without SPEED_ONLY_FLAGS: which were dropped and iree-compile's error."""
    return output.with_name(f"{output.name}.fallback.json")


def _run(command: list[str], dump_dir: Path | None, working_dir: Path | None) -> str | None:
    """iree-compile's stderr if it failed, else None."""
    if dump_dir is not None:
        for folder in (DUMPED_EXECUTABLES, DUMPED_PHASES):  # stale files of another module would be read too
            shutil.rmtree(dump_dir / folder, ignore_errors=True)
    command[0] = find_tool("iree-compile")
    result = children.run(command, capture_output=True, text=True, cwd=working_dir)
    return None if result.returncode == 0 else result.stderr


def _first_error(stderr: str) -> str:
    return next((line.strip() for line in stderr.splitlines() if "error:" in line),
                stderr.strip().splitlines()[0] if stderr.strip() else "no diagnostics")


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
    return CompileError(f"iree-compile failed for target {target.name}: {_first_error(stderr)} "
                        f"(full log {log_path}; reproduce with: {repro})")
