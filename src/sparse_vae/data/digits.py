"""scikit-learn's 8x8 handwritten digits: the offline stand-in for MNIST.

The 1797 images ship inside scikit-learn, so the offline study needs no network. Pixel counts run
0..16 (each pixel counts 4x4 blocks of a 32x32 bitmap), hence the division by 16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.data.io import Dataset, array_checksum

PARAMS = ("test_fraction", "seed")


def build(params: dict[str, Any], root: Path | None = None) -> Dataset:
    """Split stratified by digit (so both splits have every class in proportion); ``root`` unused."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.asarray(digits.data, dtype=np.float64)
    labels = np.asarray(digits.target, dtype=np.int64)
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        index, test_size=float(params["test_fraction"]), stratify=labels, random_state=int(params["seed"])
    )
    # Sorted so the files list examples in the source's order (and the split is a pure index set).
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    x = (images / 16.0).astype(np.float32)
    return Dataset(
        x_train=x[train_idx],
        x_test=x[test_idx],
        image_shape=(8, 8),
        y_train=labels[train_idx],
        y_test=labels[test_idx],
        metadata={
            "description": "sklearn.datasets.load_digits: 8x8 handwritten digits 0-9",
            "preprocessing": [
                "x = pixel / 16  (pixel counts 0..16)",
                "split: sklearn train_test_split(test_size=test_fraction, stratify=labels, "
                "random_state=seed), indices sorted",
            ],
            "checksums": {"inputs_sha256": array_checksum(images, labels)},
        },
    )
