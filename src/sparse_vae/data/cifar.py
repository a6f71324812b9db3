"""CIFAR-10 as small grayscale images (or patches of them): the talk's task 3.

``download`` is torchvision's, which md5-checks the archive and every batch file. Reading uses our
own loader of the same python-pickle batches instead of ``CIFAR10(download=False)``, for two
reasons: torchvision refuses any file whose md5 differs from the official release (so small test
fixtures could not exercise this code), and plain ``pickle.load`` runs arbitrary code from a
file. The loader unpickles only numpy arrays and plain containers, validates shapes, and names
the file when one is corrupt; an md5 mismatch against torchvision's list only warns.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.data import subsample
from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = ("size", "patch_size", "n_train", "n_test", "seed")
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
SIDE = 32
CHUNK = 2000  # images converted at a time (float64 RGB: 50 MB)
OFFLINE_HINT = ("or run the offline study, which needs no download: "
                "snakemake --cores 2 --configfile presets/offline.yaml")


def batch_folder(root: Path) -> Path:
    """Where torchvision's CIFAR10 extracts (and looks for) the pickled batches."""
    return Path(root) / FOLDER


def download(root: Path) -> None:
    """Fetch the archive with torchvision, which verifies its md5 and those of the batches."""
    from torchvision.datasets import CIFAR10

    folder = batch_folder(root)
    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as error:  # torchvision raises RuntimeError/URLError/OSError: report, don't dump
        reason = " ".join(str(error).split())[:300] or "no detail"  # torchvision's is multi-line
        raise DataError(
            f"CIFAR-10 batches are missing from {folder} (or fail their md5 check) and could not be "
            f"downloaded ({type(error).__name__}: {reason}). "
            f"Without network, put cifar-10-python.tar.gz into {Path(root)}/ (md5-checked, then extracted) "
            f"or its extracted batches ({', '.join(TRAIN_BATCHES + TEST_BATCHES)}, batches.meta) into "
            f"{folder}/ and rerun; {OFFLINE_HINT}"
        ) from None


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and builtins, and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):
            module = "numpy._core.multiarray"  # numpy >= 2 name, avoids the deprecated alias
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as images (N, 3, 32, 32) uint8 and labels (N,) int64; DataError names the file.

    Accepts both the official Python 2 pickles (str keys after latin1 decoding) and batches
    written by Python 3 with bytes keys.
    """
    try:
        with open(path, "rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: CIFAR-10 batch file missing") from None
    except Exception as error:  # any unpickling failure means a corrupt or foreign file
        raise DataError(f"{path}: corrupt CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path}: corrupt CIFAR-10 batch (expected a dict, got {type(entry).__name__})")
    entry = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}
    data, labels = entry.get("data"), entry.get("labels")
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3 * SIDE * SIDE):
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: corrupt CIFAR-10 batch ('data' must be uint8 (N, 3072), got {shape})")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: corrupt CIFAR-10 batch ('labels' is not a list of integers)") from None
    if labels.shape != (len(data),) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(
            f"{path}: corrupt CIFAR-10 batch ({len(data)} labels in 0..9 expected, got {labels.shape})"
        )
    return data.reshape(-1, 3, SIDE, SIDE), labels


def _warn_if_not_official(folder: Path) -> None:
    """Compare md5 sums with torchvision's list of the official files; a mismatch only warns."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    differing = [name for name, md5 in CIFAR10.train_list + CIFAR10.test_list
                 if not check_integrity(str(folder / name), md5)]
    if differing:
        warnings.warn(
            f"{folder}: {', '.join(differing)} differ from the official CIFAR-10 release (md5); "
            "using them anyway", stacklevel=3,
        )


def grayscale(images: np.ndarray) -> np.ndarray:
    """BT.601 luma of (N, 3, H, W) uint8 images, in [0, 1]."""
    rgb = images.astype(np.float64) / 255.0
    gray = LUMA[0] * rgb[:, 0] + LUMA[1] * rgb[:, 1] + LUMA[2] * rgb[:, 2]
    return np.clip(gray, 0.0, 1.0)  # the weights sum to 1 only up to rounding


def resize_method(size: int, side: int = SIDE) -> str:
    """How :func:`area_average` shrinks ``side`` to ``size`` (recorded in the metadata)."""
    if size == side:
        return "none (already the requested size)"
    if side % size == 0:
        f = side // size
        return f"mean over non-overlapping {f}x{f} blocks"
    return (f"torch adaptive_avg_pool2d to {size}x{size} (windows of floor/ceil of {side}/{size} "
            "pixels, overlapping where it does not divide)")


def area_average(images: np.ndarray, size: int) -> np.ndarray:
    """Shrink (N, H, W) to (N, size, size) by averaging pixel areas (no aliasing, unlike sampling)."""
    side = images.shape[-1]
    if size == side:
        return images
    if side % size == 0:
        f = side // size
        return images.reshape(len(images), size, f, size, f).mean(axis=(2, 4))
    import torch

    return torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(images)[:, None], size)[:, 0].numpy()


def random_patches(images: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uniformly placed size x size patch per image (so a patch keeps its image's label)."""
    n, height, width = images.shape
    if n == 0:
        return np.empty((0, size, size))
    tops = rng.integers(0, height - size + 1, size=n)
    lefts = rng.integers(0, width - size + 1, size=n)
    return np.stack([image[t:t + size, l:l + size] for image, t, l in zip(images, tops, lefts)])


def _read_split(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(folder / name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def build(params: dict[str, Any], root: Path) -> Dataset:
    """Grayscale, area-average to ``size``, optionally cut one random patch per image, subsample."""
    folder = batch_folder(root)
    missing = [name for name in TRAIN_BATCHES + TEST_BATCHES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"CIFAR-10 batches missing in {folder}: {', '.join(missing)}. Run "
            f"`python -m sparse_vae download --source cifar --root {root}`; {OFFLINE_HINT}"
        )
    size, patch = int(params["size"]), params["patch_size"]
    if not 2 <= size <= SIDE:
        raise DataError(f"cifar: size must be in 2..{SIDE}, got {size}")
    if patch is not None and not 2 <= int(patch) <= size:
        raise DataError(f"cifar: patch_size must be in 2..size ({size}), got {patch}")
    _warn_if_not_official(folder)
    train_images, train_labels = _read_split(folder, TRAIN_BATCHES)
    test_images, test_labels = _read_split(folder, TEST_BATCHES)

    streams = np.random.SeedSequence(int(params["seed"])).spawn(4)
    sub_train, sub_test, patch_train, patch_test = (np.random.default_rng(s) for s in streams)
    train_idx = subsample(params["n_train"], len(train_images), sub_train, "CIFAR n_train")
    test_idx = subsample(params["n_test"], len(test_images), sub_test, "CIFAR n_test")

    def process(images: np.ndarray, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # In chunks: float64 RGB of all 50000 images would take 1.2 GB.
        chunks = [area_average(grayscale(images[index[i:i + CHUNK]]), size) for i in range(0, len(index), CHUNK)]
        small = np.concatenate(chunks) if chunks else np.empty((0, size, size))
        if patch is not None:
            small = random_patches(small, int(patch), rng)
        return small.reshape(len(small), -1).astype(np.float32)

    x_train = process(train_images, train_idx, patch_train)
    x_test = process(test_images, test_idx, patch_test)
    method = resize_method(size)
    side = size if patch is None else int(patch)
    preprocessing = [
        f"gray = ({LUMA[0]} R + {LUMA[1]} G + {LUMA[2]} B) / 255  (ITU-R BT.601 luma)",
        f"resize {SIDE}x{SIDE} -> {size}x{size}: {method}",
    ]
    if patch is not None:
        preprocessing.append(f"one {patch}x{patch} patch per image at a uniform random position "
                             "(seeded); the patch keeps its image's label")
    preprocessing.append("subsample (when n_train / n_test are set): random subset without replacement "
                         "before patching, indices sorted; numpy default_rng on SeedSequence(seed).spawn(4) "
                         "[train subset, test subset, train patches, test patches]")
    inputs = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
              for name in TRAIN_BATCHES + TEST_BATCHES}
    return Dataset(
        x_train=x_train,
        x_test=x_test,
        image_shape=(side, side),
        y_train=train_labels[train_idx],
        y_test=test_labels[test_idx],
        metadata={
            "description": "CIFAR-10 (python batches, torchvision layout), grayscale",
            "preprocessing": preprocessing,
            "resize_method": method,
            "checksums": {"inputs_sha256": inputs},
        },
    )
