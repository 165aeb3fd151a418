"""The calibration images that ship with quantune: the defaults need no Debian package, and draw the same images
as from the whole train split."""
import numpy as np
import pytest

from quantune_mlir import QuantuneError
from quantune_mlir.data import datasets
from quantune_mlir.data.datasets import CALIBRATION_POOL, SHIPPED_FASHION_MNIST_DIR, fashion_mnist


@pytest.fixture
def without_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "not-installed")


@pytest.mark.parametrize("limit", [1, 64, CALIBRATION_POOL])
def test_shipped_pool_serves_the_default_calibration(without_debian, limit):
    data = fashion_mnist("train", limit=limit)
    assert data.name == f"fashion-mnist-train[{limit}]" and data.inputs.shape == (limit, 1, 28, 28)
    assert len(np.unique(data.inputs.reshape(limit, -1), axis=0)) == limit  # distinct images, not one repeated
    if limit == CALIBRATION_POOL:
        assert 80 <= np.bincount(data.labels, minlength=10).min()  # every class, roughly balanced


def test_beyond_the_shipped_pool_names_the_package(without_debian):
    with pytest.raises(QuantuneError, match=rf"is missing \(quantune ships {CALIBRATION_POOL} of its images: enough "
                       rf"for a limit of at most {CALIBRATION_POOL}\): install Debian's package with `apt-get install "
                       r"-y dataset-fashion-mnist`"):
        fashion_mnist("train", limit=CALIBRATION_POOL + 1)


def test_test_split_comes_from_the_shipped_copy(without_debian):
    assert len(fashion_mnist("test")) == 10000


@pytest.mark.fashion_mnist_full
@pytest.mark.parametrize("limit", [16, 64, 1000, CALIBRATION_POOL])
def test_shipped_pool_equals_the_whole_train_split(monkeypatch, tmp_path, limit):
    whole = fashion_mnist("train", limit=limit)
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path)
    shipped = fashion_mnist("train", limit=limit)
    assert shipped.name == whole.name
    assert np.array_equal(shipped.inputs, whole.inputs) and np.array_equal(shipped.labels, whole.labels)


def test_shipped_files_carry_their_licence():
    licence = (SHIPPED_FASHION_MNIST_DIR / "LICENSE").read_text()
    assert "train-calibration.npz" in licence and "MIT License" in licence
