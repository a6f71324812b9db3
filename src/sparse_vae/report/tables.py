"""The report's tables: one row per run (metrics.csv), the summary over seeds with Student-t
intervals (summary.csv), and how numbers are shown in text.

Metric columns, their order and units come from ``sparse_vae.catalogue``. Not here: verdicts,
figures, HTML.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sparse_vae import catalogue
from sparse_vae.report.runs import Run, Study, number

__all__ = [
    "ID_COLUMNS", "SUMMARY_COLUMNS", "TIMING_COLUMNS", "TRAIN_COLUMNS", "fmt", "fmt_sd", "metric_columns",
    "metrics_table", "order", "resolution", "separation", "summarize", "t_interval", "welch_interval",
]

ID_COLUMNS = ["dataset", "prior", "latent", "seed", "kl_estimator"]
#: training figures taken from train.json.
TRAIN_COLUMNS = [
    "train_loss_selected", "test_loss_selected", "test_recon_selected", "test_kl_selected", "val_iwae_selected",
    "selected_epoch", "converged", "lr", "train_loss_first_epoch", "val_iwae_first_epoch", "epochs", "duration_s",
    "samples_per_s", "device",
]
#: training figures that differ between otherwise identical runs (written to timings.csv).
TIMING_COLUMNS = ["duration_s", "samples_per_s", "device"]
SUMMARY_COLUMNS = ["dataset", "prior", "latent", "metric", "n_seeds", "n", "mean", "sd", "ci_low",
                   "ci_high", "unit"]


def order(values: Iterable, preferred: Sequence | None) -> list:
    """The distinct values, those of `preferred` first in its order, the rest sorted."""
    values = list(dict.fromkeys(values))
    first = [v for v in (preferred or []) if v in values]
    return first + sorted((v for v in values if v not in first), key=str)


def _train_row(train: dict[str, Any]) -> dict[str, Any]:
    """The training columns of one run, from its train.json (checked by `runs.load_run`): the kept
    (best-validation) epoch's losses, whose weights model.pt holds and the analysis measured."""
    selected, first = train["selected"], train["first_epoch"]
    return {
        "train_loss_selected": number(selected["train_loss"]),
        "test_loss_selected": number(selected["test_loss"]),
        "test_recon_selected": number(selected["test_recon"]),
        "test_kl_selected": number(selected["test_kl"]),
        "val_iwae_selected": number(selected["val_iwae"]),
        "selected_epoch": number(train["selected_epoch"]),
        "converged": bool(train["converged"]),
        "lr": number(train["lr"]),
        "train_loss_first_epoch": number(first["train_loss"]),
        "val_iwae_first_epoch": number(first["val_iwae"]),
        "epochs": number(train["epochs"]),
        "duration_s": number(train["duration_s"]),
        "samples_per_s": number(train["samples_per_s"]),
        "device": str(train["device"]),
    }


def metrics_table(runs: Sequence[Run], study: Study) -> pd.DataFrame:
    """One row per run: ids, every catalogue metric (in catalogue order), training columns, run_dir."""
    metric_cols = list(catalogue.SCALAR_METRICS)
    rows = []
    for run in runs:
        row = {key: run.info[key] for key in ID_COLUMNS}
        row.update((name, number(run.metrics[name])) for name in metric_cols)
        row.update(_train_row(run.train))
        row["run_dir"] = str(run.folder)
        rows.append(row)
    df = pd.DataFrame(rows, columns=ID_COLUMNS + metric_cols + TRAIN_COLUMNS + ["run_dir"])
    for col in metric_cols + TRAIN_COLUMNS[:-1]:
        df[col] = df[col].astype(float)
    df["latent"] = df["latent"].astype(int)
    df["seed"] = df["seed"].astype(int)
    return _sort_runs(df, study)


def _sort_runs(df: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Study order: dataset, then latent, prior and seed."""
    ds = order(df["dataset"], study.datasets)
    pr = order(df["prior"], study.priors)
    key = pd.DataFrame({
        "d": df["dataset"].map({v: i for i, v in enumerate(ds)}),
        "p": df["prior"].map({v: i for i, v in enumerate(pr)}),
        "l": df["latent"], "s": df["seed"],
    })
    return df.loc[key.sort_values(["d", "l", "p", "s"]).index].reset_index(drop=True)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Numeric per-run quantities (metrics and training figures) that the summary aggregates."""
    skip = set(ID_COLUMNS) | {"run_dir", "device"}
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def t_interval(values: Iterable[float], confidence: float,
               metric: str | None = None) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, ci_low, ci_high) of the non-null values: Student-t interval for the mean.

    sd uses ddof = 1; with fewer than two values sd and the interval are NaN (unknown, not zero).
    Never zero-width: when every value is identical (seeds agree exactly, sd 0) the interval is the
    value's rounding interval, value +- resolution / 2 (``resolution``: 1 for a count metric, else one
    unit in the 4th significant digit, how numbers are shown).
    Touching rounding intervals (counts 1 and 2: [0.5, 1.5] and [1.5, 2.5]) count as separated.
    """
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


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float, metric: str | None = None) -> tuple[float, float]:
    """CI of mean(a) - mean(b) by Welch's t: the one test of "separated" in the report (verdicts and
    pairwise answers alike). Seeds that agree exactly within each prior get the sum of the two
    rounding half-widths (``resolution``) instead of a zero-width interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if a.std() == 0 and b.std() == 0:
        half = (resolution(float(a[0]), metric) + resolution(float(b[0]), metric)) / 2
        return diff - half, diff + half
    with warnings.catch_warnings():  # nearly identical seeds: scipy warns, the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def separation(lo: float, hi: float) -> str:
    """Which side of 0 an interval of mean(a) - mean(b) lies: "a higher", "b higher", "overlap", or
    "no interval" (NaN).

    An interval that only touches 0 counts as separated: counts that agree exactly in every seed
    (1 vs 2) give [0, 2], which is a real difference; an interval of exactly [0, 0] cannot occur."""
    if math.isnan(lo) or math.isnan(hi):
        return "no interval"
    if lo < 0 < hi:
        return "overlap"
    return "a higher" if lo >= 0 else "b higher"


def resolution(value: float, metric: str | None = None) -> float:
    """The resolution a value is known to: 1 for a count metric (catalogue unit "... (count)"),
    else one unit in the 4th significant digit (``fmt``'s precision; 1e-12 for an exact 0)."""
    if metric is not None and catalogue.unit(metric).endswith("(count)"):
        return 1.0
    if value == 0:
        return 1e-12
    return 10.0 ** (math.floor(math.log10(abs(value))) - 3)


def summarize(df: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Long table over seeds: one row per dataset x prior x latent x metric with at least one value."""
    rows = []
    cols = metric_columns(df)
    for (dataset, prior, latent), group in df.groupby(["dataset", "prior", "latent"], sort=False):
        for metric in cols:
            n, mean, sd, lo, hi = t_interval(group[metric], confidence, metric)
            if n == 0:
                continue  # all null (not applicable here); metrics.csv keeps the nulls
            rows.append({
                "dataset": dataset, "prior": prior, "latent": int(latent), "metric": metric,
                "n_seeds": int(len(group)), "n": n, "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi,
                "unit": catalogue.unit(metric),
            })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def fmt(x: Any, digits: int = 4) -> str:
    """A number for text: integers plainly, large values with separators, else `digits` figures."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    if abs(x) >= 1e4:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_sd(sd: float, mean: float) -> str:
    """An sd for display: float noise around zero (identical seeds) shows as 0."""
    if not math.isnan(sd) and abs(sd) <= 1e-9 * max(1.0, abs(mean)):
        return "0"
    return fmt(sd, 2)
