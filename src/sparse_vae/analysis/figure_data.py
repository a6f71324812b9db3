"""The arrays the run's figures draw, computed once from the model and the analysis results.

Decoded reconstructions, prior samples and latent traversals need the model; they are made here,
so that ``analysis.figures`` draws from arrays alone (never the live model, never a torch seed,
never a metric recomputed). Not here: metrics (``compute``), drawing (``figures``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.distributions import Cauchy

from sparse_vae.analysis.compute import Analysis
from sparse_vae.analysis.decoder_groups import is_synthetic
from sparse_vae.analysis.model_passes import decode, direction_scales
from sparse_vae.analysis.seeds import step_seed
from sparse_vae.data.io import Dataset

__all__ = ["FigureData", "GroundTruthMatch", "figure_data"]

# Offset of the prior-sample seed from seed * 1000 (the metrics use 101 and 102).
# Cauchy prior samples decoded for the figure are clipped to +- this many prior scales.
CAUCHY_CLIP = 10.0
_RECONSTRUCTIONS, _PRIOR_SAMPLES, _TRAVERSAL_DIMS = 10, 32, 8
_TRAVERSAL_STEPS = np.linspace(-2.5, 2.5, 9)  # in sds of each dimension's location


@dataclass
class GroundTruthMatch:
    """Synthetic data: the true templates and weights, and how the latent dims match them."""

    templates: np.ndarray  # (K, D)
    weights: np.ndarray  # (N, K) true weights of the test split
    direction_cos: np.ndarray  # per latent dim, best |cosine| of its direction with any template
    direction_template: np.ndarray  # ... and which template
    weight_best_dim: np.ndarray  # per true weight, the best-correlated latent dim
    weight_best_r: np.ndarray  # ... and its |r|


@dataclass
class FigureData:
    """Everything `figures.write_figures` draws, besides the dataset's display transforms."""

    title: str
    loc: np.ndarray
    variance: np.ndarray
    active: np.ndarray
    kl_per_dim: np.ndarray
    kl_threshold: float
    rf: np.ndarray
    directions: np.ndarray
    inputs: np.ndarray  # the first test inputs ...
    reconstructions: np.ndarray  # ... and their decoded posterior locations
    prior_samples: np.ndarray  # decoded z ~ p(z)
    prior_clipped: float | None  # fraction of coordinates clipped (Cauchy prior), None otherwise
    traversal_dims: np.ndarray
    traversal_steps: np.ndarray
    traversal_images: np.ndarray  # (dims * steps, D), row-major over dims then steps
    groups: np.ndarray | None  # colour of each test example in the latent scatter
    group_name: str
    ground_truth: GroundTruthMatch | None
    rf_fits: dict[str, Any] | None = None  # field fits of the used decoder columns (decoder_groups.field_fits)
    rate: np.ndarray | None = None  # per dim I(x; z_d), nats (analysis.information)
    label_info: np.ndarray | None = None  # per dim I(y; z_d), nats; None without labels

    @property
    def order(self) -> np.ndarray:
        """Latent dims, most active first (stable)."""
        return np.argsort(-self.variance, kind="stable")


def _prior_samples(model: Any, seed: int, prior_name: str, latent: int) -> tuple[np.ndarray, float | None]:
    """Seeded draws z ~ p(z), clipped for a Cauchy prior; and the fraction clipped."""
    torch.manual_seed(step_seed(seed, "prior_samples"))
    with torch.no_grad():
        prior = model.prior()
        z = prior.sample((_PRIOR_SAMPLES,)).double().numpy()
    if isinstance(prior, Cauchy):
        bound = CAUCHY_CLIP * np.broadcast_to(prior.scale.double().numpy(), (latent,))
        clipped = float(np.mean(np.abs(z) > bound))
        return decode(model, np.clip(z, -bound, bound)), clipped
    return decode(model, z), None


def _traversals(model: Any, loc: np.ndarray, variance: np.ndarray, dims: np.ndarray) -> np.ndarray:
    """Decoded codes moving one dim from the median by `_TRAVERSAL_STEPS` sds, the others at the median."""
    latent = loc.shape[1]
    base = np.median(loc, axis=0)
    step_sd = direction_scales(np.sqrt(variance))
    steps = _TRAVERSAL_STEPS
    z = np.repeat(base[None], len(dims) * len(steps), axis=0).reshape(len(dims), len(steps), latent)
    for r, d in enumerate(dims):
        z[r, :, d] = base[d] + steps * step_sd[d]
    return decode(model, z.reshape(-1, latent))


def figure_data(model: Any, analysis: Analysis, dataset: Dataset) -> FigureData:
    """Decode what the figures show; gather the analysis arrays they draw."""
    post, arrays, run = analysis.posterior, analysis.arrays, analysis.run
    latent = post.loc.shape[1]
    n = min(_RECONSTRUCTIONS, len(dataset.x_test))
    prior_samples, clipped = _prior_samples(model, post.seed, run["prior"], latent)
    dims = np.argsort(-post.variance, kind="stable")[:min(_TRAVERSAL_DIMS, latent)]
    groups, group_name, match = None, "", None
    if dataset.y_test is not None:
        groups, group_name = np.asarray(dataset.y_test), "label"
    if is_synthetic(dataset):
        weights = np.asarray(dataset.extras["weights_test"], dtype=np.float64)
        if groups is None:
            groups, group_name = np.abs(weights).argmax(axis=1), "dominant true weight"
        match = GroundTruthMatch(
            templates=np.asarray(dataset.extras["templates"], dtype=np.float64), weights=weights,
            direction_cos=arrays["direction_cos"], direction_template=arrays["direction_template"],
            weight_best_dim=arrays["weight_best_dim"], weight_best_r=arrays["weight_best_r"],
        )
    return FigureData(
        title=f"{run['dataset']} | {run['prior']} prior | z={latent} | seed {run['seed']}",
        loc=post.loc, variance=post.variance, active=post.used, kl_per_dim=post.kl_per_dim,
        kl_threshold=float(post.settings["kl_threshold"]), rf=post.rf, directions=post.directions,
        inputs=np.asarray(dataset.x_test[:n]), reconstructions=decode(model, post.loc[:n]),
        prior_samples=prior_samples, prior_clipped=clipped, traversal_dims=dims,
        traversal_steps=_TRAVERSAL_STEPS, traversal_images=_traversals(model, post.loc, post.variance, dims),
        groups=groups, group_name=group_name, ground_truth=match, rf_fits=arrays.get("rf_fits"),
        rate=arrays.get("rate"), label_info=arrays.get("label_info"),
    )
