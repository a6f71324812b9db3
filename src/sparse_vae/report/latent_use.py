"""Conclusion 4 as counts out of n: "laplace uses one dimension in k of n seeds; normal in m of n".

With a 2-D latent each run either uses exactly one dimension (rate > catalogue.USED_RATE_NATS in one of the two:
``used_dims_2d`` == 1) or not. Runs are paired by seed, so the claim "laplace uses one dimension more
often than normal" is tested on the paired indicators by the exact McNemar test (a two-sided
binomial test of the discordant seeds, scipy ``binomtest``; it is the sign-flip test of the
indicator differences); the difference of the two shares has a simultaneous interval from two
Clopper-Pearson intervals at 1 - alpha/2 each (exact coverage >= 1 - alpha). Runs whose held-out
likelihood says they failed to fit (``collapsed_runs``, a criterion that reads no dimension count)
are reported beside the counts, with the counts without them, but are not removed: on a data set
where one dimension cannot explain the data, using one costs likelihood, so removing "collapsed"
runs would remove the very runs the claim is about (the circularity of issue 34).
Not here: the other claims (``conclusions``), the statistics (``statistics``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from sparse_vae import catalogue
from sparse_vae.report.evidence import Evidence
from sparse_vae.report.statistics import Paired
from sparse_vae.report.tables import fmt
from sparse_vae.report.verdicts import classify, claim_outcome, note

__all__ = ["COLLAPSE_NATS", "ONE_DIM_MARGIN", "collapsed_runs", "one_dim_comparison", "one_dimension"]

#: nats/example below the best prior's held-out likelihood at which a run counts as collapsed: above
#: the 1-2 nats by which a posterior family's inference gap alone moves a VAE's bound (Burda et al.'s
#: VAE against IWAE on MNIST), so a prior-posterior mismatch is not read as a failure to fit. Set
#: before any run of the study was looked at.
COLLAPSE_NATS = 2.0
#: the smallest difference of interest in the share of seeds using one dimension, fixed a priori: "a
#: tendency" is one run in four more (or fewer) using one dimension.
ONE_DIM_MARGIN = 0.25
#: what the indicator comparison's difference is measured in.
UNIT = "fraction of seeds"
TEST = "exact McNemar test (two-sided binomial test of the discordant paired seeds)"


def collapsed_runs(ev: Evidence, dataset: str, latent: int) -> tuple[str | None, dict[str, list[int]]]:
    """The likelihood metric and, per prior, the seeds whose run COLLAPSED: its held-out likelihood
    is more than ``COLLAPSE_NATS`` below the best prior's at that seed."""
    present = sorted(ev.priors(dataset, latent))
    metric = ev.likelihood_metric(dataset, latent, present)
    if metric is None:
        return None, {}
    table = pd.DataFrame({p: ev.stat(dataset, latent, p, metric).values for p in present})
    best = table.max(axis=1)
    collapsed = {p: [int(s) for s in table.index if pd.notna(table.at[s, p]) and table.at[s, p] < best[s] - COLLAPSE_NATS]
                 for p in present}
    return metric, {p: seeds for p, seeds in collapsed.items() if seeds}


def _clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence, method="exact")
    return float(ci.low), float(ci.high)


def one_dim_comparison(a: pd.Series, b: pd.Series, confidence: float, names=("laplace", "normal")) -> Paired:
    """The paired comparison of the indicators a_s == 1 and b_s == 1 (series of dims used, by seed):
    mean = share(a) - share(b) on the paired seeds, the exact McNemar p-value, the simultaneous
    Clopper-Pearson interval, and as MDE the smallest difference the test can reject at all (k/n with
    k the fewest discordant seeds, all one way, whose p 2^(1-k) reaches alpha; inf when k > n)."""
    a, b = a.dropna(), b.dropna()
    common = sorted(set(a.index) & set(b.index))
    left = "; ".join(f"seed {', '.join(map(str, s))} of {who} only" for s, who in
                     ((sorted(set(a.index) - set(common)), names[0]), (sorted(set(b.index) - set(common)), names[1])) if s)
    x, y = (a[common] == 1).to_numpy(), (b[common] == 1).to_numpy()
    n, alpha = len(common), 1.0 - confidence
    only_a, only_b = int(np.sum(x & ~y)), int(np.sum(~x & y))
    p = float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    if n:
        lo_a, hi_a = _clopper_pearson(only_a, n, 1 - alpha / 2)
        lo_b, hi_b = _clopper_pearson(only_b, n, 1 - alpha / 2)
        lo, hi = lo_a - hi_b, hi_a - lo_b
    else:
        lo = hi = math.nan
    k_min = math.ceil(1 - math.log2(alpha))  # 2 * 0.5^k <= alpha
    d = x.astype(float) - y.astype(float)
    return Paired(metric="used_dims_2d", a=names[0], b=names[1], n=n, unpaired=left,
                  mean=float(d.mean()) if n else math.nan, sd=float(d.std(ddof=1)) if n > 1 else math.nan,
                  lo=lo, hi=hi, test=TEST if n >= 2 else "", p=p if n >= 2 else math.nan,
                  p_adj=p if n >= 2 else math.nan, family=1, level=alpha,
                  mde=k_min / n if n and k_min <= n else math.inf, margin=ONE_DIM_MARGIN, wins=only_a)


def _count(values: pd.Series) -> tuple[int, int]:
    return int((values == 1).sum()), int(values.size)


def _collapse_text(metric: str | None, collapsed: dict[str, list[int]], stats_: dict[str, pd.Series]) -> str:
    if metric is None:
        return " Collapse not checked: no held-out likelihood common to every prior's runs."
    rule = f"held-out {catalogue.label(metric)} more than {COLLAPSE_NATS:g} nats below the best prior's at that seed"
    if not collapsed:
        return f" No collapsed run ({rule})."
    runs = "; ".join(f"{p} seeds {', '.join(map(str, s))}" for p, s in collapsed.items())
    without = ", ".join(f"{p} {k}/{n}" for p, (k, n) in
                        ((p, _count(v.drop(collapsed.get(p, []), errors="ignore"))) for p, v in stats_.items()))
    return (f" Collapsed runs ({rule}; reported, not removed, since using one dimension can itself cost the "
            f"likelihood): {runs}. Without them, one dimension in: {without} seeds.")


def one_dimension(ev: Evidence) -> None:
    """Conclusion 4 on every 2-D group: counts out of n and the exact paired test (module docstring)."""
    two_d = [(d, z) for d, z in ev.groups() if z == 2]
    if not two_d:
        latents = sorted(set(ev.df["latent"]))
        ev.add("4", "", 2, "used_dims_2d", "not tested", "",
               f"Not tested: no runs with latent = 2 in the study (latent sizes: {', '.join(map(str, latents))}).")
        return
    for dataset, latent in two_d:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["used_dims_2d"])
        if why:
            ev.add("4", dataset, latent, "used_dims_2d", "not tested", "", f"Not tested: {why}.")
            continue
        values = {p: ev.stat(dataset, latent, p, "used_dims_2d").values for p in ("laplace", "normal", "cauchy")}
        c = one_dim_comparison(values["laplace"], values["normal"], ev.confidence)
        outcome = claim_outcome(c, ev.confidence)
        (k, n_l), (m, n_n) = _count(values["laplace"]), _count(values["normal"])
        evidence = f"laplace uses one dimension in {k} of {n_l} seeds; normal in {m} of {n_n}"
        if values["cauchy"].size:
            evidence += "; cauchy in {} of {}".format(*_count(values["cauchy"]))
        evidence += (f". Paired seeds {c.n}: laplace only {c.wins}, normal only "
                     f"{int(round(c.wins - c.mean * c.n)) if c.n else 0}; {TEST} p {fmt(c.p, 2)}; difference of "
                     f"the shares Δ {fmt(c.mean, 3)} [{fmt(c.lo, 3)}, {fmt(c.hi, 3)}] ({ev.pct} simultaneous "
                     f"Clopper-Pearson), margin ±{ONE_DIM_MARGIN:g}: {outcome}."
                     + (f" Left out: {c.unpaired}." if c.unpaired else ""))
        metric, collapsed = collapsed_runs(ev, dataset, latent)
        evidence += _collapse_text(metric, collapsed, {p: values[p] for p in ("laplace", "normal")})
        verdict = classify([outcome])
        result = {"metric": "used_dims_2d", "outcomes": [outcome], "comparisons": [c],
                  "claims": ["laplace one dim more often than normal"], "unit": UNIT}
        ev.add("4", dataset, latent, "used_dims_2d", verdict, f"laplace {k}/{n_l}, normal {m}/{n_n}",
               evidence + note(ev.pct, verdict, [outcome]), results=[result],
               test=f"{TEST} on {c.n} paired seeds; simultaneous Clopper-Pearson interval" if c.n >= 2 else "")
