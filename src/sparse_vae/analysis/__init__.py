"""Latent-space analysis of one trained run: ``metrics.json``, ``latents.npz`` and ``figures/*.png``.

The study asks whether sparse priors (Laplace, Cauchy) give better latent codes than the normal
prior at a small cost in fit. Every number written here serves one of those questions:

* fit: the test ELBO and its parts, an importance-weighted (IWAE) bound on log p(x), pixel MSE;
* use of the latent space: KL per dimension, active units, dimensions used in a 2-D latent;
* sparsity of the codes: near-zero fraction, Hoyer sparsity, excess kurtosis;
* informativeness: a linear probe and mutual information with the labels (where labels exist),
  recovery of the true template weights and templates (synthetic data), and how localised the
  decoder's receptive fields are.

The module is built bottom-up: pure metric functions (arrays in, numbers out; each unit-tested on a
case with a known answer), then `compute_analysis` (model + dataset in, one `Analysis` out), then
figures, then `analyze_run`, which the CLI calls and which writes the outputs atomically. A metric
that does not apply to a run is ``null`` in ``metrics.json`` with the reason under
``not_applicable``; a number is never invented.

The model is used only through the contract of docs/interfaces.md (``posterior``, ``prior``,
``decode``, ``log_likelihood``), so any object honouring it can be analysed (the tests use small
hand-made models).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Cauchy, Distribution

from sparse_vae.atomic import atomic_dir, atomic_open, write_text
from sparse_vae.data import display_direction, for_display
from sparse_vae.data.io import Dataset, load_dataset
from sparse_vae.distributions import kl_divergence
from sparse_vae.errors import SparseVAEError
from sparse_vae.model import load_model

__all__ = [
    "DEFINITIONS",
    "PARAM_KEYS",
    "SCALAR_METRICS",
    "Analysis",
    "NotApplicable",
    "active_units",
    "analyze_run",
    "best_abs_cosine",
    "compute_analysis",
    "decoder_directions",
    "evaluation_kl",
    "excess_kurtosis",
    "frac_near_zero",
    "hoyer_sparsity",
    "importance_log_weights",
    "iwae_bound",
    "linear_probe",
    "localization_index",
    "location_variance",
    "mutual_information",
    "posterior_parameters",
    "receptive_fields",
    "template_weight_correlation",
    "template_weight_r2",
    "write_figures",
]

# The scalar names of docs/interfaces.md, in the order the report shows them.
SCALAR_METRICS = (
    "elbo", "recon_log_lik", "kl", "iwae_log_lik", "iwae_samples", "mse", "active_units",
    "active_units_kl", "frac_near_zero", "hoyer", "kurtosis_mean", "probe_accuracy", "probe_chance",
    "mi_label_sum", "mi_label_max", "template_weight_corr", "template_weight_r2",
    "template_decoder_cos", "rf_localization", "dims_used_2d",
)
PER_DIMENSION = ("kl", "location_variance", "kurtosis", "mi_label")
PARAM_KEYS = (
    "iwae_samples", "max_examples", "active_threshold", "kl_threshold", "sparsity_threshold",
    "probe_folds",
)

# Written into metrics.json["settings"]["definitions"], so that a number can be read without the code.
DEFINITIONS = {
    "subsets": "all test examples for posterior-location statistics (active units, KL per dimension, "
               "sparsity, kurtosis, template recovery, mse); the first max_examples test examples for "
               "elbo, recon_log_lik, kl, iwae_log_lik, probe and mutual information",
    "elbo": "mean over examples of recon_log_lik - kl, nats per example",
    "recon_log_lik": "E_q[log p(x|z)] in nats per example, Monte Carlo over the same iwae_samples draws "
                     "z ~ q(z|x) that the IWAE bound uses",
    "kl": "KL(q(z|x) || p(z)) summed over dimensions, nats per example; closed form where the pair has one "
          "(see evaluation_kl), whatever estimator training used",
    "iwae_log_lik": "mean over examples of log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), "
                    "K = iwae_samples; a lower bound on log p(x) that is >= elbo in expectation",
    "mse": "mean over test examples and pixels of (x - decode(posterior location))^2, data space [0, 1]",
    "location_variance": "Var over test examples of the posterior location (the median for a Cauchy)",
    "active_units": "number of dimensions with location_variance > active_threshold (Burda et al.)",
    "active_units_kl": "number of dimensions whose mean KL over the test set > kl_threshold",
    "frac_near_zero": "fraction of |location| < sparsity_threshold over test examples and ACTIVE "
                      "dimensions only (collapsed dimensions are counted by active_units instead); "
                      "null when no dimension is active",
    "hoyer": "mean over test examples of the Hoyer sparsity of the full location vector (all L dims), "
             "(sqrt(L) - L1/L2) / (sqrt(L) - 1): 1 one-hot, 0 constant; all-zero vectors are skipped",
    "kurtosis": "excess (Fisher) kurtosis over test examples of each dimension's location; "
                "kurtosis_mean averages it over active dimensions",
    "probe_accuracy": "stratified k-fold (probe_folds, shuffled, random_state 0) accuracy of "
                      "StandardScaler + LogisticRegression on posterior locations",
    "probe_chance": "frequency of the most common label",
    "mi_label": "sklearn mutual_info_classif(locations, labels, random_state=0) per dimension, nats; "
                "mi_label_sum and mi_label_max summarise it",
    "template_weight_corr": "mean over true weights k of max over latent dims j of |Pearson r(w_k, loc_j)|",
    "template_weight_r2": "R^2 (uniform average over weights) of a linear regression from locations to "
                          "true weights, fit on the first half of the test split, scored on the second",
    "template_decoder_cos": "mean over true templates of max over ACTIVE latent dims j of |cosine(template, "
                            "decode(a e_j) - decode(0))|, a = sd of loc_j; null when no dim is active",
    "receptive_field": "rf_j = decode(s e_j) - decode(-s e_j), s = sd of loc_j (1 if it is ~0), data space",
    "rf_localization": "mean over active dims of 1 - (PR - 1) / (D - 1), PR = (sum rf^2)^2 / sum rf^4 the "
                       "participation ratio (effective number of pixels); 1 = one pixel, 0 = energy "
                       "spread evenly over all D pixels",
    "dims_used_2d": "active_units when the latent space is 2-D (the talk: Laplace uses one dimension)",
}

# Tiny scales treated as zero (a dimension whose code never moves).
_TINY = 1e-8
# Elements per decoded chunk of the importance sampler: bounds memory at ~ 64 MB per float32 tensor.
_CHUNK_ELEMENTS = 1 << 24
# Example batch for encoder / decoder passes over the test set.
_BATCH = 512
# Monte Carlo draws for the evaluation KL when no closed form exists.
_MC_KL_SAMPLES = 1000
# Seeds: every stochastic step re-seeds from the run's seed plus its own offset, so the steps do not
# depend on each other's consumption of random numbers and the same inputs give the same metrics.
_SEED_IWAE, _SEED_KL, _SEED_PRIOR_SAMPLES, _SKLEARN_SEED = 101, 102, 103, 0
# Cauchy prior samples decoded for the figure are clipped to +- this many prior scales.
_CAUCHY_CLIP = 10.0


class NotApplicable(Exception):
    """A metric does not apply to this run (no labels, not synthetic, too few dims ...): the reason."""


# =================================================================================================
# Pure metric functions
# =================================================================================================
def iwae_bound(log_w: Tensor) -> Tensor:
    """Per-example IWAE bound `log (1/K) sum_k exp(log_w[k])` from importance log-weights (K, B).

    Computed as `logsumexp - log K` in float64: with hundreds of samples the weights span hundreds of
    nats, and float32 would lose the small ones that still move the mean.
    """
    log_w = log_w.double()
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def importance_log_weights(
    model: Any, x: Tensor, n_samples: int, chunk_elements: int = _CHUNK_ELEMENTS
) -> tuple[Tensor, Tensor]:
    """Draw `n_samples` z ~ q(z|x) per example; return (log p(x|z), log w), each (n_samples, B), float64.

    `log w = log p(x|z) + log p(z) - log q(z|x)`. Samples are decoded in chunks of at most
    `chunk_elements / (B * D)` draws so that memory stays bounded for any K (the decoder's output is
    the largest tensor). Uses the global torch RNG: seed it first for reproducible numbers.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    q = model.posterior(x)
    prior = model.prior()
    per_draw = max(1, x.shape[0] * x.shape[-1])
    step = max(1, min(n_samples, chunk_elements // per_draw))
    log_lik, log_w = [], []
    for start in range(0, n_samples, step):
        z = q.rsample((min(step, n_samples - start),))
        ll = model.log_likelihood(x, z).double()
        log_ratio = prior.log_prob(z).double().sum(-1) - q.log_prob(z).double().sum(-1)
        log_lik.append(ll)
        log_w.append(ll + log_ratio)
    return torch.cat(log_lik), torch.cat(log_w)


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


def linear_probe(codes: np.ndarray, labels: np.ndarray, folds: int, seed: int = _SKLEARN_SEED) -> tuple[float, float]:
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


def mutual_information(codes: np.ndarray, labels: np.ndarray, seed: int = _SKLEARN_SEED) -> np.ndarray:
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


# =================================================================================================
# Model-based helpers (torch, under no_grad)
# =================================================================================================
def posterior_parameters(model: Any, x: np.ndarray, batch: int = _BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Posterior location and scale (N, L) of every row of x, in batches."""
    locs, scales = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            q = model.posterior(torch.as_tensor(x[start:start + batch], dtype=torch.float32))
            locs.append(q.loc.double().numpy())
            scales.append(q.scale.double().expand_as(q.loc).numpy())
    return np.concatenate(locs), np.concatenate(scales)


def _decode(model: Any, z: np.ndarray, batch: int = _BATCH) -> np.ndarray:
    """Decoded mean images (N, D) of codes z (N, L), as float64 numpy."""
    out = []
    with torch.no_grad():
        for start in range(0, len(z), batch):
            out.append(model.decode(torch.as_tensor(z[start:start + batch], dtype=torch.float32)).double().numpy())
    return np.concatenate(out)


def _direction_scales(sd: np.ndarray) -> np.ndarray:
    """The step along each latent axis: the sd of its location over the data, or 1 if it never moves."""
    return np.where(sd > 1e-6, sd, 1.0)


def decoder_directions(model: Any, amplitudes: np.ndarray) -> np.ndarray:
    """`decode(a_j e_j) - decode(0)` for every latent dim j: (L, D), the image change of each axis."""
    latent = len(amplitudes)
    z = np.vstack([np.zeros((1, latent)), np.diag(amplitudes)])
    images = _decode(model, z)
    return images[1:] - images[:1]


def receptive_fields(model: Any, scales: np.ndarray) -> np.ndarray:
    """`decode(s_j e_j) - decode(-s_j e_j)` per dim j (L, D), in data space."""
    diag = np.diag(scales)
    return _decode(model, diag) - _decode(model, -diag)


# =================================================================================================
# The analysis of one run
# =================================================================================================
@dataclass
class Analysis:
    """Everything `analyze_run` writes: the metrics.json content, latents and the figures' inputs."""

    report: dict[str, Any]
    latents: dict[str, np.ndarray]
    loc: np.ndarray
    scale: np.ndarray
    variance: np.ndarray
    kl_per_dim: np.ndarray
    active: np.ndarray
    rf: np.ndarray
    directions: np.ndarray
    title: str
    timings: dict[str, float] = field(default_factory=dict)


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise SparseVAEError(f"analysis params must be a mapping, got {type(params).__name__}")
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise SparseVAEError(f"analysis params: missing {', '.join(missing)} (expected: {', '.join(PARAM_KEYS)})")
    settings = dict(params)
    if int(settings["iwae_samples"]) < 1:
        raise SparseVAEError(f"analysis params: iwae_samples must be >= 1, got {settings['iwae_samples']}")
    if settings["max_examples"] is not None and int(settings["max_examples"]) < 1:
        raise SparseVAEError(f"analysis params: max_examples must be >= 1, got {settings['max_examples']}")
    return settings


def _run_info(spec: Mapping[str, Any], latent: int) -> dict[str, Any]:
    prior = spec.get("prior", {}) or {}
    return {
        "dataset": spec.get("dataset"),
        "prior": prior.get("name"),
        "latent": int(spec.get("latent", latent)),
        "seed": spec.get("seed"),
        "kl_estimator": prior.get("kl"),
    }


def _is_synthetic(dataset: Dataset) -> bool:
    return all(name in dataset.extras for name in ("templates", "weights_test"))


def compute_analysis(
    model: Any, checkpoint: Mapping[str, Any], dataset: Dataset, params: Mapping[str, Any]
) -> Analysis:
    """All metrics of one trained model on the test split, deterministically for given inputs."""
    settings = _check_params(params)
    spec = checkpoint.get("spec", {}) or {}
    seed = int(spec.get("seed", 0) or 0)
    timings: dict[str, float] = {}
    metrics: dict[str, Any] = {name: None for name in SCALAR_METRICS}
    not_applicable: dict[str, str] = {}

    def skip(name: str, reason: str) -> None:
        metrics[name] = None
        not_applicable[name] = reason

    x_test = np.asarray(dataset.x_test, dtype=np.float32)
    n_test = len(x_test)
    if n_test < 2:
        raise SparseVAEError(f"the test split has {n_test} examples; the analysis needs at least 2")
    n_eval = n_test if settings["max_examples"] is None else min(n_test, int(settings["max_examples"]))
    iwae_k = int(settings["iwae_samples"])

    # -- posterior locations of the whole test split --------------------------------------------
    t0 = time.perf_counter()
    loc, scale = posterior_parameters(model, x_test)
    if not (np.isfinite(loc).all() and np.isfinite(scale).all()):
        raise SparseVAEError("the model's posterior parameters on the test split are not finite")
    latent = loc.shape[1]
    run = _run_info(spec, latent)
    variance = location_variance(loc)
    sd = np.sqrt(variance)
    active = variance > float(settings["active_threshold"])
    timings["posterior"] = time.perf_counter() - t0

    # -- evaluation KL (whole test split), ELBO and IWAE (first n_eval examples) ------------------
    t0 = time.perf_counter()
    torch.manual_seed(seed * 1000 + _SEED_KL)
    kl_rows, kl_method = [], "closed_form"
    with torch.no_grad():
        prior = model.prior()
        for start in range(0, n_test, _BATCH):
            q = model.posterior(torch.as_tensor(x_test[start:start + _BATCH]))
            kl, kl_method = evaluation_kl(q, prior)
            kl_rows.append(kl.double().numpy())
    kl_example_dim = np.concatenate(kl_rows)
    kl_per_dim = kl_example_dim.mean(axis=0)
    timings["kl"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.manual_seed(seed * 1000 + _SEED_IWAE)
    recon, iwae = [], []
    batch = max(1, min(_BATCH, _CHUNK_ELEMENTS // max(1, iwae_k * x_test.shape[1])))
    with torch.no_grad():
        for start in range(0, n_eval, batch):
            xb = torch.as_tensor(x_test[start:min(start + batch, n_eval)])
            log_lik, log_w = importance_log_weights(model, xb, iwae_k)
            recon.append(log_lik.mean(0).numpy())
            iwae.append(iwae_bound(log_w).numpy())
    recon_ll = np.concatenate(recon)
    kl_eval = kl_example_dim[:n_eval].sum(axis=1)
    metrics["recon_log_lik"] = float(recon_ll.mean())
    metrics["kl"] = float(kl_eval.mean())
    metrics["elbo"] = float((recon_ll - kl_eval).mean())
    metrics["iwae_log_lik"] = float(np.concatenate(iwae).mean())
    metrics["iwae_samples"] = iwae_k
    timings["elbo_iwae"] = time.perf_counter() - t0

    # -- reconstruction error in data space -------------------------------------------------------
    t0 = time.perf_counter()
    recon_images = _decode(model, loc)
    metrics["mse"] = float(np.mean((recon_images - x_test.astype(np.float64)) ** 2))

    # -- use of the latent space ----------------------------------------------------------------
    metrics["active_units"] = int(active.sum())
    metrics["active_units_kl"] = int(np.sum(kl_per_dim > float(settings["kl_threshold"])))
    if latent == 2:
        metrics["dims_used_2d"] = int(active.sum())
    else:
        skip("dims_used_2d", f"the latent space has {latent} dimensions, not 2")

    # -- sparsity of the codes ------------------------------------------------------------------
    kurt = excess_kurtosis(loc)
    if active.any():
        metrics["frac_near_zero"] = frac_near_zero(loc, float(settings["sparsity_threshold"]), np.flatnonzero(active))
        active_kurt = kurt[active]
        if np.isfinite(active_kurt).any():
            metrics["kurtosis_mean"] = float(np.nanmean(active_kurt))
        else:
            skip("kurtosis_mean", "no active dimension has a defined kurtosis")
    else:
        reason = f"no active dimension (location variance > {settings['active_threshold']})"
        skip("frac_near_zero", reason)
        skip("kurtosis_mean", reason)
    if latent >= 2:
        hoyer = hoyer_sparsity(loc)
        if np.isfinite(hoyer).any():
            metrics["hoyer"] = float(np.nanmean(hoyer))
        else:
            skip("hoyer", "every posterior location vector is exactly zero")
    else:
        skip("hoyer", "Hoyer sparsity needs at least 2 latent dimensions")
    timings["sparsity"] = time.perf_counter() - t0

    # -- informativeness about labels -----------------------------------------------------------
    t0 = time.perf_counter()
    mi_label: np.ndarray | None = None
    label_metrics = ("probe_accuracy", "probe_chance", "mi_label_sum", "mi_label_max")
    if dataset.y_test is not None:
        codes, labels = loc[:n_eval], np.asarray(dataset.y_test)[:n_eval]
        try:
            accuracy, chance = linear_probe(codes, labels, int(settings["probe_folds"]))
            metrics["probe_accuracy"], metrics["probe_chance"] = accuracy, chance
        except NotApplicable as reason:
            skip("probe_accuracy", str(reason))
            skip("probe_chance", str(reason))
        if len(np.unique(labels)) >= 2:
            mi_label = mutual_information(codes, labels)
            metrics["mi_label_sum"] = float(mi_label.sum())
            metrics["mi_label_max"] = float(mi_label.max())
        else:
            skip("mi_label_sum", "the evaluated test labels hold a single class")
            skip("mi_label_max", "the evaluated test labels hold a single class")
    else:
        for name in label_metrics:
            skip(name, "the dataset has no labels")
    timings["labels"] = time.perf_counter() - t0

    # -- decoder directions and receptive fields --------------------------------------------------
    t0 = time.perf_counter()
    steps = _direction_scales(sd)
    directions = decoder_directions(model, steps)
    rf = receptive_fields(model, steps)
    localization = localization_index(display_direction(dataset, rf))  # in pixel space
    if active.any() and np.isfinite(localization[active]).any():
        metrics["rf_localization"] = float(np.nanmean(localization[active]))
    else:
        skip("rf_localization", "no active dimension with a non-zero receptive field")

    # -- recovery of the ground truth (synthetic data) --------------------------------------------
    template_metrics = ("template_weight_corr", "template_weight_r2", "template_decoder_cos")
    if _is_synthetic(dataset):
        weights = np.asarray(dataset.extras["weights_test"], dtype=np.float64)
        metrics["template_weight_corr"] = template_weight_correlation(loc, weights)[0]
        try:
            metrics["template_weight_r2"] = template_weight_r2(loc, weights)
        except NotApplicable as reason:
            skip("template_weight_r2", str(reason))
        if active.any():
            best_cos, _ = best_abs_cosine(dataset.extras["templates"], directions[active])
            metrics["template_decoder_cos"] = float(best_cos.mean())
        else:
            skip("template_decoder_cos", f"no active dimension (location variance > {settings['active_threshold']})")
    else:
        for name in template_metrics:
            skip(name, "no ground-truth templates and weights (not synthetic data)")
    timings["decoder"] = time.perf_counter() - t0

    for name, value in metrics.items():  # a numerical failure is reported as such, never as a number
        if isinstance(value, float) and not math.isfinite(value):
            skip(name, f"not finite ({value}): numerical failure of the model on the test split")

    per_dimension = {
        "kl": kl_per_dim,
        "location_variance": variance,
        "kurtosis": kurt,
        "mi_label": mi_label,
    }
    settings_out = dict(settings)
    settings_out.update(
        evaluation_kl=kl_method,
        n_test=n_test,
        n_eval=n_eval,
        seed=seed,
        definitions=DEFINITIONS,
    )
    report = {
        "run": run,
        "metrics": metrics,
        "not_applicable": not_applicable,
        "per_dimension": per_dimension,
        "settings": settings_out,
    }
    latents = {"loc": loc.astype(np.float32), "scale": scale.astype(np.float32)}
    if dataset.y_test is not None:
        latents["labels"] = np.asarray(dataset.y_test)
    title = f"{run['dataset']} | {run['prior']} prior | z={latent} | seed {run['seed']}"
    return Analysis(
        report=_jsonable(report), latents=latents, loc=loc, scale=scale, variance=variance,
        kl_per_dim=kl_per_dim, active=active, rf=rf,
        directions=directions, title=title, timings=timings,
    )


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become null (metrics.json must hold no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


# =================================================================================================
# Figures
# =================================================================================================
def _display(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """Data-space vectors (N, D) as viewable images (N, H, W) in [0, 1] (dewhitened when whitened)."""
    x = np.asarray(for_display(dataset, np.asarray(x, dtype=np.float64)))
    return x.reshape(len(x), *dataset.image_shape)


def _grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    cols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def _tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Images (n, H, W) laid out row-major on a rows x cols grid with 1-pixel NaN gutters.

    One `imshow` of a mosaic instead of an axes per image keeps a 64-panel figure well under a
    second; NaN gutters and empty cells show as the background colour.
    """
    n, h, w = images.shape
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[i]
    return out


def _signed_unit(images: np.ndarray) -> np.ndarray:
    """Each image divided by its own max |value| (zero images stay zero): a per-panel symmetric scale."""
    peak = np.abs(images).reshape(len(images), -1).max(axis=1)
    return images / np.where(peak > 0, peak, 1.0)[:, None, None]


def _show_mosaic(ax: Any, mosaic: np.ndarray, signed: bool) -> Any:
    import matplotlib.pyplot as plt

    # gutters (NaN): grey for a signed map, whose zero is white; white for grey-level images
    cmap = plt.get_cmap("RdBu_r" if signed else "gray").with_extremes(bad="0.7" if signed else "white")
    limits = (-1.0, 1.0) if signed else (0.0, 1.0)
    return ax.imshow(mosaic, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")


def _cell_ticks(ax: Any, size: int, count: int, labels: list[str], axis: str) -> None:
    """Put one tick label at the centre of each mosaic cell along `axis` ("x" or "y")."""
    centres = [i * (size + 1) + (size - 1) / 2 for i in range(count)]
    if axis == "x":
        ax.set_xticks(centres, labels[:count], fontsize=8)
    else:
        ax.set_yticks(centres, labels[:count], fontsize=8)
    ax.tick_params(length=0)


def _robust_limits(values: np.ndarray) -> tuple[float, float]:
    """Axis limits holding the central 99% of the values (Cauchy codes have far outliers)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return float(lo - pad), float(hi + pad)


def write_figures(analysis: Analysis, model: Any, dataset: Dataset, out_dir: Path) -> list[str]:
    """Write the run's figures into `out_dir`; returns the file names. Deterministic (seeded).

    Images go through `sparse_vae.data.for_display` (dewhitening for whitened patches), so every
    panel is in viewable pixel space; the metrics never use that mapping. Image grids are drawn as
    one mosaic per figure, which keeps the whole set to a few seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    out_dir = Path(out_dir)
    run = analysis.report["run"]
    latent = analysis.loc.shape[1]
    h, w = dataset.image_shape
    aspect = (h + 1) / (w + 1)
    order = np.argsort(-analysis.variance, kind="stable")  # most active first
    written: list[str] = []

    def figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
        """A constrained-layout figure at least 6.5 in wide, so the two-line title fits."""
        return plt.subplots(rows, cols, figsize=(max(6.5, width), height + 0.9), squeeze=False,
                            layout="constrained")

    def mosaic_figure(rows: int, cols: int, cell: float = 0.75) -> tuple[Any, Any]:
        fig, axes = figure(cols * cell + 1.2, rows * cell * aspect + 0.4)
        return fig, axes[0, 0]

    def title(fig: Any, what: str) -> None:
        fig.suptitle(f"{analysis.title}\n{what}", fontsize=10)

    def save(fig: Any, name: str) -> None:
        fig.savefig(out_dir / name, dpi=90)
        plt.close(fig)
        written.append(name)

    # reconstructions: inputs vs decode(posterior location)
    n = min(10, len(dataset.x_test))
    pairs = np.concatenate([_display(dataset, dataset.x_test[:n]), _display(dataset, _decode(model, analysis.loc[:n]))])
    fig, ax = mosaic_figure(2, n, cell=0.85)
    _show_mosaic(ax, _tile(pairs, 2, n), signed=False)
    _cell_ticks(ax, h, 2, ["input", "reconstruction"], "y")
    _cell_ticks(ax, w, n, [f"#{i}" for i in range(n)], "x")
    ax.set_xlabel("test example")
    title(fig, "first test inputs (top) and decoded posterior locations (bottom)")
    save(fig, "reconstructions.png")

    # prior samples
    torch.manual_seed(int(analysis.report["settings"]["seed"]) * 1000 + _SEED_PRIOR_SAMPLES)
    with torch.no_grad():
        prior = model.prior()
        z = prior.sample((32,)).double().numpy()
    note = ""
    if isinstance(prior, Cauchy) or run.get("prior") == "cauchy":
        bound = _CAUCHY_CLIP * np.broadcast_to(prior.scale.double().numpy(), (latent,))
        clipped = float(np.mean(np.abs(z) > bound))
        z = np.clip(z, -bound, bound)
        note = f"\nCauchy prior: z clipped to +-{_CAUCHY_CLIP:g} prior scales ({clipped:.0%} of coordinates)"
    fig, ax = mosaic_figure(4, 8)
    _show_mosaic(ax, _tile(_display(dataset, _decode(model, z)), 4, 8), signed=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("32 samples z ~ p(z), decoded")
    title(fig, f"decoded prior samples{note}")
    save(fig, "prior_samples.png")

    # latent scatter: coloured by label, or by the dominant true weight on synthetic data
    groups: np.ndarray | None = None
    group_name = ""
    if dataset.y_test is not None:
        groups, group_name = np.asarray(dataset.y_test), "label"
    elif _is_synthetic(dataset):
        groups = np.abs(np.asarray(dataset.extras["weights_test"])).argmax(axis=1)
        group_name = "dominant true weight"
    shown = np.arange(min(2000, len(analysis.loc)))
    tab10 = plt.get_cmap("tab10")
    if groups is not None:
        values, codes = np.unique(groups[shown], return_inverse=True)
        colours = tab10(codes % 10)
        handles = [Line2D([], [], ls="", marker="o", ms=4, color=tab10(i % 10), label=str(v))
                   for i, v in enumerate(values)]
    else:
        colours, handles = "tab:blue", []

    def scatter(ax: Any, dx: int, dy: int) -> None:
        ax.scatter(analysis.loc[shown, dx], analysis.loc[shown, dy], s=3, alpha=0.5, c=colours, linewidths=0)
        ax.set_xlim(*_robust_limits(analysis.loc[shown, dx]))
        ax.set_ylim(*_robust_limits(analysis.loc[shown, dy]))

    if latent == 1:
        fig, axes = figure(6.0, 3.5)
        ax = axes[0, 0]
        ax.hist(analysis.loc[shown, 0], bins=60, range=_robust_limits(analysis.loc[shown, 0]), color="tab:blue")
        ax.set_xlabel("posterior location z0")
        ax.set_ylabel("test examples")
        title(fig, "posterior locations of test examples (central 99%)")
    elif latent == 2:
        fig, axes = figure(6.5, 5.0)
        scatter(axes[0, 0], 0, 1)
        axes[0, 0].set_xlabel("posterior location z0")
        axes[0, 0].set_ylabel("posterior location z1")
        title(fig, "posterior locations of test examples (central 99% of each axis shown)")
    else:
        dims = order[:4]
        k = len(dims)
        fig, axes = figure(2.0 * k + 1.0, 2.0 * k, k, k)
        for i, di in enumerate(dims):
            for j, dj in enumerate(dims):
                ax = axes[i, j]
                if i == j:
                    ax.hist(analysis.loc[shown, di], bins=40, range=_robust_limits(analysis.loc[shown, di]),
                            color="tab:gray")
                else:
                    scatter(ax, dj, di)
                ax.tick_params(labelsize=7)
                if i == k - 1:
                    ax.set_xlabel(f"z{dj}")
                if j == 0:
                    ax.set_ylabel(f"z{di}")
        title(fig, f"posterior locations of the {k} most active dims (diagonal: histograms; central 99%)")
    if handles:
        fig.legend(handles=handles, title=group_name, loc="outside right center", fontsize=8, title_fontsize=8,
                   frameon=False)
    save(fig, "latent_scatter.png")

    # traversals: most active dims, median +- 2.5 sd, the other dims held at their median
    dims = order[:min(8, latent)]
    steps = np.linspace(-2.5, 2.5, 9)
    base = np.median(analysis.loc, axis=0)
    step_sd = _direction_scales(np.sqrt(analysis.variance))
    z = np.repeat(base[None], len(dims) * len(steps), axis=0).reshape(len(dims), len(steps), latent)
    for r, d in enumerate(dims):
        z[r, :, d] = base[d] + steps * step_sd[d]
    images = _display(dataset, _decode(model, z.reshape(-1, latent)))
    fig, ax = mosaic_figure(len(dims), len(steps))
    _show_mosaic(ax, _tile(images, len(dims), len(steps)), signed=False)
    _cell_ticks(ax, h, len(dims), [f"z{d}" for d in dims], "y")
    _cell_ticks(ax, w, len(steps), [f"{s:+.1f}" for s in steps], "x")
    ax.set_xlabel("median + k sd of the dimension's posterior location")
    ax.set_ylabel("latent dimension (most active first)")
    title(fig, "latent traversals (other dimensions at their median)")
    save(fig, "traversals.png")

    # receptive fields, display space, each on its own symmetric scale
    shown_dims = order[:64]
    rows, cols = _grid_shape(len(shown_dims))
    rf_display = display_direction(dataset, analysis.rf[shown_dims]).reshape(len(shown_dims), h, w)
    fig, ax = mosaic_figure(rows, cols, cell=0.95)
    _show_mosaic(ax, _tile(_signed_unit(rf_display), rows, cols), signed=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for i, d in enumerate(shown_dims):
        r, c = divmod(i, cols)
        ax.text(c * (w + 1), r * (h + 1), f"z{d}" + ("" if analysis.active[d] else "*"), fontsize=7,
                va="top", ha="left", color="black", bbox={"fc": "white", "alpha": 0.6, "pad": 0.5, "lw": 0})
    ax.set_xlabel("* inactive dimension; red +, blue -, each field scaled to its own max |value|")
    title(fig, "receptive fields decode(+s e_j) - decode(-s e_j), s = sd of z_j (most active first)")
    save(fig, "receptive_fields.png")

    # KL per dimension, sorted
    kl_order = np.argsort(-analysis.kl_per_dim, kind="stable")
    fig, axes = figure(0.3 * latent + 2, 3.2)
    ax = axes[0, 0]
    ax.bar(np.arange(latent), analysis.kl_per_dim[kl_order], color="tab:blue")
    ax.axhline(float(analysis.report["settings"]["kl_threshold"]), color="tab:red", lw=1, ls="--",
               label="kl_threshold")
    ax.set_xticks(np.arange(latent), [f"z{d}" for d in kl_order], rotation=90 if latent > 12 else 0, fontsize=8)
    ax.set_xlabel("latent dimension (sorted by KL)")
    ax.set_ylabel("mean KL(q || p), nats")
    ax.legend(fontsize=8)
    title(fig, "KL per latent dimension, mean over the test set")
    save(fig, "kl_per_dim.png")

    if _is_synthetic(dataset):
        templates = np.asarray(dataset.extras["templates"], dtype=np.float64)
        weights = np.asarray(dataset.extras["weights_test"], dtype=np.float64)
        n_templates = len(templates)
        cols = max(n_templates, latent)
        cos, best = best_abs_cosine(analysis.directions, templates)
        cells = np.zeros((2 * cols, h, w))
        cells[:n_templates] = templates.reshape(n_templates, h, w)
        cells[cols:cols + latent] = analysis.directions.reshape(latent, h, w)
        cells = _signed_unit(cells)
        cells[n_templates:cols] = np.nan
        cells[cols + latent:] = np.nan
        fig, ax = mosaic_figure(2, cols, cell=1.1)
        _show_mosaic(ax, _tile(cells, 2, cols), signed=True)
        _cell_ticks(ax, h, 2, ["true templates", "decoded directions"], "y")
        _cell_ticks(ax, w, cols, [f"t{i} | z{i}" if i < min(n_templates, latent) else (f"t{i}" if i < n_templates
                                  else f"z{i}") for i in range(cols)], "x")
        for i in range(latent):
            mark = "" if analysis.active[i] else "*"
            ax.text(i * (w + 1), (h + 1), f"{mark}|cos| {cos[i]:.2f} t{best[i]}", fontsize=7, va="top", ha="left",
                    bbox={"fc": "white", "alpha": 0.6, "pad": 0.5, "lw": 0})
        ax.set_xlabel("bottom: decode(s e_j) - decode(0), s = sd of z_j; each cell on its own scale; "
                      "* inactive", fontsize=8)
        title(fig, "true templates vs each latent dimension's decoded direction")
        save(fig, "templates.png")

        _, best_dim, best_r = template_weight_correlation(analysis.loc, weights)
        fig, axes = figure(2.6 * n_templates, 2.6, 1, n_templates)
        for k, ax in enumerate(axes[0]):
            d = best_dim[k]
            ax.scatter(weights[shown, k], analysis.loc[shown, d], s=3, alpha=0.5, linewidths=0)
            ax.set_ylim(*_robust_limits(analysis.loc[shown, d]))
            ax.set_xlabel(f"true weight w{k}")
            ax.set_ylabel(f"posterior location z{d}")
            ax.set_title(f"|r| = {best_r[k]:.2f}", fontsize=9)
        title(fig, "true template weights vs the best-correlated latent code")
        save(fig, "weights_vs_latents.png")
    return written


# =================================================================================================
# The pipeline step
# =================================================================================================
def _load_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """`sparse_vae.model.load_model`, with a one-line error when the run has not been trained."""
    if not path.exists():
        raise SparseVAEError(f"{path}: no trained model (run the train step first)")
    return load_model(path)


@contextmanager
def _thread_limits(threads: int) -> Iterator[None]:
    """Hold torch and the BLAS / OpenMP pools (numpy, scikit-learn) to the rule's thread count."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files and folders an earlier, killed analysis of this run left behind.

    Snakemake runs one job per run folder at a time, so nothing else is writing these.
    """
    for pattern in (".figures.tmp-*", ".figures.old-*", ".latents.npz.*.tmp", ".metrics.json.*.tmp"):
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def analyze_run(data_path: Path, run_dir: Path, params: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """Analyse `run_dir/model.pt` on the dataset's test split; write latents, figures, then metrics.

    Nothing is touched until the inputs have loaded and every metric is computed. Then a stale
    metrics.json is removed first, latents.npz and figures/ are renamed into place, and
    metrics.json is written last: a job killed at any point leaves no metrics.json beside partial
    outputs, so Snakemake (and the report) never mistake a partial analysis for a finished one.
    Same inputs and threads give a byte-identical metrics.json. Returns the metrics.json content.
    """
    run_dir = Path(run_dir)
    threads = max(1, int(threads))
    _check_params(params)
    metrics_path = run_dir / "metrics.json"
    started = time.perf_counter()
    with _thread_limits(threads):
        dataset = load_dataset(data_path)
        model, checkpoint = _load_model(run_dir / "model.pt")
        if hasattr(model, "eval"):
            model.eval()
        input_dim = checkpoint.get("input_dim")
        if input_dim is not None and int(input_dim) != dataset.input_dim:
            raise SparseVAEError(
                f"{run_dir / 'model.pt'} expects {input_dim} inputs but {data_path} has {dataset.input_dim}"
            )
        analysis = compute_analysis(model, checkpoint, dataset, params)

        metrics_path.unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(run_dir)
        t0 = time.perf_counter()
        with atomic_open(run_dir / "latents.npz") as fh:
            np.savez_compressed(fh, **analysis.latents)
        with atomic_dir(run_dir / "figures") as staging:
            names = write_figures(analysis, model, dataset, staging)
        analysis.timings["figures"] = time.perf_counter() - t0

        text = json.dumps(analysis.report, indent=2, allow_nan=False) + "\n"
        write_text(metrics_path, text)

    m = analysis.report["metrics"]
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in analysis.timings.items())
    print(
        f"analyze {run_dir}: elbo {m['elbo']:.3f}, iwae {m['iwae_log_lik']:.3f} (K={m['iwae_samples']}), "
        f"active {m['active_units']}/{analysis.loc.shape[1]}; {len(names)} figures; "
        f"{time.perf_counter() - started:.1f}s ({steps})",
        flush=True,
    )
    return analysis.report
