"""Pure metric functions: arrays (or distributions) in, numbers out; no model, no I/O, no figures.

Each is unit-tested on a case with a known answer (tests/test_analysis.py). What each reported
metric means is written in ``sparse_vae.catalogue``; which of these functions feed which metric,
and the reasons a metric does not apply, is ``analysis.compute``. Not here: matching learned
elements to true ones (template and weight recovery, FastICA reference: ``analysis.recovery``).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sparse_vae.distributions import kl_divergence
from sparse_vae.model import iwae_bound as model_iwae_bound

__all__ = [
    "NotApplicable", "active_units", "best_single_dim_probe", "evaluation_kl", "excess_kurtosis", "frac_near_zero",
    "additive_probe", "half_iqr", "hoyer_sparsity", "iwae_bound", "kl_floor", "linear_probe", "localization_index",
    "location_variance", "mutual_information", "posterior_half_iqr", "robust_standardise", "used_ratio",
]

# Tiny scales treated as zero (a dimension whose code never moves).
_TINY = 1e-8
# Monte Carlo draws for the evaluation KL when no closed form exists.
_MC_KL_SAMPLES = 1000
# scikit-learn's random_state for the probe folds and the mutual-information estimator.
SKLEARN_SEED = 0


class NotApplicable(Exception):
    """A metric does not apply to this run (no labels, not synthetic, too few dims ...): the reason."""


def iwae_bound(log_w: Tensor) -> Tensor:
    """Per-example IWAE bound `log (1/K) sum_k exp(log_w[k])` from importance log-weights (K, B): the
    project's one reduction (``model.iwae_bound``), in float64: with hundreds of samples the weights
    span hundreds of nats, and float32 would lose the small ones that still move the mean.
    """
    return model_iwae_bound(log_w.double(), 0)


def evaluation_kl(q: Distribution, p: Distribution, mc_samples: int = _MC_KL_SAMPLES) -> tuple[Tensor, str]:
    """KL(q || p) per dimension (B, L) for evaluation, and how it was computed.

    Exact wherever possible, whatever estimator training used, so that ELBOs of runs trained with a
    Monte Carlo KL and with the closed form are comparable: first `sparse_vae.distributions`'
    closed forms (Normal-Normal, Normal-Laplace, Cauchy-Cauchy), then torch's KL registry, and only
    for a pair neither knows a Monte Carlo mean over `mc_samples` draws (seed the RNG first).
    """
    try:
        return kl_divergence(q, p, "closed_form", 1), "closed_form"
    except NotImplementedError:
        pass
    try:
        kl = torch.distributions.kl_divergence(q, p)
        return kl.expand(torch.broadcast_shapes(q.batch_shape, p.batch_shape)), "closed_form"
    except NotImplementedError:
        pass
    total = torch.zeros(torch.broadcast_shapes(q.batch_shape, p.batch_shape), dtype=torch.float64)
    step = 100
    for start in range(0, mc_samples, step):
        z = q.sample((min(step, mc_samples - start),))
        total += (q.log_prob(z) - p.log_prob(z)).double().sum(0)
    return (total / mc_samples).float(), f"monte_carlo ({mc_samples} samples per example)"


def location_variance(loc: np.ndarray) -> np.ndarray:
    """Variance over examples of each dimension's posterior location (ddof 0): Burda's activity."""
    return np.asarray(loc, dtype=np.float64).var(axis=0)


def active_units(variance: np.ndarray, threshold: float) -> int:
    """Number of dimensions whose location variance exceeds `threshold` (Burda et al., 0.01).

    A dimension whose posterior location does not depend on x carries no information about x, however
    the decoder treats it: this counts the dimensions the encoder actually uses.
    """
    return int(np.sum(np.asarray(variance) > threshold))


def hoyer_sparsity(codes: np.ndarray) -> np.ndarray:
    """Hoyer sparsity of each row, `(sqrt(n) - L1/L2) / (sqrt(n) - 1)`: 1 one-hot, 0 constant.

    Scale-invariant, so it measures how concentrated a code is on few units, not how large it is.
    All-zero rows have no direction and give NaN (callers skip them). Needs n >= 2.
    """
    codes = np.asarray(codes, dtype=np.float64)
    n = codes.shape[-1]
    if n < 2:
        raise ValueError("Hoyer sparsity needs vectors of at least 2 entries")
    l1 = np.abs(codes).sum(-1)
    l2 = np.sqrt((codes**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(l2 > 0, l1 / np.where(l2 > 0, l2, 1.0), np.nan)
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def half_iqr(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half the interquartile range along `axis`: a spread that exists for any distribution."""
    q1, q3 = np.percentile(np.asarray(x, dtype=np.float64), [25, 75], axis=axis)
    return (q3 - q1) / 2.0


#: half-IQR of a unit-scale posterior of each family: Normal 0.6745 sd (z_0.75), Cauchy its scale.
POSTERIOR_HALF_IQR = {"gaussian": 0.6744897501960817, "cauchy": 1.0}


def posterior_half_iqr(scale: np.ndarray, posterior: str) -> np.ndarray:
    """Half-IQR of q(z_d|x) from its scale: the posterior's own spread, comparable across families."""
    if posterior not in POSTERIOR_HALF_IQR:
        raise ValueError(f"unknown posterior family {posterior!r} (known: {', '.join(POSTERIOR_HALF_IQR)})")
    return POSTERIOR_HALF_IQR[posterior] * np.asarray(scale, dtype=np.float64)


def used_ratio(loc: np.ndarray, scale: np.ndarray, posterior: str) -> np.ndarray:
    """Per dim, half-IQR over x of the posterior location / median over x of q's own half-IQR.

    A signal-to-noise ratio: how far the code moves between inputs, in units of how uncertain the
    posterior is about it. Multiplying a dimension's location and scale by a constant leaves it
    unchanged (unlike Burda's Var_x E_q[z] > 0.01), and quantiles exist for Gaussian and Cauchy
    posteriors alike. > 1: inputs are told apart along this dimension; ~0: it ignores the input.
    """
    signal = half_iqr(loc)
    noise = np.median(posterior_half_iqr(scale, posterior), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(noise > 0, signal / np.where(noise > 0, noise, 1.0), np.where(signal > 0, np.inf, 0.0))
    return ratio


def robust_standardise(loc: np.ndarray) -> np.ndarray:
    """(loc - median) / IQR per column: each dimension in units of its own spread (IQR 0 -> NaN)."""
    loc = np.asarray(loc, dtype=np.float64)
    iqr = 2.0 * half_iqr(loc)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (loc - np.median(loc, axis=0)) / np.where(iqr > 0, iqr, np.nan)


def frac_near_zero(loc: np.ndarray, threshold: float, dims: np.ndarray | None = None) -> float:
    """Fraction of entries with |loc_d - median_d| < threshold * IQR_d, over examples and `dims`.

    Relative to each dimension's own spread, so the scale a prior or posterior gives a dimension
    does not matter; a peaked, heavy-tailed code scores higher than a Gaussian one of the same IQR
    (threshold 0.1: Laplace 0.129, Gaussian 0.107). A dimension without spread has no entries.
    """
    z = robust_standardise(loc)
    if dims is not None:
        z = z[:, dims]
    z = z[:, np.isfinite(z).all(axis=0)] if z.size else z
    if z.size == 0:
        raise NotApplicable("no dimension with a spread to measure")
    return float(np.mean(np.abs(z) < threshold))


def excess_kurtosis(loc: np.ndarray) -> np.ndarray:
    """Fisher (excess) kurtosis of each column; NaN for a column that does not vary.

    0 for a Gaussian, 3 for a Laplace, large for heavy tails: a sparse code is mostly near zero with
    occasional large values, i.e. leptokurtic.
    """
    from scipy.stats import kurtosis

    loc = np.asarray(loc, dtype=np.float64)
    out = np.full(loc.shape[1], np.nan)
    varying = loc.std(axis=0) > _TINY * np.maximum(1.0, np.abs(loc).max(axis=0, initial=0.0))
    if varying.any():
        out[varying] = kurtosis(loc[:, varying], axis=0, fisher=True)
    return out


def _cross_validated(probe, codes: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> tuple[float, float]:
    """Mean stratified-k-fold accuracy of a scikit-learn pipeline, and the majority-class rate."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise NotApplicable("the evaluated test labels hold a single class")
    n_splits = int(min(folds, counts.min()))
    if n_splits < 2:
        raise NotApplicable("a class has fewer than 2 examples, too few for cross-validation")
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(probe, np.asarray(codes, dtype=np.float64), labels, cv=cv, scoring="accuracy")
    return float(np.mean(scores)), float(counts.max() / counts.sum())


def linear_probe(codes: np.ndarray, labels: np.ndarray, folds: int, seed: int = SKLEARN_SEED) -> tuple[float, float]:
    """Cross-validated accuracy of a linear classifier on the codes, and the majority-class rate.

    Linear decodability is the usual operational meaning of "informative latent dimensions". Each
    dimension is rank-transformed inside each fold (``analysis.ranks.RankGauss``, fitted on the
    training fold): the score then depends on the order of each dimension's values only, so a
    heavy-tailed (Cauchy) code is not penalised for its outliers, nor any code for its scale. Still
    not family-neutral: no monotone map makes a Cauchy code's class log-likelihoods linear, so on
    codes of equal label information it falls further below the Bayes accuracy (see
    ``additive_probe``). The number of folds is lowered to the smallest class size when needed.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sparse_vae.analysis.ranks import RankGauss

    return _cross_validated(make_pipeline(RankGauss(), LogisticRegression(max_iter=2000)), codes, labels, folds, seed)


#: the additive probe's basis per dimension: cubic B-splines with this many uniform knots on the rank.
ADDITIVE_KNOTS = 8


def additive_probe(codes: np.ndarray, labels: np.ndarray, folds: int, seed: int = SKLEARN_SEED) -> tuple[float, float]:
    """Cross-validated accuracy of an additive logistic probe, and the majority-class rate.

    Class logits ``sum_d f_{c,d}(z_d)`` with each ``f`` a cubic spline (``ADDITIVE_KNOTS`` uniform
    knots) of the dimension's rank in the training fold (``RankGauss`` then the normal CDF): the form
    of the Bayes classifier of a code whose dims are independent given the label, whatever each
    dim's distribution, and unchanged by any increasing map of a dimension. On the known-answer toys
    of ``analysis.estimator_controls`` (Gaussian and Cauchy codes of 0.40 nats per dim) it falls
    below the Bayes accuracy by about as much for both families, where the linear probe's shortfall
    is ten times larger for the Cauchy code. Regularisation: scikit-learn's default C = 1.
    """
    from scipy.special import ndtr
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer

    from sparse_vae.analysis.ranks import RankGauss

    probe = make_pipeline(RankGauss(), FunctionTransformer(ndtr),
                          SplineTransformer(n_knots=ADDITIVE_KNOTS, degree=3, knots="uniform", extrapolation="constant"),
                          LogisticRegression(max_iter=3000))
    return _cross_validated(probe, codes, labels, folds, seed)


def best_single_dim_probe(codes: np.ndarray, labels: np.ndarray, folds: int,
                          seed: int = SKLEARN_SEED) -> tuple[float, int]:
    """The best cross-validated linear-probe accuracy from one code dimension alone, and which.

    Beside the joint probe: how much of the label a single axis carries, without adding up
    dimensions that carry the same information twice."""
    codes = np.asarray(codes, dtype=np.float64)
    scores = [linear_probe(codes[:, [d]], labels, folds, seed)[0] for d in range(codes.shape[1])]
    best = int(np.argmax(scores))
    return float(scores[best]), best


def mutual_information(codes: np.ndarray, labels: np.ndarray, seed: int = SKLEARN_SEED) -> np.ndarray:
    """Mutual information (nats) of each code dimension with the label (kNN estimator, fixed seed), on
    the rank-transformed dimensions (``analysis.ranks``): MI is invariant to monotone maps of a
    dimension, and so, exactly, is this estimate (the kNN distances are not, on the raw values)."""
    from sklearn.feature_selection import mutual_info_classif

    from sparse_vae.analysis.ranks import rank_gauss

    return mutual_info_classif(rank_gauss(np.asarray(codes, dtype=np.float64)), np.asarray(labels),
                               random_state=seed)


def localization_index(fields: np.ndarray) -> np.ndarray:
    """Per row, `1 - (PR - 1) / (D - 1)` with the participation ratio `PR = (sum f^2)^2 / sum f^4`.

    PR is the effective number of pixels carrying the field's energy (1 for a single pixel, D for
    energy spread evenly), so the index is 1 for a one-pixel field, 0 for a uniform one, and
    about 1 - a for a field covering a fraction a of the image. It needs no image geometry, so it
    treats 5x5 and 28x28 alike. Zero fields give NaN.
    """
    fields = np.asarray(fields, dtype=np.float64)
    d = fields.shape[-1]
    if d < 2:
        return np.full(fields.shape[0], np.nan)
    energy = fields**2
    total = energy.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = total**2 / (energy**2).sum(-1)
    out = 1.0 - (pr - 1.0) / (d - 1.0)
    out[~(total > 0)] = np.nan
    return out


def _scipy_family(family: str, scale: float):
    from scipy import stats

    makers = {"normal": stats.norm, "gaussian": stats.norm, "laplace": stats.laplace, "cauchy": stats.cauchy}
    if family not in makers:
        raise ValueError(f"unknown distribution family {family!r}")
    return makers[family](loc=0.0, scale=scale)


#: quantile midpoints at which an expectation under q is averaged (a deterministic quadrature).
_QUANTILES = (np.arange(50_000) + 0.5) / 50_000


def _kl_by_quadrature(q, p) -> float:
    """KL(q || p) = -H(q) - E_q[log p], E_q by averaging over q's quantile midpoints (error ~1e-5 nats)."""
    return float(-q.entropy() - np.mean(p.logpdf(q.ppf(_QUANTILES))))


@functools.lru_cache(maxsize=None)
def kl_floor(posterior: str, prior: str, prior_scale: float = 1.0) -> float:
    """The smallest KL(q || p) an input-independent posterior of the family can reach, nats.

    0 when the posterior family contains the prior (normal/gaussian, cauchy/cauchy); otherwise a
    numerical minimum (quadrature) over the posterior's scale with its location at the prior's
    centre (both priors here are symmetric and unimodal about 0, so a centred q is optimal):
    Gaussian vs Laplace(0, 1) gives 0.0484 nats. A dimension that carries no information still pays
    this much KL, so it is the baseline above which KL shows use.
    """
    from scipy import stats
    from scipy.optimize import minimize_scalar

    if {posterior, prior} <= {"normal", "gaussian"} or posterior == prior == "cauchy":
        return 0.0
    p = _scipy_family(prior, prior_scale)
    maker = stats.norm if posterior == "gaussian" else stats.cauchy
    result = minimize_scalar(lambda log_s: _kl_by_quadrature(maker(loc=0.0, scale=math.exp(log_s) * prior_scale), p),
                             bounds=(-6.0, 6.0), method="bounded", options={"xatol": 1e-7})
    return max(0.0, float(result.fun))
