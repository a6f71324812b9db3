"""Grayscale patches of natural photographs: the offline stand-in for CIFAR, and the classic
setting where sparse codes of whitened patches give localised, oriented receptive fields.

Photographs (prepare key ``images``) ship inside installed packages, so nothing is downloaded:
scikit-learn's two sample photos (``china.jpg``, ``flower.jpg``; the default) and the photographs
in scikit-image's ``skimage.data`` (see ``SKIMAGE_PHOTOS``). Two photos of buildings dominated by
roof tiles teach a dictionary full-patch gratings; a varied set of scenes and textures gives the
localised edges of the sparse-coding literature (see config.yaml). Train patches come from the
left half of each photograph and test patches from the right half: the splits share no pixel.

Whitening (prepare key ``whiten``):
* ``pca`` / ``zca``: fitted on the train patches' covariance, eigenvalues regularised by
  ``whiten_epsilon`` x their mean (default 1e-4; a large value is a low-pass filter);
* ``olshausen_field``: Olshausen & Field (1996): each image half is filtered as a whole, before
  cutting, by R(f) = f exp(-(f/f0)^4) (whitening of the 1/f amplitude spectrum times a low-pass),
  ``whiten_f0`` in cycles per pixel (theirs: 200 cycles per 512-pixel picture = 0.39), and
  rescaled to unit variance (their images were scaled to equal variance).
Every whitened variant is then scaled so that the train pixels have unit variance on average.
Whitened values are not pixels. Storage (prepare key ``scale``):
* ``unit_interval`` (the default): mapped affinely into [0, 1] (grey 0.5 = 0; ``metadata.data_sd``
  = the stored pixel sd, ~0.02);
* ``unit_variance``: stored as they are, real values with unit mean pixel variance (metadata
  ``value_range: real``), as in Olshausen & Field and Barello et al.: a linear decoder's weights
  and a fixed noise sd then live at scale ~1, where default initialisation and Adam's step fit.
``sparse_vae.analysis.display.for_display`` undoes the PCA/ZCA chain for figures (filtered images
are shown as they are, as in the paper).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = ("patch_size", "n_train", "n_test", "whiten", "seed")
# Keys that may be left out, with the value that reproduces the data prepared before they existed.
OPTIONAL = {"images": ["china.jpg", "flower.jpg"], "whiten_epsilon": 1e-4, "whiten_f0": 0.39,
            "scale": "unit_interval"}
WHITEN = ("none", "pca", "zca", "olshausen_field")
SCALES = ("unit_interval", "unit_variance")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
# Photographs (not drawings, microscopy or synthetic images) in the scikit-image wheel.
SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "grass", "gravel", "brick", "rocket",
                  "moon", "coins", "clock", "cat")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as for CIFAR
DISPLAY_OFFSET = 0.5


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (..., 3) uint8 array (or a 2-D grey one), scaled to [0, 1] by the 8-bit range."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    if rgb.ndim == 2:
        return rgb
    return np.clip(rgb[..., :3] @ np.asarray(LUMA), 0.0, 1.0)  # the weights sum to 1 up to rounding


def full_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the optional keys filled in (what the data actually used)."""
    return {**OPTIONAL, **params}


def load_photos(names: list[str]) -> tuple[list[np.ndarray], dict[str, str]]:
    """Grey images in [0, 1] and a sha256 per photo (of the file for scikit-learn's, of the pixels
    for scikit-image's, whose loader may decode from a cache)."""
    if not isinstance(names, list) or not names or len(set(names)) != len(names):
        raise DataError(f"natural: images must be a non-empty list of distinct names, got {names!r}")
    unknown = [n for n in names if n not in SKLEARN_PHOTOS + SKIMAGE_PHOTOS]
    if unknown:
        raise DataError(f"natural: unknown images {', '.join(map(str, unknown))} "
                        f"(known: {', '.join(SKLEARN_PHOTOS + SKIMAGE_PHOTOS)})")
    images, sha = [], {}
    for name in names:
        try:
            if name in SKLEARN_PHOTOS:
                from sklearn.datasets import load_sample_images

                bunch = load_sample_images()
                index = [Path(f).name for f in bunch.filenames].index(name)
                pixels = bunch.images[index]
                sha[name] = hashlib.sha256(Path(bunch.filenames[index]).read_bytes()).hexdigest()
            else:
                import skimage.data

                pixels = np.asarray(getattr(skimage.data, name)())
                sha[name] = "pixels:" + hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
        except Exception as error:  # a missing package or a broken install: say which, not a traceback
            raise DataError(f"natural: cannot read image {name!r} ({type(error).__name__}: {error})") from None
        images.append(grayscale(pixels))
    return images, sha


def halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) halves: columns < width // 2 for train, the rest for test."""
    middle = image.shape[1] // 2
    return image[:, :middle], image[:, middle:]


def olshausen_field_filter(image: np.ndarray, f0: float) -> np.ndarray:
    """Filter a whole image by R(f) = f exp(-(f/f0)^4) (f radial, cycles per pixel), unit variance.

    Reflect-padding to twice the size keeps the FFT's wrap-around from painting edges at the
    borders. R(0) = 0 removes the mean.
    """
    height, width = image.shape
    padded = np.pad(image - image.mean(), ((height // 2, height // 2), (width // 2, width // 2)), mode="reflect")
    fy = np.fft.fftfreq(padded.shape[0])[:, None]
    fx = np.fft.rfftfreq(padded.shape[1])[None, :]
    f = np.hypot(fy, fx)
    filtered = np.fft.irfft2(np.fft.rfft2(padded) * f * np.exp(-((f / f0) ** 4)), s=padded.shape)
    filtered = filtered[height // 2:height // 2 + height, width // 2:width // 2 + width]
    return filtered / filtered.std()


def cut(images: list[np.ndarray], n: int, size: int, rng: np.random.Generator, split: str) -> np.ndarray:
    """``n`` random size x size patches, taken alternately from each image."""
    for image in images:
        if min(image.shape) < size:
            raise DataError(f"natural: patch_size {size} does not fit in a {split} image half of "
                            f"{image.shape[0]}x{image.shape[1]}")
    patches = np.empty((n, size * size))
    for i in range(n):
        image = images[i % len(images)]
        top = rng.integers(0, image.shape[0] - size + 1)
        left = rng.integers(0, image.shape[1] - size + 1)
        patches[i] = image[top:top + size, left:left + size].ravel()
    return patches


def whitening_matrices(train: np.ndarray, method: str, epsilon_relative: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(whitening, dewhitening, mean, epsilon) from the train patches' covariance.

    Row-vector convention: ``whitened = (x - mean) @ whitening`` and
    ``x = whitened @ dewhitening + mean``. PCA rotates onto the eigenvectors (components in
    decreasing variance); ZCA rotates back, so whitened patches still look like patches. The
    eigenvalue regulariser is relative to the mean eigenvalue, so it does not depend on the pixel
    scale: 1e-4 leaves the whitened covariance the identity to ~1e-3 while flat directions are not
    blown up to infinity; ~1 or more damps the high frequencies (a low-pass, like R(f)'s).
    """
    mean = train.mean(axis=0)
    centred = train - mean
    covariance = centred.T @ centred / len(train)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0.0, None), eigenvectors[:, order]
    epsilon = epsilon_relative * float(eigenvalues.mean())
    inv_sqrt = 1.0 / np.sqrt(eigenvalues + epsilon)
    sqrt = np.sqrt(eigenvalues + epsilon)
    if method == "pca":
        whitening = eigenvectors * inv_sqrt
        dewhitening = (eigenvectors * sqrt).T
    else:
        whitening = (eigenvectors * inv_sqrt) @ eigenvectors.T
        dewhitening = (eigenvectors * sqrt) @ eigenvectors.T
    return whitening, dewhitening, mean, epsilon


def _check(params: dict[str, Any]) -> None:
    if params["whiten"] not in WHITEN:
        raise DataError(f"natural: unknown whiten {params['whiten']!r} ({' | '.join(WHITEN)})")
    if not float(params["whiten_epsilon"]) > 0:
        raise DataError(f"natural: whiten_epsilon must be > 0, got {params['whiten_epsilon']!r}")
    if not 0 < float(params["whiten_f0"]) <= 0.5:
        raise DataError(f"natural: whiten_f0 must be in (0, 0.5] cycles per pixel, got {params['whiten_f0']!r}")
    if params["scale"] not in SCALES:
        raise DataError(f"natural: unknown scale {params['scale']!r} ({' | '.join(SCALES)})")
    if params["scale"] == "unit_variance" and params["whiten"] == "none":
        raise DataError("natural: scale unit_variance needs whiten other than none (raw pixels stay in [0, 1])")


def build(params: dict[str, Any], root: Path | None = None) -> Dataset:
    """Cut, optionally whiten, and store patches; ``root`` is unused (the photos ship with packages)."""
    params = full_params(params)
    _check(params)
    images, sha = load_photos(params["images"])
    size, method = int(params["patch_size"]), params["whiten"]
    left, right = zip(*(halves(image) for image in images))
    if method == "olshausen_field":
        f0 = float(params["whiten_f0"])
        left = [olshausen_field_filter(half, f0) for half in left]
        right = [olshausen_field_filter(half, f0) for half in right]
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(params["seed"])).spawn(2))
    train = cut(list(left), int(params["n_train"]), size, train_rng, "train")
    test = cut(list(right), int(params["n_test"]), size, test_rng, "test")

    preprocessing = [
        f"gray = ({LUMA[0]} R + {LUMA[1]} G + {LUMA[2]} B) / 255  (ITU-R BT.601 luma, 8-bit scale; "
        "grey photos / 255)",
        "split: train from the left half (columns < width // 2) of each photo, test from the right half",
    ]
    if method == "olshausen_field":
        preprocessing.append(
            f"each image half, mean removed, reflect-padded by half its size: FFT, times R(f) = f exp(-(f/f0)^4), "
            f"f radial in cycles/pixel, f0 = {params['whiten_f0']}; inverse FFT, crop, divide by its sd")
    preprocessing += [
        "patches: uniform random positions, image i % n_images for patch i",
        "no per-patch mean removal",
    ]
    metadata: dict[str, Any] = {
        "description": "grayscale patches of natural photographs shipped with scikit-learn / scikit-image",
        "images": list(params["images"]),
        "split": "train patches from the left half of each image, test patches from the right half",
        "whiten": method,
        "checksums": {"inputs_sha256": sha},
    }
    extras: dict[str, np.ndarray] = {}
    if method != "none":
        train, test, extras, steps = _whiten_and_store(train, test, params, metadata)
        preprocessing += steps
    metadata["preprocessing"] = preprocessing
    x_train, x_test = train.astype(np.float32), test.astype(np.float32)
    # float32 rounding of values a hair inside [0, 1] can not leave it; this guards the formulas.
    assert metadata.get("value_range") == "real" or (
        0.0 <= min(x_train.min(), x_test.min()) and max(x_train.max(), x_test.max()) <= 1.0)
    return Dataset(x_train=x_train, x_test=x_test, image_shape=(size, size), extras=extras, metadata=metadata)


def _whiten_and_store(train: np.ndarray, test: np.ndarray, params: dict[str, Any], metadata: dict[str, Any]
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[str]]:
    """Whiten (PCA/ZCA), scale to unit mean train variance, store (``scale``); update ``metadata``."""
    method, steps, extras = params["whiten"], [], {}
    if method in ("pca", "zca"):
        whitening, dewhitening, mean, epsilon = whitening_matrices(train, method, float(params["whiten_epsilon"]))
        gain = 1.0 / np.sqrt(((train - mean) @ whitening).var(axis=0).mean())
        whitening, dewhitening = whitening * gain, dewhitening / gain
        train, test = (train - mean) @ whitening, (test - mean) @ whitening
        steps += [
            "covariance C = (train - patch_mean)^T (train - patch_mean) / n_train = E diag(l) E^T",
            f"epsilon = {params['whiten_epsilon']} * mean(l) = {epsilon:.6g}",
            "pca: whitening = g E diag(1/sqrt(l + epsilon)), dewhitening = diag(sqrt(l + epsilon)) E^T / g"
            if method == "pca" else
            "zca: whitening = g E diag(1/sqrt(l + epsilon)) E^T, dewhitening = E diag(sqrt(l + epsilon)) E^T / g",
            f"g = {gain:.6g}: makes the mean pixel variance of the whitened train patches 1",
            "whitened = (patch - patch_mean) @ whitening;  patch = whitened @ dewhitening + patch_mean",
        ]
        metadata["whiten_epsilon"] = epsilon
        extras = {"whitening": whitening.astype(np.float32), "dewhitening": dewhitening.astype(np.float32),
                  "patch_mean": mean.astype(np.float32)}
    else:
        mean, gain = train.mean(), 1.0 / train.std()
        train, test = (train - mean) * gain, (test - mean) * gain
        steps.append(f"whitened = (patch - {mean:.6g}) * {gain:.6g}: zero mean, unit variance over the train pixels")
    if params["scale"] == "unit_variance":
        steps.append("x = whitened: real values, stored as they are (scale unit_variance)")
        metadata.update(value_range="real", display_offset=0.0, display_scale=1.0, data_sd=1.0)
        return train, test, extras, steps
    extreme = max(np.abs(train).max(), np.abs(test).max())
    scale = DISPLAY_OFFSET / extreme
    steps.append("x = display_offset + display_scale * whitened; display_scale = display_offset / "
                 "max|whitened| over train and test (= the sd of the stored train pixels)")
    metadata.update(display_offset=DISPLAY_OFFSET, display_scale=float(scale), data_sd=float(scale))
    return DISPLAY_OFFSET + scale * train, DISPLAY_OFFSET + scale * test, extras, steps
