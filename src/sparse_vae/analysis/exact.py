"""A log-likelihood with a known answer: the linear-Gaussian model with a normal prior.

For ``x = W z + b + eps``, ``eps ~ N(0, diag(sigma^2))``, ``z ~ N(0, diag(s^2))`` the marginal is
Gaussian, ``p(x) = N(x; b, W diag(s^2) W^T + diag(sigma^2))``, and so is the posterior,
``p(z|x) = N(m, S)`` with ``S = (W^T diag(1/sigma^2) W + diag(1/s^2))^-1`` and
``m = S W^T diag(1/sigma^2) (x - b)``. Estimators of log p(x) (IWAE, AIS) are checked against
it: for a VAE with a linear decoder, Gaussian likelihood and normal prior the estimate must come
out at or just below the exact value. Computed in float64 with the low-rank-plus-diagonal
covariance (``torch.distributions.LowRankMultivariateNormal``: Woodbury, O(D L^2) per example).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import LowRankMultivariateNormal

__all__ = ["linear_gaussian_log_marginal", "linear_gaussian_posterior", "model_parameters",
           "model_log_marginal"]


def _as64(*tensors: Tensor | float) -> list[Tensor]:
    return [torch.as_tensor(t, dtype=torch.float64) for t in tensors]


def linear_gaussian_log_marginal(x: Tensor, weight: Tensor, bias: Tensor, obs_sd: Tensor | float,
                                 prior_sd: Tensor | float) -> Tensor:
    """log N(x; b, W diag(s^2) W^T + diag(sigma^2)) per row of x (N, D); weight (D, L), bias (D,),
    obs_sd () or (D,), prior_sd () or (L,). Returns (N,) float64."""
    x, weight, bias, obs_sd, prior_sd = _as64(x, weight, bias, obs_sd, prior_sd)
    d = weight.shape[0]
    marginal = LowRankMultivariateNormal(bias, cov_factor=weight * prior_sd,
                                         cov_diag=(obs_sd ** 2).expand(d).clone())
    return marginal.log_prob(x)


def linear_gaussian_posterior(x: Tensor, weight: Tensor, bias: Tensor, obs_sd: Tensor | float,
                              prior_sd: Tensor | float) -> tuple[Tensor, Tensor]:
    """Exact posterior p(z|x): means (N, L) and the shared covariance (L, L), float64."""
    x, weight, bias, obs_sd, prior_sd = _as64(x, weight, bias, obs_sd, prior_sd)
    d, latent = weight.shape
    precision_obs = (obs_sd ** -2).expand(d)
    precision = weight.T @ (precision_obs[:, None] * weight) + torch.diag((prior_sd ** -2).expand(latent))
    covariance = torch.linalg.inv(precision)
    covariance = 0.5 * (covariance + covariance.T)
    means = (x - bias) @ (precision_obs[:, None] * weight) @ covariance
    return means, covariance


def model_parameters(model: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(W, b, sigma, s) of a VAE whose log-likelihood has a closed form here; ValueError otherwise.

    A prior centred at mu instead of 0 is folded into the bias: W z + b = W (z - mu) + (b + W mu).
    """
    problems = []
    if getattr(model, "decoder_kind", None) != "linear":
        problems.append(f"decoder {getattr(model, 'decoder_kind', None)!r} (needs linear)")
    if getattr(model, "likelihood", None) != "gaussian":
        problems.append(f"likelihood {getattr(model, 'likelihood', None)!r} (needs gaussian)")
    if getattr(model, "prior_family", None) != "normal":
        problems.append(f"prior {getattr(model, 'prior_family', None)!r} (needs normal)")
    if problems:
        raise ValueError("no exact log-likelihood for this model: " + ", ".join(problems))
    with torch.no_grad():
        weight = model.decoder.weight.detach()
        return weight, model.decoder.bias.detach() + weight @ model.prior_loc, model.obs_sd().detach(), \
            model.prior_scale.detach()


def model_log_marginal(model: Any, x: Tensor) -> Tensor:
    """Exact log p(x) (N,) float64 of a linear-decoder, Gaussian-likelihood, normal-prior VAE."""
    weight, bias, obs_sd, prior_sd = model_parameters(model)
    return linear_gaussian_log_marginal(x, weight, bias, obs_sd, prior_sd)
