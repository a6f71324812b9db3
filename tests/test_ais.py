"""AIS log-likelihood (analysis.ais) against the exact linear-Gaussian marginal and the IWAE bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_exact import small_model

from sparse_vae.analysis.ais import ais_log_likelihood, sigmoid_schedule
from sparse_vae.analysis.exact import model_log_marginal, model_parameters
from sparse_vae.analysis.metrics import iwae_bound
from sparse_vae.analysis.model_passes import importance_log_weights
from sparse_vae.model import VAE

#: the analysis' settings (config.yaml analysis: ais_steps, ais_chains, ais_leapfrog) ...
STEPS, CHAINS, LEAPFROG = 1000, 16, 3
#: ... and the stated tolerance: the mean over 64 examples within 0.05 nats of the exact log p(x)
#: (about 2.5 standard errors: with this poor encoder the chains' log-weights have sd ~0.36).
TOLERANCE = 0.05


@pytest.fixture(autouse=True)
def one_thread():
    """As the analysis runs (one thread per job): thousands of small batched ops, which extra
    threads on a shared 2-core machine slow down many times over."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(model: VAE, n: int, seed: int) -> torch.Tensor:
    weight, bias, obs_sd, _ = model_parameters(model)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, weight.shape[1], generator=gen, dtype=weight.dtype)
    return z @ weight.T + bias + obs_sd * torch.randn(n, weight.shape[0], generator=gen, dtype=weight.dtype)


def _iwae(model: VAE, x: torch.Tensor, k: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    with torch.no_grad():
        _, log_w = importance_log_weights(model, x, k)
    return iwae_bound(log_w).numpy()


def _off_encoder(model: VAE) -> VAE:
    """The exact-mean encoder with its means shrunk by 30% and its scales halved: a poor amortised
    posterior, so that the IWAE bound falls visibly below log p(x)."""
    with torch.no_grad():
        layer = model.encoder[0]
        layer.weight[:3] *= 0.7
        layer.bias[:3] *= 0.7
        layer.bias[3:] -= 1.0
    return model


def test_schedule_runs_from_zero_to_one_monotonically() -> None:
    betas = sigmoid_schedule(50)
    assert len(betas) == 51 and betas[0] == 0 and betas[-1] == 1 and bool((betas.diff() > 0).all())
    with pytest.raises(ValueError):
        sigmoid_schedule(0)


def test_ais_matches_the_exact_log_likelihood_and_beats_iwae() -> None:
    """Linear-Gaussian VAE with a deliberately poor encoder: IWAE (K = 200, as the offline study)
    is > 0.1 nats below log p(x); AIS is within TOLERANCE of it and above IWAE on average."""
    model = _off_encoder(small_model()).float()
    x = _data(model, 64, seed=1).float()
    exact = model_log_marginal(model, x).numpy()
    iwae = _iwae(model, x, 200, seed=2)
    result = ais_log_likelihood(model, x, STEPS, CHAINS, LEAPFROG, seed=3)
    assert float(np.mean(exact - iwae)) > 0.1
    assert float(np.mean(result.log_lik - exact)) == pytest.approx(0.0, abs=TOLERANCE)
    assert float(np.mean(result.log_lik - iwae)) > 0.05
    assert 0.5 < result.accept_rate < 0.95  # the pilot's step sizes, adapted towards 65%


def test_few_annealing_steps_are_a_lower_bound() -> None:
    """With one chain and 10 steps the estimate is a stochastic lower bound: below the exact value
    on average, by more than the long run's tolerance (the long run's agreement is not luck)."""
    model = _off_encoder(small_model()).float()
    x = _data(model, 64, seed=4).float()
    exact = model_log_marginal(model, x).numpy()
    short = ais_log_likelihood(model, x, 10, 1, LEAPFROG, seed=5)
    assert float(np.mean(short.log_lik - exact)) < -TOLERANCE


@pytest.mark.parametrize("prior,posterior", [("laplace", "gaussian"), ("cauchy", "cauchy"), ("cauchy", "gaussian")])
def test_ais_is_at_least_iwae_for_every_family(prior: str, posterior: str) -> None:
    """No closed form here: AIS (100 steps x 8 chains) is >= the IWAE bound (K = 200) on average,
    for every prior / posterior pair the study runs; the estimate is finite and repeatable."""
    torch.manual_seed(0)
    kl = "closed_form" if posterior != "gaussian" or prior != "cauchy" else "monte_carlo"
    model = VAE(input_dim=10, latent=4, hidden=[], prior=prior, posterior=posterior, decoder="linear",
                likelihood="gaussian", obs_scale=0.3, kl=kl).eval()
    x = torch.randn(16, 10)
    iwae = _iwae(model, x, 200, seed=1)
    first = ais_log_likelihood(model, x, 100, 8, LEAPFROG, seed=2)
    again = ais_log_likelihood(model, x, 100, 8, LEAPFROG, seed=2)
    assert np.isfinite(first.log_lik).all()
    np.testing.assert_array_equal(first.log_lik, again.log_lik)
    assert float(np.mean(first.log_lik - iwae)) > 0.0
