"""The shared pass every metric group reads, and what a group returns.

``posterior_pass`` computes once, over the whole test split, the posterior parameters, the KL per
example and dimension, the rate and label information of each dimension of the sampled code (on
the first ``info_examples``; ``analysis.information``) and so which dimensions are used, and each latent axis' decoded direction and
receptive field (``Posterior``); each group of ``analysis.compute`` returns a ``Group``. Re-seeds from
the run's seed plus its own offset. Not here: the groups, the metric maths (``metrics``), the model
passes themselves (``model_passes``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sparse_vae.analysis import metrics as M
from sparse_vae.analysis.information import HEADLINE_THRESHOLD, CodeInformation, code_information
from sparse_vae.analysis.model_passes import (
    BATCH, decoder_directions, direction_scales, posterior_parameters, receptive_fields,
)
from sparse_vae.analysis.seeds import step_seed
from sparse_vae.data.io import Dataset
from sparse_vae.errors import SparseVAEError

__all__ = ["Group", "Posterior", "model_families", "no_used_dims", "posterior_pass"]


@dataclass
class Posterior:
    """What every group reads: the test split, its posterior codes, KL and decoder directions."""

    settings: dict[str, Any]
    seed: int
    x_test: np.ndarray  # float32 (N, D)
    n_eval: int  # the first n_eval examples are used for ELBO, IWAE, probe and MI
    loc: np.ndarray
    scale: np.ndarray
    variance: np.ndarray
    active: np.ndarray  # Burda: Var_x loc > active_threshold (reported only, masks nothing)
    used_ratio: np.ndarray  # per dim: half-IQR_x(loc) / median_x half-IQR of q (reported only)
    used: np.ndarray  # rate > HEADLINE_THRESHOLD nats: the dims every masked metric reads
    posterior_family: str  # "gaussian" | "cauchy", from the model's posterior distribution
    prior_family: str  # "normal" | "laplace" | "cauchy", from the model's prior distribution
    prior_scale: float
    kl_example_dim: np.ndarray  # (N, L)
    kl_method: str
    directions: np.ndarray  # decode(s e_j) - decode(0), (L, D)
    rf: np.ndarray  # decode(s e_j) - decode(-s e_j), (L, D)
    information: CodeInformation | None = None  # rate, label information (first n_info examples)
    n_info: int = 0
    label_info_reason: str = ""  # why information.label_info is None

    @property
    def kl_per_dim(self) -> np.ndarray:
        return self.kl_example_dim.mean(axis=0)


@dataclass
class Group:
    """One group's metrics (None where not applicable), the reasons, and arrays others draw."""

    metrics: dict[str, Any] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)

    def skip(self, *names_and_reason: str) -> None:
        *names, reason = names_and_reason
        for name in names:
            self.metrics[name] = None
            self.not_applicable[name] = reason


def no_used_dims(post: Posterior) -> str:
    """The reason a metric of the used dimensions does not apply: there is none."""
    return f"no used dimension (rate I(x; z_d) > {HEADLINE_THRESHOLD} nats)"


_FAMILIES = {torch.distributions.Normal: "normal", torch.distributions.Laplace: "laplace",
             torch.distributions.Cauchy: "cauchy"}


def model_families(model: Any, x: np.ndarray) -> tuple[str, str, float]:
    """(posterior family, prior family, prior scale) read off the model's own distributions.

    Never from the prior's configured name: a `cauchy_gauss` entry has a Cauchy prior and a
    Gaussian posterior, and what is defined (ELBO, the used-dimension ratio) depends on both.
    """
    with torch.no_grad():
        q, prior = model.posterior(torch.as_tensor(x[:1], dtype=torch.float32)), model.prior()
    names = [next((name for cls, name in _FAMILIES.items() if isinstance(d, cls)), None) for d in (q, prior)]
    if None in names:
        raise SparseVAEError(f"the analysis knows Normal, Laplace and Cauchy distributions, not "
                             f"{type(q).__name__} / {type(prior).__name__}")
    scale = float(np.asarray(prior.scale.double().numpy()).reshape(-1)[0])
    return ("gaussian" if names[0] == "normal" else names[0]), names[1], scale


def posterior_pass(model: Any, dataset: Dataset, settings: dict[str, Any], seed: int,
                   timings: dict[str, float]) -> Posterior:
    """Posterior codes and KL of the whole test split, and each latent axis' decoded direction."""
    x_test = np.asarray(dataset.x_test, dtype=np.float32)
    n_test = len(x_test)
    if n_test < 2:
        raise SparseVAEError(f"the test split has {n_test} examples; the analysis needs at least 2")
    n_eval = n_test if settings["max_examples"] is None else min(n_test, int(settings["max_examples"]))
    t0 = time.perf_counter()
    loc, scale = posterior_parameters(model, x_test)
    if not (np.isfinite(loc).all() and np.isfinite(scale).all()):
        raise SparseVAEError("the model's posterior parameters on the test split are not finite")
    variance = M.location_variance(loc)
    posterior_family, prior_family, prior_scale = model_families(model, x_test)
    ratio = M.used_ratio(loc, scale, posterior_family)
    timings["posterior"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.manual_seed(step_seed(seed, "kl"))
    kl_rows, kl_method = [], "closed_form"
    with torch.no_grad():
        prior = model.prior()
        for start in range(0, n_test, BATCH):
            q = model.posterior(torch.as_tensor(x_test[start:start + BATCH]))
            kl, kl_method = M.evaluation_kl(q, prior)
            kl_rows.append(kl.double().numpy())
    timings["kl"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    steps = direction_scales(np.sqrt(variance))
    directions, rf = decoder_directions(model, steps), receptive_fields(model, steps)
    timings["directions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_info = min(n_test, int(settings["info_examples"]))
    information, reason = _information(loc[:n_info], scale[:n_info], posterior_family, dataset, settings,
                                       seed)
    timings["information"] = time.perf_counter() - t0
    return Posterior(
        settings=settings, seed=seed, x_test=x_test, n_eval=n_eval, loc=loc, scale=scale,
        variance=variance, active=variance > float(settings["active_threshold"]), used_ratio=ratio,
        used=information.rate > HEADLINE_THRESHOLD, posterior_family=posterior_family,
        prior_family=prior_family, prior_scale=prior_scale,
        kl_example_dim=np.concatenate(kl_rows), kl_method=kl_method, directions=directions, rf=rf,
        information=information, n_info=n_info, label_info_reason=reason,
    )


def _information(loc: np.ndarray, scale: np.ndarray, family: str, dataset: Dataset, settings: dict[str, Any],
                 seed: int) -> tuple[CodeInformation, str]:
    """Rate (always) and label information (where the labels allow) of the first examples' codes."""
    draws = int(settings["info_draws"])
    if dataset.y_test is None:
        return code_information(loc, scale, family, None, draws, step_seed(seed, "information")), "the dataset has no labels"
    labels = np.asarray(dataset.y_test)[:len(loc)]
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        reason = ("the evaluated test labels hold a single class" if len(classes) < 2 else
                  f"a class has fewer than 2 of the first {len(loc)} test examples (info_examples)")
        return code_information(loc, scale, family, None, draws, step_seed(seed, "information")), reason
    return code_information(loc, scale, family, labels, draws, step_seed(seed, "information")), ""
