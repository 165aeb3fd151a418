"""The trained small-image checkpoints that ship with quantune: present, intact, accurate."""
import hashlib
import json

import pytest

from quantune_mlir import api
from quantune_mlir.zoo import MODEL_NAMES, WEIGHTS_DIR, zoo_model

MANIFEST = json.loads((WEIGHTS_DIR / "manifest.json").read_text())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_checkpoint_is_shipped_intact_and_used(name):
    entry = MANIFEST[f"{name}-small"]
    path = WEIGHTS_DIR / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert entry["test_top1_pytorch"] >= 89.0
    assert zoo_model(name, "small").shipped_weights == path


def test_checkpoints_stay_small():
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt")) < 40e6


@pytest.mark.slow
def test_full_test_set_on_iree_matches_pytorch(tmp_path):
    """All 10k Fashion-MNIST test images through the IREE x86_64 build and through PyTorch eager."""
    api.import_model("mobilenet_v2-small", build_dir=tmp_path)
    vmfb = api.compile_model(tmp_path, "x86_64")
    iree = api.evaluate_model(str(vmfb), compare="mobilenet_v2-small")
    torch_top1 = api.evaluate_model("mobilenet_v2-small").top1
    assert iree.images == 10000
    assert iree.top1 >= 89.0 and abs(iree.top1 - torch_top1) <= 0.05
    assert iree.top1 == pytest.approx(MANIFEST["mobilenet_v2-small"]["test_top1_pytorch"], abs=0.05)
