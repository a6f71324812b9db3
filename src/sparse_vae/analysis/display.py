"""Display transforms: data-space vectors to viewable pixel space, for the figures.

Most sources already live in pixel space, so the transforms only clip. Whitened natural patches
are decorrelated, rescaled noise to the eye; they are mapped back through the dewhitening matrix
and scale stored with the dataset. ``display_direction`` is also how a receptive field is
measured (``rf_localization`` is computed on the pixel pattern a decoder direction paints).
Not here: the figures themselves (``analysis.figures``).
"""

from __future__ import annotations

import numpy as np

from sparse_vae.data.io import Dataset

__all__ = ["display_direction", "for_display", "images"]


def for_display(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """Map data-space vectors (model inputs or outputs) to pixel values in [0, 1] for figures.

    Whitened patches go back through the stored display affine map, the dewhitening matrix and the
    patch mean. The result has the shape of ``x``; reshape with ``dataset.image_shape``.
    """
    x = np.asarray(x, dtype=np.float64)
    if "dewhitening" in dataset.extras:
        x = display_direction(dataset, x - float(dataset.metadata["display_offset"]))
        x = x + dataset.extras["patch_mean"]
    return np.clip(x, 0.0, 1.0)


def display_direction(dataset: Dataset, delta: np.ndarray) -> np.ndarray:
    """Map data-space differences (N, D), e.g. receptive fields, to pixel-space differences.

    The linear part of `for_display`, without offset or clipping: a decoder direction in whitened
    space is shown (and measured) as the pixel pattern it paints.
    """
    delta = np.asarray(delta, dtype=np.float64)
    if "dewhitening" in dataset.extras:
        return (delta / float(dataset.metadata["display_scale"])) @ dataset.extras["dewhitening"]
    return delta


def images(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """Data-space vectors (N, D) as viewable images (N, H, W) in [0, 1] (dewhitened when whitened)."""
    x = np.asarray(for_display(dataset, np.asarray(x, dtype=np.float64)))
    return x.reshape(len(x), *dataset.image_shape)
