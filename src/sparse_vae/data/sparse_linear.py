"""The positive control: data drawn exactly from the linear sparse-coding model x = W z + noise.

``z`` has independent Laplace(0, 1) coordinates, ``W`` (D x K) has random unit-direction columns
scaled to ``atom_norm`` (so they are not aligned with pixels), and the noise is Normal(0, noise_std)
per pixel. A VAE with a linear decoder, a Gaussian likelihood whose sd is fixed at ``noise_std`` and
a Laplace prior is then the true model, up to the posterior approximation; a normal prior is
rotation-invariant, so its latent axes are not identifiable. Recovering W (matched |cos| of decoder
columns against W's, ``sparse_vae.analysis.metrics``) must therefore work for laplace and not for normal: if
it does not, no metric of the study can be trusted to see a real difference.

Values are real, not in [0, 1] (metadata ``value_range: real``, which ``sparse_vae.data.io``
accepts): clipping would break the linear model, and a data-chosen gain (as the synthetic templates
use) would make the true noise sd unknown to the config, whose ``obs_scale`` must equal
``noise_std``. (Squeezing Laplace tails into [0, 1] also shrinks the typical pixel to ~0.05, and the
encoder then needs weights ~20 that Adam takes thousands of steps to reach.)

Randomness: ``SeedSequence(seed).spawn(3)`` streams for W, the train split and the test split, so
changing ``n_train`` leaves W and the test split unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from sparse_vae.data.io import Dataset
from sparse_vae.errors import DataError

PARAMS = ("image_size", "n_sources", "atom_norm", "noise_std", "n_train", "n_test", "seed")


def random_dictionary(n_pixels: int, n_sources: int, norm: float, rng: np.random.Generator) -> np.ndarray:
    """(K, D) rows = dictionary elements: isotropic random directions scaled to `norm`."""
    atoms = rng.standard_normal((n_sources, n_pixels))
    return norm * atoms / np.linalg.norm(atoms, axis=1, keepdims=True)


def _split(atoms: np.ndarray, n: int, noise_std: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(z, clean, x) of one split."""
    z = rng.laplace(0.0, 1.0, size=(n, atoms.shape[0]))
    clean = z @ atoms
    return z, clean, clean + rng.normal(0.0, noise_std, size=clean.shape)


def build(params: dict[str, Any], root: Any = None) -> Dataset:
    """Generate the control dataset; ``root`` is unused (no raw files)."""
    size, k = int(params["image_size"]), int(params["n_sources"])
    norm, noise = float(params["atom_norm"]), float(params["noise_std"])
    if k > size * size:
        raise DataError(f"sparse_linear: {k} sources but only {size * size} pixels")
    dict_rng, train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(params["seed"])).spawn(3))
    atoms = random_dictionary(size * size, k, norm, dict_rng)
    z_train, clean_train, x_train = _split(atoms, int(params["n_train"]), noise, train_rng)
    z_test, clean_test, x_test = _split(atoms, int(params["n_test"]), noise, test_rng)
    params_sha = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    coherence = np.abs(atoms @ atoms.T / norm**2 - np.eye(k)).max() if k > 1 else 0.0
    metadata = {
        "description": "positive control: x = 0.5 + W z + noise, z ~ Laplace(0, 1), W random unit directions",
        "preprocessing": [
            "templates (stored, K x D) = W^T: atom_norm * isotropic Gaussian rows / their norms",
            "weights z ~ Laplace(0, 1) iid, noise ~ Normal(0, noise_std) per pixel",
            "clean = z @ templates;  x = clean + noise  (real values: no offset, rescaling or clipping)",
        ],
        "templates_kind": "random_dictionary",
        "value_range": "real",
        "pixel_offset": 0.0,
        "pixel_gain": 1.0,
        "noise_std_pixels": noise,
        "max_abs_cos_between_atoms": float(coherence),
        "rng": "numpy.random.default_rng on SeedSequence(seed).spawn(3): dictionary, train, test",
        "checksums": {"params_sha256": params_sha},
    }
    f32 = np.float32
    return Dataset(
        x_train=x_train.astype(f32), x_test=x_test.astype(f32), image_shape=(size, size),
        extras={"templates": atoms.astype(f32), "weights_train": z_train.astype(f32),
                "weights_test": z_test.astype(f32), "clean_train": clean_train.astype(f32),
                "clean_test": clean_test.astype(f32)},
        metadata=metadata,
    )
