"""The labels group of ``analysis.compute`` (catalogue group "labels") and the sampled code it
shares with the sparsity group: one draw z ~ q(z|x) per example, so the informativeness and the
sparsity claims read the same code.

Every probe and the kNN MI see rank-transformed dimensions (``analysis.ranks``); the label
information is ``analysis.information``'s, summarised over the used dims (label_info_mean / max,
conventional) and without any used threshold (total, top-k, the curve over rate thresholds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparse_vae.analysis import information as info
from sparse_vae.analysis import metrics as M
from sparse_vae.analysis.posterior import Group, Posterior, no_used_dims
from sparse_vae.analysis.seeds import step_seed
from sparse_vae.data.io import Dataset

__all__ = ["LABEL_METRICS", "THRESHOLD_FREE", "label_information", "labels", "sampled_code"]

#: the label-information summaries with no "used" threshold (analysis.information.label_summaries).
THRESHOLD_FREE = ("label_info_total", *(f"label_info_top{k}" for k in info.TOP_K), "label_info_auc")


def sampled_code(post: Posterior) -> np.ndarray:
    """One draw z ~ q(z|x) of each of the first n_eval examples, the same for every metric reading it."""
    return info.sample_codes(post.loc[:post.n_eval], post.scale[:post.n_eval], post.posterior_family,
                             seed=step_seed(post.seed, "probe"))


def labels(model: Any, post: Posterior, dataset: Dataset) -> Group:
    """Label information of the sampled code (per used dim and threshold-free), the linear and the
    additive probe on the sampled code and (conventional) the linear probe on the posterior
    locations, on the first n_eval examples; every probe and the kNN MI on rank-transformed dims."""
    group = Group(arrays={"mi_label": None, "label_info": post.information.label_info})
    if dataset.y_test is None:
        group.skip(*LABEL_METRICS, "the dataset has no labels")
        return group
    label_information(post, group)
    codes, y, sampled = post.loc[:post.n_eval], np.asarray(dataset.y_test)[:post.n_eval], sampled_code(post)
    folds = int(post.settings["probe_folds"])
    try:
        accuracy, chance = M.linear_probe(codes, y, folds)
        best, _ = M.best_single_dim_probe(codes, y, folds)
        group.metrics.update(probe_accuracy=accuracy, probe_chance=chance, probe_accuracy_best_dim=best,
                             probe_accuracy_sampled=M.linear_probe(sampled, y, folds)[0],
                             probe_accuracy_sampled_additive=M.additive_probe(sampled, y, folds)[0])
    except M.NotApplicable as reason:
        group.skip("probe_accuracy", "probe_chance", "probe_accuracy_best_dim", "probe_accuracy_sampled",
                   "probe_accuracy_sampled_additive", str(reason))
    if len(np.unique(y)) >= 2:
        mi_label = M.mutual_information(codes, y)
        group.arrays["mi_label"] = mi_label
        group.metrics["mi_label_max"] = float(mi_label.max())
    else:
        group.skip("mi_label_max", "the evaluated test labels hold a single class")
    return group


#: every metric of the labels group (all null without labels).
LABEL_METRICS = ("probe_accuracy", "probe_chance", "probe_accuracy_best_dim", "mi_label_max", "probe_accuracy_sampled",
                 "probe_accuracy_sampled_additive", "label_info_mean", "label_info_max", *THRESHOLD_FREE)


def label_information(post: Posterior, group: Group) -> None:
    """I(y; z_d) of the sampled code (analysis.information): mean and max over the used dims, and
    the summaries that need no used threshold (total, top-k, the curve over thresholds)."""
    label_info = post.information.label_info
    if label_info is None:
        group.skip("label_info_mean", "label_info_max", *THRESHOLD_FREE, post.label_info_reason)
        return
    group.arrays["label_info_curve"] = {"threshold_nats": list(info.CURVE_THRESHOLDS),
                                        "label_info_nats": info.label_info_curve(label_info, post.information.rate)}
    for name, value in info.label_summaries(label_info, post.information.rate).items():
        if value is None:
            group.skip(name, f"the latent space has fewer than {name.removeprefix('label_info_top')} dimensions")
        else:
            group.metrics[name] = value
    if not post.used.any():
        group.skip("label_info_mean", "label_info_max", no_used_dims(post))
    else:
        group.metrics["label_info_mean"] = float(label_info[post.used].mean())
        group.metrics["label_info_max"] = float(label_info[post.used].max())
