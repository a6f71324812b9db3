"""Pure metric functions: arrays (or distributions) in, numbers out; no model, no I/O, no figures.

Each is unit-tested on a case with a known answer (tests/test_analysis.py). What each reported
metric means is written in ``sparse_vae.catalogue``; which of these functions feed which metric,
and the reasons a metric does not apply, is ``analysis.compute``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sparse_vae.distributions import kl_divergence

__all__ = [
    "NotApplicable", "active_units", "best_abs_cosine", "evaluation_kl", "excess_kurtosis",
    "frac_near_zero", "hoyer_sparsity", "iwae_bound", "linear_probe", "localization_index",
    "location_variance", "mutual_information", "template_weight_correlation", "template_weight_r2",
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
    """Per-example IWAE bound `log (1/K) sum_k exp(log_w[k])` from importance log-weights (K, B).

    Computed as `logsumexp - log K` in float64: with hundreds of samples the weights span hundreds of
    nats, and float32 would lose the small ones that still move the mean.
    """
    log_w = log_w.double()
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


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


def frac_near_zero(loc: np.ndarray, threshold: float, dims: np.ndarray | None = None) -> float:
    """Fraction of entries `|loc| < threshold` over examples and the given dims (all when None)."""
    loc = np.asarray(loc, dtype=np.float64)
    if dims is not None:
        loc = loc[:, dims]
    if loc.size == 0:
        raise NotApplicable("no dimension to measure")
    return float(np.mean(np.abs(loc) < threshold))


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


def linear_probe(codes: np.ndarray, labels: np.ndarray, folds: int, seed: int = SKLEARN_SEED) -> tuple[float, float]:
    """Cross-validated accuracy of a linear classifier on the codes, and the majority-class rate.

    Linear decodability is the usual operational meaning of "informative latent dimensions". Codes are
    standardised inside each fold (a Cauchy code's scale must not decide the regularisation). The
    number of folds is lowered to the smallest class size when needed.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise NotApplicable("the evaluated test labels hold a single class")
    n_splits = int(min(folds, counts.min()))
    if n_splits < 2:
        raise NotApplicable("a class has fewer than 2 examples, too few for cross-validation")
    chance = float(counts.max() / counts.sum())
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(probe, np.asarray(codes, dtype=np.float64), labels, cv=cv, scoring="accuracy")
    return float(np.mean(scores)), chance


def mutual_information(codes: np.ndarray, labels: np.ndarray, seed: int = SKLEARN_SEED) -> np.ndarray:
    """Mutual information (nats) of each code dimension with the label (kNN estimator, fixed seed)."""
    from sklearn.feature_selection import mutual_info_classif

    return mutual_info_classif(np.asarray(codes, dtype=np.float64), np.asarray(labels), random_state=seed)


def _abs_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson r| between every column of a (N, K) and of b (N, M): (K, M); 0 where a column is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    na = np.sqrt((a**2).sum(0))
    nb = np.sqrt((b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ b) / np.outer(na, nb)
    r[~np.isfinite(r)] = 0.0
    return np.clip(np.abs(r), 0.0, 1.0)


def template_weight_correlation(codes: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean over true weights of the best |Pearson r| with any code dimension; plus best dims and r's.

    1 when every true weight is (up to sign and scale) one latent dimension: the "axis-aligned"
    recovery a sparse prior is hoped to give, which a rotation-invariant normal prior need not.
    """
    r = _abs_correlation(weights, codes)
    best = r.argmax(axis=1)
    best_r = r[np.arange(len(best)), best]
    return float(best_r.mean()), best, best_r


def template_weight_r2(codes: np.ndarray, weights: np.ndarray) -> float:
    """R^2 of a linear map codes -> true weights, fit on the first half, scored on the second.

    Unlike the correlation, this allows any linear mixing: it asks whether the weights are linearly
    *present* in the code, not whether they are axis-aligned.
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    codes = np.asarray(codes, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    half = len(codes) // 2
    if half < codes.shape[1] + 2:
        raise NotApplicable(f"{len(codes)} test examples are too few to fit and score {codes.shape[1]} codes")
    regression = LinearRegression().fit(codes[:half], weights[:half])
    return float(r2_score(weights[half:], regression.predict(codes[half:]), multioutput="uniform_average"))


def best_abs_cosine(targets: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target row, the best |cosine| with any candidate row, and which one (0 for zero rows)."""
    targets = np.asarray(targets, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64)
    nt = np.linalg.norm(targets, axis=1, keepdims=True)
    nc = np.linalg.norm(candidates, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (targets / nt) @ (candidates / nc).T
    cos[~np.isfinite(cos)] = 0.0
    cos = np.clip(np.abs(cos), 0.0, 1.0)
    best = cos.argmax(axis=1)
    return cos[np.arange(len(best)), best], best


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
