"""Labelled image data: Fashion-MNIST (shipped in part, whole from Debian's package), a folder of class
sub-folders, .npy/.npz arrays.

Every loader returns a LabelledData: preprocessed float32 inputs and int64 labels (or none), checked.
"""
from __future__ import annotations

import gzip
import logging
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import QuantuneError
from .preprocess import Preprocess

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
SHIPPED_FASHION_MNIST_DIR = Path(__file__).resolve().parent / "fashion_mnist"  # the test split whole
# The train split's images that a seeded calibration subset of up to CALIBRATION_POOL images draws
# (scripts/make_calibration_subset.py), so that calibrating on the defaults needs no Debian package
SHIPPED_CALIBRATION = SHIPPED_FASHION_MNIST_DIR / "train-calibration.npz"
CALIBRATION_POOL = 1024
FASHION_MNIST_APT = "apt-get install -y dataset-fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
# The training set's statistics, computed once with scripts/train_zoo.py's loader
FASHION_MNIST_PREPROCESS = Preprocess(channels=1, mean=(0.2860,), std=(0.3530,))
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp")


@dataclass(frozen=True)
class LabelledData:
    name: str
    inputs: np.ndarray  # float32, the model's layout
    labels: np.ndarray | None  # int64, one per input
    classes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.inputs.dtype != np.float32:
            raise QuantuneError(f"{self.name}: inputs must be float32, not {self.inputs.dtype}")
        if not np.isfinite(self.inputs).all():
            bad = int(np.argmax((~np.isfinite(self.inputs.reshape(len(self.inputs), -1))).any(axis=1)))
            raise QuantuneError(f"{self.name}: input {bad} holds NaN or Inf; clean the data before use")
        if self.labels is not None:
            if len(self.labels) != len(self.inputs):
                raise QuantuneError(f"{self.name}: {len(self.inputs)} inputs but {len(self.labels)} labels")
            if self.classes and len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
                raise QuantuneError(f"{self.name}: labels must lie in [0, {len(self.classes) - 1}], found "
                                    f"{int(self.labels.min())}..{int(self.labels.max())}")

    def __len__(self) -> int:
        return len(self.inputs)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield self.inputs[start:stop], None if self.labels is None else self.labels[start:stop]

    def subset(self, count: int, seed: int = 0) -> "LabelledData":
        """A seeded random subset (e.g. for calibration)."""
        index = sample_index(len(self), count, seed)
        return LabelledData(f"{self.name}[{count}]", self.inputs[index],
                            None if self.labels is None else self.labels[index], self.classes)

    def check_fits(self, input_shape: tuple[int, ...], num_classes: int | None = None) -> None:
        """The model takes (batch, *input_shape[1:]) inputs and predicts num_classes classes."""
        if tuple(self.inputs.shape[1:]) != tuple(input_shape[1:]):
            wanted = tuple(input_shape[1:])
            raise QuantuneError(f"{self.name}: inputs of shape {tuple(self.inputs.shape[1:])} do not fit the "
                                f"model's input {wanted} (each input, after preprocessing); give images of the "
                                "model's size, or float32 model-ready inputs of shape "
                                f"(N, {', '.join(map(str, wanted))}), or set the preprocessing (channels, resize, "
                                "crop, layout) to match")
        if num_classes is None or self.labels is None or not len(self.labels):
            return
        low, high = int(self.labels.min()), int(self.labels.max())
        if low < 0 or high >= num_classes:
            raise QuantuneError(f"{self.name}: label {low if low < 0 else high} is out of range for a model with "
                                f"{num_classes} classes (labels must lie in [0, {num_classes - 1}])")


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise QuantuneError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def calibration_permutation(total: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(total)


def sample_index(total: int, count: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of count items out of total (all of them when count is None)."""
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(calibration_permutation(total, seed)[:count])


def fashion_mnist(split: str = "test", *, root: Path | None = None,
                  preprocess: Preprocess = FASHION_MNIST_PREPROCESS, limit: int | None = None) -> LabelledData:
    """The 60k training or 10k test images of Fashion-MNIST (MIT licence): from root if given, else from Debian's
    dataset-fashion-mnist, else from the copies shipped with quantune (the test split whole; of the train split,
    the images that a subset of at most CALIBRATION_POOL draws). With limit, the seeded subset that
    LabelledData.subset(limit) picks, chosen before preprocessing: 60k images resized to 224x224x3 would take
    36 GB."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise QuantuneError(f"Fashion-MNIST has splits train and test, not '{split}'")
    name = f"fashion-mnist-{split}"
    debian_has_it = (FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz").is_file()
    if root is None and split == "train" and not debian_has_it and limit is not None and limit <= CALIBRATION_POOL:
        images, labels = _shipped_calibration_subset(limit)
        return LabelledData(f"{name}[{limit}]", preprocess(images), labels, FASHION_MNIST_CLASSES)
    if root is None:
        root = FASHION_MNIST_DIR if debian_has_it or split == "train" else SHIPPED_FASHION_MNIST_DIR
    root = Path(root)
    images_path, labels_path = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            shipped = (f" (quantune ships {CALIBRATION_POOL} of its images: enough for a limit of at most "
                       f"{CALIBRATION_POOL})" if split == "train" else "")
            raise QuantuneError(f"{path} is missing{shipped}: install Debian's package with `{FASHION_MNIST_APT}`, "
                                "or pass the folder holding the IDX files")
    images, labels = read_idx(images_path), read_idx(labels_path).astype(np.int64)
    if limit is not None and limit < len(images):
        index = sample_index(len(images), limit)
        images, labels, name = images[index], labels[index], f"{name}[{limit}]"
    return LabelledData(name, preprocess(images), labels, FASHION_MNIST_CLASSES)


def _shipped_calibration_subset(limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The train split's images at sample_index(60000, limit), from the shipped pool: the same images, in the
    same order, as from the whole split."""
    with np.load(SHIPPED_CALIBRATION) as pool:
        order, images, labels = pool["order"], pool["images"], pool["labels"]
    chosen = np.argsort(order[:limit], kind="stable")
    return images[chosen], labels[chosen].astype(np.int64)


def image_folder(root: Path, preprocess: Preprocess) -> LabelledData:
    """root/<class>/<image>: classes in sorted order, as torchvision's ImageFolder does."""
    from PIL import Image, UnidentifiedImageError
    root = Path(root)
    if not root.is_dir():
        raise QuantuneError(f"{root}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise QuantuneError(f"{root} has no class sub-folders: expected {root}/<class>/<image>")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as img:
                    pixels = np.asarray(img.convert("RGB" if preprocess.channels == 3 else "L"))
            except (UnidentifiedImageError, OSError) as e:
                raise QuantuneError(f"{path}: not a readable image ({e})") from None
            images.append(preprocess(pixels[None]))
            labels.append(label)
    if not images:
        raise QuantuneError(f"{root}: the class folders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    shapes = {x.shape for x in images}
    if len(shapes) > 1:
        raise QuantuneError(f"{root}: images have different sizes after preprocessing ({sorted(shapes)[:3]}); "
                            "set resize and crop")
    return LabelledData(root.name, np.concatenate(images), np.asarray(labels, np.int64), tuple(classes))


def arrays(path: Path, preprocess: Preprocess | None = None) -> LabelledData:
    """.npy (inputs only) or .npz with `inputs` (or `x`) and optional `labels` (or `y`). uint8 images go
    through preprocess (None: the model's is unknown, so only model-ready float inputs are taken); float arrays
    are taken as model inputs already."""
    path = Path(path)
    found = read_arrays(path)
    input_key = next((k for k in ("inputs", "x") if k in found), None)
    if input_key is None:
        raise QuantuneError(f"{path}: an .npz needs an 'inputs' (or 'x') array; it has {sorted(found)}")
    inputs = _model_inputs(path, input_key, found[input_key])
    label_key = next((k for k in ("labels", "y") if k in found), None)
    labels = _labels(path, label_key, found[label_key]) if label_key else None
    if inputs.dtype == np.uint8:
        if preprocess is None:
            raise QuantuneError(f"{path}: uint8 images need the model's preprocessing, which quantune knows only "
                                "for zoo models; for any other model (an ONNX file) save float32 model-ready inputs "
                                "in the .npy/.npz")
        inputs = preprocess(_images(path, inputs))
    return LabelledData(path.name, inputs.astype(np.float32), labels)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .npy (as 'inputs') or .npz (in the order saved), read now so that a truncated file or
    an object array fails here, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise QuantuneError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"inputs": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _unreadable(path, e) from None


def _unreadable(path: Path, error: Exception) -> QuantuneError:
    text = str(error).strip()
    if "Object arrays" in text:  # what allow_pickle=False says of dtype=object
        return QuantuneError(f"{path}: holds an object array, which quantune does not load (reading it would run "
                             "pickle); save numeric arrays: float32 model-ready inputs or uint8 images")
    if "pickled" in text:
        return QuantuneError(f"{path}: not a numpy array file (numpy takes it for pickled Python data, which "
                             "quantune does not load); save numeric arrays with np.save or np.savez")
    first = text.splitlines()[0] if text else type(error).__name__
    return QuantuneError(f"{path}: not a readable .npy/.npz file ({first}); it may be truncated: copy it again, "
                         "or save it again with np.save or np.savez")


def _model_inputs(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    """array, if it can be model inputs: floats (taken as they are) or uint8 images. Other integers are refused:
    as floats they would reach the model unscaled, and as images their range is unknown."""
    if array.dtype.kind == "f" or array.dtype == np.uint8:
        if array.ndim < 2:
            raise QuantuneError(f"{path}: '{key}' has shape {array.shape}; expected a batch of inputs (N, ...), "
                                "one per row")
        return array
    kind = " (text)" if array.dtype.kind in "US" else ""
    raise QuantuneError(f"{path}: '{key}' has dtype {array.dtype}{kind}; pass float32 model-ready inputs or uint8 "
                        "images (0-255)")


def _images(path: Path, images: np.ndarray) -> np.ndarray:
    """uint8 images as Preprocess takes them: (N, H, W) or channels last."""
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3)):
        return images
    raise QuantuneError(f"{path}: uint8 images of shape {images.shape}; expected (N, H, W) or (N, H, W, C) with C "
                        "1 or 3 (channels last: transpose channels-first images)")


def _labels(path: Path, key: str, labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise QuantuneError(f"{path}: '{key}' has dtype {labels.dtype}; save the labels as integer class indices")
    if labels.ndim != 1:
        raise QuantuneError(f"{path}: '{key}' has shape {labels.shape}; save one class index per input, shape (N,) "
                            "(for one-hot labels, their argmax)")
    if len(labels) and labels.min() < 0:
        raise QuantuneError(f"{path}: '{key}' holds the negative label {int(labels.min())}; labels are class indices "
                            "from 0")
    return labels.astype(np.int64)
