"""MNIST through torchvision: the talk's task 2.

Downloading is torchvision's own code, which checks each archive's md5 sum. Cluster nodes often
have no network, so ``download`` runs as a local job, and when it cannot reach the mirrors the error
says exactly which files to copy where (or to use the offline preset instead).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.data import subsample
from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = ("n_train", "n_test", "seed")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
OFFLINE_HINT = ("or run the offline study, which needs no download: "
                "snakemake --cores 2 --configfile presets/offline.yaml")


def raw_folder(root: Path) -> Path:
    """Where torchvision's MNIST keeps (and looks for) the raw IDX files."""
    return Path(root) / "MNIST" / "raw"


def _missing(root: Path) -> list[str]:
    folder = raw_folder(root)
    return [name for names in SPLIT_FILES.values() for name in names if not (folder / name).is_file()]


def download(root: Path) -> None:
    """Fetch and md5-verify the four archives with torchvision (nothing is fetched if present)."""
    from torchvision.datasets import MNIST

    folder = raw_folder(root)
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as error:  # torchvision raises RuntimeError/URLError/OSError: report, don't dump
        reason = " ".join(str(error).split())[:300] or "no detail"  # torchvision's is multi-line
        files = ", ".join(f"{name}.gz" for names in SPLIT_FILES.values() for name in names)
        raise DataError(
            f"MNIST files are missing from {folder} (or fail their md5 check) and could not be "
            f"downloaded ({type(error).__name__}: {reason}). "
            f"Without network, copy {files} (md5-checked when extracted; the uncompressed files also "
            f"work) into {folder}/ and rerun; {OFFLINE_HINT}"
        ) from None


def _load_split(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) read by torchvision from the raw IDX files."""
    from torchvision.datasets import MNIST

    files = ", ".join(str(raw_folder(root) / name) for name in SPLIT_FILES["train" if train else "test"])
    try:
        mnist = MNIST(str(root), train=train, download=False)
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError, IndexError, OSError) as error:
        raise DataError(
            f"cannot read MNIST from {files}: corrupt IDX file ({type(error).__name__}: {error})"
        ) from None
    images, labels = mnist.data.numpy(), mnist.targets.numpy().astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"{files}: expected N 28x28 images and N labels, got {images.shape} and {labels.shape}")
    return images, labels


def build(params: dict[str, Any], root: Path) -> Dataset:
    """MNIST as x = pixel / 255 flattened to 784, with labels; optional seeded subsample."""
    missing = _missing(root)
    if missing:
        raise DataError(
            f"MNIST raw files missing in {raw_folder(root)}: {', '.join(missing)}. Run "
            f"`python -m sparse_vae download --source mnist --root {root}` (it also extracts .gz files "
            f"placed there by hand); {OFFLINE_HINT}"
        )
    train_images, train_labels = _load_split(root, train=True)
    test_images, test_labels = _load_split(root, train=False)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(params["seed"])).spawn(2))
    train_idx = subsample(params["n_train"], len(train_images), train_rng, "MNIST n_train")
    test_idx = subsample(params["n_test"], len(test_images), test_rng, "MNIST n_test")

    def flat(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0))

    inputs = {
        name: hashlib.sha256((raw_folder(root) / name).read_bytes()).hexdigest()
        for names in SPLIT_FILES.values() for name in names
    }
    return Dataset(
        x_train=flat(train_images[train_idx]),
        x_test=flat(test_images[test_idx]),
        image_shape=(28, 28),
        y_train=train_labels[train_idx],
        y_test=test_labels[test_idx],
        metadata={
            "description": "MNIST handwritten digits (torchvision.datasets.MNIST, raw IDX files)",
            "preprocessing": [
                "x = pixel / 255, flattened row-major to 784",
                "subsample (when n_train / n_test are set): numpy default_rng on "
                "SeedSequence(seed).spawn(2) [train, test], choice without replacement, indices sorted",
            ],
            "checksums": {"inputs_sha256": inputs},
        },
    )
