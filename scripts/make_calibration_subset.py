"""Writes quantune_mlir/data/fashion_mnist/train-calibration.npz: the images of Fashion-MNIST's train split that
quantune's default calibration draws (the first CALIBRATION_POOL of the seeded permutation that
`data.datasets.sample_index` uses), so that the defaults need no Debian package.

    python scripts/make_calibration_subset.py [--root /usr/share/datasets/fashion-mnist]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from quantune_mlir.data.datasets import (CALIBRATION_POOL, FASHION_MNIST_DIR, SHIPPED_CALIBRATION,
                                         calibration_permutation, read_idx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=FASHION_MNIST_DIR, help="folder of Debian's IDX files")
    args = parser.parse_args()
    images = read_idx(args.root / "train-images-idx3-ubyte.gz")
    labels = read_idx(args.root / "train-labels-idx1-ubyte.gz")
    order = calibration_permutation(len(images))[:CALIBRATION_POOL]
    np.savez_compressed(SHIPPED_CALIBRATION, order=order.astype(np.int32), images=images[order],
                        labels=labels[order].astype(np.uint8), total=np.int32(len(images)))
    print(f"{SHIPPED_CALIBRATION}: {len(order)} images, {SHIPPED_CALIBRATION.stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
