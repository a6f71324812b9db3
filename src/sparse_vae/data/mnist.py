"""MNIST through torchvision (the talk's task 2), and the IDX-format reader Fashion-MNIST shares.

Downloading is torchvision's own code, which checks each archive's md5 sum. Cluster nodes often
have no network, so ``download`` runs as a local job, and when it cannot reach the mirrors the error
says exactly which files to copy where (or to use the offline preset instead).

Both MNIST-format sources (``mnist``, ``fashion_mnist``) are described by an :class:`IdxSource`
and read by the same functions: torchvision's class of that name reads the four raw IDX files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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
RAW_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]
OFFLINE_HINT = ("or run the offline study, which needs no download: "
                "snakemake --cores 2 --configfile presets/offline.yaml")


@dataclass(frozen=True)
class IdxSource:
    """A 28x28 dataset in MNIST's IDX format that a torchvision class reads from <root>/<class>/raw."""

    source: str             # the study's source name (``--source``)
    title: str              # for messages
    torchvision_class: str  # class in torchvision.datasets; also the folder under the data root
    description: str        # recorded in the prepared file's metadata
    hint: str               # how else to get the files, appended to "missing files" errors

    def raw_folder(self, root: Path) -> Path:
        """Where torchvision keeps (and looks for) the raw IDX files."""
        return Path(root) / self.torchvision_class / "raw"

    def dataset_class(self) -> Any:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)


MNIST = IdxSource(
    source="mnist", title="MNIST", torchvision_class="MNIST",
    description="MNIST handwritten digits (torchvision.datasets.MNIST, raw IDX files)",
    hint=OFFLINE_HINT,
)


def raw_folder(root: Path) -> Path:
    """Where torchvision's MNIST keeps (and looks for) the raw IDX files."""
    return MNIST.raw_folder(root)


def missing_files(idx: IdxSource, root: Path) -> list[str]:
    """Raw IDX files (uncompressed, as torchvision reads them) not yet under the data root."""
    folder = idx.raw_folder(root)
    return [name for name in RAW_FILES if not (folder / name).is_file()]


def torchvision_download(idx: IdxSource, root: Path) -> None:
    """Fetch and md5-verify the four archives with torchvision (nothing is fetched if present).

    torchvision skips the download of an archive already in the raw folder with the right md5 and
    only extracts it, so archives copied there by hand (or from a package) are checked the same way.
    """
    folder = idx.raw_folder(root)
    cls = idx.dataset_class()
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as error:  # torchvision raises RuntimeError/URLError/OSError: report, don't dump
        reason = " ".join(str(error).split())[:300] or "no detail"  # torchvision's is multi-line
        files = ", ".join(f"{name}.gz" for name in RAW_FILES)
        raise DataError(
            f"{idx.title} files are missing from {folder} (or fail their md5 check) and could not be "
            f"downloaded ({type(error).__name__}: {reason}). "
            f"Without network, copy {files} (md5-checked when extracted; the uncompressed files also "
            f"work) into {folder}/ and rerun; {idx.hint}"
        ) from None


def download(root: Path) -> None:
    """Fetch and md5-verify MNIST's four archives with torchvision (nothing is fetched if present)."""
    torchvision_download(MNIST, root)


def load_split(idx: IdxSource, root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) read by torchvision from the raw IDX files."""
    folder = idx.raw_folder(root)
    files = ", ".join(str(folder / name) for name in SPLIT_FILES["train" if train else "test"])
    try:
        data = idx.dataset_class()(str(root), train=train, download=False)
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError, IndexError, OSError) as error:
        raise DataError(
            f"cannot read {idx.title} from {files}: corrupt IDX file ({type(error).__name__}: {error})"
        ) from None
    images, labels = data.data.numpy(), data.targets.numpy().astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"{files}: expected N 28x28 images and N labels, got {images.shape} and {labels.shape}")
    return images, labels


def build_idx(idx: IdxSource, params: dict[str, Any], root: Path) -> Dataset:
    """x = pixel / 255 flattened to 784, with labels; optional seeded subsample."""
    missing = missing_files(idx, root)
    if missing:
        raise DataError(
            f"{idx.title} raw files missing in {idx.raw_folder(root)}: {', '.join(missing)}. Run "
            f"`python -m sparse_vae download --source {idx.source} --root {root}` (it also extracts "
            f".gz files placed there by hand); {idx.hint}"
        )
    train_images, train_labels = load_split(idx, root, train=True)
    test_images, test_labels = load_split(idx, root, train=False)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(params["seed"])).spawn(2))
    train_idx = subsample(params["n_train"], len(train_images), train_rng, f"{idx.title} n_train")
    test_idx = subsample(params["n_test"], len(test_images), test_rng, f"{idx.title} n_test")

    def flat(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0))

    folder = idx.raw_folder(root)
    inputs = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in RAW_FILES}
    return Dataset(
        x_train=flat(train_images[train_idx]),
        x_test=flat(test_images[test_idx]),
        image_shape=(28, 28),
        y_train=train_labels[train_idx],
        y_test=test_labels[test_idx],
        metadata={
            "description": idx.description,
            "preprocessing": [
                "x = pixel / 255, flattened row-major to 784",
                "subsample (when n_train / n_test are set): numpy default_rng on "
                "SeedSequence(seed).spawn(2) [train, test], choice without replacement, indices sorted",
            ],
            "checksums": {"inputs_sha256": inputs},
        },
    )


def build(params: dict[str, Any], root: Path) -> Dataset:
    """MNIST as x = pixel / 255 flattened to 784, with labels; optional seeded subsample."""
    return build_idx(MNIST, params, root)
