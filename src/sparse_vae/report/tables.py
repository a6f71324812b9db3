"""The report's tables: one row per run (metrics.csv), the summary over seeds with Student-t
intervals (summary.csv), and how numbers are shown in text.

Metric columns, their order and units come from ``sparse_vae.catalogue``; the intervals from
``statistics`` (the one home of the report's statistics). Not here: verdicts, figures, HTML.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.runs import Run, Study, number
from sparse_vae.report.statistics import t_interval

__all__ = [
    "ID_COLUMNS", "SUMMARY_COLUMNS", "TIMING_COLUMNS", "TRAIN_COLUMNS", "fmt", "fmt_p", "fmt_sd", "metric_columns",
    "metrics_table", "order", "summarize",
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


def fmt_p(p: Any) -> str:
    """A p-value for text: two significant figures, "< 0.0001" below that (a p of 1e-30 from seeds
    that differ by a constant says no more than 1e-4 does)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "< 0.0001" if float(p) < 1e-4 else f"{float(p):.2g}"


def fmt_sd(sd: float, mean: float) -> str:
    """An sd for display: float noise around zero (identical seeds) shows as 0."""
    if not math.isnan(sd) and abs(sd) <= 1e-9 * max(1.0, abs(mean)):
        return "0"
    return fmt(sd, 2)
