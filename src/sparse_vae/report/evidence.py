"""The evidence the verdicts read: the per-run table seen by prior, dataset and latent size.

``Evidence`` gives each prior's statistics of a metric over seeds (``stat``), pairwise comparisons
with their text (``compare``), why a comparison cannot be made (``missing``), the controls' results
so far, and gathers the verdict rows. Not here: the rules (``verdicts``), the control and conclusion
judges (``controls``, ``conclusions``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.controls import CONTROL_SOURCES, METRIC_CONTROLS
from sparse_vae.report.runs import Run
from sparse_vae.report.tables import order, t_interval
from sparse_vae.report.verdicts import VERDICTS, Stat, mean_sd, pair_outcome

__all__ = ["PRIORS", "Evidence"]

#: the priors in report order (the evidence text lists them so).
PRIORS = ["normal", "laplace", "cauchy"]


class Evidence:
    """The per-run table seen by prior, with the rows of verdicts gathered so far."""

    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                 sources: dict[str, str], figure_names: dict[tuple, str],
                 baselines: dict[str, dict[str, float]] | None = None, claims: Mapping[int, str] | None = None):
        self.claims = dict(claims or {})  # conclusion number -> its claim (``conclusions.CONCLUSIONS``)
        self.df, self.confidence, self.sources, self.figures = df, confidence, sources, figure_names
        self.baselines = baselines or {}  # dataset -> sparse-coding baseline's field fractions
        self.field_controls: dict[str, bool] = {}  # dataset -> its baseline passed
        self.reasons: dict[tuple[str, int, str], str] = {}
        for run in runs:
            for metric, reason in run.not_applicable.items():
                self.reasons.setdefault((run.info["dataset"], run.info["latent"], metric), str(reason))
        self.rows: list[dict[str, Any]] = []
        self.pct = f"{confidence * 100:g}%"
        self.controls: dict[str, bool | None] = {}  # control name -> passed (None: not run)

    def groups(self) -> list[tuple[str, int]]:
        """(dataset, latent) pairs of the talk's conclusions: every dataset but the controls."""
        return [(d, z) for d, z in dict.fromkeys(zip(self.df["dataset"], self.df["latent"]))
                if self.sources.get(d) not in CONTROL_SOURCES]

    def control_groups(self) -> list[tuple[str, int]]:
        return [(d, z) for d, z in dict.fromkeys(zip(self.df["dataset"], self.df["latent"]))
                if self.sources.get(d) in CONTROL_SOURCES]

    def failed_controls(self, metrics: Sequence[str]) -> list[str]:
        """The controls of these metrics that ran and did not pass."""
        names = {METRIC_CONTROLS[m] for m in metrics if m in METRIC_CONTROLS}
        return sorted(n for n in names if self.controls.get(n) is False)

    def priors(self, dataset: str, latent: int) -> set[str]:
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent)]
        return set(sub["prior"])

    def stat(self, dataset: str, latent: int, prior: str, metric: str) -> Stat:
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent) & (self.df["prior"] == prior)]
        if metric in sub.columns:
            values = pd.to_numeric(sub.set_index("seed")[metric], errors="coerce").dropna()
        else:
            values = pd.Series(dtype=float)
        n, mean, sd, lo, hi = t_interval(values, self.confidence, metric)
        return Stat(n, mean, sd, lo, hi, values)

    def reason(self, dataset: str, latent: int, metric: str) -> str:
        why = self.reasons.get((dataset, latent, metric))
        return f"{metric} is null ({why})" if why else f"{metric} was not reported by any run"

    def add(self, conclusion: int, dataset: str, latent: Any, metric: str, verdict: str, seeds: str,
            evidence: str, claim: str | None = None) -> None:
        assert verdict in VERDICTS, verdict
        self.rows.append({
            "conclusion": conclusion, "claim": claim or self.claims[conclusion], "dataset": dataset,
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
            outcome = pair_outcome(a, b, self.confidence, metric)
            outcomes.append(outcome)
            common = a.values.index.intersection(b.values.index)
            k = int((b.values[common] > a.values[common]).sum())
            n = int(len(common))
            claim = f"{low} < {high}" if lower_better else f"{high} > {low}"
            text = {
                "holds": f"{self.pct} interval of the difference excludes 0",
                "reversed": f"reversed, {self.pct} interval of the difference excludes 0",
                "overlap": f"{self.pct} interval of the difference contains 0",
                "no interval": "single seed, no interval",
            }[outcome]
            phrases.append(f"{claim}: {text}, holds in {k}/{n} seeds")
            if 0 < k < n:
                disagree.append(f"{claim} in {k} of {n} seeds")
        common = None  # seeds in which the whole ordering holds
        for p in priors:
            idx = st[p].values.index
            common = idx if common is None else common.intersection(idx)
        k_all = sum(all(st[h].values[s] > st[lw].values[s] for lw, h in pairs) for s in common)
        values = ", ".join(f"{p} {mean_sd(st[p])}" for p in order(priors, PRIORS))
        if any(st[p].n >= 2 and st[p].sd == 0 for p in priors):
            values += " (seeds that agree exactly get their rounding interval)"
        label = f"{catalogue.label(metric)} ({catalogue.unit(metric) or 'unitless'})"
        text = f"{label}: {values} [mean ± sd]; " + "; ".join(phrases)
        if disagree:
            text += "; seeds disagree: " + ", ".join(disagree)
        return {"outcomes": outcomes, "k": k_all, "n": len(common), "text": text}
