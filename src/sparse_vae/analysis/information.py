"""Latent metrics of the stochastic code, in nats: the same number means the same thing for a
Gaussian, Laplace-prior or Cauchy posterior.

Why: statistics of the posterior *location* (kNN mutual information, spread ratios, Hoyer on
standardised means) ignore how uncertain the code is, so a dimension whose KL is 0.016 nats could
report 0.36 nats of label information, and a Cauchy posterior needed twice the information of a
Gaussian one to count as used. Here every quantity is a functional of the code z ~ q(z|x) itself:

- rate I(x; z_d) = E_x KL(q(z_d|x) || q(z_d)), q(z_d) = (1/N) sum_j q(z_d|x_j) the aggregate
  posterior over the N evaluated examples (a 1-D mixture with exact component densities from
  torch.distributions); the expectation over z is Monte Carlo with a randomly shifted stratified
  grid of quantiles per example (unbiased, much lower variance than i.i.d. draws in 1-D);
- label information I(y; z_d) from the same draws and class-split mixtures, leave-one-out (the
  example's own component is left out of both mixtures, so a precise code cannot "identify" its
  own example and so its label: the estimate targets the population value, <= the rate);
- used dims (rate above a threshold), dims active at once per input (KL of q(z_d|x) from the
  prior above the family's floor by a threshold), and Hoyer's index as the excess over a Gaussian
  code of as many dims.
Multiplying a dimension's location and scale by c changes every log density by -log c, which
cancels in each log ratio: the metrics are scale-free by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from sparse_vae.analysis.metrics import hoyer_sparsity
from sparse_vae.catalogue import USED_RATE_NATS

__all__ = [
    "CURVE_THRESHOLDS", "HEADLINE_THRESHOLD", "TOP_K", "USED_THRESHOLDS", "CodeInformation", "active_at_once",
    "code_information", "gaussian_hoyer", "hoyer_excess", "label_info_curve", "label_summaries", "sample_codes",
    "used_counts",
]

#: rate thresholds (nats) at which used dimensions are counted; the headline is the catalogue's USED_RATE_NATS.
HEADLINE_THRESHOLD = USED_RATE_NATS
USED_THRESHOLDS = (0.01, HEADLINE_THRESHOLD, 0.5)
#: the threshold-free label-information summaries: the top-k dims (k = 1, and 2 = the study's smallest
#: latent size), and the curve over rate thresholds t (nats) of the summed label information of the
#: dims with rate > t, from 0 to 1 nat (past the study's thresholds 0.01 / 0.1 / 0.5) in 0.01 steps.
TOP_K = (1, 2)
CURVE_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(101))
#: entries of one (rows x draws x components) block of log densities: ~32 MB in float64.
_BLOCK = 1 << 22
#: floor of a leave-one-out mixture density (a class whose other members all lie > 700 nats away).
_LOG_TINY = -700.0


@dataclass
class CodeInformation:
    """Per-dimension rate and label information (nats), and per-example KL from the aggregate."""

    rate: np.ndarray  # (L,) I(x; z_d)
    example_kl: np.ndarray  # (N, L) KL(q(z_d|x_i) || q(z_d)) estimated from the example's draws
    label_info: np.ndarray | None  # (L,) I(y; z_d), None without labels
    label_se: np.ndarray | None  # (L,) its Monte Carlo standard error over examples
    draws: int


def _family(posterior: str):
    if posterior not in ("gaussian", "cauchy"):
        raise ValueError(f"unknown posterior family {posterior!r} (known: gaussian, cauchy)")
    return torch.distributions.Normal if posterior == "gaussian" else torch.distributions.Cauchy


def _stratified_draws(dist, n: int, draws: int, gen: torch.Generator) -> torch.Tensor:
    """(n, draws) draws of each row's distribution at quantiles (k + U_i) / draws, U_i ~ U(0, 1):
    each draw is marginally exact (unbiased), and together they cover the distribution evenly."""
    shift = torch.rand(n, 1, generator=gen, dtype=torch.float64)
    u = (torch.arange(draws, dtype=torch.float64) + shift) / draws
    return dist.icdf(u.clamp(1e-12, 1 - 1e-12))


def _log_density(posterior: str, z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log q(z | loc_j, scale_j) of every draw (r, S) under every component j: (r, S, N), float32.

    The Normal / Cauchy log densities written out in place: torch.distributions' log_prob makes
    several full-size temporaries and costs ~10x here, where this block is the whole cost of the
    metric (tests/test_information.py checks the two agree)."""
    block = (z[..., None] - loc) / scale
    if posterior == "gaussian":
        block.square_().mul_(-0.5).sub_(0.5 * math.log(2 * math.pi))
    else:
        block.square_().log1p_().neg_().sub_(math.log(math.pi))
    return block.sub_(scale.log())


def _dimension(loc: torch.Tensor, scale: torch.Tensor, posterior: str, draws: int, gen: torch.Generator,
               same: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One dimension: per example, the mean over its draws of log q(z|x_i) - log q(z) and, with
    class masks `same` (N, N, own entry 0), of the leave-one-out log q(z|y_i) - log q(z)."""
    n = len(loc)
    z = _stratified_draws(_family(posterior)(loc[:, None], scale[:, None]), n, draws, gen)  # (N, S)
    loc32, scale32, z32 = loc.float(), scale.float(), z.float()
    rows = max(1, _BLOCK // (draws * n))
    kl, label = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)
    for start in range(0, n, rows):
        idx = torch.arange(start, min(start + rows, n))
        r = torch.arange(len(idx))
        log_q = _log_density(posterior, z32[idx], loc32, scale32)  # (r, S, N)
        own = log_q[r, :, idx].double()  # (r, S)
        log_q[r, :, idx] = -math.inf  # leave-one-out
        peak = log_q.amax(-1, keepdim=True).clamp(min=_LOG_TINY)
        weights = log_q.sub_(peak).exp_()
        peak = peak[..., 0].double()
        others = torch.log(weights.sum(-1).double()) + peak  # log sum_{j != i} q(z | x_j)
        log_agg = torch.logaddexp(others, own) - math.log(n)
        kl[idx] = (own - log_agg).mean(-1)
        if same is not None:
            mask = same[idx]
            in_class = torch.einsum("rsn,rn->rs", weights, mask).double()
            log_class = torch.log(in_class).clamp(min=_LOG_TINY - peak) + peak - torch.log(mask.sum(-1, keepdim=True).double())
            label[idx] = (log_class - (others - math.log(n - 1))).mean(-1)
    return kl, (label if same is not None else None)


def code_information(loc: np.ndarray, scale: np.ndarray, posterior: str, labels: np.ndarray | None = None,
                     draws: int = 8, seed: int = 0) -> CodeInformation:
    """Rate and label information of every dimension of the code z ~ q(z|x) over the N rows.

    Cost O(N^2 * draws * L): call it on a subset (``analysis.info_examples``). The rate is the exact
    I(x; z_d) of the N examples up to Monte Carlo over z (at most log N); the label information
    needs every class present at least twice.
    """
    loc64 = torch.as_tensor(np.asarray(loc, dtype=np.float64))
    scale64 = torch.as_tensor(np.asarray(scale, dtype=np.float64))
    n, latent = loc64.shape
    if n < 2 or draws < 1:
        raise ValueError(f"code_information needs >= 2 examples and >= 1 draw (got {n}, {draws})")
    _family(posterior)
    same = None
    if labels is not None:
        y = np.asarray(labels)
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            raise ValueError("label information needs every class at least twice among the examples")
        same = torch.as_tensor(y[:, None] == y[None, :], dtype=torch.float32)
        same.fill_diagonal_(0.0)
    gen = torch.Generator().manual_seed(int(seed))
    kl = np.empty((n, latent))
    label = np.empty((n, latent)) if same is not None else None
    for d in range(latent):
        kl_d, label_d = _dimension(loc64[:, d], scale64[:, d], posterior, draws, gen, same)
        kl[:, d] = kl_d.numpy()
        if label is not None:
            label[:, d] = label_d.numpy()
    return CodeInformation(
        rate=kl.mean(0), example_kl=kl, draws=draws,
        label_info=None if label is None else label.mean(0),
        label_se=None if label is None else label.std(0, ddof=1) / math.sqrt(n))


def used_counts(rate: np.ndarray, thresholds: tuple[float, ...] = USED_THRESHOLDS) -> dict[float, int]:
    """Number of dimensions whose rate exceeds each threshold (nats)."""
    return {t: int(np.sum(np.asarray(rate) > t)) for t in thresholds}


def active_at_once(prior_kl: np.ndarray, floor: float, used: np.ndarray, threshold: float) -> np.ndarray:
    """Per example, the fraction of the used dimensions active for it: KL(q(z_d|x) || p(z_d)) above
    the family's floor (the KL of the best input-independent posterior) by more than `threshold`.

    "How many latent variables are active at once", relative to how many the model uses: a dense
    code scores ~1, a code whose inputs each leave most dims at the prior scores low. The prior is
    the reference (not the aggregate): a dimension resting in a spike 70% of the time departs from
    its own aggregate by ~-log 0.7 = 0.36 nats in the rest state, which is not activity."""
    used = np.asarray(used, dtype=bool)
    if not used.any():
        raise ValueError("no used dimension")
    return ((np.asarray(prior_kl)[:, used] - floor) > threshold).mean(axis=1)


@functools.lru_cache(maxsize=None)
def gaussian_hoyer(n: int, draws: int = 100_000, seed: int = 0) -> float:
    """E Hoyer(z) for z ~ N(0, I_n), Monte Carlo (standard error < 1e-3, smaller for larger n): the
    index a dense, Gaussian code of n dims gets, which falls with n (0.340 at 2, 0.266 at 10)."""
    rng = np.random.default_rng(seed)
    return float(np.mean(hoyer_sparsity(rng.standard_normal((draws, n)))))


def hoyer_excess(loc: np.ndarray) -> float:
    """Mean Hoyer index of the robustly standardised codes (rows) minus that of a Gaussian code with
    as many dims: 0 for a Gaussian code of any size, > 0 when each input concentrates on fewer
    dims than a Gaussian would, so using fewer dimensions earns nothing by itself.

    Each dim is centred on its median and scaled by its mean absolute deviation from it: unlike the
    IQR, that spread is > 0 for a dimension at rest in more than half of the inputs (a sparse one)."""
    loc = np.asarray(loc, dtype=np.float64)
    centred = loc - np.median(loc, axis=0)
    spread = np.abs(centred).mean(axis=0)
    standardised = centred[:, spread > 0] / spread[spread > 0]
    n = standardised.shape[1]
    if n < 2:
        raise ValueError(f"Hoyer sparsity needs at least 2 dimensions with a spread ({n} here)")
    hoyer = hoyer_sparsity(standardised)
    if not np.isfinite(hoyer).any():
        raise ValueError("every standardised code vector is exactly zero")
    return float(np.nanmean(hoyer)) - gaussian_hoyer(n)


def sample_codes(loc: np.ndarray, scale: np.ndarray, posterior: str, seed: int = 0) -> np.ndarray:
    """One draw z ~ q(z|x) per row: the stochastic code the decoder actually receives."""
    gen = torch.Generator().manual_seed(int(seed))
    dist = _family(posterior)(torch.as_tensor(np.asarray(loc, dtype=np.float64)),
                              torch.as_tensor(np.asarray(scale, dtype=np.float64)))
    u = torch.rand(dist.loc.shape, generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return dist.icdf(u).numpy()


def label_info_curve(label_info: np.ndarray, rate: np.ndarray,
                     thresholds: tuple[float, ...] = CURVE_THRESHOLDS) -> np.ndarray:
    """S(t) = sum of label_info over the dims with rate > t, at each threshold t (nats)."""
    label_info, rate = np.asarray(label_info, dtype=float), np.asarray(rate, dtype=float)
    return np.array([float(label_info[rate > t].sum()) for t in thresholds])


def label_summaries(label_info: np.ndarray, rate: np.ndarray) -> dict[str, float | None]:
    """Label-information summaries that need no "used" threshold (issue 34: the mean over used dims
    reversed its order between thresholds 0.01 and 0.5 on digits z10): the total over all dims, the
    top-k dims' sum (None when the code has fewer than k dims) and the mean of ``label_info_curve``
    over its thresholds (its area divided by the 1-nat span: nats)."""
    ordered = np.sort(np.asarray(label_info, dtype=float))[::-1]
    out: dict[str, float | None] = {"label_info_total": float(ordered.sum())}
    for k in TOP_K:
        out[f"label_info_top{k}"] = float(ordered[:k].sum()) if len(ordered) >= k else None
    out["label_info_auc"] = float(label_info_curve(label_info, rate).mean())
    return out
