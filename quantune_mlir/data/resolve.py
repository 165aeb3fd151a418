"""Turn a --data argument into labelled data: `fashion-mnist`, a folder of class sub-folders, or .npy/.npz."""
from __future__ import annotations

from pathlib import Path

from ..errors import QuantuneError
from .datasets import LabelledData, arrays, fashion_mnist, image_folder
from .preprocess import Preprocess


def load_data(spec: str, preprocess: Preprocess | None, *, split: str = "test", limit: int | None = None
              ) -> LabelledData:
    """preprocess None: the model's preprocessing is unknown, so only model-ready float arrays are taken."""
    is_arrays = Path(spec).suffix in (".npy", ".npz")
    if spec != "fashion-mnist" and not Path(spec).is_dir() and not is_arrays:
        raise QuantuneError(f"--data {spec}: expected fashion-mnist, a folder with one sub-folder per class, or a "
                            ".npy/.npz file")
    if preprocess is None and not is_arrays:
        raise QuantuneError(f"{spec}: quantune knows no preprocessing for this model (only for zoo models), so it "
                            "cannot make its inputs from images; pass float32 model-ready inputs in a .npy/.npz")
    if is_arrays:
        data = arrays(Path(spec), preprocess)
    elif spec == "fashion-mnist":
        data = fashion_mnist(split, preprocess=preprocess, limit=limit)
    else:
        data = image_folder(Path(spec), preprocess)
    if len(data) == 0:
        raise QuantuneError(f"{spec}: holds no inputs; give at least one")
    return data.subset(limit) if limit and limit < len(data) else data
