"""The two metric groups that read the decoder against known structure: ``decoder`` (how localised
the used dimensions' receptive fields are; Gabor / centre-surround fits of the linear decoder's used
columns on natural-image patches; opposite-sign centre-surround fits of the decoder and encoder
fields on unwhitened patches, ``sensitivity``) and ``ground_truth`` (recovery of the true templates and weights on
synthetic and positive-control data, with the FastICA reference).

Each is a ``catalogue.GROUPS`` entry called by ``analysis.compute``. Not here: the other groups and the
orchestration (``compute``), the shared pass (``posterior``), the maths (``metrics``, ``recovery``,
``fields``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparse_vae.analysis import metrics as M
from sparse_vae.analysis import recovery as R
from sparse_vae.analysis.display import display_direction
from sparse_vae.analysis.fields import summarize_fields
from sparse_vae.analysis.posterior import Group, Posterior, no_used_dims
from sparse_vae.analysis.sensitivity import retina_fields
from sparse_vae.data.io import Dataset

__all__ = ["CONTROL_SOURCES", "FIELD_METRICS", "NATURAL_IMAGE_SOURCES", "decoder", "field_fits", "ground_truth",
           "is_synthetic"]

#: sources whose datasets are the positive control (x = W z + noise with known W).
CONTROL_SOURCES = ("sparse_linear",)
#: sources of grey natural-image patches, whose linear-decoder columns get the literature's field fits.
NATURAL_IMAGE_SOURCES = ("natural", "cifar")
FIELD_METRICS = ("rf_fields_fitted", "rf_gabor_fraction", "rf_dog_fraction", "rf_extended_fraction",
                 "rf_unfitted_fraction", "rf_gabor_r2_median", "rf_gabor_median_freq")


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
    retina_fields(model, post, dataset, group)  # centre-surround fields, unwhitened patches (analysis.sensitivity)
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
        group.skip(*FIELD_METRICS, no_used_dims(post))
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
    corr, best_dim, best_r = R.template_weight_correlation(post.loc, weights)
    group.metrics["template_weight_corr"] = corr
    # for the figures: each dimension's best template, each weight's matched dimension
    direction_cos, direction_template = R.best_abs_cosine(post.directions, templates)
    group.arrays.update(weight_best_dim=best_dim, weight_best_r=best_r, direction_cos=direction_cos,
                        direction_template=direction_template)
    try:
        group.metrics["template_weight_r2"] = R.template_weight_r2(post.loc, weights)
    except M.NotApplicable as reason:
        group.skip("template_weight_r2", str(reason))
    if post.used.any():  # templates beyond the used dims' number are left unmatched (score 0)
        matched_cos, _ = R.matched(R.abs_cosine_matrix(templates, post.directions[post.used]))
        group.metrics["template_matched_cos"] = float(matched_cos.mean())
    else:
        group.skip("template_matched_cos", no_used_dims(post))
    if dataset.metadata.get("source") in CONTROL_SOURCES:
        ica = R.fastica_dictionary(dataset.x_train, len(templates), seed=post.seed)
        group.metrics["ica_matched_cos"] = R.matched_abs_cosine(templates, ica)[0]
    else:
        group.skip("ica_matched_cos", f"FastICA reference only on positive-control data "
                                      f"(source {' or '.join(CONTROL_SOURCES)})")
    return group


def is_synthetic(dataset: Dataset) -> bool:
    """Whether the dataset carries the true templates and weights (synthetic data)."""
    return all(name in dataset.extras for name in ("templates", "weights_test"))
