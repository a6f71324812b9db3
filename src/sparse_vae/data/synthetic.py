"""Synthetic images with a known generative process: the ground truth the latent analysis checks against.

An image is ``sum_k w_k * template_k + noise`` (the talk's task 1: 5x5 patches from a few
templates; and its 10x10, two-template example). Because the true weights are stored, one can ask
whether a sparse prior recovers them; because the noiseless images are stored, one can tell
reconstruction error from noise.

All randomness comes from ``numpy.random.Generator`` streams spawned from the data's ``seed``
(templates, train split, test split), so the same params give byte-identical files, and changing
``n_train`` leaves the templates and the test split unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = (
    "image_size", "n_templates", "templates", "weights", "weight_scale", "active_prob",
    "noise_std", "n_train", "n_test", "seed",
)
PIXEL_OFFSET = 0.5  # zero weights and zero noise give mid-grey
BLOB_SIGMA_PER_SIDE = 0.2  # Gaussian bump sd as a fraction of the image side
RANDOM_SMOOTHING_SIGMA = 1.0  # pixels


def bar_templates(size: int, count: int) -> np.ndarray:
    """Even templates light rows, odd ones columns (row 0, column 0, row 1, ...): the bars problem."""
    if count > 2 * size:
        raise ValueError(f"bars: {count} templates but a {size}x{size} image has only {2 * size} bars")
    templates = np.zeros((count, size, size))
    for k in range(count):
        if k % 2 == 0:
            templates[k, k // 2, :] = 1.0
        else:
            templates[k, :, k // 2] = 1.0
    return templates.reshape(count, -1)


def blob_templates(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian bumps (peak 1) at distinct pixel centres, kept apart so templates differ.

    Centres stay about one sd from the border (so a bump is not cut in half), are drawn in random
    order and accepted greedily if at least ``min_dist`` from those already accepted;
    ``min_dist`` shrinks only if the image cannot hold ``count`` such centres.
    """
    if count > size * size:
        raise ValueError(f"blobs: {count} templates but a {size}x{size} image has only {size * size} pixels")
    sigma = max(BLOB_SIGMA_PER_SIDE * size, 0.5)
    margin = int(sigma)
    while (size - 2 * margin) ** 2 < count:
        margin -= 1
    inner = np.zeros((size, size), dtype=bool)
    inner[margin:size - margin, margin:size - margin] = True
    candidates = np.argwhere(inner)
    candidates = candidates[rng.permutation(len(candidates))]
    min_dist = 2.0 * sigma
    while True:
        centres: list[np.ndarray] = []
        for candidate in candidates:
            if all(np.hypot(*(candidate - c)) >= min_dist for c in centres):
                centres.append(candidate)
                if len(centres) == count:
                    break
        if len(centres) == count:
            break
        min_dist *= 0.8  # still > 0, so distinct pixels; reaches 1 pixel apart at worst
    rows, cols = np.mgrid[0:size, 0:size]
    templates = np.stack(
        [np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2.0 * sigma**2)) for r, c in centres]
    )
    return templates.reshape(count, -1)


def random_templates(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Smoothed white noise (spatially correlated, like texture), scaled to max |value| = 1."""
    noise = rng.standard_normal((count, size, size))
    smooth = np.stack([gaussian_filter(n, RANDOM_SMOOTHING_SIGMA, mode="wrap") for n in noise])
    smooth /= np.abs(smooth).reshape(count, -1).max(axis=1)[:, None, None]
    return smooth.reshape(count, -1)


def sample_weights(kind: str, n: int, k: int, scale: float, active_prob: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Template weights: the latent causes whose sparsity the priors are meant to capture."""
    if kind == "laplace":
        return rng.laplace(0.0, scale, size=(n, k))
    if kind == "normal":
        return rng.normal(0.0, scale, size=(n, k))
    if kind == "spike_slab":
        active = rng.random((n, k)) < active_prob
        return active * rng.normal(0.0, scale, size=(n, k))
    raise ValueError(f"unknown weights {kind!r} (laplace | spike_slab | normal)")


def _templates(params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    size, count, kind = int(params["image_size"]), int(params["n_templates"]), params["templates"]
    if kind == "bars":
        return bar_templates(size, count)
    if kind == "blobs":
        return blob_templates(size, count, rng)
    if kind == "random":
        return random_templates(size, count, rng)
    raise ValueError(f"unknown templates {kind!r} (bars | blobs | random)")


def _split(params: dict[str, Any], n: int, templates: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, clean, noisy) in template units for one split."""
    weights = sample_weights(params["weights"], n, templates.shape[0], float(params["weight_scale"]),
                             float(params["active_prob"]), rng)
    clean = weights @ templates
    noisy = clean + rng.normal(0.0, float(params["noise_std"]), size=clean.shape)
    return weights, clean, noisy


def _metadata(params: dict[str, Any], gain: float, w_train: np.ndarray) -> dict[str, Any]:
    """How the arrays were made, in words and numbers (the dataset's metadata.json)."""
    params_sha = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return {
        "description": "sum of templates weighted by random weights, plus Gaussian pixel noise",
        "preprocessing": [
            "raw = weights @ templates_raw + noise,  noise ~ Normal(0, noise_std) per pixel",
            "x = pixel_offset + pixel_gain * raw",
            "pixel_gain = pixel_offset / max|raw or clean| over train and test (no clipping)",
            "templates (stored) = pixel_gain * templates_raw",
            "clean = pixel_offset + weights @ templates",
        ],
        "templates_kind": params["templates"],
        "template_rule": {
            "bars": "template k lights row k/2 (k even) or column (k-1)/2 (k odd); value 1",
            "blobs": f"Gaussian bumps, sd = max({BLOB_SIGMA_PER_SIDE} * image_size, 0.5) px, peak 1, "
                     "random centres about one sd inside the border, greedily kept >= 2 sd apart",
            "random": f"white noise smoothed by a Gaussian (sd {RANDOM_SMOOTHING_SIGMA} px, wrap), "
                      "scaled to max |value| 1",
        }[params["templates"]],
        "pixel_offset": PIXEL_OFFSET,
        "pixel_gain": gain,
        "noise_std_pixels": gain * float(params["noise_std"]),
        "active_fraction_train": float(np.mean(w_train != 0)),
        "rng": "numpy.random.default_rng on SeedSequence(seed).spawn(3): templates, train, test",
        "checksums": {"params_sha256": params_sha},
    }


def build(params: dict[str, Any], root: Any = None) -> Dataset:
    """Generate the dataset; ``root`` is unused (no raw files)."""
    seed = int(params["seed"])
    template_rng, train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    try:
        templates = _templates(params, template_rng)
    except ValueError as error:
        raise DataError(f"synthetic: {error}") from None
    w_train, clean_train, noisy_train = _split(params, int(params["n_train"]), templates, train_rng)
    w_test, clean_test, noisy_test = _split(params, int(params["n_test"]), templates, test_rng)

    # One affine pixel map for everything, chosen so that the most extreme image (noisy or clean,
    # either split) just fits in [0, 1]: no clipping, so the linear model below stays exact.
    extreme = max(np.abs(a).max() for a in (noisy_train, noisy_test, clean_train, clean_test))
    # (1 - 1e-6): rounding of `weights @ templates_px` must not push the extreme past 0 or 1.
    gain = PIXEL_OFFSET * (1.0 - 1e-6) / extreme if extreme > 0 else 1.0
    templates_px = gain * templates

    def to_pixels(a: np.ndarray) -> np.ndarray:
        return (PIXEL_OFFSET + gain * a).astype(np.float32)

    x_train, x_test = to_pixels(noisy_train), to_pixels(noisy_test)
    clean_train_px = (PIXEL_OFFSET + w_train @ templates_px).astype(np.float32)
    clean_test_px = (PIXEL_OFFSET + w_test @ templates_px).astype(np.float32)
    for name, a in (("x_train", x_train), ("x_test", x_test),
                    ("clean_train", clean_train_px), ("clean_test", clean_test_px)):
        assert 0.0 <= a.min() and a.max() <= 1.0, f"{name} left [0, 1] despite the data-chosen gain"

    size = int(params["image_size"])
    metadata = _metadata(params, float(gain), w_train)
    return Dataset(
        x_train=x_train,
        x_test=x_test,
        image_shape=(size, size),
        extras={
            "templates": templates_px.astype(np.float32),
            "weights_train": w_train.astype(np.float32),
            "weights_test": w_test.astype(np.float32),
            "clean_train": clean_train_px,
            "clean_test": clean_test_px,
        },
        metadata=metadata,
    )
