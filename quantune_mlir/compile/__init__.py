"""Targets and the iree-compile invocation."""
from .iree_compile import CompileError, compile_file  # noqa: F401
from .targets import TARGETS, Target, get_target  # noqa: F401
