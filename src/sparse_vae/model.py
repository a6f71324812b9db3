"""The VAE: an MLP encoder to q(z|x), a factorised prior p(z) and an MLP or linear decoder to p(x|z).

Built from a run spec (see docs/interfaces.md):

    model = build_model(spec, input_dim)
    terms = model(x)            # LossTerms(loss, recon, kl, kl_per_dim)
    terms.loss.backward()

The encoder maps x through `hidden` ReLU layers to a location and an unconstrained log-scale per latent
dimension; `distributions.make_posterior` turns them into the run's posterior: Gaussian (under any
prior family) or Cauchy (under a Cauchy prior), as the prior entry's `posterior` says. The decoder is either an MLP mirroring the encoder or a single linear layer,
the sparse-coding setting, whose weight columns are the dictionary (`decoder_dictionary()`).

Decoded means go through a sigmoid (the data lie in [0, 1]) except for a linear decoder with a
Gaussian likelihood, which is the sparse-coding model x = W z + b + noise (Olshausen & Field;
Barello et al.) and keeps an identity output so the columns of W are the dictionary in pixel units:
* bernoulli: the decoder outputs logits; `log p(x|z) = -BCE_with_logits(logits, x)` summed over pixels,
  which also serves for grey levels in [0, 1] (as in pytorch/examples; then it is not a normalised
  density, only a cross-entropy).
* gaussian: mean `sigmoid(out)` and a pixel sd that is either fixed (`obs_scale` a number) or learned,
  one log-sd per pixel, floored at `OBS_SD_MIN` = 1e-3: without a floor a pixel that the decoder fits
  almost exactly drives its sd to 0 and the likelihood to +inf (the degenerate-variance blow-up).
  With a linear decoder the mean is `W z + b` and may stray slightly outside [0, 1].
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution

from sparse_vae.distributions import (
    DEFAULT_POSTERIOR,
    HALF_LOG_2PI,
    check_pairing,
    kl_divergence,
    make_posterior,
    make_prior,
    prior_log_density,
    softplus,
    standard_draws,
    standard_log_density,
)
from sparse_vae.stacked import CandidateLinear, Noise, mlp

__all__ = ["OBS_SD_MIN", "LossTerms", "VAE", "build_model", "iwae_bound", "prior_family_and_posterior"]

OBS_SD_MIN = 1e-3            # floor of the Gaussian pixel sd (learned or fixed)
OBS_SD_INIT = 0.1            # initial learned pixel sd when no data sd is given (build_model passes the data's)
_LOG_OBS_SD_MIN = math.log(OBS_SD_MIN)

DECODERS = ("mlp", "linear")
LIKELIHOODS = ("gaussian", "bernoulli")
KL_METHODS = ("closed_form", "monte_carlo")
OBJECTIVES = ("elbo", "iwae")


def iwae_bound(log_w: Tensor, dim: int = 0) -> Tensor:
    """The importance-weighted bound from importance log-weights: `log (1/K) sum_k exp(log_w_k)`
    over the K draws along `dim` (= logsumexp - log K), per example.

    `log_w` = log p(x, z_k) - log q(z_k | x) of K draws z_k ~ q(z|x), as `VAE.log_weights` gives them
    (log p(x|z) minus the summed log q(z|x) - log p(z)). The one reduction of the project: the
    training objective (float32, with gradients), the validation score that selects and stops runs,
    and the analysis' test-split bound all call it. Computed in `log_w`'s dtype: pass float64 to score
    (with hundreds of draws the weights span hundreds of nats, and float32 loses the small ones).
    K = 1 gives the ELBO's one-draw estimate. Why it is finite under a Cauchy posterior: see
    `VAE.iwae_bound`.
    """
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])


class LossTerms(NamedTuple):
    """Loss terms of one batch, all in nats per example and still attached to the graph."""

    loss: Tensor        # () mean over the batch of -ELBO = recon + kl
    recon: Tensor       # () mean of -log p(x|z) at one reparameterised sample z ~ q(z|x)
    kl: Tensor          # () mean of KL(q(z|x) || p(z)), summed over latent dimensions
    kl_per_dim: Tensor  # (L,) mean over the batch, per latent dimension


def _check_settings(prior: str, posterior: str, decoder: str, likelihood: str, kl: str, kl_samples: int,
                    objective: str, objective_samples: int) -> None:
    """A ValueError naming the setting a VAE cannot be built with."""
    check_pairing(prior, posterior, kl)
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {', '.join(LIKELIHOODS)}")
    if kl not in KL_METHODS:
        raise ValueError(f"unknown KL estimator {kl!r}; expected one of {', '.join(KL_METHODS)}")
    if int(kl_samples) < 1:
        raise ValueError(f"kl_samples must be >= 1, got {kl_samples}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    if objective == "iwae" and int(objective_samples) < 2:
        raise ValueError(f"objective iwae needs objective_samples >= 2, got {objective_samples}")


def _fixed_obs_sd(obs_scale: str | float) -> float:
    """A fixed Gaussian pixel sd: a number >= OBS_SD_MIN."""
    try:
        sd = float(obs_scale)
    except (TypeError, ValueError):
        sd = float("nan")
    if not sd >= OBS_SD_MIN:
        raise ValueError(f"obs_scale must be 'learned' or a number >= {OBS_SD_MIN}, got {obs_scale!r}")
    return sd


class VAE(nn.Module):
    """Encoder, prior and decoder of one run (or of K stacked candidates); `forward` is its loss."""

    def __init__(
        self,
        input_dim: int,
        latent: int,
        hidden: list[int],
        prior: str = "normal",
        prior_scale: float = 1.0,
        posterior: str | None = None,
        decoder: str = "mlp",
        likelihood: str = "bernoulli",
        obs_scale: str | float = "learned",
        kl: str = "closed_form",
        kl_samples: int = 1,
        objective: str = "elbo",
        objective_samples: int = 1,
        obs_sd_init: float = OBS_SD_INIT,
        candidates: int | None = None,
    ) -> None:
        """`prior` is the prior family; `posterior` defaults to the talk's choice for it.

        `objective`: "elbo" (one reparameterised draw per example, the talk's estimator) or "iwae"
        (the `objective_samples`-draw importance-weighted bound, `iwae_bound`). `candidates` K builds
        K independent copies trained at once (a settings grid): every tensor then carries a candidate
        axis third from the end and the loss terms are per candidate, (K,).
        """
        super().__init__()
        posterior = DEFAULT_POSTERIOR.get(prior, "gaussian") if posterior is None else posterior
        _check_settings(prior, posterior, decoder, likelihood, kl, kl_samples, objective, objective_samples)
        self.input_dim, self.latent, self.hidden = int(input_dim), int(latent), [int(h) for h in hidden]
        self.prior_family, self.posterior_family = prior, posterior
        self.decoder_kind, self.likelihood = decoder, likelihood
        self.kl_method, self.kl_samples = kl, int(kl_samples)
        self.objective, self.objective_samples = objective, int(objective_samples)
        self.candidates = candidates
        self.noise: Noise | None = None   # reparameterisation draws: torch's global RNG unless set
        self.identity_mean = decoder == "linear" and likelihood == "gaussian"

        # Encoder: x -> hidden (ReLU) -> (loc, raw_scale), one pair per latent dimension.
        self.encoder = mlp([self.input_dim, *self.hidden, 2 * self.latent], candidates)
        # Decoder: z -> reversed hidden (ReLU) -> output (logits, or pre-sigmoid Gaussian mean).
        if decoder == "linear":
            self.decoder: nn.Module = (nn.Linear(self.latent, self.input_dim) if candidates is None
                                       else CandidateLinear(candidates, self.latent, self.input_dim))
        else:
            self.decoder = mlp([self.latent, *reversed(self.hidden), self.input_dim], candidates)

        # The prior's parameters are buffers, so that .to(device) moves them with the model.
        p = make_prior(prior, prior_scale, self.latent)
        self.register_buffer("prior_loc", p.loc.clone())
        self.register_buffer("prior_scale", p.scale.clone())
        self.prior_scale_value = float(prior_scale)
        self._prior_cls = type(p)

        self.obs_learned = likelihood == "gaussian" and obs_scale == "learned"
        if self.obs_learned:
            shape = (self.input_dim,) if candidates is None else (candidates, 1, self.input_dim)
            self.obs_log_sd = nn.Parameter(torch.full(shape, math.log(max(float(obs_sd_init), OBS_SD_MIN))))
        elif likelihood == "gaussian":
            self.register_buffer("obs_log_sd", torch.tensor(math.log(_fixed_obs_sd(obs_scale))))

    def set_candidate_weights(self, weights: dict[str, Tensor]) -> None:
        """Replace the stacked parameters by `weights`, whose candidate axis may have another length
        (a grid drops its stopped candidates: `train.Trainer._compact`)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.data = weights[name].to(param.device).clone()
                self.candidates = param.shape[0]

    # -- the three distributions -------------------------------------------------------------------
    def posterior(self, x: Tensor) -> Distribution:
        """q(z|x): Normal (posterior `gaussian`) or Cauchy, batch shape (B, L) ((K, B, L) for K candidates)."""
        loc, raw_scale = self.encoder(x).chunk(2, dim=-1)
        return make_posterior(self.posterior_family, loc, raw_scale)

    def prior(self) -> Distribution:
        """p(z) with batch shape (L,)."""
        return self._prior_cls(self.prior_loc, self.prior_scale, validate_args=False)

    def decode(self, z: Tensor) -> Tensor:
        """Mean image (Bernoulli probabilities or Gaussian mean), shape (..., D) for z (..., L).

        In [0, 1] except for the linear-Gaussian (sparse-coding) model, whose mean is W z + b.
        """
        return self._mean(self.decoder(z))

    def _mean(self, out: Tensor) -> Tensor:
        return out if self.identity_mean else torch.sigmoid(out)

    def obs_sd(self) -> Tensor | None:
        """Gaussian pixel sd, (D,) when learned or () when fixed; None for a Bernoulli likelihood."""
        if self.likelihood != "gaussian":
            return None
        return self._obs_log_sd().exp()

    def _obs_log_sd(self) -> Tensor:
        return self.obs_log_sd.clamp(min=_LOG_OBS_SD_MIN) if self.obs_learned else self.obs_log_sd

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) summed over pixels; x (B, D), z (..., B, L) -> (..., B). With K candidates x may
        also be grouped, (G, B, D): group g's data for its K/G consecutive candidates (`CandidateLinear`)."""
        out = self.decoder(z)
        groups = x.shape[0] if x.dim() == 3 and x.shape[0] != out.shape[-3] else 0
        if groups:   # (..., K, B, D) -> (..., G, K/G, B, D) against x (G, 1, B, D): no copy of x
            out, x = out.unflatten(-3, (groups, -1)), x.unsqueeze(-3)
        if self.likelihood == "bernoulli":
            ll = (x * out - softplus(out)).sum(-1)          # = -BCE_with_logits(out, x), see softplus
            return ll.flatten(-3, -2) if groups else ll
        # -0.5 sum(r^2 / sd^2) - sum(log sd) - D log sqrt(2 pi): the sd terms are summed once per
        # candidate, not once per draw and example (the draws' tensors are a step's largest)
        log_sd = self._obs_log_sd()
        if groups and self.obs_learned:
            log_sd = log_sd.unflatten(0, (groups, -1))
        squared = (x - self._mean(out)).square()
        half_precision = 0.5 * torch.exp(-2 * log_sd)
        if self.obs_learned:
            ll = -(squared * half_precision).sum(-1) - (log_sd.sum(-1) + self.input_dim * HALF_LOG_2PI)
        else:
            ll = -squared.sum(-1) * half_precision - self.input_dim * (log_sd + HALF_LOG_2PI)
        return ll.flatten(-3, -2) if groups else ll

    def decoder_dictionary(self) -> Tensor | None:
        """(L, D) decoder weight columns (one dictionary element per latent) for a linear decoder, else None."""
        if self.decoder_kind != "linear":
            return None
        return self.decoder.weight.detach().t()

    # -- the loss ----------------------------------------------------------------------------------
    def forward(self, x: Tensor, kl_weight: float = 1.0) -> LossTerms:
        """The training objective of a batch x (B, D): -ELBO (one draw) or -IWAE (`objective_samples`).

        Terms are means over the batch ((K,) per candidate). Under "iwae", recon and kl are the
        Monte Carlo means of -log p(x|z) and log q(z|x) - log p(z) over the draws: diagnostics only.
        `kl_weight` < 1 (KL warm-up) scales log q(z|x) - log p(z) in the loss only; the reported
        terms stay unweighted, so the loss is the true bound once the weight reaches 1.
        """
        q = self.posterior(x)
        if self.objective == "iwae":
            return self._iwae_terms(x, q, kl_weight)
        z = self.draw(q)
        recon = -self.log_likelihood(x, z)                                # (B,)
        if self.kl_method == "monte_carlo":
            # One KL sample reuses the reconstruction's z (the talk's estimator); more draw afresh
            # (from the model's noise, like every other draw)
            fresh = z if self.kl_samples == 1 else self.draw(q, (self.kl_samples,))
            kl_dims = kl_divergence(q, self.prior(), "monte_carlo", self.kl_samples, z=fresh)
        else:
            kl_dims = kl_divergence(q, self.prior(), "closed_form")      # (B, L)
        kl = kl_dims.sum(-1)
        return LossTerms((recon + kl_weight * kl).mean(-1), recon.mean(-1), kl.mean(-1), kl_dims.mean(-2))

    def draw(self, q: Distribution, sample_shape: tuple[int, ...] = ()) -> Tensor:
        """Reparameterised draws z = loc + scale * eps of q (a location-scale family)."""
        return self._draw(q, sample_shape)[1]

    def standard_eps(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Standard draws of the posterior family from the model's `noise`: (*shape) with one
        group (or the global RNG), (*shape[:-2], G, *shape[-2:]) with G groups."""
        noise, family = self.noise, self.posterior_family
        if noise is None:
            return standard_draws(family, shape, like.dtype, like.device)
        draws = [standard_draws(family, shape, like.dtype, like.device, generator=g) for g in noise.generators]
        return draws[0] if noise.groups is None else torch.stack(draws, -3)

    def _spread(self, eps: Tensor) -> Tensor:
        """Standard draws laid against the candidates' (K, B, L) posteriors: one shared draw
        broadcast to all, or each group's draw copied to its candidates."""
        if self.candidates is None:
            return eps
        if self.noise is None or self.noise.groups is None:
            return eps.unsqueeze(-3)
        return eps.index_select(-3, self.noise.groups)

    def _draw(self, q: Distribution, sample_shape: tuple[int, ...],
              eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(eps, z): standard draws (*sample_shape, B, L) and z = loc + scale * eps (`eps` given:
        those draws, e.g. rows of a larger batch's).

        The draws are those of `q.rsample` (same RNG calls). With K candidates one standard draw
        eps is shared by all of them, as the data batch is (or by each group's, see `Noise`):
        candidates then differ only in their settings (common random numbers), and candidate k sees
        exactly the noise a plain model at the same RNG state would (same draws, same order).
        """
        if eps is None:
            eps = self.standard_eps((*sample_shape, *q.loc.shape[-2:]), q.loc)
        return eps, q.loc + self._spread(eps) * q.scale

    def log_weights(self, x: Tensor, q: Distribution, n_samples: int,
                    eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(log p(x|z), per-dim log q(z|x) - log p(z)) for `n_samples` draws: (S, ..., B), (S, ..., B, L).

        The project's one log-weight function: log w = log p(x|z) - (log q(z|x) - log p(z)).sum(-1),
        reduced by `iwae_bound`. log q(z|x) is taken at the standard draw that made z
        (`distributions.standard_log_density`): the value and gradient of `q.log_prob(z)`, in a
        third of the elementwise passes. `eps`: use these standard draws (see `_draw`).
        """
        eps, z = self._draw(q, (n_samples,), eps)
        log_q = self._spread(standard_log_density(self.posterior_family, eps)) - q.scale.log()
        return self.log_likelihood(x, z), log_q - prior_log_density(self.prior_family, z, self.prior_scale_value)

    def _iwae_terms(self, x: Tensor, q: Distribution, kl_weight: float = 1.0) -> LossTerms:
        log_lik, log_ratio = self.log_weights(x, q, self.objective_samples)
        log_w = log_lik - kl_weight * log_ratio.sum(-1)
        bound = iwae_bound(log_w, 0)
        return LossTerms(-bound.mean(-1), -log_lik.mean((0, -1)), log_ratio.sum(-1).mean((0, -1)),
                         log_ratio.mean((0, -2)))

    def iwae_bound(self, x: Tensor, n_samples: int) -> Tensor:
        """The `n_samples`-draw importance-weighted bound on log p(x), per example: (B,) or (K, B).

        Why it is finite where the one-draw ELBO is not. Under a Cauchy posterior E|z| is infinite,
        and log w(z) = log p(x|z) + log p(z) - log q(z|x) falls like -|z|^p for large |z| (p = 1 for
        MLP logits, whose pre-activations grow linearly; p = 2 for a linear-Gaussian decoder), so
        E log w = -inf. With K draws, log mean_k w_k >= max_k log w_k - log K: the bound is carried by
        the draw nearest the mode, and P(min_k |z_k| > r) ~ r^-K, so its expectation is finite once
        K > p (and <= log p(x) by Jensen). tests/test_model.py shows the one-draw estimate drifting
        down without end and the 4-draw one settling. So every family is trained (objective "iwae"),
        selected and tuned on a well-defined quantity.
        """
        log_lik, log_ratio = self.log_weights(x, self.posterior(x), n_samples)
        return iwae_bound(log_lik - log_ratio.sum(-1), 0)


def prior_family_and_posterior(prior: dict) -> tuple[str, str]:
    """(family, posterior) of a spec's prior entry. Specs written before entries had a `family`
    named the prior by its family and implied the talk's posterior; they still load."""
    family = prior.get("family", prior["name"])
    return family, prior.get("posterior", DEFAULT_POSTERIOR.get(family, "gaussian"))


def build_model(spec: dict, input_dim: int, candidates: int | None = None,
                obs_sd_init: float = OBS_SD_INIT) -> VAE:
    """The VAE of a run spec: uses spec["prior"], spec["latent"] and spec["model"].

    `candidates` K stacks K copies for a settings grid (see `VAE`); `obs_sd_init` is the learned
    pixel sd's starting value (the trainer passes the data's own sd, see `train.data_obs_sd`).
    """
    prior, model = spec["prior"], spec["model"]
    family, posterior = prior_family_and_posterior(prior)
    return VAE(
        input_dim=input_dim,
        latent=spec["latent"],
        hidden=list(model.get("hidden", [])),
        prior=family,
        prior_scale=prior.get("scale", 1.0),
        posterior=posterior,
        decoder=model.get("decoder", "mlp"),
        likelihood=model.get("likelihood", "bernoulli"),
        obs_scale=model.get("obs_scale", "learned"),
        kl=prior.get("kl", "closed_form"),
        kl_samples=prior.get("kl_samples", 1),
        objective=prior.get("objective", "elbo"),
        objective_samples=prior.get("objective_samples", 1),
        obs_sd_init=obs_sd_init,
        candidates=candidates,
    )
