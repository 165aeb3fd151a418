"""Datasets, preprocessing, checkpoints and their errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from quantune_mlir import QuantuneError
from quantune_mlir.data import FASHION_MNIST_PREPROCESS, LabelledData, Preprocess, arrays, fashion_mnist, image_folder
from quantune_mlir.data.datasets import SHIPPED_FASHION_MNIST_DIR
from quantune_mlir.data.resolve import load_data
from quantune_mlir.zoo import load_weights, zoo_model


def test_shipped_fashion_mnist_test_set():
    data = fashion_mnist("test", root=SHIPPED_FASHION_MNIST_DIR)
    assert data.inputs.shape == (10000, 1, 28, 28) and data.inputs.dtype == np.float32
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.classes[9] == "Ankle boot"
    # normalised with the training set's statistics: close to, not exactly, zero mean and unit variance
    assert abs(float(data.inputs.mean())) < 0.05 and abs(float(data.inputs.std()) - 1) < 0.05


@pytest.mark.fashion_mnist_full
def test_debian_fashion_mnist_train_set():
    data = fashion_mnist("train")
    assert data.inputs.shape == (60000, 1, 28, 28) and np.bincount(data.labels).tolist() == [6000] * 10
    assert abs(float(data.inputs.mean())) < 1e-3 and abs(float(data.inputs.std()) - 1) < 1e-3


def test_fashion_mnist_limit_picks_the_subset_before_preprocessing():
    full = fashion_mnist("test", root=SHIPPED_FASHION_MNIST_DIR)
    limited = fashion_mnist("test", root=SHIPPED_FASHION_MNIST_DIR, limit=50)
    expected = full.subset(50)
    assert limited.name == expected.name and np.array_equal(limited.inputs, expected.inputs)
    assert np.array_equal(limited.labels, expected.labels)
    imagenet_sized = fashion_mnist("test", root=SHIPPED_FASHION_MNIST_DIR, limit=2,
                                   preprocess=Preprocess(channels=3, resize=256, crop=224))
    assert imagenet_sized.inputs.shape == (2, 3, 224, 224)


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(QuantuneError, match=r"train-images-idx3-ubyte.gz is missing \(quantune ships 1024 of its "
                       r"images: enough for a limit of at most 1024\): install Debian's package with `apt-get "
                       r"install -y dataset-fashion-mnist`"):
        fashion_mnist("train", root=tmp_path)
    with pytest.raises(QuantuneError, match=r"Fashion-MNIST has splits train and test, not 'val'"):
        fashion_mnist("val")


def _write_images(root, sizes_by_class):
    for cls, sizes in sizes_by_class.items():
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            pixels = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


def test_image_folder_labels_follow_sorted_class_names(tmp_path):
    _write_images(tmp_path, {"dog": [(30, 40)], "cat": [(30, 40), (40, 30)]})
    data = image_folder(tmp_path, Preprocess(channels=3, resize=28, crop=28))
    assert data.classes == ("cat", "dog") and data.labels.tolist() == [0, 0, 1]
    assert data.inputs.shape == (3, 3, 28, 28)


def test_image_folder_errors(tmp_path):
    with pytest.raises(QuantuneError, match=r"has no class sub-folders: expected .*/<class>/<image>"):
        image_folder(tmp_path, FASHION_MNIST_PREPROCESS)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(QuantuneError, match=r"the class folders hold no images"):
        image_folder(tmp_path, FASHION_MNIST_PREPROCESS)
    (tmp_path / "empty_class" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(QuantuneError, match=r"broken\.png: not a readable image"):
        image_folder(tmp_path, FASHION_MNIST_PREPROCESS)


def test_image_folder_needs_uniform_sizes(tmp_path):
    _write_images(tmp_path, {"a": [(28, 28), (30, 30)]})
    with pytest.raises(QuantuneError, match=r"images have different sizes after preprocessing .*set resize and crop"):
        image_folder(tmp_path, FASHION_MNIST_PREPROCESS)


def test_arrays_npz_and_npy(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", inputs=x, labels=np.arange(5))
    data = arrays(tmp_path / "d.npz", FASHION_MNIST_PREPROCESS)
    np.testing.assert_allclose(data.inputs, FASHION_MNIST_PREPROCESS(x))
    assert data.labels.tolist() == [0, 1, 2, 3, 4]
    np.save(tmp_path / "f.npy", np.zeros((2, 1, 28, 28), np.float32))
    assert arrays(tmp_path / "f.npy").labels is None
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(QuantuneError, match=r"an .npz needs an 'inputs' \(or 'x'\) array; it has \['images'\]"):
        arrays(tmp_path / "bad.npz")


def test_nan_and_inf_are_rejected(tmp_path):
    x = np.zeros((3, 1, 28, 28), np.float32)
    x[2, 0, 5, 5] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(QuantuneError, match=r"nan\.npy: input 2 holds NaN or Inf"):
        arrays(tmp_path / "nan.npy")


def test_labels_and_shapes_must_fit_the_model():
    data = LabelledData("d", np.zeros((2, 1, 28, 28), np.float32), np.array([0, 12]))
    with pytest.raises(QuantuneError, match=r"label 12 is out of range for a model with 10 classes"):
        data.check_fits((1, 1, 28, 28), 10)
    with pytest.raises(QuantuneError, match=r"inputs of shape \(1, 28, 28\) do not fit the model's input \(3, 224, 224\)"):
        data.check_fits((1, 3, 224, 224), 10)
    with pytest.raises(QuantuneError, match=r"2 inputs but 1 labels"):
        LabelledData("d", np.zeros((2, 1, 28, 28), np.float32), np.array([0]))
    with pytest.raises(QuantuneError, match=r"labels must lie in \[0, 1\], found -1\.\.0"):
        LabelledData("d", np.zeros((2, 1), np.float32), np.array([-1, 0]), classes=("a", "b"))


def test_preprocess_numerics_and_validation():
    images = np.full((1, 4, 6, 3), 255, np.uint8)
    images[..., 1] = 0
    p = Preprocess(channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = p(images)
    assert out.shape == (1, 3, 4, 6)
    np.testing.assert_allclose(out[0, :, 0, 0], [1.0, -1.0, 1.0])
    gray = Preprocess(channels=1)(images)
    np.testing.assert_allclose(gray[0, 0, 0, 0], 0.299 + 0.114, rtol=1e-6)
    cropped = Preprocess(channels=3, resize=8, crop=8)(np.zeros((2, 16, 20, 3), np.uint8))
    assert cropped.shape == (2, 3, 8, 8)
    assert Preprocess.from_json(p.to_json()) == p
    with pytest.raises(QuantuneError, match=r"mean has 2 values for 3 channels"):
        Preprocess(channels=3, mean=(0.1, 0.2))
    with pytest.raises(QuantuneError, match=r"layout must be one of NCHW, NHWC, not 'CHW'"):
        Preprocess(layout="CHW")
    with pytest.raises(QuantuneError, match=r"cannot center-crop 16x20 images to 32x32; set resize >= 32"):
        Preprocess(crop=32)(np.zeros((1, 16, 20), np.uint8))


def test_load_data_spec_errors(tmp_path):
    with pytest.raises(QuantuneError, match=r"--data imagenet: expected fashion-mnist, a folder"):
        load_data("imagenet", FASHION_MNIST_PREPROCESS)
    assert len(load_data("fashion-mnist", FASHION_MNIST_PREPROCESS, limit=50)) == 50


def test_checkpoint_errors_list_the_keys(tmp_path):
    model = zoo_model("resnet18", "small").build()
    state = model.state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(QuantuneError, match=r"bad\.pt does not fit resnet18-small: missing keys \(1\): fc\.bias; "
                                            r"unexpected keys \(1\): extra\.weight; shape mismatches \(1\): "
                                            r"conv1\.weight \(1, 1, 1, 1\) vs \(32, 1, 3, 3\)"):
        load_weights(model, tmp_path / "bad.pt", "resnet18-small")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(QuantuneError, match=r"junk\.pt: not a PyTorch checkpoint"):
        load_weights(model, tmp_path / "junk.pt", "resnet18-small")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(QuantuneError, match=r"list\.pt: expected a state_dict"):
        load_weights(model, tmp_path / "list.pt", "resnet18-small")


def test_good_checkpoint_round_trips(tmp_path):
    torch.manual_seed(3)
    model = zoo_model("squeezenet1_1", "small").build()
    torch.save(model.state_dict(), tmp_path / "ok.pt")
    loaded = load_weights(zoo_model("squeezenet1_1", "small").build(), tmp_path / "ok.pt", "squeezenet1_1-small")
    x = torch.randn(1, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))
