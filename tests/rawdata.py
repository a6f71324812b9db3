"""Tiny raw files in the on-disk formats torchvision reads (IDX for MNIST / Fashion-MNIST, pickled
batches for CIFAR-10), so the readers are tested with no network. Shared by the data tests and the
golden numbers."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (big-endian): two zero bytes, type 0x08 (ubyte), ndim, dims as int32, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_mnist(root: Path, n_train: int = 12, n_test: int = 6, folder: str = "MNIST") -> dict[str, np.ndarray]:
    """The four uncompressed IDX files torchvision's MNIST(download=False) reads (``folder``
    FashionMNIST for Fashion-MNIST's, which has the same format)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) + 3) % 10,
    }
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        write_idx(raw / name, array)
    return arrays


def write_cifar(root: Path, per_batch: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Six pickled batches as torchvision expects: dict with b'data' uint8 (N, 3072), b'labels'."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for b, name in enumerate(CIFAR_BATCHES):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(per_batch) + b) % 10]
        entry = {b"batch_label": name.encode(), b"data": data, b"labels": labels,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = (data, labels)
    return batches
