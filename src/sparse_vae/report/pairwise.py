"""The pairwise answers (pairwise.csv): for each question a reader brings (reconstruction,
likelihood, sparsity, informativeness, latent use), each dataset x latent and each pair of prior
entries, which one is better, by how much, with the same paired statistics the verdicts use
(``statistics.compare_family``): the mean of the per-seed differences a - b with its paired t
interval, the test (exact sign-flip, or paired t where that cannot reach the level), its p-value
Holm-adjusted over the family (the pairs of one metric on one dataset x latent), the minimal
detectable effect and the metric's equivalence margin, and the per-seed count.

Outcome words (``OUTCOMES``): "a better" / "b better" (or "a higher" / "b higher" for a metric with
no better direction) when the adjusted test rejects, "no difference", "inconclusive", "not tested",
"control failed", and "unstable" once a stability rerun disagrees (``stability``). Pairs come from
the entries present: every two entries, the sparser family first (laplace, then cauchy, then normal;
entries of one family in study order). Not here: the verdicts (``verdicts``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.statistics import Paired, compare_family, decide
from sparse_vae.report.tables import order
from sparse_vae.report.verdicts import CONTROL_SOURCES, METRIC_CONTROLS

__all__ = ["OUTCOMES", "PAIRWISE_COLUMNS", "QUESTIONS", "pairwise_table"]

#: (question, metric), in report order; the better direction comes from the catalogue.
QUESTIONS = (
    ("reconstruction", "mse"), ("likelihood", "ais_log_lik"), ("likelihood", "iwae_log_lik"),
    ("sparsity", "active_at_once"), ("sparsity", "hoyer_excess"), ("sparsity", "hoyer"),
    ("sparsity", "frac_near_zero"), ("informativeness", "label_info_total"), ("informativeness", "label_info_top1"),
    ("informativeness", "label_info_auc"), ("informativeness", "label_info_mean"),
    ("informativeness", "probe_accuracy_sampled"), ("informativeness", "probe_accuracy"),
    ("informativeness", "template_matched_cos"), ("latent use", "used_dims"), ("latent use", "used_units"),
    ("dims used in 2-D", "used_dims_2d"), ("dims used in 2-D", "dims_used_2d"),
    ("retina-like fields", "rf_center_surround_fraction"), ("retina-like fields", "rf_enc_center_surround_fraction"),
)
PAIRWISE_COLUMNS = ["question", "dataset", "latent", "metric", "better", "prior_a", "prior_b", "n_a", "n_b",
                    "n_pairs", "mean_a", "mean_b", "difference", "ci_low", "ci_high", "margin", "test", "p_value",
                    "p_adjusted", "family", "mde", "outcome", "seeds_a_better"]
#: every outcome a pairwise row can have.
OUTCOMES = ("a better", "b better", "a higher", "b higher", "no difference", "inconclusive", "not tested",
            "control failed", "unstable")
_FAMILY_RANK = {"laplace": 0, "cauchy": 1, "normal": 2}


def _pairs(priors: Sequence[str], families: Mapping[str, str], study_priors: Sequence[str]) -> list[tuple[str, str]]:
    ranked = sorted(order(priors, study_priors),
                    key=lambda p: (_FAMILY_RANK.get(families.get(p, p), 3), list(order(priors, study_priors)).index(p)))
    return list(combinations(ranked, 2))


def _outcome(c: Paired, better: str, confidence: float) -> str:
    """The pairwise word: a direction in the metric's terms when the adjusted test rejects."""
    side = decide(c, confidence)
    if side == "no interval":
        return "not tested"
    if side not in ("a higher", "b higher") or not better:
        return side
    return "a better" if (side == "a higher") == (better == "higher") else "b better"


def _row(values: dict[str, pd.Series], question: str, c: Paired, confidence: float, failed: bool) -> dict:
    """One pair's row: means over each prior's own seeds, the paired difference over the seeds both have."""
    va, vb = values[c.a], values[c.b]
    better = catalogue.metric(c.metric).better
    sign = -1.0 if better == "lower" else 1.0
    common = va.index.intersection(vb.index)
    wins = int((sign * (va[common] - vb[common]) > 0).sum())
    return {"question": question, "metric": c.metric, "better": better or "(no direction)", "prior_a": c.a,
            "prior_b": c.b, "n_a": len(va), "n_b": len(vb), "n_pairs": c.n,
            "mean_a": va.mean() if len(va) else math.nan, "mean_b": vb.mean() if len(vb) else math.nan,
            "difference": c.mean, "ci_low": c.lo, "ci_high": c.hi, "margin": c.margin, "test": c.test,
            "p_value": c.p, "p_adjusted": c.p_adj, "family": c.family, "mde": c.mde,
            "outcome": "control failed" if failed else _outcome(c, better, confidence),
            "seeds_a_better": f"{wins}/{len(common)}"}


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
            values = {p: group[group["prior"] == p].set_index("seed")[metric].dropna().astype(float)
                      for p in group["prior"].unique()}
            family = compare_family([(metric, a, b, values[a], values[b]) for a, b in pairs], confidence)
            for c in family:
                rows.append(dict(_row(values, question, c, confidence, failed), dataset=dataset, latent=int(latent)))
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)
