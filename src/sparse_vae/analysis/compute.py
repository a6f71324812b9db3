"""The analysis of one trained run: model + dataset in, the metrics.json content out.

One shared pass over the test split (posterior parameters, KL per dimension, decoder directions)
feeds one function per metric group of the catalogue (``catalogue.GROUPS``): fit, latent use,
sparsity, labels, decoder, ground truth. Each returns its metrics and, for any that does not apply
to this run, the reason (the metric is then null in metrics.json; a number is never invented).
``compute_analysis`` checks that every group returns exactly the metrics the catalogue assigns it.

Deterministic for given inputs: every stochastic step re-seeds from the run's seed plus its own
offset, so the steps do not depend on each other's consumption of random numbers.
Not here: the metric maths (``metrics``), the model passes (``model_passes``), figures, file I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sparse_vae import catalogue
from sparse_vae.analysis import metrics as M
from sparse_vae.analysis.display import display_direction
from sparse_vae.analysis.exact import model_log_marginal, model_parameters
from sparse_vae.analysis.fields import summarize_fields
from sparse_vae.analysis.model_passes import (
    BATCH, CHUNK_ELEMENTS, decode, decoder_directions, direction_scales, importance_log_weights,
    posterior_parameters, receptive_fields,
)
from sparse_vae.data.io import Dataset
from sparse_vae.errors import SparseVAEError

__all__ = [
    "GROUP_FUNCTIONS", "PARAM_KEYS", "Analysis", "Group", "Posterior", "check_params", "compute_analysis",
    "is_synthetic",
]

PARAM_KEYS = (
    "iwae_samples", "max_examples", "active_threshold", "used_ratio_threshold", "kl_threshold",
    "sparsity_threshold", "probe_folds",
)
#: sources whose datasets are the positive control (x = W z + noise with known W).
CONTROL_SOURCES = ("sparse_linear",)
#: sources of grey natural-image patches, whose linear-decoder columns get the literature's field fits.
NATURAL_IMAGE_SOURCES = ("natural", "cifar")
FIELD_METRICS = ("rf_fields_fitted", "rf_gabor_fraction", "rf_dog_fraction", "rf_extended_fraction",
                 "rf_unfitted_fraction", "rf_gabor_r2_median", "rf_gabor_median_freq")
_SEED_IWAE, _SEED_KL = 101, 102


@dataclass
class Posterior:
    """What every group reads: the test split, its posterior codes, KL and decoder directions."""

    settings: dict[str, Any]
    seed: int
    x_test: np.ndarray  # float32 (N, D)
    n_eval: int  # the first n_eval examples are used for ELBO, IWAE, probe and MI
    loc: np.ndarray
    scale: np.ndarray
    variance: np.ndarray
    active: np.ndarray  # Burda: Var_x loc > active_threshold (reported only, masks nothing)
    used_ratio: np.ndarray  # per dim: half-IQR_x(loc) / median_x half-IQR of q (scale-free)
    used: np.ndarray  # used_ratio > used_ratio_threshold: the dims every masked metric reads
    posterior_family: str  # "gaussian" | "cauchy", from the model's posterior distribution
    prior_family: str  # "normal" | "laplace" | "cauchy", from the model's prior distribution
    prior_scale: float
    kl_example_dim: np.ndarray  # (N, L)
    kl_method: str
    directions: np.ndarray  # decode(s e_j) - decode(0), (L, D)
    rf: np.ndarray  # decode(s e_j) - decode(-s e_j), (L, D)

    @property
    def kl_per_dim(self) -> np.ndarray:
        return self.kl_example_dim.mean(axis=0)


@dataclass
class Group:
    """One group's metrics (None where not applicable), the reasons, and arrays others draw."""

    metrics: dict[str, Any] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)

    def skip(self, *names_and_reason: str) -> None:
        *names, reason = names_and_reason
        for name in names:
            self.metrics[name] = None
            self.not_applicable[name] = reason


@dataclass
class Analysis:
    """One run's results: the metrics.json content, the latents, and what the figures draw from."""

    report: dict[str, Any]  # the metrics.json content, before JSON conversion
    run: dict[str, Any]  # dataset, prior, latent, seed, kl_estimator
    latents: dict[str, np.ndarray]
    posterior: Posterior
    arrays: dict[str, Any]  # the groups' arrays (kurtosis, mi_label, template matches ...)
    timings: dict[str, float] = field(default_factory=dict)


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis params as a dict; one-line error for a missing key or an impossible value."""
    if not isinstance(params, Mapping):
        raise SparseVAEError(f"analysis params must be a mapping, got {type(params).__name__}")
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise SparseVAEError(f"analysis params: missing {', '.join(missing)} (expected: {', '.join(PARAM_KEYS)})")
    settings = dict(params)
    if int(settings["iwae_samples"]) < 1:
        raise SparseVAEError(f"analysis params: iwae_samples must be >= 1, got {settings['iwae_samples']}")
    if float(settings["used_ratio_threshold"]) <= 0:
        raise SparseVAEError(f"analysis params: used_ratio_threshold must be > 0, got {settings['used_ratio_threshold']}")
    if settings["max_examples"] is not None and int(settings["max_examples"]) < 1:
        raise SparseVAEError(f"analysis params: max_examples must be >= 1, got {settings['max_examples']}")
    return settings


# -- the shared pass ------------------------------------------------------------------------------
_FAMILIES = {torch.distributions.Normal: "normal", torch.distributions.Laplace: "laplace",
             torch.distributions.Cauchy: "cauchy"}


def model_families(model: Any, x: np.ndarray) -> tuple[str, str, float]:
    """(posterior family, prior family, prior scale) read off the model's own distributions.

    Never from the prior's configured name: a `cauchy_gauss` entry has a Cauchy prior and a
    Gaussian posterior, and what is defined (ELBO, the used-dimension ratio) depends on both.
    """
    with torch.no_grad():
        q, prior = model.posterior(torch.as_tensor(x[:1], dtype=torch.float32)), model.prior()
    names = [next((name for cls, name in _FAMILIES.items() if isinstance(d, cls)), None) for d in (q, prior)]
    if None in names:
        raise SparseVAEError(f"the analysis knows Normal, Laplace and Cauchy distributions, not "
                             f"{type(q).__name__} / {type(prior).__name__}")
    scale = float(np.asarray(prior.scale.double().numpy()).reshape(-1)[0])
    return ("gaussian" if names[0] == "normal" else names[0]), names[1], scale


def posterior_pass(model: Any, dataset: Dataset, settings: dict[str, Any], seed: int,
                   timings: dict[str, float]) -> Posterior:
    """Posterior codes and KL of the whole test split, and each latent axis' decoded direction."""
    x_test = np.asarray(dataset.x_test, dtype=np.float32)
    n_test = len(x_test)
    if n_test < 2:
        raise SparseVAEError(f"the test split has {n_test} examples; the analysis needs at least 2")
    n_eval = n_test if settings["max_examples"] is None else min(n_test, int(settings["max_examples"]))
    t0 = time.perf_counter()
    loc, scale = posterior_parameters(model, x_test)
    if not (np.isfinite(loc).all() and np.isfinite(scale).all()):
        raise SparseVAEError("the model's posterior parameters on the test split are not finite")
    variance = M.location_variance(loc)
    posterior_family, prior_family, prior_scale = model_families(model, x_test)
    ratio = M.used_ratio(loc, scale, posterior_family)
    timings["posterior"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    torch.manual_seed(seed * 1000 + _SEED_KL)
    kl_rows, kl_method = [], "closed_form"
    with torch.no_grad():
        prior = model.prior()
        for start in range(0, n_test, BATCH):
            q = model.posterior(torch.as_tensor(x_test[start:start + BATCH]))
            kl, kl_method = M.evaluation_kl(q, prior)
            kl_rows.append(kl.double().numpy())
    timings["kl"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    steps = direction_scales(np.sqrt(variance))
    directions, rf = decoder_directions(model, steps), receptive_fields(model, steps)
    timings["directions"] = time.perf_counter() - t0
    return Posterior(
        settings=settings, seed=seed, x_test=x_test, n_eval=n_eval, loc=loc, scale=scale,
        variance=variance, active=variance > float(settings["active_threshold"]), used_ratio=ratio,
        used=ratio > float(settings["used_ratio_threshold"]), posterior_family=posterior_family,
        prior_family=prior_family, prior_scale=prior_scale,
        kl_example_dim=np.concatenate(kl_rows), kl_method=kl_method, directions=directions, rf=rf,
    )


# -- the metric groups (one per catalogue.GROUPS entry) ------------------------------------------
def fit(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """ELBO and its parts and the IWAE bound on the first n_eval examples; pixel MSE on all."""
    iwae_k = int(post.settings["iwae_samples"])
    torch.manual_seed(post.seed * 1000 + _SEED_IWAE)
    recon, iwae = [], []
    batch = max(1, min(BATCH, CHUNK_ELEMENTS // max(1, iwae_k * post.x_test.shape[1])))
    with torch.no_grad():
        for start in range(0, post.n_eval, batch):
            xb = torch.as_tensor(post.x_test[start:min(start + batch, post.n_eval)])
            log_lik, log_w = importance_log_weights(model, xb, iwae_k)
            recon.append(log_lik.mean(0).numpy())
            iwae.append(M.iwae_bound(log_w).numpy())
    recon_ll = np.concatenate(recon)
    kl_eval = post.kl_example_dim[:post.n_eval].sum(axis=1)
    recon_images = decode(model, post.loc)
    group = Group(metrics={
        "recon_log_lik": float(recon_ll.mean()),
        "kl": float(kl_eval.mean()),
        "elbo": float((recon_ll - kl_eval).mean()),
        "iwae_log_lik": float(np.concatenate(iwae).mean()),
        "iwae_samples": iwae_k,
        "mse": float(np.mean((recon_images - post.x_test.astype(np.float64)) ** 2)),
    })
    if post.posterior_family == "cauchy":  # the Monte Carlo numbers above estimate a divergent mean
        group.skip("elbo", "recon_log_lik", UNDEFINED_UNDER_CAUCHY)
    exact_fit(model, post, group)
    return group


def exact_fit(model: Any, post: Posterior, group: Group) -> None:
    """Exact log p(x) on the IWAE's examples where it has a closed form (``analysis.exact``:
    linear decoder, Gaussian likelihood, normal prior), and how far the IWAE bound falls below it."""
    try:
        model_parameters(model)
    except ValueError as reason:
        group.skip("exact_log_lik", "iwae_gap_exact", str(reason))
        return
    exact = model_log_marginal(model, torch.as_tensor(post.x_test[:post.n_eval])).numpy()
    group.metrics["exact_log_lik"] = float(exact.mean())
    group.metrics["iwae_gap_exact"] = float(exact.mean()) - group.metrics["iwae_log_lik"]


#: why E_q[log p(x|z)] (and the ELBO) is undefined with a Cauchy posterior.
UNDEFINED_UNDER_CAUCHY = (
    "undefined: E_q[log p(x|z)] diverges for a Cauchy posterior with this decoder (its log-likelihood "
    "falls at least linearly in |z|, and a Cauchy has no mean); see iwae_log_lik and mse")


def latent_use(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Which latent dimensions the encoder uses: scale-free (used_units), Burda's count, KL above its floor."""
    floor = M.kl_floor(post.posterior_family, post.prior_family, post.prior_scale)
    kl_cut = floor + float(post.settings["kl_threshold"])
    group = Group(metrics={
        "used_units": int(post.used.sum()),
        "active_units": int(post.active.sum()),
        "active_units_kl": int(np.sum(post.kl_per_dim > kl_cut)),
    }, arrays={"kl_floor": floor, "used_ratio": post.used_ratio})
    latent = post.loc.shape[1]
    if latent == 2:
        group.metrics["dims_used_2d"] = int(post.used.sum())
    else:
        group.skip("dims_used_2d", f"the latent space has {latent} dimensions, not 2")
    return group


def _no_used_dims(post: Posterior) -> str:
    return f"no used dimension (used_ratio > {post.settings['used_ratio_threshold']})"


def sparsity(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Near-zero fraction, kurtosis and Hoyer sparsity of the used dimensions, each in units of its spread."""
    loc, used = post.loc, post.used
    kurtosis = M.excess_kurtosis(loc)
    group = Group(arrays={"kurtosis": kurtosis})
    if not used.any():
        group.skip("frac_near_zero", "kurtosis_mean", "hoyer", _no_used_dims(post))
        return group
    try:
        group.metrics["frac_near_zero"] = M.frac_near_zero(loc, float(post.settings["sparsity_threshold"]),
                                                           np.flatnonzero(used))
    except M.NotApplicable as reason:
        group.skip("frac_near_zero", str(reason))
    if np.isfinite(kurtosis[used]).any():
        group.metrics["kurtosis_mean"] = float(np.nanmean(kurtosis[used]))
    else:
        group.skip("kurtosis_mean", "no used dimension has a defined kurtosis")
    standardised = M.robust_standardise(loc[:, used])
    standardised = standardised[:, np.isfinite(standardised).all(axis=0)]
    if standardised.shape[1] < 2:
        group.skip("hoyer", f"Hoyer sparsity needs at least 2 used dimensions with a spread "
                            f"({standardised.shape[1]} here)")
        return group
    hoyer = M.hoyer_sparsity(standardised)
    if np.isfinite(hoyer).any():
        group.metrics["hoyer"] = float(np.nanmean(hoyer))
    else:
        group.skip("hoyer", "every standardised code vector is exactly zero")
    return group


def labels(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Linear probe accuracy and mutual information with the labels, on the first n_eval examples."""
    group = Group(arrays={"mi_label": None})
    if dataset.y_test is None:
        group.skip("probe_accuracy", "probe_chance", "probe_accuracy_best_dim", "mi_label_max",
                   "the dataset has no labels")
        return group
    codes, y = post.loc[:post.n_eval], np.asarray(dataset.y_test)[:post.n_eval]
    try:
        accuracy, chance = M.linear_probe(codes, y, int(post.settings["probe_folds"]))
        best, _ = M.best_single_dim_probe(codes, y, int(post.settings["probe_folds"]))
        group.metrics.update(probe_accuracy=accuracy, probe_chance=chance, probe_accuracy_best_dim=best)
    except M.NotApplicable as reason:
        group.skip("probe_accuracy", "probe_chance", "probe_accuracy_best_dim", str(reason))
    if len(np.unique(y)) >= 2:
        mi_label = M.mutual_information(codes, y)
        group.arrays["mi_label"] = mi_label
        group.metrics["mi_label_max"] = float(mi_label.max())
    else:
        group.skip("mi_label_max", "the evaluated test labels hold a single class")
    return group


def decoder(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """How localised the used dimensions' receptive fields are, in pixel space, and what shape the
    used decoder columns take (Gabor / centre-surround fits, natural-image patches only)."""
    localization = M.localization_index(display_direction(dataset, post.rf))
    group = Group(arrays={"rf_fits": None})
    if post.used.any() and np.isfinite(localization[post.used]).any():
        group.metrics["rf_localization"] = float(np.nanmean(localization[post.used]))
    else:
        group.skip("rf_localization", "no used dimension with a non-zero receptive field")
    field_fits(model, post, dataset, group)
    return group


def field_fits(model: Any, post: Posterior, dataset: Dataset, group: Group) -> None:
    """Gabor and DoG fits (``analysis.fields``) of the USED dims' linear-decoder columns.

    The columns are taken in data space, where the model and the dictionary baseline are both
    fitted (the baseline's atoms are fitted the same way). Used dims only: a VAE's unused column
    is whatever its initialisation left there (a collapsed latent never reaches the decoder), so
    counting it would measure collapse, which ``used_units`` already reports, not field shape.
    """
    shape = tuple(int(v) for v in dataset.image_shape)
    dictionary = model.decoder_dictionary() if hasattr(model, "decoder_dictionary") else None
    if dictionary is None:
        group.skip(*FIELD_METRICS, "needs a linear decoder (its columns are the fields)")
        return
    if dataset.metadata.get("source") not in NATURAL_IMAGE_SOURCES or len(shape) != 2:
        group.skip(*FIELD_METRICS, f"needs grey natural-image patches (source {' or '.join(NATURAL_IMAGE_SOURCES)})")
        return
    if not post.used.any():
        group.skip(*FIELD_METRICS, _no_used_dims(post))
        return
    columns = dictionary.double().numpy()[post.used].reshape(-1, *shape)
    summary = summarize_fields(columns)
    group.metrics.update(
        rf_fields_fitted=int(summary["n_fields"]), rf_gabor_fraction=summary["gabor_fraction"],
        rf_dog_fraction=summary["dog_fraction"], rf_extended_fraction=summary["extended_fraction"],
        rf_unfitted_fraction=summary["unfitted_fraction"], rf_gabor_r2_median=summary["gabor_r2_median"])
    if summary["frequencies"]:
        group.metrics["rf_gabor_median_freq"] = float(np.median(summary["frequencies"]))
    else:
        group.skip("rf_gabor_median_freq", "no used column is Gabor-like")
    group.arrays["rf_fits"] = {"fields": columns, "per_field": summary["per_field"],
                               "dims": np.flatnonzero(post.used)}


def ground_truth(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Recovery of the true weights and templates, one-to-one (synthetic and control data only)."""
    group = Group()
    if not is_synthetic(dataset):
        group.skip("template_weight_corr", "template_weight_r2", "template_matched_cos", "ica_matched_cos",
                   "no ground-truth templates and weights (not synthetic data)")
        return group
    templates = np.asarray(dataset.extras["templates"], dtype=np.float64)
    weights = np.asarray(dataset.extras["weights_test"], dtype=np.float64)
    corr, best_dim, best_r = M.template_weight_correlation(post.loc, weights)
    group.metrics["template_weight_corr"] = corr
    # for the figures: each dimension's best template, each weight's matched dimension
    direction_cos, direction_template = M.best_abs_cosine(post.directions, templates)
    group.arrays.update(weight_best_dim=best_dim, weight_best_r=best_r, direction_cos=direction_cos,
                        direction_template=direction_template)
    try:
        group.metrics["template_weight_r2"] = M.template_weight_r2(post.loc, weights)
    except M.NotApplicable as reason:
        group.skip("template_weight_r2", str(reason))
    if post.used.any():  # templates beyond the used dims' number are left unmatched (score 0)
        matched_cos, _ = M.matched(M.abs_cosine_matrix(templates, post.directions[post.used]))
        group.metrics["template_matched_cos"] = float(matched_cos.mean())
    else:
        group.skip("template_matched_cos", _no_used_dims(post))
    if dataset.metadata.get("source") in CONTROL_SOURCES:
        ica = M.fastica_dictionary(dataset.x_train, len(templates), seed=post.seed)
        group.metrics["ica_matched_cos"] = M.matched_abs_cosine(templates, ica)[0]
    else:
        group.skip("ica_matched_cos", f"FastICA reference only on positive-control data "
                                      f"(source {' or '.join(CONTROL_SOURCES)})")
    return group


def is_synthetic(dataset: Dataset) -> bool:
    """Whether the dataset carries the true templates and weights (synthetic data)."""
    return all(name in dataset.extras for name in ("templates", "weights_test"))


GROUP_FUNCTIONS: dict[str, Callable[[Any, Posterior, Dataset], Group]] = {
    "fit": fit, "latent_use": latent_use, "sparsity": sparsity, "labels": labels, "decoder": decoder,
    "ground_truth": ground_truth,
}


# -- one run ----------------------------------------------------------------------------------------
def _run_info(spec: Mapping[str, Any], latent: int) -> dict[str, Any]:
    prior = spec.get("prior", {}) or {}
    return {
        "dataset": spec.get("dataset"),
        "prior": prior.get("name"),
        "latent": int(spec.get("latent", latent)),
        "seed": spec.get("seed"),
        "kl_estimator": prior.get("kl"),
    }


def _model_info(post: Posterior) -> dict[str, Any]:
    return {"posterior": post.posterior_family, "prior_family": post.prior_family,
            "prior_scale": post.prior_scale}


def run_groups(model: Any, post: Posterior, dataset: Dataset, timings: dict[str, float]) -> dict[str, Group]:
    """Every catalogue group, in order; each must return exactly the metrics the catalogue gives it."""
    groups = {}
    for name in catalogue.GROUPS:
        t0 = time.perf_counter()
        group = GROUP_FUNCTIONS[name](model, post, dataset)
        timings[name] = time.perf_counter() - t0
        expected = {m.name for m in catalogue.METRICS if m.group == name}
        if set(group.metrics) != expected:
            raise RuntimeError(f"analysis group {name} returned {sorted(group.metrics)}; the catalogue "
                               f"assigns it {sorted(expected)}")
        groups[name] = group
    return groups


def compute_analysis(
    model: Any, checkpoint: Mapping[str, Any], dataset: Dataset, params: Mapping[str, Any]
) -> Analysis:
    """All metrics of one trained model on the test split, deterministically for given inputs."""
    settings = check_params(params)
    spec = checkpoint.get("spec", {}) or {}
    seed = int(spec.get("seed", 0) or 0)
    timings: dict[str, float] = {}
    post = posterior_pass(model, dataset, settings, seed, timings)
    groups = run_groups(model, post, dataset, timings)

    metrics: dict[str, Any] = {name: None for name in catalogue.SCALAR_METRICS}
    not_applicable: dict[str, str] = {}
    arrays: dict[str, Any] = {}
    for group in groups.values():
        metrics.update(group.metrics)
        not_applicable.update(group.not_applicable)
        arrays.update(group.arrays)
    for name, value in metrics.items():  # a numerical failure is reported as such, never as a number
        if isinstance(value, float) and not math.isfinite(value):
            metrics[name] = None
            not_applicable[name] = f"not finite ({value}): numerical failure of the model on the test split"

    run = dict(_run_info(spec, post.loc.shape[1]), **_model_info(post))
    settings_out = dict(settings, evaluation_kl=post.kl_method, kl_floor=arrays["kl_floor"], n_test=len(post.x_test), n_eval=post.n_eval,
                        seed=seed, definitions=catalogue.definitions())
    report = {
        "run": run,
        "metrics": metrics,
        "not_applicable": not_applicable,
        "per_dimension": {"kl": post.kl_per_dim, "location_variance": post.variance,
                          "used_ratio": post.used_ratio, "kurtosis": arrays["kurtosis"],
                          "mi_label": arrays["mi_label"]},
        "settings": settings_out,
    }
    latents = {"loc": post.loc.astype(np.float32), "scale": post.scale.astype(np.float32)}
    if dataset.y_test is not None:
        latents["labels"] = np.asarray(dataset.y_test)
    return Analysis(report=report, run=run, latents=latents, posterior=post, arrays=arrays, timings=timings)
