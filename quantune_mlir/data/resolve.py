"""Turn a --data argument into labelled data: `fashion-mnist`, a folder of class sub-folders, or .npy/.npz."""
from __future__ import annotations

from pathlib import Path

from ..errors import QuantuneError
from .datasets import LabelledData, arrays, fashion_mnist, image_folder
from .preprocess import Preprocess


def load_data(spec: str, preprocess: Preprocess, *, split: str = "test", limit: int | None = None) -> LabelledData:
    if spec == "fashion-mnist":
        data = fashion_mnist(split, preprocess=preprocess, limit=limit)
    elif Path(spec).is_dir():
        data = image_folder(Path(spec), preprocess)
    elif Path(spec).suffix in (".npy", ".npz"):
        data = arrays(Path(spec), preprocess)
    else:
        raise QuantuneError(f"--data {spec}: expected fashion-mnist, a folder with one sub-folder per class, or a "
                            ".npy/.npz file")
    if len(data) == 0:
        raise QuantuneError(f"--data {spec}: no inputs")
    return data.subset(limit) if limit and limit < len(data) else data
