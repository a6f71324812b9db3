"""The study report: every run's metrics gathered into tables, figure panels, verdicts on the talk's
four conclusions, and one self-contained HTML page.

``build_report(metrics_paths, study, out_dir)`` (what ``sparse-vae report`` calls) writes, in order,

* ``metrics.csv``  one row per run: dataset, prior, latent, seed, kl_estimator, every scalar of
  ``metrics.json["metrics"]``, and the training figures of ``train.json`` / ``history.csv``;
* ``summary.csv``  tidy long table, one row per dataset x prior x latent x metric: ``n_seeds``
  (runs in the group), ``n`` (non-null values), ``mean``, ``sd`` (ddof = 1), ``ci_low``,
  ``ci_high`` (Student-t interval at ``study["report"]["confidence"]``; NaN with fewer than two
  values, never a zero-width interval) and ``unit``;
* ``verdicts.csv`` one row per conclusion x dataset (x latent), computed from the runs;
* ``figures/*.png`` metric panels, representative-seed image tiles, KL-per-dimension profiles and
  training curves (built in a temporary folder and swapped in whole);
* ``report.html`` last, with every figure embedded as a base64 data URI.

Each output is written to a temporary file in its folder and moved into place with ``os.replace``.
A run whose ``metrics.json``, ``train.json`` or ``history.csv`` is missing or unreadable stops the
report with ``MissingRunError`` naming the run folder: no run is ever dropped silently.

Verdict rules (see ``compute_verdicts``): a claim "metric(high) > metric(low)" for a pair of priors
*holds* when the two priors' t-intervals over seeds are disjoint in the claimed direction, is
*reversed* when they are disjoint the other way, and *overlaps* otherwise. A conclusion made of
several such pairs is "supported" when every pair holds, "partly supported" when some hold,
"not supported" when none holds and some are reversed, "inconclusive" when all overlap or when a
prior has a single seed (no interval). Per-seed counts of the ordering are always reported, and
seeds that disagree are named as such. Missing runs or metrics give "not tested" with the reason.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sparse_vae.atomic import atomic_dir, write_text
from sparse_vae.errors import MissingRunError, SparseVAEError

# --------------------------------------------------------------------------------------------
# Names, units and the talk's conclusions
# --------------------------------------------------------------------------------------------

ID_COLUMNS = ["dataset", "prior", "latent", "seed", "kl_estimator"]
#: scalar metrics in the order of docs/interfaces.md; any others follow, sorted.
METRIC_ORDER = [
    "elbo", "recon_log_lik", "kl", "iwae_log_lik", "iwae_samples", "mse", "active_units",
    "active_units_kl", "frac_near_zero", "hoyer", "kurtosis_mean", "probe_accuracy", "probe_chance",
    "mi_label_sum", "mi_label_max", "template_weight_corr", "template_weight_r2",
    "template_decoder_cos", "rf_localization", "dims_used_2d",
]
#: training figures taken from train.json (history.csv when train.json lacks them).
TRAIN_COLUMNS = [
    "train_loss_final", "test_loss_final", "test_recon_final", "test_kl_final",
    "train_loss_first_epoch", "test_loss_first_epoch", "epochs", "duration_s", "samples_per_s",
    "device",
]
#: training figures that differ between otherwise identical runs (written to timings.csv).
TIMING_COLUMNS = ["duration_s", "samples_per_s", "device"]
#: metrics drawn in the per-dataset panels (each skipped where all its values are null).
PANEL_METRICS = [
    "elbo", "iwae_log_lik", "mse", "active_units", "probe_accuracy", "mi_label_sum", "hoyer",
    "template_weight_corr", "rf_localization", "dims_used_2d",
]
UNITS = {
    "elbo": "nats/example", "recon_log_lik": "nats/example", "kl": "nats/example",
    "iwae_log_lik": "nats/example", "iwae_samples": "samples", "mse": "pixel MSE",
    "active_units": "dims (count)", "active_units_kl": "dims (count)", "frac_near_zero": "fraction",
    "hoyer": "index in [0, 1]", "kurtosis_mean": "excess kurtosis", "probe_accuracy": "fraction",
    "probe_chance": "fraction", "mi_label_sum": "nats", "mi_label_max": "nats",
    "template_weight_corr": "correlation", "template_weight_r2": "R²",
    "template_decoder_cos": "cosine", "rf_localization": "index in [0, 1] (1 = one pixel)",
    "dims_used_2d": "dims (count)",
    "train_loss_final": "nats/example", "test_loss_final": "nats/example",
    "test_recon_final": "nats/example", "test_kl_final": "nats/example",
    "train_loss_first_epoch": "nats/example", "test_loss_first_epoch": "nats/example",
    "epochs": "epochs", "duration_s": "s", "samples_per_s": "samples/s",
}
LABELS = {
    "elbo": "test ELBO", "recon_log_lik": "reconstruction log-lik", "kl": "KL(q||p)",
    "iwae_log_lik": "IWAE log-likelihood", "iwae_samples": "IWAE samples K", "mse": "reconstruction MSE",
    "active_units": "active units", "active_units_kl": "active units (KL)",
    "frac_near_zero": "near-zero codes", "hoyer": "Hoyer sparsity", "kurtosis_mean": "latent kurtosis",
    "probe_accuracy": "linear probe accuracy", "probe_chance": "probe chance level",
    "mi_label_sum": "MI(z; label), summed", "mi_label_max": "MI(z; label), best dim",
    "template_weight_corr": "template-weight correlation", "template_weight_r2": "template-weight R²",
    "template_decoder_cos": "template-decoder cosine", "rf_localization": "RF localization",
    "dims_used_2d": "dims used (2-D latent)",
    "train_loss_final": "final train loss", "test_loss_final": "final test loss",
    "test_recon_final": "final test reconstruction", "test_kl_final": "final test KL",
    "train_loss_first_epoch": "first-epoch train loss", "test_loss_first_epoch": "first-epoch test loss",
    "epochs": "epochs", "duration_s": "training time", "samples_per_s": "training throughput",
}
PRIOR_COLORS = {"normal": "#1f77b4", "laplace": "#ff7f0e", "cauchy": "#2ca02c"}
NATURAL_SOURCES = {"natural", "cifar"}

CONCLUSIONS = {
    1: ("reconstruction: MSE normal < laplace < cauchy",
        "All 3 do fairly well at reproduction across all tasks. VAE is best, laplace VAE slightly "
        "worse, cauchy even worse (mostly noticeable only on CIFAR task)"),
    2: ("informativeness: normal < laplace < cauchy",
        "Laplace VAE and Cauchy VAE have significantly more informative latent dimensions in the "
        "MNIST and CIFAR tasks. Cauchy VAE is noticeably better than Laplace in both cases."),
    3: ("laplace learns localised receptive fields on natural images",
        "Laplace CIFAR recreates something approaching a biologically realistic retina receptive field."),
    4: ("laplace uses one dimension when latent = 2",
        "Laplace VAE has a tendency to only use 1 dimension in the 2 dimension test outputs."),
}
VERDICTS = ("supported", "partly supported", "not supported", "inconclusive", "not tested")
VERDICT_COLUMNS = ["conclusion", "claim", "dataset", "latent", "metric", "verdict", "seeds", "evidence"]
SUMMARY_COLUMNS = ["dataset", "prior", "latent", "metric", "n_seeds", "n", "mean", "sd", "ci_low",
                   "ci_high", "unit"]


# --------------------------------------------------------------------------------------------
# Loading runs
# --------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One run folder's outputs, as read (and checked) by ``load_run``."""

    folder: Path
    info: dict[str, Any]
    metrics: dict[str, Any]
    not_applicable: dict[str, str]
    per_dimension: dict[str, list]
    train: dict[str, Any]
    history: pd.DataFrame
    source: str | None = None

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.info["dataset"], self.info["prior"], int(self.info["latent"]), int(self.info["seed"]))

    def figure(self, name: str) -> Path:
        return self.folder / "figures" / f"{name}.png"


def _read_json(path: Path, fail) -> dict:
    if not path.is_file():
        fail(f"{path.name} is missing")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        fail(f"{path.name} is unreadable ({error})")
    if not isinstance(value, dict):
        fail(f"{path.name} does not hold a JSON object")
    return value


def _scalar(value: Any) -> Any:
    """A metric value as a table cell: None -> NaN, bool -> int; lists/dicts are not scalars."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _find_source(train: dict, metrics: dict) -> str | None:
    """The dataset's source (synthetic, mnist, cifar, digits, natural) if a run file records it."""
    spec = train.get("spec") if isinstance(train.get("spec"), dict) else {}
    candidates = [spec.get("source"), metrics["run"].get("source"), train.get("source")]
    for holder in (spec.get("data"), spec.get("dataset_config"), metrics.get("settings"), train.get("dataset")):
        if isinstance(holder, dict):
            candidates.append(holder.get("source"))
    return next((c for c in candidates if isinstance(c, str) and c), None)


def load_run(path: Path | str) -> Run:
    """Read one run (``path`` is its metrics.json or its folder); MissingRunError names the folder."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    metrics_path = path if not path.is_dir() else path / "metrics.json"

    def fail(message: str):
        raise MissingRunError(f"run {folder}: {message}")

    metrics = _read_json(metrics_path, fail)
    if not isinstance(metrics.get("run"), dict) or not isinstance(metrics.get("metrics"), dict):
        fail("metrics.json lacks its 'run' or 'metrics' object")
    missing = [k for k in ("dataset", "prior", "latent", "seed") if k not in metrics["run"]]
    if missing:
        fail(f"metrics.json 'run' lacks {', '.join(missing)}")
    try:
        info = dict(metrics["run"])
        info["latent"], info["seed"] = int(info["latent"]), int(info["seed"])
        info["dataset"], info["prior"] = str(info["dataset"]), str(info["prior"])
    except (TypeError, ValueError):
        fail("metrics.json 'run' has a non-integer latent or seed")
    train = _read_json(folder / "train.json", fail)
    history_path = folder / "history.csv"
    if not history_path.is_file():
        fail("history.csv is missing")
    try:
        history = pd.read_csv(history_path)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        fail(f"history.csv is unreadable ({error})")
    if not {"epoch", "test_loss"} <= set(history.columns) or history.empty:
        fail("history.csv has no rows or lacks the epoch / test_loss columns")
    per_dim = metrics.get("per_dimension") if isinstance(metrics.get("per_dimension"), dict) else {}
    not_applicable = metrics.get("not_applicable") if isinstance(metrics.get("not_applicable"), dict) else {}
    return Run(
        folder=folder, info=info, metrics=metrics["metrics"], not_applicable=not_applicable,
        per_dimension=per_dim, train=train, history=history, source=_find_source(train, metrics),
    )


def load_runs(metrics_paths: Iterable[Path | str]) -> list[Run]:
    """Every run, checked for duplicates (two folders claiming the same dataset/prior/latent/seed)."""
    runs, seen = [], {}
    for path in metrics_paths:
        run = load_run(path)
        if run.key in seen:
            raise SparseVAEError(
                f"runs {seen[run.key]} and {run.folder} both claim dataset={run.key[0]} prior={run.key[1]} "
                f"latent={run.key[2]} seed={run.key[3]}"
            )
        seen[run.key] = run.folder
        runs.append(run)
    if not runs:
        raise MissingRunError("the report was given no runs")
    return runs


def check_complete(runs: Sequence[Run], study: dict) -> None:
    """Every dataset x prior x seed of the study (x each latent seen for that dataset) has a run."""
    spec = study.get("study") or {}
    datasets, priors, seeds = spec.get("datasets"), spec.get("priors"), spec.get("seeds")
    if not (datasets and priors and seeds):
        return
    have = {run.key for run in runs}
    for dataset in datasets:
        latents = sorted({k[2] for k in have if k[0] == dataset}) or ["?"]
        for prior in priors:
            for latent in latents:
                for seed in seeds:
                    if (dataset, prior, latent, int(seed)) not in have:
                        raise MissingRunError(
                            f"run {dataset}/{prior}/z{latent}/seed{seed}: part of the study but its "
                            f"metrics.json was not given to the report"
                        )


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def _order(values: Iterable, preferred: Sequence | None) -> list:
    values = list(dict.fromkeys(values))
    first = [v for v in (preferred or []) if v in values]
    return first + sorted((v for v in values if v not in first), key=str)


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        return math.nan


def _train_row(run: Run) -> dict[str, Any]:
    train, hist = run.train, run.history.sort_values("epoch")
    first, last = hist.iloc[0], hist.iloc[-1]

    def pick(from_json: Any, column: str, row: pd.Series) -> float:
        value = _num(from_json)
        if math.isnan(value) and column in row.index:
            value = _num(row[column])
        return value

    return {
        "train_loss_final": pick(_get(train, "final", "train_loss"), "train_loss", last),
        "test_loss_final": pick(_get(train, "final", "test_loss"), "test_loss", last),
        "test_recon_final": pick(_get(train, "final", "test_recon"), "test_recon", last),
        "test_kl_final": pick(_get(train, "final", "test_kl"), "test_kl", last),
        "train_loss_first_epoch": pick(_get(train, "first_epoch", "train_loss"), "train_loss", first),
        "test_loss_first_epoch": pick(_get(train, "first_epoch", "test_loss"), "test_loss", first),
        "epochs": pick(train.get("epochs"), "epoch", last),
        "duration_s": _num(train.get("duration_s")),
        "samples_per_s": _num(train.get("samples_per_s")),
        "device": str(train["device"]) if train.get("device") is not None else None,
    }


def metrics_table(runs: Sequence[Run], study: dict | None = None) -> pd.DataFrame:
    """One tidy row per run (see the module docstring), in study order."""
    rows, names = [], []
    for run in runs:
        row = {
            "dataset": run.info["dataset"], "prior": run.info["prior"], "latent": run.info["latent"],
            "seed": run.info["seed"], "kl_estimator": run.info.get("kl_estimator"),
        }
        for name, value in run.metrics.items():
            value = _scalar(value)
            if value is not _NOT_SCALAR:
                row[name] = value
                names.append(name)
        row.update(_train_row(run))
        row["run_dir"] = str(run.folder)
        rows.append(row)
    metric_cols = _order(names, METRIC_ORDER)
    metric_cols = [m for m in metric_cols if m not in ID_COLUMNS + TRAIN_COLUMNS + ["run_dir"]]
    df = pd.DataFrame(rows, columns=ID_COLUMNS + metric_cols + TRAIN_COLUMNS + ["run_dir"])
    for col in metric_cols + TRAIN_COLUMNS[:-1]:
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.notna().sum() == df[col].notna().sum():  # purely numeric column
            df[col] = converted.astype(float)
    df["latent"] = df["latent"].astype(int)
    df["seed"] = df["seed"].astype(int)
    return _sort_runs(df, study)


def _sort_runs(df: pd.DataFrame, study: dict | None) -> pd.DataFrame:
    spec = (study or {}).get("study") or {}
    ds = _order(df["dataset"], spec.get("datasets"))
    pr = _order(df["prior"], spec.get("priors"))
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


def t_interval(values: Iterable[float], confidence: float) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, ci_low, ci_high) of the non-null values: Student-t interval for the mean.

    sd uses ddof = 1; with fewer than two values sd and the interval are NaN (unknown, not zero).
    """
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return n, mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return n, mean, sd, mean - half, mean + half


def summarize(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Long table over seeds: one row per dataset x prior x latent x metric with at least one value."""
    rows = []
    cols = metric_columns(df)
    for (dataset, prior, latent), group in df.groupby(["dataset", "prior", "latent"], sort=False):
        for metric in cols:
            n, mean, sd, lo, hi = t_interval(group[metric], confidence)
            if n == 0:
                continue  # all null (not applicable here); metrics.csv keeps the nulls
            rows.append({
                "dataset": dataset, "prior": prior, "latent": int(latent), "metric": metric,
                "n_seeds": int(len(group)), "n": n, "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi,
                "unit": UNITS.get(metric, ""),
            })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------

@dataclass
class _Stat:
    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    values: pd.Series = field(repr=False)  # indexed by seed


def _fmt(x: Any, digits: int = 4) -> str:
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


def _fmt_sd(sd: float, mean: float) -> str:
    """An sd for display: float noise around zero (identical seeds) shows as 0."""
    if not math.isnan(sd) and abs(sd) <= 1e-9 * max(1.0, abs(mean)):
        return "0"
    return _fmt(sd, 2)


def _mean_sd(s: _Stat) -> str:
    if s.n == 0:
        return "no value"
    if s.n == 1:
        return f"{_fmt(s.mean)} (1 seed)"
    return f"{_fmt(s.mean)} ± {_fmt_sd(s.sd, s.mean)} (n = {s.n})"


class _Verdicts:
    """Computes the verdict rows from the per-run table."""

    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                 sources: dict[str, str], figure_names: dict[tuple, str] | None = None):
        self.df, self.confidence, self.sources = df, confidence, sources
        self.figures = figure_names or {}
        self.reasons: dict[tuple[str, int, str], str] = {}
        for run in runs:
            for metric, reason in run.not_applicable.items():
                self.reasons.setdefault((run.info["dataset"], run.info["latent"], metric), str(reason))
        self.rows: list[dict[str, Any]] = []
        self.pct = f"{confidence * 100:g}%"

    # --- helpers -----------------------------------------------------------------------------
    def groups(self) -> list[tuple[str, int]]:
        return list(dict.fromkeys(zip(self.df["dataset"], self.df["latent"])))

    def priors(self, dataset: str, latent: int) -> set[str]:
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent)]
        return set(sub["prior"])

    def stat(self, dataset: str, latent: int, prior: str, metric: str) -> _Stat:
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent) & (self.df["prior"] == prior)]
        if metric in sub.columns:
            values = pd.to_numeric(sub.set_index("seed")[metric], errors="coerce").dropna()
        else:
            values = pd.Series(dtype=float)
        n, mean, sd, lo, hi = t_interval(values, self.confidence)
        return _Stat(n, mean, sd, lo, hi, values)

    def reason(self, dataset: str, latent: int, metric: str) -> str:
        why = self.reasons.get((dataset, latent, metric))
        return f"{metric} is null ({why})" if why else f"{metric} was not reported by any run"

    def add(self, conclusion: int, dataset: str, latent: Any, metric: str, verdict: str, seeds: str,
            evidence: str) -> None:
        assert verdict in VERDICTS, verdict
        self.rows.append({
            "conclusion": conclusion, "claim": CONCLUSIONS[conclusion][0], "dataset": dataset,
            "latent": latent, "metric": metric, "verdict": verdict, "seeds": seeds, "evidence": evidence,
        })

    def missing(self, dataset: str, latent: int, priors: Sequence[str], metrics: Sequence[str]) -> str | None:
        """Why the comparison cannot be made, or None."""
        have = self.priors(dataset, latent)
        lacking = [p for p in priors if p not in have]
        if lacking:
            return f"no {' or '.join(lacking)} runs for {dataset} at latent {latent}"
        for metric in metrics:
            empty = [p for p in priors if self.stat(dataset, latent, p, metric).n == 0]
            if len(empty) == len(priors):
                return self.reason(dataset, latent, metric)
            if empty:
                return self.reason(dataset, latent, metric) + f" for {' and '.join(empty)}"
        return None

    def compare(self, dataset: str, latent: int, metric: str, pairs: Sequence[tuple[str, str]],
                lower_better: bool = False) -> dict[str, Any]:
        """Pairs (low, high) claim metric(high) > metric(low). Returns outcomes, seed counts, text."""
        priors = list(dict.fromkeys(p for pair in pairs for p in pair))
        st = {p: self.stat(dataset, latent, p, metric) for p in priors}
        outcomes, phrases, disagree = [], [], []
        for low, high in pairs:
            a, b = st[low], st[high]
            if a.n < 2 or b.n < 2:
                outcome = "no interval"
            elif a.hi < b.lo:
                outcome = "holds"
            elif a.lo > b.hi:
                outcome = "reversed"
            else:
                outcome = "overlap"
            outcomes.append(outcome)
            common = a.values.index.intersection(b.values.index)
            k = int((b.values[common] > a.values[common]).sum())
            n = int(len(common))
            claim = f"{low} < {high}" if lower_better else f"{high} > {low}"
            text = {
                "holds": f"{self.pct} intervals separate",
                "reversed": f"reversed, {self.pct} intervals separate",
                "overlap": f"{self.pct} intervals overlap",
                "no interval": "single seed, no interval",
            }[outcome]
            phrases.append(f"{claim}: {text}, holds in {k}/{n} seeds")
            if 0 < k < n:
                disagree.append(f"{claim} in {k} of {n} seeds")
        # seeds in which the whole ordering holds
        common = None
        for p in priors:
            idx = st[p].values.index
            common = idx if common is None else common.intersection(idx)
        k_all = sum(all(st[h].values[s] > st[lw].values[s] for lw, h in pairs) for s in common)
        shown = _order(priors, ["normal", "laplace", "cauchy"])
        values = ", ".join(f"{p} {_mean_sd(st[p])}" for p in shown)
        label = f"{LABELS.get(metric, metric)} ({UNITS.get(metric, 'unitless')})"
        text = f"{label}: {values} [mean ± sd]; " + "; ".join(phrases)
        if disagree:
            text += "; seeds disagree: " + ", ".join(disagree)
        return {"outcomes": outcomes, "k": k_all, "n": len(common), "text": text}

    @staticmethod
    def classify(outcomes: Sequence[str]) -> str:
        if not outcomes:
            return "not tested"
        if "no interval" in outcomes:
            return "inconclusive"
        if all(o == "holds" for o in outcomes):
            return "supported"
        if "holds" in outcomes:
            return "partly supported"
        if "reversed" in outcomes:
            return "not supported"
        return "inconclusive"

    def note(self, verdict: str, outcomes: Sequence[str]) -> str:
        if verdict == "inconclusive" and "no interval" in outcomes:
            return " Inconclusive: a prior has a single seed, so there is no interval over seeds."
        if verdict == "inconclusive":
            return f" Inconclusive: the {self.pct} intervals overlap."
        if verdict == "partly supported":
            return f" Partly: only some comparisons have separated {self.pct} intervals."
        return ""

    # --- the four conclusions -------------------------------------------------------------------
    def reconstruction(self) -> None:
        pairs = [("normal", "laplace"), ("laplace", "cauchy")]
        for dataset, latent in self.groups():
            why = self.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["mse"])
            if why:
                self.add(1, dataset, latent, "mse", "not tested", "", f"Not tested: {why}.")
                continue
            mse = self.compare(dataset, latent, "mse", pairs, lower_better=True)
            verdict = self.classify(mse["outcomes"])
            evidence = mse["text"] + f". Ordering holds in {mse['k']}/{mse['n']} seeds."
            if self.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["elbo"]) is None:
                elbo = self.compare(dataset, latent, "elbo", [("laplace", "normal"), ("cauchy", "laplace")])
                evidence += (f" Also {elbo['text']}; ELBO ordering normal > laplace > cauchy "
                             f"holds in {elbo['k']}/{elbo['n']} seeds.")
            self.add(1, dataset, latent, "mse", verdict, f"{mse['k']}/{mse['n']}",
                     evidence + self.note(verdict, mse["outcomes"]))

    def informativeness(self) -> None:
        pairs = [("normal", "laplace"), ("normal", "cauchy"), ("laplace", "cauchy")]
        all_priors = ["normal", "laplace", "cauchy"]
        for dataset, latent in self.groups():
            have = self.priors(dataset, latent)
            if not set(all_priors) <= have:
                why = self.missing(dataset, latent, all_priors, [])
                self.add(2, dataset, latent, "", "not tested", "", f"Not tested: {why}.")
                continue
            label_metrics = [m for m in ("probe_accuracy", "mi_label_sum")
                             if self.missing(dataset, latent, all_priors, [m]) is None]
            metrics = label_metrics or (["template_weight_corr"] if self.missing(
                dataset, latent, all_priors, ["template_weight_corr"]) is None else [])
            if not metrics:
                why = "; ".join(self.missing(dataset, latent, all_priors, [m]) or "" for m in
                                ("probe_accuracy", "mi_label_sum", "template_weight_corr"))
                self.add(2, dataset, latent, "probe_accuracy, mi_label_sum, template_weight_corr",
                         "not tested", "", f"Not tested: no labels or ground truth ({why}).")
                continue
            results = [self.compare(dataset, latent, m, pairs) for m in metrics]
            outcomes = [o for r in results for o in r["outcomes"]]
            verdict = self.classify(outcomes)
            seeds = ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results))
            evidence = " ".join(
                f"{r['text']}. Full ordering normal < laplace < cauchy holds in {r['k']}/{r['n']} seeds."
                for r in results)
            self.add(2, dataset, latent, ", ".join(metrics), verdict, seeds,
                     evidence + self.note(verdict, outcomes))

    def receptive_fields(self) -> None:
        natural = [(d, z) for d, z in self.groups() if self.sources.get(d) in NATURAL_SOURCES]
        if not natural:
            self.add(3, "", "", "rf_localization", "not tested", "",
                     "Not tested: no natural-image dataset (source natural or cifar) in the study "
                     f"(sources: {', '.join(f'{d}={s}' for d, s in self.sources.items()) or 'none'}).")
            return
        for dataset, latent in natural:
            why = self.missing(dataset, latent, ["normal", "laplace"], ["rf_localization"])
            if why:
                self.add(3, dataset, latent, "rf_localization", "not tested", "", f"Not tested: {why}.")
                continue
            r = self.compare(dataset, latent, "rf_localization", [("normal", "laplace")])
            verdict = self.classify(r["outcomes"])
            evidence = r["text"] + "."
            cauchy = self.stat(dataset, latent, "cauchy", "rf_localization")
            if cauchy.n:
                evidence += f" For reference cauchy {_mean_sd(cauchy)}."
            fig = self.figures.get(("receptive_fields", dataset, latent))
            if fig:
                evidence += f" See figure {fig}."
            self.add(3, dataset, latent, "rf_localization", verdict, f"{r['k']}/{r['n']}",
                     evidence + self.note(verdict, r["outcomes"]))

    def one_dimension(self) -> None:
        two_d = [(d, z) for d, z in self.groups() if z == 2]
        if not two_d:
            latents = sorted(set(self.df["latent"]))
            self.add(4, "", 2, "dims_used_2d", "not tested", "",
                     f"Not tested: no runs with latent = 2 in the study (latent sizes: "
                     f"{', '.join(map(str, latents))}).")
            return
        for dataset, latent in two_d:
            why = self.missing(dataset, latent, ["laplace"], ["dims_used_2d"])
            if why:
                self.add(4, dataset, latent, "dims_used_2d", "not tested", "", f"Not tested: {why}.")
                continue
            lap = self.stat(dataset, latent, "laplace", "dims_used_2d")
            k, n = int((lap.values == 1).sum()), lap.n
            per_seed = ", ".join(f"seed {s}: {_fmt(v)}" for s, v in lap.values.items())
            evidence = (f"laplace uses one dimension in {k}/{n} seeds ({per_seed}); "
                        f"dims used {_mean_sd(lap)} [mean ± sd]")
            for other in ("normal", "cauchy"):
                o = self.stat(dataset, latent, other, "dims_used_2d")
                if o.n:
                    evidence += f"; {other}: one dimension in {int((o.values == 1).sum())}/{o.n} seeds"
            evidence += "."
            if n == 1:
                verdict = "inconclusive"
                evidence += " Inconclusive: a single laplace seed."
            elif k == n:
                verdict = "supported"
            elif k == 0:
                verdict = "not supported"
            else:
                verdict = "partly supported"
                evidence += f" Seeds disagree: {k} of {n} laplace seeds use one dimension."
            self.add(4, dataset, latent, "dims_used_2d", verdict, f"{k}/{n}", evidence)


def compute_verdicts(df: pd.DataFrame, runs: Sequence[Run] = (), confidence: float = 0.95,
                     sources: dict[str, str] | None = None,
                     figure_names: dict[tuple, str] | None = None) -> pd.DataFrame:
    """The verdict table (columns VERDICT_COLUMNS) on the talk's four conclusions.

    ``sources`` maps dataset -> source (to find natural-image datasets); ``figure_names`` maps
    ("receptive_fields", dataset, latent) -> figure file name cited as evidence.
    """
    if sources is None:
        sources = {d: _guess_source(d) for d in dict.fromkeys(df["dataset"])}
    v = _Verdicts(df, runs, confidence, sources, figure_names)
    v.reconstruction()
    v.informativeness()
    v.receptive_fields()
    v.one_dimension()
    return pd.DataFrame(v.rows, columns=VERDICT_COLUMNS)


def _guess_source(dataset: str) -> str:
    name = dataset.lower()
    for source in ("natural", "cifar", "mnist", "digits", "synthetic"):
        if source in name:
            return source
    return "unknown"


def dataset_sources(runs: Sequence[Run], study: dict) -> dict[str, tuple[str, str]]:
    """dataset -> (source, where it came from): the study config, the run files, or the name."""
    configured = study.get("datasets")
    out: dict[str, tuple[str, str]] = {}
    for run in runs:
        name = run.info["dataset"]
        if name in out:
            continue
        if isinstance(configured, dict) and isinstance(configured.get(name), dict) and configured[name].get("source"):
            out[name] = (str(configured[name]["source"]), "study config")
        elif run.source:
            out[name] = (run.source, "run files")
        else:
            out[name] = (_guess_source(name), "guessed from the dataset name")
    return out


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

@dataclass
class FigureInfo:
    file: str
    title: str
    caption: str
    kind: str
    dataset: str
    latent: int


def _slug(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def panel_metrics(runs_df: pd.DataFrame) -> list[str]:
    """The PANEL_METRICS that have at least one non-null value among these runs."""
    return [m for m in PANEL_METRICS
            if m in runs_df.columns and pd.to_numeric(runs_df[m], errors="coerce").notna().any()]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0)
    return plt, sns


def _palette(priors: Sequence[str]) -> dict[str, str]:
    extra = iter(["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"])
    return {p: PRIOR_COLORS.get(p) or next(extra, "#333333") for p in priors}


def _save(fig, folder: Path, name: str) -> None:
    fig.savefig(folder / name, dpi=100, bbox_inches="tight")


class _Figures:
    def __init__(self, df, summary, runs, study, folder: Path, confidence: float):
        self.df, self.summary, self.runs, self.folder = df, summary, runs, folder
        self.confidence = confidence
        spec = study.get("study") or {}
        self.priors = _order(df["prior"], spec.get("priors"))
        self.colors = _palette(self.priors)
        self.groups = list(dict.fromkeys(zip(df["dataset"], df["latent"])))
        rep = (study.get("report") or {}).get("representative_seed")
        seeds = spec.get("seeds") or sorted(set(df["seed"]))
        self.rep_seed = int(rep) if rep is not None else int(seeds[0])
        self.by_key = {run.key: run for run in runs}
        self.out: list[FigureInfo] = []
        self.plt, self.sns = _pyplot()
        from matplotlib.ticker import MaxNLocator

        self.MaxNLocator = MaxNLocator

    def add(self, fig, name, title, caption, kind, dataset, latent):
        _save(fig, self.folder, name)
        self.plt.close(fig)
        self.out.append(FigureInfo(name, title, caption, kind, dataset, latent))

    def build(self) -> list[FigureInfo]:
        for dataset, latent in self.groups:
            self.metric_panel(dataset, latent)
            for name in ("reconstructions", "receptive_fields"):
                self.image_tiles(dataset, latent, name)
            self.kl_profiles(dataset, latent)
            self.training_curves(dataset, latent)
        return self.out

    def group(self, dataset, latent) -> pd.DataFrame:
        return self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent)]

    def metric_panel(self, dataset, latent) -> None:
        sub = self.group(dataset, latent)
        metrics = panel_metrics(sub)
        if not metrics:
            return
        plt, sns = self.plt, self.sns
        ncols = min(3, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
        priors = [p for p in self.priors if p in set(sub["prior"])]
        for ax, metric in zip(axes.flat, metrics):
            data = sub[["prior", "seed", metric]].copy()
            data[metric] = pd.to_numeric(data[metric], errors="coerce")
            data = data.dropna()
            sns.stripplot(data=data, x="prior", y=metric, hue="prior", order=priors, hue_order=priors,
                          palette=self.colors, jitter=0.12, size=6, alpha=0.7, legend=False, ax=ax)
            for i, prior in enumerate(priors):
                n, mean, sd, lo, hi = t_interval(data.loc[data["prior"] == prior, metric], self.confidence)
                if n == 0:
                    continue
                if not math.isnan(lo):
                    ax.errorbar([i + 0.3], [mean], yerr=[[mean - lo], [hi - mean]], fmt="none",
                                ecolor="black", elinewidth=1.6, capsize=5)
                ax.plot([i + 0.3], [mean], marker="D", color="black", markersize=6)
            ax.set_title(LABELS.get(metric, metric), fontsize=12)
            ax.set_xlabel("prior")
            ax.set_ylabel(UNITS.get(metric, ""))
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        pct = f"{self.confidence * 100:g}%"
        fig.suptitle(f"{dataset}, latent {latent}: dots = seeds, black diamond = mean with {pct} t-interval",
                     fontsize=13)
        fig.tight_layout()
        name = f"metrics_{_slug(dataset)}_z{latent}.png"
        self.add(fig, name, f"Metrics by prior: {dataset}, latent {latent}",
                 f"Each dot is one seed; the black diamond and bar are the mean over seeds and its {pct} "
                 f"Student-t interval (no bar with one seed). Metrics that are null for every run "
                 f"here are left out. Units on the y axes.", "metrics", dataset, latent)

    def image_tiles(self, dataset, latent, name) -> None:
        plt = self.plt
        sub = self.group(dataset, latent)
        seeds = sorted(set(sub["seed"]))
        seed = self.rep_seed if self.rep_seed in seeds else seeds[0]
        priors = [p for p in self.priors if p in set(sub["prior"])]
        images = {}
        for prior in priors:
            run = self.by_key.get((dataset, prior, latent, seed))
            path = run.figure(name) if run else None
            try:
                images[prior] = plt.imread(path) if path and path.is_file() else None
            except (OSError, ValueError, SyntaxError):
                images[prior] = None
        if all(img is None for img in images.values()):
            return
        shapes = [img.shape for img in images.values() if img is not None]
        aspect = max(s[1] / s[0] for s in shapes)
        width = min(6.0, 3.2 * aspect)
        fig, axes = plt.subplots(1, len(priors), figsize=(width * len(priors), width / aspect + 0.7),
                                 squeeze=False)
        for ax, prior in zip(axes[0], priors):
            img = images[prior]
            ax.axis("off")
            ax.set_title(prior, fontsize=13, color=self.colors[prior])
            if img is None:
                ax.text(0.5, 0.5, f"{name}.png missing\nfor this run", ha="center", va="center",
                        fontsize=11, color="red", transform=ax.transAxes)
            else:
                ax.imshow(img, interpolation="nearest")
        label = name.replace("_", " ")
        note = "" if seed == self.rep_seed else f" (representative seed {self.rep_seed} absent here)"
        fig.suptitle(f"{dataset}, latent {latent}: {label}, seed {seed}{note}", fontsize=13)
        fig.tight_layout()
        fname = f"{name}_{_slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"{label.capitalize()}: {dataset}, latent {latent}, seed {seed}",
                 f"The {label} figure of each prior's run for seed {seed}, copied side by side from the "
                 f"runs' figures/{name}.png.", name, dataset, latent)

    def kl_profiles(self, dataset, latent) -> None:
        plt = self.plt
        sub = self.group(dataset, latent)
        curves = []
        for _, row in sub.iterrows():
            run = self.by_key.get((dataset, row["prior"], latent, int(row["seed"])))
            kl = run.per_dimension.get("kl") if run else None
            if isinstance(kl, list) and kl:
                values = np.sort(np.asarray([_num(v) for v in kl], dtype=float))[::-1]
                curves.append((row["prior"], int(row["seed"]), values))
        if not curves:
            return
        priors = [p for p in self.priors if any(c[0] == p for c in curves)]
        fig, axes = plt.subplots(1, len(priors), figsize=(4.2 * len(priors) + 0.6, 4.0), squeeze=False,
                                 sharey=True)
        width = max(len(c[2]) for c in curves)
        for ax, prior in zip(axes[0], priors):
            mine = [c for c in curves if c[0] == prior]
            for _, seed, values in mine:
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3.5, lw=1.2,
                        alpha=0.75, color=self.colors[prior])
            ax.set_title(f"{prior} ({len(mine)} seeds)", color=self.colors[prior])
            ax.set_xlabel("dimension, sorted by KL (rank)")
            ax.set_xlim(0.5, width + 0.5)
            ax.xaxis.set_major_locator(self.MaxNLocator(integer=True))
        axes[0][0].set_ylabel("KL(q||p) per dimension (nats/example)")
        fig.suptitle(f"{dataset}, latent {latent}: KL per dimension, one line per seed", fontsize=13)
        fig.tight_layout()
        fname = f"kl_per_dim_{_slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"KL per dimension: {dataset}, latent {latent}",
                 "Mean KL(q(z|x)||p(z)) of each latent dimension on the test split, sorted from the most "
                 "to the least used; one line per seed. Dimensions near zero are unused.",
                 "kl_per_dim", dataset, latent)

    def training_curves(self, dataset, latent) -> None:
        plt = self.plt
        sub = self.group(dataset, latent)
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        tails = []
        for prior in self.priors:
            hists = []
            for seed in sorted(set(sub.loc[sub["prior"] == prior, "seed"])):
                run = self.by_key.get((dataset, prior, latent, int(seed)))
                if run is None:
                    continue
                h = run.history.sort_values("epoch")
                h = h.assign(test_loss=pd.to_numeric(h["test_loss"], errors="coerce"))
                ax.plot(h["epoch"], h["test_loss"], lw=0.8, alpha=0.45, color=self.colors[prior])
                hists.append(h.set_index("epoch")["test_loss"])
                tails.append(h["test_loss"].iloc[1:] if len(h) > 1 else h["test_loss"])
            if hists:
                mean = pd.concat(hists, axis=1).mean(axis=1)
                ax.plot(mean.index, mean.values, lw=2.4, color=self.colors[prior],
                        label=f"{prior} (mean of {len(hists)})")
        tail = pd.concat(tails).dropna() if tails else pd.Series(dtype=float)
        if len(tail):
            lo, hi = float(tail.min()), float(tail.max())
            pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(self.MaxNLocator(integer=True))
        ax.set_ylabel("test loss, −ELBO (nats/example)")
        ax.set_title(f"{dataset}, latent {latent}: test loss during training")
        ax.legend(title="prior (thin: seeds)")
        fig.tight_layout()
        fname = f"training_{_slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"Training curves: {dataset}, latent {latent}",
                 "Test loss (negative ELBO) after each epoch; thin lines are seeds, thick lines their "
                 "mean. The y range is fitted to epochs after the first, so a higher first epoch may "
                 "be cut off.", "training", dataset, latent)


def make_figures(df: pd.DataFrame, summary: pd.DataFrame, runs: Sequence[Run], study: dict,
                 folder: Path, confidence: float = 0.95) -> list[FigureInfo]:
    folder.mkdir(parents=True, exist_ok=True)
    return _Figures(df, summary, runs, study, folder, confidence).build()


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1320px;
     padding:0 16px;color:#1b1b1b;line-height:1.45}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f2f2f2} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
.v-supported{background:#d8f3d8} .v-partly-supported{background:#fff2c4}
.v-not-supported{background:#f8d3d3} .v-inconclusive{background:#e6e6f5} .v-not-tested{background:#eee;color:#666}
figure{margin:16px 0 28px} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:13px;color:#444;max-width:1000px}
blockquote{color:#555;border-left:4px solid #ccc;margin:6px 0;padding-left:10px;font-style:italic}
.muted{color:#666;font-size:13px} nav ul{columns:2;font-size:14px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _cell(x: Any) -> str:
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        return f'<td class="num">{_e(_fmt(x))}</td>'
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return '<td class="num">—</td>'
    return f"<td>{_e(x)}</td>"


def _table(df: pd.DataFrame, table_id: str, headers: Sequence[str] | None = None,
           row_class: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in (headers or df.columns))
    rows = []
    for i, (_, row) in enumerate(df.iterrows()):
        cls = f' class="{_e(row_class[i])}"' if row_class else ""
        rows.append(f"<tr{cls}>" + "".join(_cell(v) for v in row.values) + "</tr>")
    return (f'<div class="scroll"><table id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _summary_cell(row: pd.Series | None) -> str:
    if row is None:
        return "—"
    text = _fmt(row["mean"])
    if row["n"] >= 2:
        text += f" ± {_fmt_sd(row['sd'], row['mean'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
    return f"{text} (n={int(row['n'])})"


def _summary_tables(summary: pd.DataFrame, priors: Sequence[str], confidence: float) -> list[tuple[str, str, str]]:
    """(table id, heading, html) per dataset x latent: metrics as rows, priors as columns."""
    out = []
    order = {m: i for i, m in enumerate(METRIC_ORDER + TRAIN_COLUMNS)}
    for (dataset, latent), group in summary.groupby(["dataset", "latent"], sort=False):
        metrics = sorted(dict.fromkeys(group["metric"]), key=lambda m: (order.get(m, 999), m))
        here = [p for p in priors if p in set(group["prior"])]
        rows = []
        for metric in metrics:
            cells = [LABELS.get(metric, metric), UNITS.get(metric, "")]
            for prior in here:
                hit = group[(group["metric"] == metric) & (group["prior"] == prior)]
                cells.append(_summary_cell(hit.iloc[0] if len(hit) else None))
            rows.append(cells)
        table = pd.DataFrame(rows, columns=["metric", "unit"] + here)
        tid = f"summary-{_slug(dataset)}-z{latent}"
        heading = f"{dataset}, latent {latent}"
        out.append((tid, heading, _table(table, tid)))
    return out


def render_html(study: dict, df: pd.DataFrame, summary: pd.DataFrame, verdicts: pd.DataFrame,
                figures: Sequence[FigureInfo], figure_dir: Path, sources: dict[str, tuple[str, str]],
                confidence: float) -> str:
    spec = study.get("study") or {}
    priors = _order(df["prior"], spec.get("priors"))
    pct = f"{confidence * 100:g}%"
    toc: list[tuple[str, str]] = []
    parts: list[str] = []

    # configuration
    rep = (study.get("report") or {}).get("representative_seed")
    latents = {d: sorted(set(df.loc[df["dataset"] == d, "latent"])) for d in dict.fromkeys(df["dataset"])}
    config_rows = [
        ("datasets", ", ".join(map(str, spec.get("datasets") or latents))),
        ("priors", ", ".join(map(str, spec.get("priors") or priors))),
        ("seeds", ", ".join(map(str, spec.get("seeds") or sorted(set(df["seed"]))))),
        ("latent sizes", "; ".join(f"{d}: {', '.join(map(str, z))}" for d, z in latents.items())),
        ("dataset sources", "; ".join(f"{d}: {s} ({how})" for d, (s, how) in sources.items())),
        ("KL estimators", "; ".join(
            f"{p}: {', '.join(sorted(set(map(str, df.loc[df['prior'] == p, 'kl_estimator'].dropna()))) or '—')}"
            for p in priors)),
        ("runs", str(len(df))),
        ("confidence of intervals", f"{pct} (Student t over seeds)"),
        ("representative seed", "first seed" if rep is None else str(rep)),
    ]
    parts.append('<h2 id="config">Study configuration</h2>' +
                 _table(pd.DataFrame(config_rows, columns=["setting", "value"]), "config-table"))
    toc.append(("config", "Study configuration"))

    # verdicts
    vparts = [
        '<h2 id="verdicts">Verdicts on the talk\'s conclusions</h2>',
        f'<p class="muted">Computed from the runs, not written by hand. A comparison between two priors '
        f"holds when their {pct} t-intervals over seeds are disjoint in the claimed direction. "
        f"supported = every comparison holds; partly supported = some hold; not supported = none holds "
        f"and some are reversed; inconclusive = intervals overlap or a prior has one seed; not tested = "
        f"the runs or metrics needed are not in the study. Per-seed counts are given with each "
        f"verdict.</p>",
    ]
    for number, (claim, quote) in CONCLUSIONS.items():
        vparts.append(f"<h3>{number}. {_e(claim)}</h3><blockquote>{_e(quote)}</blockquote>")
    vtable = verdicts[["conclusion", "dataset", "latent", "metric", "verdict", "seeds", "evidence"]]
    classes = ["v-" + _slug(v).replace(".", "") for v in verdicts["verdict"]]
    vparts.append(_table(vtable, "verdicts-table", row_class=classes))
    parts.append("".join(vparts))
    toc.append(("verdicts", "Verdicts"))
    toc.append(("verdicts-table", "Verdict table"))

    # summary tables
    sparts = ['<h2 id="summary">Summary over seeds</h2>',
              f'<p class="muted">mean ± sd [{pct} t-interval] (n = non-null seeds). Units: nats per '
              f"test example for ELBO / log-likelihoods / KL, pixel MSE on the [0, 1] intensity scale "
              f"(or the prepared scale of whitened data), counts of latent dimensions for active units. "
              f"Metrics null for every run of a group are omitted.</p>"]
    for tid, heading, table in _summary_tables(summary, priors, confidence):
        sparts.append(f"<h3>{_e(heading)}</h3>{table}")
        toc.append((tid, f"Summary table: {heading}"))
    parts.append("".join(sparts))
    toc.insert(2, ("summary", "Summary over seeds"))

    # figures
    fparts = ['<h2 id="figures">Figure panels</h2>']
    for fig in figures:
        data = base64.b64encode((figure_dir / fig.file).read_bytes()).decode("ascii")
        fid = "fig-" + _slug(fig.file[:-4])
        fparts.append(
            f'<figure id="{_e(fid)}"><img src="data:image/png;base64,{data}" alt="{_e(fig.title)}" '
            f'data-file="{_e(fig.file)}"><figcaption><b>{_e(fig.title)}</b> '
            f"({_e(fig.file)}). {_e(fig.caption)}</figcaption></figure>")
        toc.append((fid, f"Figure: {fig.title}"))
    parts.append("".join(fparts))

    # per-run table
    run_cols = [c for c in df.columns if c != "run_dir" and (c in ID_COLUMNS or df[c].notna().any())]
    parts.append('<h2 id="runs">Per-run metrics</h2><p class="muted">One row per run, as in metrics.csv '
                 "(columns null for every run are omitted here).</p>" + _table(df[run_cols], "runs-table"))
    toc.append(("runs", "Per-run metrics"))

    nav = "".join(f'<li><a href="#{_e(i)}">{_e(t)}</a></li>' for i, t in toc)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Sparse VAE study report</title><style>{_CSS}</style></head><body>"
        "<h1>Sparse VAE study: normal, Laplace and Cauchy priors</h1>"
        f'<p class="muted">{len(df)} runs; every number below is computed from the runs\' '
        "metrics.json, train.json and history.csv.</p>"
        f"<nav><ul>{nav}</ul></nav>" + "".join(parts) + "</body></html>\n"
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_text(path, df.to_csv(index=False, lineterminator="\n"))


def build_report(metrics_paths: list[Path], study: dict, out_dir: Path) -> dict[str, Any]:
    """Aggregate the runs; write metrics.csv, timings.csv, summary.csv, verdicts.csv, figures/, report.html."""
    out_dir = Path(out_dir)
    confidence = float((study.get("report") or {}).get("confidence") or 0.95)
    if not 0 < confidence < 1:
        raise SparseVAEError(f"report confidence must lie in (0, 1), got {confidence}")
    runs = load_runs(metrics_paths)
    check_complete(runs, study)
    df = metrics_table(runs, study)
    # Timings vary between identical runs: they get their own file, so metrics.csv and
    # summary.csv are reproducible to the last digit.
    deterministic = df.drop(columns=TIMING_COLUMNS)
    summary = summarize(deterministic, confidence)
    sources = dataset_sources(runs, study)

    with atomic_dir(out_dir / "figures") as staging:
        figures = make_figures(df, summary, runs, study, staging, confidence)
        fig_names = {(f.kind, f.dataset, f.latent): f.file for f in figures}
        verdicts = compute_verdicts(df, runs, confidence, {d: s for d, (s, _) in sources.items()}, fig_names)
        page = render_html(study, df, summary, verdicts, figures, staging, sources, confidence)
        _write_csv(deterministic, out_dir / "metrics.csv")
        _write_csv(df[ID_COLUMNS + TIMING_COLUMNS], out_dir / "timings.csv")
        _write_csv(summary, out_dir / "summary.csv")
        _write_csv(verdicts, out_dir / "verdicts.csv")
    write_text(out_dir / "report.html", page)
    print(f"report: {len(df)} runs -> {out_dir} ({len(figures)} figures, {len(verdicts)} verdicts)")
    return {"metrics": df, "summary": summary, "verdicts": verdicts, "figures": figures}
