"""Loading, running and timing .vmfb modules on the IREE runtime; aarch64 ones under qemu-aarch64."""
from .module import CompiledModule, RuntimeOptions, Signature, Timing, read_signature, run_over_batch  # noqa: F401
from .qemu import QemuModule, run_under_qemu  # noqa: F401
