"""The pairwise answers (pairwise.csv): for each question a reader brings (reconstruction,
likelihood, sparsity, informativeness, latent use), each dataset x latent and each pair of prior
entries, which one is better, by how much, with the Welch t-interval of the difference (``tables.welch_interval``,
the same test the verdicts use) and the
per-seed count.

Pairs come from the entries present: every two entries, the sparser family first (laplace, then
cauchy, then normal; entries of one family in study order), so laplace vs normal, cauchy vs normal,
laplace vs cauchy, and e.g. cauchy_gauss vs normal. Not here: the verdicts (``verdicts``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.tables import order, separation, welch_interval
from sparse_vae.report.controls import CONTROL_SOURCES, METRIC_CONTROLS

__all__ = ["PAIRWISE_COLUMNS", "QUESTIONS", "pairwise_table"]

#: (question, metric), in report order; the better direction comes from the catalogue.
QUESTIONS = (
    ("reconstruction", "mse"), ("likelihood", "ais_log_lik"), ("likelihood", "iwae_log_lik"),
    ("sparsity", "active_at_once"), ("sparsity", "hoyer_excess"), ("sparsity", "hoyer"),
    ("sparsity", "frac_near_zero"), ("informativeness", "label_info_mean"),
    ("informativeness", "probe_accuracy_sampled"), ("informativeness", "probe_accuracy"),
    ("informativeness", "template_matched_cos"), ("latent use", "used_dims"), ("latent use", "used_units"),
    ("dims used in 2-D", "used_dims_2d"), ("dims used in 2-D", "dims_used_2d"),
)
PAIRWISE_COLUMNS = ["question", "dataset", "latent", "metric", "better", "prior_a", "prior_b", "n_a", "n_b",
                    "mean_a", "mean_b", "difference", "ci_low", "ci_high", "outcome", "seeds_a_better"]
_FAMILY_RANK = {"laplace": 0, "cauchy": 1, "normal": 2}


def _pairs(priors: Sequence[str], families: Mapping[str, str], study_priors: Sequence[str]) -> list[tuple[str, str]]:
    ranked = sorted(order(priors, study_priors),
                    key=lambda p: (_FAMILY_RANK.get(families.get(p, p), 3), list(order(priors, study_priors)).index(p)))
    return list(combinations(ranked, 2))


def _outcome(lo: float, hi: float, better: str) -> str:
    side = separation(lo, hi)
    if side in ("overlap", "no interval") or not better:
        return side
    return "a better" if (side == "a higher") == (better == "higher") else "b better"


def _row(df: pd.DataFrame, question: str, metric: str, a: str, b: str, confidence: float,
         control_failed: bool) -> dict:
    values = {p: df[df["prior"] == p].set_index("seed")[metric].dropna().astype(float) for p in (a, b)}
    va, vb = values[a], values[b]
    better = catalogue.metric(metric).better
    row = {"question": question, "metric": metric, "better": better or "(no direction)", "prior_a": a,
           "prior_b": b, "n_a": len(va), "n_b": len(vb), "mean_a": va.mean() if len(va) else math.nan,
           "mean_b": vb.mean() if len(vb) else math.nan}
    row["difference"] = row["mean_a"] - row["mean_b"]
    lo = hi = math.nan
    if len(va) >= 2 and len(vb) >= 2:
        lo, hi = welch_interval(va.to_numpy(), vb.to_numpy(), confidence, metric)
    row.update(ci_low=lo, ci_high=hi, outcome="control failed" if control_failed else _outcome(lo, hi, better))
    common = va.index.intersection(vb.index)
    sign = -1.0 if better == "lower" else 1.0
    wins = int((sign * (va[common] - vb[common]) > 0).sum())
    row["seeds_a_better"] = f"{wins}/{len(common)}"
    return row


def pairwise_table(df: pd.DataFrame, confidence: float, families: Mapping[str, str], sources: Mapping[str, str],
                   study_priors: Sequence[str], controls: Mapping[str, bool | None]) -> pd.DataFrame:
    """One row per question x dataset x latent x pair of entries with values (PAIRWISE_COLUMNS).

    ``families`` maps entry name -> prior family; ``controls`` maps control name -> passed; a metric
    whose control failed gets outcome "control failed". Control datasets are left out.
    """
    rows = []
    for (dataset, latent), group in df.groupby(["dataset", "latent"], sort=False):
        if sources.get(dataset) in CONTROL_SOURCES:
            continue
        pairs = _pairs(list(group["prior"].unique()), families, study_priors)
        for question, metric in QUESTIONS:
            if metric not in group.columns or group[metric].notna().sum() == 0:
                continue
            failed = controls.get(METRIC_CONTROLS.get(metric, ""), None) is False
            for a, b in pairs:
                rows.append(dict(_row(group, question, metric, a, b, confidence, failed),
                                 dataset=dataset, latent=int(latent)))
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)
