"""The report's statistics, in one place: intervals over seeds, paired comparisons of two priors,
Holm's correction, equivalence margins and the minimal detectable effect.

Runs are paired by seed: seed s of prior A and seed s of prior B share batch order, validation split
and the initial weights of every shared-shape layer (common random numbers), so a comparison uses
the per-seed differences d_s = a_s - b_s on the seeds both priors have (``paired``). Each difference
is tested with an exact sign-flip permutation test (all 2^n sign patterns, scipy's
``permutation_test``), or with a paired t-test where the permutation test's smallest possible
p-value, 2 / 2^n, cannot reach the level the family needs (``choose_test``); the interval of the mean
difference is the paired t interval. The p-values of one family (the comparisons that make up one
conclusion on one dataset x latent) are adjusted by Holm's step-down method (``holm``). A comparison
then reads (``decide``): a direction when its adjusted p-value is at most alpha; "no difference"
when, not rejected, its interval lies within the metric's equivalence margin (catalogue ``margin``,
TOST-style: both one-sided tests at alpha / 2 reject); "inconclusive" otherwise. The minimal
detectable effect and the power are those of the test actually run, at the family's strictest Holm
level and the observed spread: for the sign-flip test by simulating it (``sign_flip_power``,
``sign_flip_mde``: Normal differences, the exact enumeration itself), for the paired t by the
noncentral t (``mde``, ``t_power``). A metric the catalogue compares on a log scale (``Metric.scale``,
e.g. MSE) is compared as log ratios a_s / b_s, its margin a relative one. Not here: the words a
verdict uses (``verdicts``).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sparse_vae import catalogue

__all__ = ["EXACT_MAX_PAIRS", "POWER", "POWER_DRAWS", "Paired", "choose_test", "compare_family", "comparison_unit",
           "decide", "holm", "mde", "mde_of_test", "paired", "paired_t_p", "power_of_test", "resolution",
           "sign_flip_mde", "sign_flip_p", "sign_flip_power", "t_interval", "t_power"]

#: up to this many pairs the sign-flip test enumerates all 2^n patterns; beyond, 2^16 random flips.
EXACT_MAX_PAIRS = 16
#: the power at which the minimal detectable effect is stated.
POWER = 0.8
#: simulated samples of the sign-flip test's power (the same standard normal draws for every effect:
#: common random numbers make power increase smoothly with the effect; Monte Carlo sd ~0.006 at 0.8).
POWER_DRAWS = 4000
#: up to this many pairs the power simulation enumerates every sign pattern, as the test does; beyond,
#: it uses this many 2^k patterns drawn at random (the identity among them), a Monte Carlo version of
#: the same test whose power differs from the exact one's by far less than its own simulation error.
POWER_EXACT_MAX = 12


def resolution(value: float, metric: str | None = None) -> float:
    """The resolution a value is known to: 1 for a count metric (catalogue unit "... (count)"),
    else one unit in the 4th significant digit (how numbers are shown; 1e-12 for an exact 0)."""
    if metric is not None and catalogue.unit(metric).endswith("(count)"):
        return 1.0
    if value == 0:
        return 1e-12
    return 10.0 ** (math.floor(math.log10(abs(value))) - 3)


def t_interval(values: Iterable[float], confidence: float,
               metric: str | None = None) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, ci_low, ci_high) of the non-null values: Student-t interval for the mean.

    sd uses ddof = 1; with fewer than two values sd and the interval are NaN (unknown, not zero).
    Never zero-width: when every value is identical the interval is the value's rounding interval,
    value +- resolution / 2, so seeds that agree exactly still say how well the value is known."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return n, mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    if np.all(x == x[0]):
        half = resolution(float(x[0]), metric) / 2.0
        return n, mean, 0.0, mean - half, mean + half
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return n, mean, sd, mean - half, mean + half


def paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, list[int], list[int]]:
    """(a_s - b_s on the seeds both have, in seed order; seeds only a has; seeds only b has).

    Both series are indexed by seed; nulls count as missing. A seed one prior lacks cannot be
    paired, so it is left out (and the report says which)."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    common = sorted(set(a.index) & set(b.index))
    d = (a[common].to_numpy() - b[common].to_numpy()) if common else np.zeros(0)
    return d, sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index))


def sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p-value of mean(d) = 0 by flipping the signs of the differences: exact (all 2^n
    patterns) up to EXACT_MAX_PAIRS pairs, else 2^16 random patterns (seeded, so reproducible)."""
    d = np.asarray(d, dtype=float)
    if not np.any(d):
        return 1.0
    exact = d.size <= EXACT_MAX_PAIRS
    result = stats.permutation_test(
        (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=np.inf if exact else 2 ** 16, alternative="two-sided", rng=np.random.default_rng(0))
    return float(result.pvalue)


def paired_t_p(d: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test; 0 when every pair differs by the same non-zero amount
    (no spread: the difference is certain), 1 when every difference is 0."""
    d = np.asarray(d, dtype=float)
    if np.all(d == d[0]):
        return 0.0 if d[0] != 0 else 1.0
    with warnings.catch_warnings():  # nearly identical differences: scipy warns, the p-value is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_1samp(d, 0.0).pvalue)


def choose_test(n: int, level: float) -> str:
    """"sign-flip" when the exact test can reach `level` (its smallest p, 2 / 2^n, is at most it),
    else "paired t": with few pairs a permutation test could never reject, whatever the data."""
    return "sign-flip" if 2.0 / 2.0 ** n <= level else "paired t"


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: the i-th smallest of m is multiplied by (m - i + 1), made
    monotone by a running maximum and capped at 1. NaN p-values (no test) stay NaN, not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def mde(sd: float, n: int, level: float, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t-test at `level` detects with `power`,
    for n pairs whose differences have standard deviation sd (noncentral t); NaN below 2 pairs."""
    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df = n - 1
    crit = stats.t.ppf(1 - level / 2, df)

    def shortfall(nc: float) -> float:  # the far (wrong-sign) tail is negligible; scipy gives NaN there
        return stats.nct.sf(crit, df, nc) + np.nan_to_num(stats.nct.cdf(-crit, df, nc)) - power

    lo, hi = 0.0, 1.0
    while shortfall(hi) < 0:  # widen the bracket by doubling (nct is NaN far out at few df)
        lo, hi = hi, 2 * hi
    nc = optimize.brentq(shortfall, lo, hi)
    return float(nc * sd / math.sqrt(n))


def t_power(effect_sd: float, n: int, level: float) -> float:
    """Power of the two-sided paired t-test at `level` for n pairs whose mean difference is
    `effect_sd` standard deviations (noncentral t); NaN below 2 pairs."""
    if n < 2:
        return math.nan
    df, nc = n - 1, abs(effect_sd) * math.sqrt(n)
    crit = stats.t.ppf(1 - level / 2, df)
    return float(stats.nct.sf(crit, df, nc) + np.nan_to_num(stats.nct.cdf(-crit, df, nc)))


@lru_cache(maxsize=None)
def _sign_patterns(n: int) -> np.ndarray:
    """(P, n) sign patterns of the simulated test: all 2^n, or 2^POWER_EXACT_MAX drawn at random."""
    if n <= POWER_EXACT_MAX:
        return np.array(np.meshgrid(*[[-1.0, 1.0]] * n, indexing="ij")).reshape(n, -1).T
    rng = np.random.default_rng(n)
    signs = rng.choice([-1.0, 1.0], size=(2 ** POWER_EXACT_MAX, n))
    signs[0] = 1.0  # the observed pattern is always one of them, so p >= 1 / P as in the exact test
    return signs


@lru_cache(maxsize=None)
def _standard_draws(n: int, draws: int) -> np.ndarray:
    return np.random.default_rng(1000 + n).standard_normal((draws, n))


@lru_cache(maxsize=4096)
def sign_flip_power(effect_sd: float, n: int, level: float, draws: int = POWER_DRAWS) -> float:
    """Power of the two-sided sign-flip test (``sign_flip_p``) at `level` for n pairs whose differences
    are Normal with mean `effect_sd` standard deviations, by simulation: the share of simulated
    studies whose p-value (the share of sign patterns with |sum| at least the observed) is <= level.
    Exactly 0 when the smallest attainable p, 2 / 2^n, exceeds the level: no data can reject."""
    if n < 2:
        return math.nan
    if 2.0 / 2.0 ** n > level:
        return 0.0
    signs = _sign_patterns(n)
    rejected = 0
    for z in np.array_split(_standard_draws(n, draws) + abs(effect_sd), max(1, draws // 500)):
        observed = np.abs(z.sum(axis=1))
        null = np.abs(z @ signs.T)
        p = np.mean(null >= observed[:, None] * (1 - 1e-12), axis=1)
        rejected += int(np.sum(p <= level))
    return rejected / draws


@lru_cache(maxsize=None)
def sign_flip_mde(n: int, level: float, power: float = POWER, draws: int = POWER_DRAWS) -> float:
    """The smallest mean difference, in standard deviations of the differences, that the sign-flip
    test at `level` with n pairs detects with `power` (``sign_flip_power``, bisection to 0.1% of the
    effect); inf when it cannot be reached (too few pairs for the level), NaN below 2 pairs."""
    if n < 2:
        return math.nan
    if sign_flip_power(1e3, n, level, draws) < power:
        return math.inf
    lo, hi = 0.0, 1.0
    while sign_flip_power(hi, n, level, draws) < power:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sign_flip_power(mid, n, level, draws) < power else (lo, mid)
    return hi


def mde_of_test(test: str, sd: float, n: int, level: float, power: float = POWER) -> float:
    """The minimal detectable effect of the test actually run (``choose_test``), in the data's units."""
    if n < 2 or math.isnan(sd):
        return math.nan
    if test != "sign-flip":
        return mde(sd, n, level, power)
    return 0.0 if sd == 0 else float(sign_flip_mde(n, level, power) * sd)


def power_of_test(test: str, effect: float | None, sd: float, n: int, level: float) -> float:
    """The power of the test actually run to detect a true difference `effect` (e.g. the margin) at
    the observed spread sd; NaN without an effect, below 2 pairs or without spread."""
    if effect is None or n < 2 or math.isnan(sd) or sd == 0:
        return math.nan
    effect_sd = abs(effect / sd)
    if test != "sign-flip":
        return t_power(effect_sd, n, level)
    grid, curve = _power_curve(n, level)
    return float(np.interp(effect_sd, grid, curve))  # beyond the grid's end: its last value (~1)


#: effects (in sd of the differences) at which ``_power_curve`` simulates the sign-flip test's power.
POWER_GRID = np.round(np.arange(0.0, 6.05, 0.1), 2)


@lru_cache(maxsize=None)
def _power_curve(n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The sign-flip test's simulated power on POWER_GRID, once per (pairs, level): a comparison's
    power at its margin is read off it by linear interpolation (power is smooth in the effect under
    common random numbers), so the cost does not grow with the number of comparisons."""
    return POWER_GRID, np.array([sign_flip_power(float(x), n, level) for x in POWER_GRID])


@dataclass(frozen=True)
class Paired:
    """One paired comparison, a - b over the seeds both have, inside its family."""

    metric: str
    a: str
    b: str
    n: int  # pairs
    unpaired: str  # seeds left out because one prior lacks them ("" when none)
    mean: float  # mean of the paired differences a - b
    sd: float
    lo: float  # interval of the mean difference (paired t)
    hi: float
    test: str  # "sign-flip" or "paired t" ("" below 2 pairs)
    p: float
    p_adj: float  # Holm-adjusted within the family
    family: int  # number of comparisons in the family
    level: float  # alpha / family: Holm's strictest step, the level the test choice and MDE use
    mde: float  # minimal detectable effect (POWER) of the test run, at alpha / family
    margin: float | None  # the metric's equivalence margin (catalogue), on the comparison's scale
    wins: int  # pairs with a > b
    power: float = math.nan  # the test's power to detect a difference of one margin at the observed spread


def _interval(d: np.ndarray, confidence: float, a0: float, b0: float, metric: str) -> tuple[float, float]:
    """Paired t interval of mean(d); pairs that all differ by the same amount get the rounding
    interval of the two values (``resolution``) instead of a zero-width one."""
    if np.all(d == d[0]):
        half = (resolution(a0, metric) + resolution(b0, metric)) / 2
        return float(d[0]) - half, float(d[0]) + half
    with warnings.catch_warnings():  # nearly identical pairs: scipy warns, the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def compare_family(items: Sequence[tuple[str, str, str, pd.Series, pd.Series]], confidence: float) -> list[Paired]:
    """Paired comparisons (metric, name_a, name_b, values_a, values_b; values indexed by seed) that form
    one family: each tested on its paired differences, the p-values Holm-adjusted together."""
    alpha, m = 1.0 - confidence, max(1, len(items))
    rows = []
    for metric, name_a, name_b, va, vb in items:
        va, vb = _on_scale(metric, va), _on_scale(metric, vb)
        d, only_a, only_b = paired(va, vb)
        n = int(d.size)
        left = [f"seed {', '.join(map(str, s))} of {who} only" for s, who in ((only_a, name_a), (only_b, name_b)) if s]
        if n < 2:
            rows.append(dict(metric=metric, a=name_a, b=name_b, n=n, unpaired="; ".join(left),
                             mean=float(d.mean()) if n else math.nan, sd=math.nan, lo=math.nan, hi=math.nan,
                             test="", p=math.nan, wins=int((d > 0).sum())))
            continue
        test = choose_test(n, alpha / m)
        a0, b0 = float(va.dropna().iloc[0]), float(vb.dropna().iloc[0])
        lo, hi = _interval(d, confidence, a0, b0, metric)
        p = sign_flip_p(d) if test == "sign-flip" else paired_t_p(d)
        rows.append(dict(metric=metric, a=name_a, b=name_b, n=n, unpaired="; ".join(left), mean=float(d.mean()),
                         sd=float(d.std(ddof=1)), lo=lo, hi=hi, test=test, p=p, wins=int((d > 0).sum())))
    adjusted = holm([r["p"] for r in rows])
    return [Paired(**r, p_adj=float(q), family=m, level=alpha / m,
                   mde=mde_of_test(r["test"], r["sd"], r["n"], alpha / m), margin=_margin(r["metric"]),
                   power=power_of_test(r["test"], _margin(r["metric"]), r["sd"], r["n"], alpha / m))
            for r, q in zip(rows, adjusted)]


def _margin(metric: str) -> float | None:
    return catalogue.margin_of(metric)[0]


def _scale(metric: str) -> str:
    try:
        return catalogue.metric(metric).scale
    except KeyError:
        return ""


def _on_scale(metric: str, values: pd.Series) -> pd.Series:
    """The values a comparison reads: their logs for a log-scale metric (a non-positive value is an
    error naming the metric: a log ratio of it means nothing), else as they are."""
    if _scale(metric) != "log":
        return values
    v = pd.to_numeric(values, errors="coerce").astype(float)
    if (v.dropna() <= 0).any():
        raise ValueError(f"{metric}: compared on a log scale but has a value <= 0 ({v[v <= 0].tolist()})")
    return np.log(v)


def comparison_unit(metric: str) -> str:
    """The unit of a comparison's difference: the metric's, or "log ratio" on a log scale."""
    return "log ratio" if _scale(metric) == "log" else catalogue.unit(metric)


def decide(c: Paired, confidence: float) -> str:
    """"a higher" / "b higher" when the Holm-adjusted test rejects at alpha = 1 - confidence; "no
    difference" when it does not and the interval lies within ±margin; "inconclusive" otherwise
    (interval too wide for the margin, or the metric has none); "no interval" below 2 pairs."""
    if c.n < 2 or math.isnan(c.p_adj):
        return "no interval"
    if c.p_adj <= 1.0 - confidence and c.mean != 0:
        return "a higher" if c.mean > 0 else "b higher"
    if c.margin is not None and -c.margin <= c.lo and c.hi <= c.margin:
        return "no difference"
    return "inconclusive"
