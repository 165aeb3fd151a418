"""Datasets and preprocessing."""
from .datasets import (FASHION_MNIST_PREPROCESS, LabelledData, arrays, fashion_mnist,  # noqa: F401
                       image_folder)
from .preprocess import Preprocess  # noqa: F401
