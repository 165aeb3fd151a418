"""A compiled module on the IREE runtime: checked inputs, numpy outputs, honest timing.

Driver and thread count are explicit: `local-sync` runs on the calling thread (1 thread); `local-task` runs
on a worker pool whose size IREE fixes once per process, at the first device creation.
"""
from __future__ import annotations

import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import QuantuneError
from ..tensor_spec import TensorSpec

log = logging.getLogger(__name__)

DRIVERS = ("local-sync", "local-task")
_TENSOR = re.compile(r"tensor<([0-9x]*?)x?([a-z]+[0-9]+(?:[A-Z][0-9A-Z]*)?)>")  # f32, i16, f8E4M3FN
# float8 names are ml_dtypes', which iree.runtime registers with numpy
_IREE_DTYPES = {"f32": "float32", "f16": "float16", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
                "f8E4M3FN": "float8_e4m3fn", "f8E5M2": "float8_e5m2"}
_task_workers_in_process: int | None = None


@dataclass(frozen=True)
class RuntimeOptions:
    driver: str = "local-sync"
    threads: int = 1

    def __post_init__(self):
        if self.driver not in DRIVERS:
            raise QuantuneError(f"unknown driver '{self.driver}': choose one of {', '.join(DRIVERS)}")
        if self.threads < 1:
            raise QuantuneError(f"threads must be at least 1, not {self.threads}")
        if self.driver == "local-sync" and self.threads != 1:
            raise QuantuneError(f"driver local-sync runs on one thread; use --driver local-task for "
                                f"{self.threads} threads")

    @classmethod
    def for_threads(cls, threads: int) -> "RuntimeOptions":
        return cls("local-sync", 1) if threads == 1 else cls("local-task", threads)


@dataclass(frozen=True)
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    iterations: int
    warmup: int
    driver: str
    threads: int

    def describe(self) -> str:
        return (f"median {self.median_ms:.3f} ms (min {self.min_ms:.3f}, max {self.max_ms:.3f}) over "
                f"{self.iterations} runs after {self.warmup} warm-up, driver {self.driver}, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}")


def _parse_tensors(text: str) -> list[TensorSpec]:
    return [TensorSpec(tuple(int(d) for d in dims.split("x") if d), _IREE_DTYPES.get(dtype, dtype))
            for dims, dtype in _TENSOR.findall(text)]


@dataclass(frozen=True)
class Signature:
    """What a module's function takes and returns. Read from the module's ABI declaration, which any host can
    read whatever CPU the code was compiled for."""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    @classmethod
    def parse(cls, declaration: str) -> "Signature":
        """`sync func @main(%input0: tensor<1x3x224x224xf32>) -> (%output0: tensor<1x1000xf32>)`"""
        args, _, results = declaration.partition("->")
        return cls(_parse_tensors(args), _parse_tensors(results))

    def check(self, inputs: tuple[np.ndarray, ...], module_name: str) -> None:
        if len(inputs) != len(self.inputs):
            raise QuantuneError(f"{module_name} takes {len(self.inputs)} inputs, got {len(inputs)}")
        for i, (array, spec) in enumerate(zip(inputs, self.inputs)):
            if tuple(array.shape) != spec.shape:
                raise QuantuneError(f"input {i} has shape {tuple(array.shape)}, {module_name} expects "
                                    f"{spec.shape} ({spec.describe()})")
            if array.dtype != np.dtype(spec.dtype):
                raise QuantuneError(f"input {i} has dtype {array.dtype}, {module_name} expects {spec.dtype}")


def _open(instance, path: Path, function: str):
    """The VM module at path and its function's signature, or an error naming what is wrong with the file."""
    import iree.runtime as rt
    if not path.is_file():
        raise QuantuneError(f"{path}: no such module")
    try:
        vm_module = rt.VmModule.mmap(instance, str(path))
    except Exception as e:
        raise QuantuneError(f"{path}: not an IREE module ({str(e).splitlines()[0]}); compile it with "
                            "`quantune compile`") from None
    if function not in vm_module.function_names:
        raise QuantuneError(f"{path} has no function '{function}' (it has {vm_module.function_names})")
    declaration = vm_module.lookup_function(function).reflection.get("iree.abi.declaration", "")
    return vm_module, Signature.parse(declaration)


def read_signature(path: Path | str, function: str = "main") -> Signature:
    import iree.runtime as rt
    return _open(rt.VmInstance(), Path(path), function)[1]


def _configure_workers(threads: int) -> None:
    import iree.runtime as rt
    global _task_workers_in_process
    if _task_workers_in_process is None:
        rt.flags.parse_flags(f"--task_topology_group_count={threads}")
        _task_workers_in_process = threads
    elif _task_workers_in_process != threads:
        raise QuantuneError(f"this process already runs local-task with {_task_workers_in_process} threads; "
                            f"IREE fixes the worker count per process, so run {threads} threads in a new process")


class CompiledModule:
    """A .vmfb loaded on one device. Call it with numpy arrays; get numpy arrays back."""

    def __init__(self, path: Path, options: RuntimeOptions = RuntimeOptions(), function: str = "main"):
        import iree.runtime as rt
        path = Path(path)
        self.path, self.options = path, options
        if options.driver == "local-task":
            _configure_workers(options.threads)
        self._instance = rt.VmInstance()
        vm_module, self.signature = _open(self._instance, path, function)
        self.input_specs = self.signature.inputs
        self._config = rt.Config(options.driver)
        self._context = rt.SystemContext(config=self._config)
        try:
            self._context.add_vm_module(vm_module)
        except Exception as e:
            raise QuantuneError(f"{path} cannot run on this machine ({str(e).splitlines()[0]}); was it compiled "
                                "for another target? (aarch64 modules run on x86 under qemu: `quantune run "
                                f"{path} --target aarch64`)") from None
        self._function = getattr(self._context.modules.module, function)

    def check_inputs(self, inputs: tuple[np.ndarray, ...]) -> None:
        self.signature.check(inputs, self.path.name)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        self.check_inputs(inputs)
        result = self._function(*inputs)
        results = result if isinstance(result, (tuple, list)) else [result]
        # to_host() can map device memory that a later call reuses: copy it out
        return [np.array(r.to_host(), copy=True) for r in results]

    def benchmark(self, *inputs: np.ndarray, iterations: int = 20, warmup: int = 3) -> Timing:
        """Median wall time of one call, inputs uploaded to the device once."""
        import iree.runtime as rt
        self.check_inputs(inputs)
        device_inputs = [rt.asdevicearray(self._config.device, x) for x in inputs]
        for _ in range(warmup):
            self._function(*device_inputs)
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            result = self._function(*device_inputs)
            results = result if isinstance(result, (tuple, list)) else [result]
            for r in results:
                r.to_host()
            samples.append((time.perf_counter() - start) * 1e3)
        return Timing(statistics.median(samples), min(samples), max(samples), iterations, warmup,
                      self.options.driver, self.options.threads)


def run_over_batch(module, samples: np.ndarray) -> list[np.ndarray]:
    """Every result of module (a CompiledModule or a QemuModule) for a batch of any size, in as many calls as the
    module's fixed batch needs (the last one padded with zeros whose results are dropped), written into arrays for
    the whole batch (analysis builds return gigabytes: no second copy)."""
    per_call = module.input_specs[0].shape[0]
    results: list[np.ndarray] = []
    for start in range(0, len(samples), per_call):
        chunk = samples[start:start + per_call]
        padded = np.zeros((per_call, *chunk.shape[1:]), chunk.dtype)
        padded[:len(chunk)] = chunk
        outputs = module(padded)
        if not results:
            results = [np.empty((len(samples), *o.shape[1:]), o.dtype) for o in outputs]
        for whole, output in zip(results, outputs):
            whole[start:start + len(chunk)] = output[:len(chunk)]
    return results
