"""Receptive fields read from both sides of the model, for the retina-like claim (conclusion 3).

A decoder field says what a latent draws; a neuron's receptive field is what it RESPONDS to, which
is the encoder's side. So each used latent gets two fields, both in data (pixel) space:

* decoder field: ``posterior.rf`` (``decode(s e_j) - decode(-s e_j)``, any decoder);
* encoder field: the linear sensitivity of the latent's posterior location to the image,
  ``E_x[d loc_j(x) / dx]`` averaged over test inputs (``encoder_sensitivity``). For a linear encoder
  it is the weight row; for an MLP, the input-averaged local linear filter (a spike-triggered-
  average-like description of the nonlinear unit).

``retina_fields`` fits both with ``center_surround`` and fills the two catalogue metrics, on grey
natural-image patches that are NOT whitened: whitening is itself a centre-surround filter, so on
whitened data such fields would be the preprocessing's (that claim is 3b's, on whitened patches).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sparse_vae.analysis.center_surround import center_surround_fraction
from sparse_vae.analysis.posterior import Group, Posterior, no_used_dims
from sparse_vae.data.io import Dataset

__all__ = ["RETINA_METRICS", "RETINA_SOURCES", "encoder_sensitivity", "is_unwhitened", "retina_fields"]

RETINA_METRICS = ("rf_center_surround_fraction", "rf_enc_center_surround_fraction")
#: sources of grey natural-image patches (as ``decoder_groups.NATURAL_IMAGE_SOURCES``).
RETINA_SOURCES = ("natural", "cifar")
BATCH = 256


def encoder_sensitivity(model: Any, x: np.ndarray, dims: np.ndarray | None = None) -> np.ndarray:
    """``mean over the rows of x of d loc_j(x) / dx`` for each latent j in ``dims`` (all if None):
    (len(dims), D), float64. One backward pass per latent and batch (examples do not interact, so
    the gradient of the batch sum is every example's gradient at once)."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("encoder_sensitivity needs at least one input")
    total = None
    with torch.enable_grad():
        for start in range(0, len(x), BATCH):
            xb = torch.as_tensor(x[start:start + BATCH]).requires_grad_(True)
            loc = model.posterior(xb).loc
            picked = range(loc.shape[1]) if dims is None else [int(d) for d in dims]
            grads = torch.stack([torch.autograd.grad(loc[:, j].sum(), xb, retain_graph=True)[0].sum(0)
                                 for j in picked])
            total = grads.double() if total is None else total + grads.double()
    return (total / len(x)).numpy()


def is_unwhitened(dataset: Dataset) -> bool:
    """Whether the patches are plain grey pixels (no whitening step in their preparation)."""
    return dataset.metadata.get("whiten", "none") in (None, "none")


def retina_fields(model: Any, post: Posterior, dataset: Dataset, group: Group) -> None:
    """The centre-surround fractions of the used latents' decoder and encoder fields."""
    shape = tuple(int(v) for v in dataset.image_shape)
    if dataset.metadata.get("source") not in RETINA_SOURCES or len(shape) != 2:
        group.skip(*RETINA_METRICS, f"needs grey natural-image patches (source {' or '.join(RETINA_SOURCES)})")
        return
    if not is_unwhitened(dataset):
        group.skip(*RETINA_METRICS, f"whitened patches (whiten {dataset.metadata.get('whiten')}): whitening is "
                                    "itself a centre-surround filter, so the retina-like claim is judged on "
                                    "unwhitened pixels only")
        return
    if not post.used.any():
        group.skip(*RETINA_METRICS, no_used_dims(post))
        return
    dims = np.flatnonzero(post.used)
    decoder_fields = post.rf[dims].reshape(-1, *shape)
    encoder_fields = encoder_sensitivity(model, post.x_test[:post.n_eval], dims).reshape(-1, *shape)
    dec_fraction, dec_fits = center_surround_fraction(decoder_fields)
    enc_fraction, enc_fits = center_surround_fraction(encoder_fields)
    group.metrics.update(rf_center_surround_fraction=dec_fraction, rf_enc_center_surround_fraction=enc_fraction)
    group.arrays["retina_fits"] = {"dims": dims, "decoder_fields": decoder_fields, "encoder_fields": encoder_fields,
                                   "decoder_center_surround": [f.center_surround for f in dec_fits],
                                   "encoder_center_surround": [f.center_surround for f in enc_fits]}
