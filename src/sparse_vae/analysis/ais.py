"""Annealed importance sampling (AIS) estimate of log p(x), with HMC transitions.

Why: the IWAE bound with a few hundred samples sits ~1 nat below the exact log-likelihood on
natural12's 169-latent runs, too loose to rank priors whose likelihoods differ by less; the
sparse-coding VAE literature (Barello et al.; Geadah et al., code vgeadah/SVAE ``evaluate/ais.py``)
compares priors by AIS. As there (their ``use_posterior`` option), the chain starts from the
encoder's q(z|x) and anneals along the geometric path
    log f_b(z) = (1 - b) log q(z|x) + b [log p(x|z) + log p(z)],  b: 0 -> 1 (sigmoid schedule),
so each chain's final log-weight is a stochastic lower bound on log p(x) (and its exp an unbiased
estimate of p(x)); the per-example estimate is the log-mean-exp over chains. It works for any
prior and posterior family the model has (Normal, Laplace, Cauchy): only log densities are used.

Transitions: HMC in the coordinates u = (z - loc) / scale of q (a diagonal mass matrix from the
encoder: every latent gets a step on its own posterior's scale), a fixed number of leapfrog steps,
and a step size per example and temperature. Adapting the step inside the chains (Wu et al. 2017,
BDMC) makes each transition depend on the chain's own past, which biased the estimate here by
~-0.05 nats; vgeadah/SVAE fixes one step size instead. Here a short pilot run (a tenth of the
steps, 4 chains) adapts towards 65% acceptance, and the main run uses the pilot's step at each
temperature, fixed in advance. All chains x examples run as one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sparse_vae.model import iwae_bound

__all__ = ["AISResult", "ais_log_likelihood", "sigmoid_schedule"]

#: the pilot's step adaptation: x1.1 after an accepted transition, x0.838 after a rejected one, so the
#: step is stationary at 65% acceptance (0.65 log 1.1 + 0.35 log 0.838 = 0; Neal's HMC guidance).
_STEP_UP, _STEP_DOWN = 1.1, 0.838
_STEP_INIT, _STEP_MIN, _STEP_MAX = 0.1, 1e-4, 2.0
#: the pilot run that sets the step sizes: steps // 10 (at least 50) annealing steps, 4 chains.
_PILOT_FRACTION, _PILOT_MIN, _PILOT_CHAINS = 10, 50, 4


@dataclass
class AISResult:
    """Per-example AIS estimates and what they cost."""

    log_lik: np.ndarray  # (E,) log-mean-exp over chains of the final log-weights
    log_weights: np.ndarray  # (chains, E)
    accept_rate: float  # mean HMC acceptance over all transitions
    seconds: float


def sigmoid_schedule(steps: int, radius: float = 4.0) -> Tensor:
    """steps + 1 inverse temperatures from 0 to 1, denser near both ends (Grosse et al. 2015; the
    schedule of vgeadah/SVAE): the path changes fastest there."""
    if steps < 1:
        raise ValueError(f"AIS needs at least 1 step, got {steps}")
    gamma = torch.sigmoid(torch.linspace(-radius, radius, steps + 1, dtype=torch.float64))
    return (gamma - gamma[0]) / (gamma[-1] - gamma[0])


class _Path:
    """The annealing path of one batch of examples, in whitened coordinates u."""

    def __init__(self, model: Any, x: Tensor) -> None:
        self.model, self.x = model, x
        with torch.no_grad():
            self.q = model.posterior(x)
            self.prior = model.prior()
        self.loc, self.scale = self.q.loc.detach(), self.q.scale.detach().expand_as(self.q.loc)

    def terms(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """log q(z|x), log p(x, z) at z = loc + scale * u, each (chains, E), and their gradients in u.

        Kept apart so that a new temperature reuses them: log f_b and its gradient are the b-mix
        of the two (the Jacobian of u -> z is constant and cancels in every ratio)."""
        u = u.detach().requires_grad_(True)
        z = self.loc + self.scale * u
        log_q = self.q.log_prob(z).sum(-1)
        log_joint = self.model.log_likelihood(self.x, z) + self.prior.log_prob(z).sum(-1)
        (grad_q,) = torch.autograd.grad(log_q.sum(), u, retain_graph=True)
        (grad_joint,) = torch.autograd.grad(log_joint.sum(), u)
        return log_q.detach(), log_joint.detach(), grad_q, grad_joint


def _energy(terms: tuple[Tensor, ...], beta: float) -> tuple[Tensor, Tensor]:
    """-log f_beta and its gradient in u from the cached terms."""
    log_q, log_joint, grad_q, grad_joint = terms
    return -((1.0 - beta) * log_q + beta * log_joint), -((1.0 - beta) * grad_q + beta * grad_joint)


def _hmc(path: _Path, u: Tensor, terms: tuple[Tensor, ...], beta: float, step: Tensor, leapfrog: int,
         gen: torch.Generator) -> tuple[Tensor, tuple[Tensor, ...], Tensor]:
    """One HMC transition leaving f_beta invariant; returns (u, its cached terms, accepted mask)."""
    energy, grad = _energy(terms, beta)
    eps = step[..., None]
    p0 = torch.randn(u.shape, generator=gen, dtype=u.dtype)
    p = p0 - 0.5 * eps * grad
    u_new = u
    for i in range(leapfrog):
        u_new = u_new + eps * p
        new = path.terms(u_new)
        e_new, g_new = _energy(new, beta)
        p = p - (eps if i < leapfrog - 1 else 0.5 * eps) * g_new
    h_old = energy + 0.5 * p0.square().sum(-1)
    h_new = e_new + 0.5 * p.square().sum(-1)
    log_u = torch.log(torch.rand(h_old.shape, generator=gen, dtype=h_old.dtype))
    accept = torch.isfinite(h_new) & (log_u < (h_old - h_new))
    keep = accept[..., None]
    u = torch.where(keep, u_new.detach(), u)
    terms = tuple(torch.where(keep if n.dim() > accept.dim() else accept, n, o) for n, o in zip(new, terms))
    return u, terms, accept


def _anneal(path: _Path, betas: list[float], chains: int, leapfrog: int, gen: torch.Generator,
            schedule: Tensor | None) -> tuple[Tensor, float, Tensor]:
    """Run the chains along `betas`: (log-weights (chains, E), mean acceptance, step sizes (T, E)).

    With ``schedule`` None the step adapts per chain from its own acceptances (the pilot); otherwise
    step t of example e is ``schedule[t, e]``, fixed in advance, so the transitions do not depend on
    the chains' own history and the weights are those of a valid AIS run."""
    n = path.loc.shape[0]
    u0 = torch.rand((chains, *path.loc.shape), generator=gen, dtype=path.loc.dtype).clamp(1e-6, 1 - 1e-6)
    u = ((path.q.icdf(u0) - path.loc) / path.scale).detach()  # z ~ q(z|x) by inversion, in u
    terms = path.terms(u)
    step = torch.full((chains, n), _STEP_INIT, dtype=path.loc.dtype)
    log_w = torch.zeros((chains, n), dtype=torch.float64)
    accepted, history = 0.0, []
    for t, (b_prev, b) in enumerate(zip(betas[:-1], betas[1:])):
        log_w += (b - b_prev) * (terms[1] - terms[0]).double()
        if schedule is not None:
            step = schedule[t].expand(chains, n)
        u, terms, accept = _hmc(path, u, terms, b, step, leapfrog, gen)
        accepted += float(accept.double().mean())
        if schedule is None:
            history.append(step.log().mean(0).exp())  # geometric mean over chains, before the update
            step = torch.where(accept, step * _STEP_UP, step * _STEP_DOWN).clamp(_STEP_MIN, _STEP_MAX)
    steps = torch.stack(history) if history else schedule
    return log_w, accepted / max(1, len(betas) - 1), steps


def _step_schedule(pilot_betas: list[float], pilot_steps: Tensor, betas: list[float]) -> Tensor:
    """The pilot's adapted step sizes (per example) carried over to the main run's temperatures."""
    at = np.asarray(pilot_betas[1:])
    return torch.stack([torch.as_tensor(np.interp(betas[1:], at, pilot_steps[:, e].numpy()), dtype=pilot_steps.dtype)
                        for e in range(pilot_steps.shape[1])], dim=1)


def ais_log_likelihood(model: Any, x: Tensor, steps: int, chains: int, leapfrog: int = 5,
                       seed: int = 0) -> AISResult:
    """AIS estimate of log p(x) for every row of x (E, D): `chains` chains per example, `steps`
    annealing steps, one HMC transition of `leapfrog` leapfrog steps each.

    The log-weight increment at step t is (b_t - b_{t-1}) [log p(x, z) - log q(z|x)] at the chain's
    current z, before the transition at b_t (Neal 2001). Model parameters are frozen (no gradient
    is kept for them); the model should be in eval mode.
    """
    if chains < 1 or leapfrog < 1:
        raise ValueError(f"AIS needs >= 1 chain and >= 1 leapfrog step (got {chains}, {leapfrog})")
    t0 = time.perf_counter()
    betas = sigmoid_schedule(steps).tolist()
    gen = torch.Generator().manual_seed(int(seed))
    was_grad = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        path = _Path(model, x)
        pilot_betas = sigmoid_schedule(max(_PILOT_MIN, steps // _PILOT_FRACTION)).tolist()
        _, _, pilot = _anneal(path, pilot_betas, _PILOT_CHAINS, leapfrog, gen, None)
        log_w, accept_rate, _ = _anneal(path, betas, chains, leapfrog, gen,
                                        _step_schedule(pilot_betas, pilot, betas))
    finally:
        for p, flag in zip(model.parameters(), was_grad):
            p.requires_grad_(flag)
    log_lik = iwae_bound(log_w, 0)   # the log-mean of the chains' weights: the one reduction (model.iwae_bound)
    return AISResult(log_lik=log_lik.numpy(), log_weights=log_w.numpy(), accept_rate=accept_rate,
                     seconds=time.perf_counter() - t0)
