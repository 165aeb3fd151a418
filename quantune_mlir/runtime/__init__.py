"""Loading, running and timing .vmfb modules on the IREE runtime."""
from .module import CompiledModule, RuntimeOptions, Timing  # noqa: F401
