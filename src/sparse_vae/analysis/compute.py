"""The analysis of one trained run: model + dataset in, the metrics.json content out.

One shared pass over the test split (posterior parameters, KL per dimension, decoder directions)
feeds one function per metric group of the catalogue (``catalogue.GROUPS``): fit, latent use,
sparsity, labels, decoder, ground truth. Each returns its metrics and, for any that does not apply
to this run, the reason (the metric is then null in metrics.json; a number is never invented).
``compute_analysis`` checks that every group returns exactly the metrics the catalogue assigns it.

Deterministic for given inputs: every stochastic step re-seeds from the run's seed plus its own
offset, so the steps do not depend on each other's consumption of random numbers.
Not here: the shared pass (``posterior``), the decoder and ground-truth groups (``decoder_groups``),
the labels group and the sampled code (``label_groups``), the metric maths (``metrics``,
``recovery``), the model passes (``model_passes``), figures, file I/O.
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
from sparse_vae.analysis import information as info
from sparse_vae.analysis import metrics as M
from sparse_vae.analysis.ais import ais_log_likelihood
from sparse_vae.analysis.decoder_groups import decoder, ground_truth
from sparse_vae.analysis.label_groups import labels, sampled_code
from sparse_vae.analysis.exact import model_log_marginal, model_parameters
from sparse_vae.analysis.model_passes import BATCH, CHUNK_ELEMENTS, decode, importance_log_weights
from sparse_vae.analysis.posterior import Group, Posterior, no_used_dims, posterior_pass
from sparse_vae.analysis.seeds import step_seed
from sparse_vae.data.io import Dataset
from sparse_vae.errors import SparseVAEError

__all__ = ["GROUP_FUNCTIONS", "PARAM_KEYS", "Analysis", "check_params", "compute_analysis"]

PARAM_KEYS = (
    "iwae_samples", "max_examples", "active_threshold", "used_ratio_threshold", "kl_threshold",
    "sparsity_threshold", "probe_folds", "info_examples", "info_draws", "at_once_threshold", "ais_examples",
    "ais_steps", "ais_chains", "ais_leapfrog",
)


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
    for key, low in (("info_examples", 2), ("info_draws", 1), ("ais_examples", 0), ("ais_steps", 1),
                     ("ais_chains", 1), ("ais_leapfrog", 1)):
        if int(settings[key]) < low:
            raise SparseVAEError(f"analysis params: {key} must be >= {low}, got {settings[key]}")
    return settings


# -- the metric groups (one per catalogue.GROUPS entry) ------------------------------------------
def fit(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """ELBO and its parts and the IWAE bound on the first n_eval examples; pixel MSE on all."""
    iwae_k = int(post.settings["iwae_samples"])
    torch.manual_seed(step_seed(post.seed, "iwae"))
    recon, iwae = [], []
    batch = max(1, min(BATCH, CHUNK_ELEMENTS // max(1, iwae_k * post.x_test.shape[1])))
    with torch.no_grad():
        for start in range(0, post.n_eval, batch):
            xb = torch.as_tensor(post.x_test[start:min(start + batch, post.n_eval)])
            log_lik, log_w = importance_log_weights(model, xb, iwae_k)
            recon.append(log_lik.mean(0).numpy())
            iwae.append(M.iwae_bound(log_w).numpy())
    recon_ll, iwae_examples = np.concatenate(recon), np.concatenate(iwae)
    kl_eval = post.kl_example_dim[:post.n_eval].sum(axis=1)
    recon_images = decode(model, post.loc)
    group = Group(metrics={
        "recon_log_lik": float(recon_ll.mean()),
        "kl": float(kl_eval.mean()),
        "elbo": float((recon_ll - kl_eval).mean()),
        "iwae_log_lik": float(iwae_examples.mean()),
        "iwae_samples": iwae_k,
        "mse": float(np.mean((recon_images - post.x_test.astype(np.float64)) ** 2)),
        # the mean-image predictor's MSE: the reference "fairly well" is judged against (conclusion 1)
        "mse_mean_image": float(np.mean((dataset.x_train.mean(0, dtype=np.float64) - post.x_test) ** 2)),
    })
    if post.posterior_family == "cauchy":  # the Monte Carlo numbers above estimate a divergent mean
        group.skip("elbo", "recon_log_lik", UNDEFINED_UNDER_CAUCHY)
    exact_fit(model, post, group)
    ais_fit(model, post, group, iwae_examples, dataset.metadata.get("source"))
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


#: sources whose data are drawn from a known generative model (the training control): AIS is run
#: there whatever the decoder, because the IWAE of a Gaussian posterior is biased against a Laplace
#: posterior truth (issue 34); their small MLPs (25-100 pixels) make it cheap.
AIS_SOURCES = ("sparse_linear", "synthetic")


def ais_fit(model: Any, post: Posterior, group: Group, iwae_examples: np.ndarray, source: str | None = None) -> None:
    """AIS log-likelihood on the first ais_examples test examples, for linear decoders and on the
    training-control datasets (``AIS_SOURCES``; elsewhere thousands of gradient steps through an MLP
    per example cost too much); beside the IWAE bound and the exact value on the same examples,
    and its cost in group.arrays (written to the settings)."""
    names = ("ais_log_lik", "ais_minus_iwae", "ais_gap_exact")
    n_ais = min(int(post.settings["ais_examples"]), post.n_eval)
    if (getattr(model, "decoder_kind", None) != "linear" and source not in AIS_SOURCES) or n_ais == 0:
        group.skip(*names, f"AIS is run for linear-decoder models and on the training-control datasets "
                           f"(source {' or '.join(AIS_SOURCES)}) only (thousands of gradient steps per "
                           "example)" if n_ais else "switched off (ais_examples = 0)")
        return
    result = ais_log_likelihood(model, torch.as_tensor(post.x_test[:n_ais]), int(post.settings["ais_steps"]),
                                int(post.settings["ais_chains"]), int(post.settings["ais_leapfrog"]),
                                seed=step_seed(post.seed, "ais"))
    group.metrics["ais_log_lik"] = float(result.log_lik.mean())
    group.metrics["ais_minus_iwae"] = float((result.log_lik - iwae_examples[:n_ais]).mean())
    # its cost goes to the log (timings), not metrics.json: a wall-clock time would make the file differ
    # between two otherwise identical analyses
    group.arrays["ais"] = {"ais_accept_rate": result.accept_rate, "ais_n_examples": n_ais}
    group.arrays["ais_seconds"] = result.seconds
    if group.metrics.get("exact_log_lik") is None:
        group.skip("ais_gap_exact", group.not_applicable.get("exact_log_lik", "no exact log-likelihood"))
        return
    exact = model_log_marginal(model, torch.as_tensor(post.x_test[:n_ais])).numpy()
    group.metrics["ais_gap_exact"] = float((exact - result.log_lik).mean())


#: why E_q[log p(x|z)] (and the ELBO) is undefined with a Cauchy posterior.
UNDEFINED_UNDER_CAUCHY = (
    "undefined: E_q[log p(x|z)] diverges for a Cauchy posterior with this decoder (its log-likelihood "
    "falls at least linearly in |z|, and a Cauchy has no mean); see iwae_log_lik and mse")


def latent_use(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Which latent dimensions the encoder uses: by rate in nats at 0.01 / 0.1 (headline) / 0.5,
    and the conventional counts (half-IQR ratio, Burda's, KL above its floor) as labelled columns."""
    floor = M.kl_floor(post.posterior_family, post.prior_family, post.prior_scale)
    kl_cut = floor + float(post.settings["kl_threshold"])
    ratio_used = post.used_ratio > float(post.settings["used_ratio_threshold"])
    counts = info.used_counts(post.information.rate)
    group = Group(metrics={
        "used_units": int(ratio_used.sum()),
        "active_units": int(post.active.sum()),
        "active_units_kl": int(np.sum(post.kl_per_dim > kl_cut)),
        "used_dims": counts[info.HEADLINE_THRESHOLD],
        "used_dims_001": counts[0.01],
        "used_dims_050": counts[0.5],
    }, arrays={"kl_floor": floor, "used_ratio": post.used_ratio, "rate": post.information.rate})
    latent = post.loc.shape[1]
    if latent == 2:
        group.metrics["dims_used_2d"] = int(ratio_used.sum())
        group.metrics["used_dims_2d"] = counts[info.HEADLINE_THRESHOLD]
    else:
        group.skip("dims_used_2d", "used_dims_2d", f"the latent space has {latent} dimensions, not 2")
    return group


def sparsity(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Sparsity as the talk means it (dims active at once per input, Hoyer's excess over a Gaussian
    code), and the conventional near-zero fraction, kurtosis and Hoyer, all over the used dims."""
    loc, used = post.loc, post.used
    kurtosis = M.excess_kurtosis(loc)
    group = Group(arrays={"kurtosis": kurtosis})
    if not used.any():
        group.skip("frac_near_zero", "kurtosis_mean", "hoyer", "active_at_once", "hoyer_excess", "hoyer_excess_sampled",
                   no_used_dims(post))
        return group
    floor = M.kl_floor(post.posterior_family, post.prior_family, post.prior_scale)
    group.metrics["active_at_once"] = float(info.active_at_once(
        post.kl_example_dim, floor, used, float(post.settings["at_once_threshold"])).mean())
    try:
        group.metrics["hoyer_excess"] = info.hoyer_excess(loc[:, used])
    except ValueError as reason:
        group.skip("hoyer_excess", str(reason))
    try:  # the same one draw per example as probe_accuracy_sampled: the code the decoder receives
        group.metrics["hoyer_excess_sampled"] = info.hoyer_excess(sampled_code(post)[:, used])
    except ValueError as reason:
        group.skip("hoyer_excess_sampled", str(reason))
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
    if "ais_seconds" in groups["fit"].arrays:
        timings["fit"] -= groups["fit"].arrays["ais_seconds"]
        timings["ais"] = groups["fit"].arrays["ais_seconds"]

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
                        n_info=post.n_info, **arrays.get("ais", {}), seed=seed, definitions=catalogue.definitions())
    report = {
        "run": run,
        "metrics": metrics,
        "not_applicable": not_applicable,
        "per_dimension": {"kl": post.kl_per_dim, "location_variance": post.variance,
                          "used_ratio": post.used_ratio, "kurtosis": arrays["kurtosis"],
                          "mi_label": arrays["mi_label"], "rate": arrays["rate"],
                          "label_info": arrays["label_info"]},
        # S(t): summed label_info of the dims with rate > t (nats) over thresholds t: the figure of the
        # threshold-free summaries (label_info_auc is its mean); null without labels
        "curves": {"label_info_above_rate": arrays.get("label_info_curve")},
        "settings": settings_out,
    }
    latents = {"loc": post.loc.astype(np.float32), "scale": post.scale.astype(np.float32)}
    if dataset.y_test is not None:
        latents["labels"] = np.asarray(dataset.y_test)
    return Analysis(report=report, run=run, latents=latents, posterior=post, arrays=arrays, timings=timings)
