"""The linear-Gaussian log-likelihood: exact formula vs brute force, and IWAE converging onto it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_vae.analysis.exact import (linear_gaussian_log_marginal, linear_gaussian_posterior, model_log_marginal,
                                       model_parameters)
from sparse_vae.analysis.metrics import iwae_bound
from sparse_vae.analysis.model_passes import importance_log_weights
from sparse_vae.distributions import posterior_scale
from sparse_vae.model import VAE


def test_matches_a_dense_gaussian_density() -> None:
    """Woodbury low-rank form = log N(x; b, C) with C formed and factorised densely (scipy)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    weight, bias, x = rng.normal(size=(7, 3)), rng.normal(size=7), rng.normal(size=(5, 7))
    obs_sd, prior_sd = rng.uniform(0.2, 0.5, size=7), rng.uniform(0.5, 2.0, size=3)
    covariance = weight @ np.diag(prior_sd ** 2) @ weight.T + np.diag(obs_sd ** 2)
    expected = multivariate_normal(bias, covariance).logpdf(x)
    got = linear_gaussian_log_marginal(torch.tensor(x), torch.tensor(weight), torch.tensor(bias),
                                       torch.tensor(obs_sd), torch.tensor(prior_sd))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_matches_monte_carlo_over_the_prior() -> None:
    """log E_{z ~ p(z)} p(x|z) by 10^6 prior draws on a 2-pixel, 1-latent model agrees to 0.01 nats
    (the MC standard error there is below 0.002)."""
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.tensor([[1.0], [-0.5]], dtype=torch.float64), torch.tensor([0.2, 0.1], dtype=torch.float64)
    obs_sd, prior_sd = 0.6, 1.3
    x = torch.tensor([[0.5, -0.4], [-1.0, 1.2], [2.0, 0.3]], dtype=torch.float64)
    z = prior_sd * torch.randn(10 ** 6, 1, generator=gen, dtype=torch.float64)
    mean = z @ weight.T + bias                                              # (S, D)
    log_lik = torch.distributions.Normal(mean[:, None, :], obs_sd).log_prob(x).sum(-1)  # (S, N)
    monte_carlo = torch.logsumexp(log_lik, 0) - np.log(len(z))
    exact = linear_gaussian_log_marginal(x, weight, bias, obs_sd, prior_sd)
    np.testing.assert_allclose(monte_carlo.numpy(), exact.numpy(), atol=0.01)


def test_posterior_satisfies_bayes_rule() -> None:
    """log p(x) = log p(x|z) + log p(z) - log p(z|x) at any z."""
    rng = np.random.default_rng(1)
    weight, bias = torch.tensor(rng.normal(size=(6, 2))), torch.tensor(rng.normal(size=6))
    x, z = torch.tensor(rng.normal(size=(4, 6))), torch.tensor(rng.normal(size=(4, 2)))
    means, covariance = linear_gaussian_posterior(x, weight, bias, 0.4, 1.5)
    log_post = torch.distributions.MultivariateNormal(means, covariance).log_prob(z)
    log_lik = torch.distributions.Normal(z @ weight.T + bias, 0.4).log_prob(x).sum(-1)
    log_prior = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), 1.5).log_prob(z).sum(-1)
    np.testing.assert_allclose((log_lik + log_prior - log_post).numpy(),
                               linear_gaussian_log_marginal(x, weight, bias, 0.4, 1.5).numpy(), rtol=1e-10)


def small_model() -> VAE:
    """A linear-Gaussian VAE (fixed pixel sd) whose encoder outputs the exact posterior means and
    marginal posterior sds: its only approximation is the diagonal (mean-field) covariance."""
    torch.manual_seed(0)
    model = VAE(input_dim=8, latent=3, hidden=[], prior="normal", prior_scale=1.0, decoder="linear",
                likelihood="gaussian", obs_scale=0.3).double()
    weight, bias, obs_sd, prior_sd = model_parameters(model)
    _, covariance = linear_gaussian_posterior(torch.zeros(1, 8), weight, bias, obs_sd, prior_sd)
    gain = weight.T / obs_sd ** 2                               # m = S W^T (x - b) / sigma^2
    raw = torch.linspace(-12, 12, 200_001, dtype=torch.float64)  # invert the encoder's sd map
    scales = posterior_scale(raw)
    target = covariance.diagonal().sqrt()
    raw_scale = raw[torch.argmin((scales[:, None] - target).abs(), dim=0)]
    with torch.no_grad():
        layer = model.encoder[0]
        layer.weight[:3] = covariance @ gain
        layer.bias[:3] = -(covariance @ gain @ bias)
        layer.weight[3:] = 0.0
        layer.bias[3:] = raw_scale
    return model.eval()


def test_iwae_converges_to_the_exact_log_likelihood() -> None:
    """On data drawn from the model: the ELBO (K = 1) sits clearly below log p(x), the IWAE bound
    with K = 5000 within 0.01 nats of it (mean over examples), never above it by more than MC noise."""
    model = small_model()
    weight, bias, obs_sd, _ = model_parameters(model)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    x = z @ weight.T + bias + obs_sd * torch.randn(50, 8, generator=gen, dtype=torch.float64)
    exact = model_log_marginal(model, x)
    torch.manual_seed(2)
    with torch.no_grad():
        _, log_w = importance_log_weights(model, x, 5000)
    elbo, iwae = log_w.mean(0), iwae_bound(log_w)
    assert float((exact - elbo).mean()) > 0.05                  # the mean-field gap is real ...
    assert float((exact - iwae).mean()) == pytest.approx(0.0, abs=0.01)   # ... and IWAE closes it
    assert float((iwae - exact).max()) < 0.01


def test_models_without_a_closed_form_are_refused() -> None:
    for kwargs, match in [({"prior": "laplace"}, "prior 'laplace'"), ({"decoder": "mlp"}, "decoder 'mlp'"),
                          ({"likelihood": "bernoulli"}, "likelihood 'bernoulli'")]:
        options = {"prior": "normal", "decoder": "linear", "likelihood": "gaussian", "obs_scale": 0.3, **kwargs}
        model = VAE(input_dim=4, latent=2, hidden=[], **options)
        with pytest.raises(ValueError, match=match):
            model_log_marginal(model, torch.zeros(1, 4))
