"""Pass infrastructure: small named pass classes whose dataclass fields are their options.

A pipeline is written as in mlir-opt, `quantune-tag-layers,canonicalize` or `name{opt=value}`; names that
are not quantune passes go to IREE's own pass manager, so upstream clean-ups mix with ours.
"""
from __future__ import annotations

import dataclasses
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import QuantuneError
from ..mlir import ir, passmanager

log = logging.getLogger(__name__)

PASS_REGISTRY: dict[str, type["Pass"]] = {}


class PassFailure(QuantuneError):
    """A pass rejected the IR; the message names the op or layer at fault."""


@dataclass(frozen=True)
class Pass:
    name: ClassVar[str]
    summary: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            PASS_REGISTRY[cls.name] = cls

    def run(self, module: ir.Module) -> None:
        raise NotImplementedError

    def spelling(self) -> str:
        options = " ".join(f"{f.name.replace('_', '-')}={_format(getattr(self, f.name))}"
                           for f in dataclasses.fields(self))
        return f"{self.name}{{{options}}}" if options else self.name

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "Pass":
        fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, text in options.items():
            if key not in fields:
                valid = ", ".join(fields) or "none"
                raise QuantuneError(f"pass {cls.name} has no option '{key}' (its options: {valid})")
            kwargs[fields[key].name] = _parse_option(cls.name, key, text, fields[key].type)
        return cls(**kwargs)


@dataclass(frozen=True)
class UpstreamPass:
    """An MLIR or IREE pass run through IREE's pass manager, spelled as in iree-opt."""

    spelling_text: str

    @property
    def name(self) -> str:
        return self.spelling_text.split("{", 1)[0]

    def spelling(self) -> str:
        return self.spelling_text

    def run(self, module: ir.Module) -> None:
        try:
            pm = passmanager.PassManager.parse(f"builtin.module({self.spelling_text})", module.context)
        except ValueError as e:
            known = ", ".join(sorted(PASS_REGISTRY))
            raise QuantuneError(f"unknown pass '{self.name}': not a quantune pass ({known}) and not one IREE "
                                f"registers ({e})") from e
        pm.run(module.operation)


def _format(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse_option(pass_name: str, key: str, text: str, type_name):
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    if type_name == "bool":
        if text not in ("true", "false", "1", "0"):
            raise QuantuneError(f"{pass_name}: option {key} takes true or false, not '{text}'")
        return text in ("true", "1")
    if type_name == "int":
        try:
            return int(text)
        except ValueError:
            raise QuantuneError(f"{pass_name}: option {key} takes an integer, not '{text}'") from None
    return text


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_pipeline(text: str) -> list[Pass | UpstreamPass]:
    passes: list[Pass | UpstreamPass] = []
    for item in _split_top_level(text):
        name, _, rest = item.partition("{")
        name = name.strip()
        if name not in PASS_REGISTRY:
            passes.append(UpstreamPass(item))
            continue
        options = dict(kv.split("=", 1) if "=" in kv else (kv, "true") for kv in shlex.split(rest.rstrip("}")))
        passes.append(PASS_REGISTRY[name].from_options(options))
    return passes


def run_passes(module: ir.Module, passes: list[Pass | UpstreamPass], *, failure_dir: Path | None = None) -> None:
    """Run passes in order. When one fails and failure_dir is given, the IR it was given and a one-line
    reproducer are written there, and the error says where."""
    for p in passes:
        before = module.operation.get_asm(large_elements_limit=None, enable_debug_info=True) if failure_dir else None
        try:
            log.debug("running %s", p.spelling())
            with module.context:
                p.run(module)
        except QuantuneError as e:
            if failure_dir is None:
                raise
            raise type(e)(f"{e} [{_save_reproducer(failure_dir, p, before)}]") from e
        except Exception as e:  # a bug in a pass: keep the reproducer all the same
            if failure_dir is None:
                raise
            where = _save_reproducer(failure_dir, p, before)
            raise PassFailure(f"pass {p.name} crashed: {type(e).__name__}: {e} [{where}]") from e


def _save_reproducer(failure_dir: Path, p: Pass | UpstreamPass, ir_text: str) -> str:
    failure_dir.mkdir(parents=True, exist_ok=True)
    ir_path = failure_dir / f"failed_{p.name}.mlir"
    ir_path.write_text(ir_text)
    command = f"quantune-opt --pass-pipeline={shlex.quote(p.spelling())} {shlex.quote(str(ir_path))}"
    (failure_dir / f"failed_{p.name}.sh").write_text(command + "\n")
    return f"failing IR and reproducer: {command}"
