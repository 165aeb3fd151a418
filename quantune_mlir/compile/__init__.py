"""Targets, the iree-compile invocation and the kernel audit of what it generated."""
from .audit import KernelAudit, LayerVerdict, audit_dump, compile_and_audit  # noqa: F401
from .iree_compile import CompileError, compile_file  # noqa: F401
from .targets import TARGETS, Target, get_target  # noqa: F401
