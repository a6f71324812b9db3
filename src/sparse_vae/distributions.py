"""Prior and posterior families of the VAEs, their reparameterised samples and KL divergences.

| prior `p(z)`      | posterior `q(z|x)`  | sample                               | closed-form KL(q || p)   |
|-------------------|---------------------|--------------------------------------|--------------------------|
| Normal(0, scale)  | gaussian: N(mu, s)  | mu + s * eps, eps ~ N(0, 1)          | torch's Normal-Normal     |
| Laplace(0, scale) | gaussian: N(mu, s)  | mu + s * eps, eps ~ N(0, 1)          | `kl_normal_laplace`       |
| Cauchy(0, scale)  | cauchy: C(mu, g)    | mu + g * tan(pi * (u - 1/2)), u ~ U  | `kl_cauchy_cauchy`        |
| Cauchy(0, scale)  | gaussian: N(mu, s)  | mu + s * eps, eps ~ N(0, 1)          | none: Monte Carlo only    |

The first three are the talk's VAEs; the fourth is the sparse-coding VAE of Barello, Charles & Pillow
(a Gaussian posterior under every prior), so a study can tell the prior's effect from the posterior
family's. A Cauchy posterior is allowed only under a Cauchy prior (`check_pairing`): under a normal or
Laplace prior its KL is infinite (E_q[z^2] and E_q|z| diverge).

Everything is a `torch.distributions` object, so `log_prob`, `rsample`, `cdf` and
`torch.distributions.kl_divergence` work as usual. Only two things are written by hand:

* `GuardedCauchy`: torch's `Cauchy.rsample` is `loc + scale * eps` with `eps` from the in-place
  `Tensor.cauchy_()` kernel (`median + sigma * tan(pi * (u - 1/2))`), so gradients do reach `loc` and
  `scale`; but its uniform `u` may be exactly 0, where `tan` sits on its pole (in float32,
  `tan(-pi/2)` even comes out as a large *positive* number). `GuardedCauchy.rsample` draws `u` itself
  and keeps it at least `CAUCHY_U_MIN` away from 0 and 1 (see there).
* the two non-Gaussian closed-form KLs, written out so that they can be tested against Monte Carlo and
  quadrature and so that the Cauchy one is accurate near zero. torch >= 2.1 registers both pairs
  itself (the registrations below only fill in for an older torch); `kl_divergence(..., "closed_form")`
  always uses the functions here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Cauchy, Distribution, Laplace, Normal
from torch.distributions.kl import _KL_REGISTRY, register_kl

__all__ = [
    "CAUCHY_U_MIN",
    "LOG_SCALE_MAX",
    "DEFAULT_POSTERIOR",
    "HALF_LOG_2PI",
    "POSTERIORS",
    "POSTERIOR_SCALE_MIN",
    "PRIOR_FAMILIES",
    "GuardedCauchy",
    "check_pairing",
    "kl_cauchy_cauchy",
    "kl_divergence",
    "kl_normal_laplace",
    "make_posterior",
    "make_prior",
    "posterior_scale",
    "prior_log_density",
    "standard_draws",
    "standard_log_density",
]

PRIOR_FAMILIES = ("normal", "laplace", "cauchy")
POSTERIORS = ("gaussian", "cauchy")

# The talk's posterior for each prior family: Gaussian for normal and Laplace, Cauchy for Cauchy (its
# "additive" / stable-family argument). Used for run specs written before `posterior` was configurable.
DEFAULT_POSTERIOR = {"normal": "gaussian", "laplace": "gaussian", "cauchy": "cauchy"}

# Posterior scale = POSTERIOR_SCALE_MIN + exp(soft-capped raw): the floor is approached smoothly
# (the gradient never vanishes at a finite raw value) and sits far below where trained posteriors go
# (Cauchy posteriors settle around 1e-4 to 1e-2 on the synthetic data); the cap keeps it <= ~148.4.
# Below ~1e-6 float32 no longer resolves `z - loc` for |loc| ~ 1, so log q(z) of a sample degrades.
POSTERIOR_SCALE_MIN = 1e-6
LOG_SCALE_MAX = 5.0

# Smallest distance of the Cauchy sampler's uniform from 0 and 1: |eps| <= cot(pi * 1e-6) ~ 3.2e5.
CAUCHY_U_MIN = 1e-6

_HALF_LOG_2PIE = 0.5 * math.log(2 * math.pi * math.e)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_PI = math.log(math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GuardedCauchy(Cauchy):
    """A `torch.distributions.Cauchy` whose reparameterised sampler cannot hit the pole of `tan`.

    `rsample` returns `loc + scale * tan(pi * (u - 1/2))` with `u ~ U(0, 1)`, evaluated in the
    equivalent form `eps = -/+ 1 / tan(pi * w)` with `w = min(u, 1 - u)` (`1 - u` is exact in floating
    point for `u >= 1/2`), so the far tails keep full relative precision instead of losing it in
    `pi * (u - 1/2) ~ -/+ pi/2`. `w` is clamped to `[CAUCHY_U_MIN, 1/2]`: `u` is never closer than
    1e-6 to 0 or 1, so `|eps| <= 1 / tan(pi * 1e-6) ~ 3.2e5` and every sample is finite. This
    truncates a tail mass of 2e-6, which no test or training run can see. Gradients flow to `loc`
    and `scale` (`eps` itself carries none). Everything else (log_prob, cdf, KL registrations) is
    torch's `Cauchy`.
    """

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:
        eps = standard_draws("cauchy", self._extended_shape(sample_shape), self.loc.dtype, self.loc.device)
        return self.loc + eps * self.scale


def standard_draws(posterior: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Draws of the standard member of a posterior family (loc 0, scale 1), exactly those that
    torch's `Normal.rsample` and `GuardedCauchy.rsample` scale and shift (same RNG calls), from
    `generator` (default: torch's global one)."""
    if posterior == "gaussian":
        return torch.empty(shape, dtype=dtype, device=device).normal_(generator=generator)
    u = torch.rand(shape, dtype=dtype, device=device, generator=generator)
    lower = u < 0.5
    w = torch.where(lower, u, 1.0 - u).clamp_(min=CAUCHY_U_MIN)
    eps = torch.tan(math.pi * w).reciprocal_()
    return torch.where(lower, -eps, eps)


def standard_log_density(posterior: str, eps: Tensor) -> Tensor:
    """log density of the standard posterior member at `eps`, elementwise.

    With z = loc + scale * eps, `log q(z) = standard_log_density(eps) - log(scale)` in value and in
    gradient: torch's `log_prob(z)` differentiates the standardised residual (z - loc) / scale, whose
    derivative with respect to loc and scale is 0 along the reparameterisation. Evaluating at eps
    skips that residual (tested against `log_prob` in tests/test_distributions.py).
    """
    if posterior == "gaussian":
        return -0.5 * eps.square() - HALF_LOG_2PI
    return -torch.log(1 + eps.square()) - _LOG_PI    # log(1 + t), not log1p: see `softplus`


def prior_log_density(family: str, z: Tensor, scale: float) -> Tensor:
    """log p(z) of the zero-centred prior family with a scalar scale, elementwise: the value of
    `make_prior(family, scale, L).log_prob(z)` in fewer elementwise passes (a training step's
    largest tensors are the draws z, so each pass counts)."""
    t = z if scale == 1.0 else z * (1.0 / scale)
    log_scale = math.log(scale)
    if family == "normal":
        return -0.5 * t.square() - (HALF_LOG_2PI + log_scale)
    if family == "laplace":
        return -t.abs() - (math.log(2.0) + log_scale)
    return -torch.log(1 + t.square()) - (_LOG_PI + log_scale)


# -- priors and posteriors ------------------------------------------------------------------------
def check_pairing(family: str, posterior: str, kl: str) -> None:
    """Reject a prior/posterior/KL combination that has no finite or no computable KL."""
    if family not in PRIOR_FAMILIES:
        raise ValueError(f"unknown prior family {family!r}; expected one of {', '.join(PRIOR_FAMILIES)}")
    if posterior not in POSTERIORS:
        raise ValueError(f"unknown posterior {posterior!r}; expected one of {', '.join(POSTERIORS)}")
    if posterior == "cauchy" and family != "cauchy":
        raise ValueError(f"a cauchy posterior needs a cauchy prior: KL(Cauchy || {family}) is infinite")
    if posterior == "gaussian" and family == "cauchy" and kl == "closed_form":
        raise ValueError("KL(Normal || Cauchy) has no closed form; use kl: monte_carlo")


def make_prior(name: str, scale: float, latent: int, device: torch.device | str | None = None) -> Distribution:
    """The factorised prior `p(z)` with batch shape `(latent,)`: Normal, Laplace or Cauchy(0, scale)."""
    if name not in PRIOR_FAMILIES:
        raise ValueError(f"unknown prior family {name!r}; expected one of {', '.join(PRIOR_FAMILIES)}")
    if not scale > 0:
        raise ValueError(f"prior scale must be positive, got {scale}")
    loc = torch.zeros(latent, device=device)
    return _family(name)(loc, torch.full_like(loc, float(scale)), validate_args=False)


def softplus(y: Tensor) -> Tensor:
    """log(1 + e^y) as relu(y) + log(1 + e^-|y|): within 1.2e-7 of `F.softplus` everywhere.

    Why not torch's: its softplus, log-sigmoid and BCE-with-logits go through `log1p`, which on
    the study's CPUs runs a scalar path about 8x slower than `log` (bench/README.md), and these
    are the largest elementwise ops of a training step. `log(1 + t)` for t in (0, 1] loses at most
    half an ulp of 1 (6e-8 nats) against log1p: nothing a loss summed in float32 can see.
    """
    return F.relu(y) + torch.log(1 + torch.exp(-y.abs()))


def posterior_scale(raw_scale: Tensor) -> Tensor:
    """Map the encoder's unconstrained output to a positive scale: `floor + exp(min~(raw, 5))`.

    `raw_scale` is read as a log-scale: `scale = POSTERIOR_SCALE_MIN + exp(5 - softplus(5 - raw))`,
    about `exp(raw)` for raw well below 5 (factor 0.993 at raw = 0) and smoothly capped at
    `exp(LOG_SCALE_MAX) = 148.4`. Why both ends, and why smooth:
    * the floor: `log_prob` divides by the scale and the KLs take `log(scale)` and `1 / scale`, so a
      scale that underflows to 0 gives inf/NaN losses. The floor is *added*, not clamped: a hard
      clamp passes no gradient below it, so an encoder pushed past it stays there (99.9% of Cauchy
      posteriors sat at the old exp(-7) clamp on the synthetic and digits data), and the KL, ELBO
      and IWAE then depend on the clamp constant (#12). Here the KL's pull towards larger scales
      always reaches `raw`, and the floor (1e-6) lies below the scales trained models choose;
      tests/test_model.py checks that lowering it 1000x leaves a trained Cauchy VAE's IWAE unchanged.
    * the cap: a Cauchy sample is `loc + scale * eps` with `eps` as large as 3e5 (see `GuardedCauchy`);
      a bounded scale keeps samples, and the prior's `log_prob` of them, finite in float32.
    The module constant is read at call time, so a test may move the floor.
    """
    log_scale = LOG_SCALE_MAX - softplus(LOG_SCALE_MAX - raw_scale)
    return POSTERIOR_SCALE_MIN + log_scale.exp()


def make_posterior(posterior: str, loc: Tensor, raw_scale: Tensor) -> Normal | Cauchy:
    """`q(z|x)` from the encoder's outputs: Normal or (guarded) Cauchy with scale `posterior_scale(raw)`.

    `posterior` is one of `POSTERIORS` ("gaussian" or "cauchy"). Arguments are not validated
    (no device sync in the training step); the guards above keep them in range.
    """
    if posterior not in POSTERIORS:
        raise ValueError(f"unknown posterior {posterior!r}; expected one of {', '.join(POSTERIORS)}")
    return _family("normal" if posterior == "gaussian" else "cauchy")(loc, posterior_scale(raw_scale),
                                                                       validate_args=False)


def _family(name: str) -> type[Distribution]:
    return {"normal": Normal, "laplace": Laplace, "cauchy": GuardedCauchy}[name]


# -- closed-form KL divergences -------------------------------------------------------------------
def kl_normal_laplace(q: Normal, p: Laplace) -> Tensor:
    """KL(N(mu, s^2) || Laplace(m, b)), elementwise.

    `= E_q[log q] - E_q[log p] = -0.5 log(2 pi e s^2) + log(2 b) + E|z - m| / b`, with the mean of the
    folded normal `E|z - m| = s sqrt(2/pi) exp(-d^2 / (2 s^2)) + d erf(d / (sqrt(2) s))`, `d = mu - m`.
    """
    d = q.loc - p.loc
    s = q.scale
    abs_mean = s * _SQRT_2_OVER_PI * torch.exp(-0.5 * (d / s).square()) + d * torch.erf(d / (math.sqrt(2) * s))
    return torch.log(2 * p.scale) - torch.log(s) - _HALF_LOG_2PIE + abs_mean / p.scale


def kl_cauchy_cauchy(q: Cauchy, p: Cauchy) -> Tensor:
    """KL(Cauchy(l1, s1) || Cauchy(l2, s2)) = log(((s1 + s2)^2 + (l1 - l2)^2) / (4 s1 s2)), elementwise.

    (Chyzak & Nielsen 2019; it is symmetric in q and p.) Written with `(s1 + s2)^2 = (s1 - s2)^2 + 4 s1 s2`
    as `log1p(((s1 - s2)^2 + (l1 - l2)^2) / (4 s1 s2))`: exactly 0 when q == p and accurate to relative
    precision for small divergences, where the difference of two logs would cancel.
    """
    s1, s2 = q.scale, p.scale
    return torch.log1p(((s1 - s2).square() + (q.loc - p.loc).square()) / (4 * s1 * s2))


# Fill in for a torch that lacks these pairs (torch >= 2.1 has both; its versions are tested against
# ours in tests/test_distributions.py). Never override an existing registration.
if (Normal, Laplace) not in _KL_REGISTRY:
    register_kl(Normal, Laplace)(kl_normal_laplace)
if (Cauchy, Cauchy) not in _KL_REGISTRY:
    register_kl(Cauchy, Cauchy)(kl_cauchy_cauchy)


def _closed_form_kl(q: Distribution, p: Distribution) -> Tensor:
    if isinstance(q, Normal) and isinstance(p, Laplace):
        return kl_normal_laplace(q, p)
    if isinstance(q, Cauchy) and isinstance(p, Cauchy):
        return kl_cauchy_cauchy(q, p)
    return torch.distributions.kl_divergence(q, p)  # Normal-Normal and anything else torch knows


def kl_divergence(
    q: Distribution,
    p: Distribution,
    method: str = "closed_form",
    n_samples: int = 1,
    z: Tensor | None = None,
) -> Tensor:
    """Per-dimension KL(q || p), shape `broadcast(q.batch_shape, p.batch_shape)`, e.g. (B, L).

    method="closed_form": exact (Normal-Normal, Normal-Laplace, Cauchy-Cauchy, or any pair torch knows).
    method="monte_carlo": the talk's estimator, the mean over samples of `log q(z) - log p(z)` with
    `z ~ q` reparameterised, so gradients flow through both the samples and the densities. It is
    unbiased for the KL; its variance shrinks as 1 / n_samples.
      * `z=None`: draws `n_samples` fresh samples `q.rsample((n_samples,))`.
      * `z` given (shape (B, L), or (S, B, L) with leading sample dims): uses those samples instead
        and ignores `n_samples`. The training step passes the very sample it decoded for the
        reconstruction term, as in the talk's single-sample ELBO estimate
        `log p(x|z) - log q(z|x) + log p(z)` with one `z`.
    """
    if method == "closed_form":
        return _closed_form_kl(q, p)
    if method != "monte_carlo":
        raise ValueError(f"unknown KL method {method!r}; expected 'closed_form' or 'monte_carlo'")
    if z is None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        z = q.rsample((n_samples,))
    values = q.log_prob(z) - p.log_prob(z)
    batch_shape = torch.broadcast_shapes(q.batch_shape, p.batch_shape)
    if values.dim() == len(batch_shape):
        return values
    return values.reshape(-1, *values.shape[values.dim() - len(batch_shape):]).mean(0)
