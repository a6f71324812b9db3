"""Passes of the model over data: posterior parameters, decoded images, importance weights.

The only analysis code that calls the model, through the contract of docs/interfaces.md
(``posterior``, ``prior``, ``decode``, ``log_likelihood``), always under ``torch.no_grad``
where no gradient is needed. Not here: what the outputs mean (``metrics``, ``compute``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "decode", "decoder_directions", "direction_scales", "importance_log_weights",
    "posterior_parameters", "receptive_fields",
]

# Elements per decoded chunk of the importance sampler: bounds memory at ~ 64 MB per float32 tensor.
CHUNK_ELEMENTS = 1 << 24
# Example batch for encoder / decoder passes over the test set.
BATCH = 512


def posterior_parameters(model: Any, x: np.ndarray, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Posterior location and scale (N, L) of every row of x, in batches."""
    locs, scales = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            q = model.posterior(torch.as_tensor(x[start:start + batch], dtype=torch.float32))
            locs.append(q.loc.double().numpy())
            scales.append(q.scale.double().expand_as(q.loc).numpy())
    return np.concatenate(locs), np.concatenate(scales)


def decode(model: Any, z: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """Decoded mean images (N, D) of codes z (N, L), as float64 numpy."""
    out = []
    with torch.no_grad():
        for start in range(0, len(z), batch):
            out.append(model.decode(torch.as_tensor(z[start:start + batch], dtype=torch.float32)).double().numpy())
    return np.concatenate(out)


def direction_scales(sd: np.ndarray) -> np.ndarray:
    """The step along each latent axis: the sd of its location over the data, or 1 if it never moves."""
    return np.where(sd > 1e-6, sd, 1.0)


def decoder_directions(model: Any, amplitudes: np.ndarray) -> np.ndarray:
    """`decode(a_j e_j) - decode(0)` for every latent dim j: (L, D), the image change of each axis."""
    latent = len(amplitudes)
    z = np.vstack([np.zeros((1, latent)), np.diag(amplitudes)])
    images = decode(model, z)
    return images[1:] - images[:1]


def receptive_fields(model: Any, scales: np.ndarray) -> np.ndarray:
    """`decode(s_j e_j) - decode(-s_j e_j)` per dim j (L, D), in data space."""
    diag = np.diag(scales)
    return decode(model, diag) - decode(model, -diag)


def _log_weights(model: Any, x: Tensor, q: Any, n: int) -> tuple[Tensor, Tensor]:
    """(log p(x|z), log q(z|x) - log p(z) summed over dims), float64, for n draws z ~ q(z|x): the
    project's one log-weight function, ``VAE.log_weights``, which training's objective and validation
    score use too, so the IWAE that selected a run and the one reported are the same estimator."""
    ll, ratio = model.log_weights(x, q, n)
    return ll.double(), ratio.double().sum(-1)


def importance_log_weights(
    model: Any, x: Tensor, n_samples: int, chunk_elements: int = CHUNK_ELEMENTS
) -> tuple[Tensor, Tensor]:
    """Draw `n_samples` z ~ q(z|x) per example; return (log p(x|z), log w), each (n_samples, B), float64.

    `log w = log p(x|z) + log p(z) - log q(z|x)`. Samples are decoded in chunks of at most
    `chunk_elements / (B * D)` draws so that memory stays bounded for any K (the decoder's output is
    the largest tensor). Uses the global torch RNG: seed it first for reproducible numbers.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    q = model.posterior(x)
    per_draw = max(1, x.shape[0] * x.shape[-1])
    step = max(1, min(n_samples, chunk_elements // per_draw))
    log_lik, log_w = [], []
    for start in range(0, n_samples, step):
        ll, log_ratio = _log_weights(model, x, q, min(step, n_samples - start))
        log_lik.append(ll)
        log_w.append(ll - log_ratio)
    return torch.cat(log_lik), torch.cat(log_w)
