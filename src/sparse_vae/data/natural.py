"""Grayscale patches of natural photographs: the offline stand-in for CIFAR (and the classic
setting where sparse codes of whitened patches give localised, oriented receptive fields).

The photographs are the two that ship with scikit-learn (``china.jpg``, ``flower.jpg``, read by
PIL through ``load_sample_images``), so nothing is downloaded. Train patches come from the left
half of each photograph and test patches from the right half: the splits share no pixel, so the
test score is not inflated by overlapping patches.

Optional whitening (PCA or ZCA) is fitted on the train patches only. Whitened values are not
pixels; they are mapped affinely into [0, 1] for storage, and ``sparse_vae.analysis.display.for_display``
undoes the whole chain for figures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = ("patch_size", "n_train", "n_test", "whiten", "seed")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as for CIFAR
# Eigenvalue regulariser, relative to the mean eigenvalue so it does not depend on the pixel scale:
# small enough that the whitened train covariance is the identity to ~1e-3 on well-conditioned
# directions, large enough that near-null directions (flat patches) are not blown up to infinity.
EPSILON_RELATIVE = 1e-4
DISPLAY_OFFSET = 0.5


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (..., 3) uint8 array, scaled to [0, 1] by the 8-bit range."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.clip(rgb @ np.asarray(LUMA), 0.0, 1.0)  # the weights sum to 1 up to rounding


def _cut(images: list[np.ndarray], n: int, size: int, half: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` random size x size patches, taken alternately from each image, inside one half of it."""
    patches = np.empty((n, size * size))
    for i in range(n):
        image = images[i % len(images)]
        height, width = image.shape
        lo, hi = (0, width // 2) if half == "left" else (width // 2, width)
        if hi - lo < size or height < size:
            raise DataError(f"natural: patch_size {size} does not fit in a {height}x{hi - lo} image half")
        top = rng.integers(0, height - size + 1)
        left = rng.integers(lo, hi - size + 1)
        patches[i] = image[top:top + size, left:left + size].ravel()
    return patches


def whitening_matrices(train: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(whitening, dewhitening, mean, epsilon) from the train patches' covariance.

    Row-vector convention: ``whitened = (x - mean) @ whitening`` and
    ``x = whitened @ dewhitening + mean``. PCA rotates onto the eigenvectors (components in
    decreasing variance); ZCA rotates back, so whitened patches still look like patches.
    """
    mean = train.mean(axis=0)
    centred = train - mean
    covariance = centred.T @ centred / len(train)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0.0, None), eigenvectors[:, order]
    epsilon = EPSILON_RELATIVE * float(eigenvalues.mean())
    inv_sqrt = 1.0 / np.sqrt(eigenvalues + epsilon)
    sqrt = np.sqrt(eigenvalues + epsilon)
    if method == "pca":
        whitening = eigenvectors * inv_sqrt
        dewhitening = (eigenvectors * sqrt).T
    elif method == "zca":
        whitening = (eigenvectors * inv_sqrt) @ eigenvectors.T
        dewhitening = (eigenvectors * sqrt) @ eigenvectors.T
    else:
        raise DataError(f"natural: unknown whiten {method!r} (none | pca | zca)")
    return whitening, dewhitening, mean, epsilon


def build(params: dict[str, Any], root: Path | None = None) -> Dataset:
    """Cut, optionally whiten, and store patches; ``root`` is unused (the photos ship with sklearn)."""
    from sklearn.datasets import load_sample_images

    try:
        bunch = load_sample_images()
    except Exception as error:  # PIL missing or a broken sklearn install: say which, not a traceback
        raise DataError(
            f"natural: cannot read scikit-learn's sample images ({type(error).__name__}: {error})"
        ) from None
    names = [Path(f).name for f in bunch.filenames]
    file_sha = {}
    for filename in bunch.filenames:
        file_sha[Path(filename).name] = hashlib.sha256(Path(filename).read_bytes()).hexdigest()
    images = [grayscale(image) for image in bunch.images]

    size, method = int(params["patch_size"]), params["whiten"]
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(params["seed"])).spawn(2))
    train = _cut(images, int(params["n_train"]), size, "left", train_rng)
    test = _cut(images, int(params["n_test"]), size, "right", test_rng)

    preprocessing = [
        f"gray = ({LUMA[0]} R + {LUMA[1]} G + {LUMA[2]} B) / 255  (ITU-R BT.601 luma, 8-bit scale)",
        "patches: uniform random positions, image i % n_images for patch i; train from the left "
        "half (columns < width // 2) of each photo, test from the right half",
        "no per-patch mean removal",
    ]
    metadata: dict[str, Any] = {
        "description": "grayscale patches of scikit-learn's sample photographs",
        "images": names,
        "split": "train patches from the left half of each image, test patches from the right half",
        "whiten": method,
        "checksums": {"inputs_sha256": file_sha},
    }
    extras: dict[str, np.ndarray] = {}
    if method != "none":
        whitening, dewhitening, mean, epsilon = whitening_matrices(train, method)
        white_train, white_test = (train - mean) @ whitening, (test - mean) @ whitening
        extreme = max(np.abs(white_train).max(), np.abs(white_test).max())
        scale = DISPLAY_OFFSET / extreme
        train = DISPLAY_OFFSET + scale * white_train
        test = DISPLAY_OFFSET + scale * white_test
        preprocessing += [
            "covariance C = (train - patch_mean)^T (train - patch_mean) / n_train = E diag(l) E^T",
            f"epsilon = {EPSILON_RELATIVE} * mean(l) = {epsilon:.6g}",
            "pca: whitening = E diag(1/sqrt(l + epsilon)), dewhitening = diag(sqrt(l + epsilon)) E^T"
            if method == "pca" else
            "zca: whitening = E diag(1/sqrt(l + epsilon)) E^T, dewhitening = E diag(sqrt(l + epsilon)) E^T",
            "whitened = (patch - patch_mean) @ whitening;  patch = whitened @ dewhitening + patch_mean",
            "x = display_offset + display_scale * whitened; display_scale = display_offset / "
            "max|whitened| over train and test",
        ]
        metadata.update(display_offset=DISPLAY_OFFSET, display_scale=float(scale), whiten_epsilon=epsilon)
        extras = {
            "whitening": whitening.astype(np.float32),
            "dewhitening": dewhitening.astype(np.float32),
            "patch_mean": mean.astype(np.float32),
        }
    metadata["preprocessing"] = preprocessing
    x_train, x_test = train.astype(np.float32), test.astype(np.float32)
    # float32 rounding of values a hair inside [0, 1] can not leave it; this guards the formulas.
    assert 0.0 <= min(x_train.min(), x_test.min()) and max(x_train.max(), x_test.max()) <= 1.0
    return Dataset(x_train=x_train, x_test=x_test, image_shape=(size, size), extras=extras, metadata=metadata)
