"""The evidence the verdicts read: the per-run table seen by prior, dataset and latent size.

``Evidence`` gives each prior's statistics of a metric over seeds (``stat``), the paired comparisons
of one verdict row as one Holm family with their text (``compare_all``, ``compare``), why a
comparison cannot be made (``missing``), the controls' results so far, and gathers the verdict rows
with the test, adjusted p-values and minimal detectable effects of their comparisons (``add``).
Not here: the numbers (``statistics``), the rules (``verdicts``), the control and conclusion judges
(``controls``, ``conclusions``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import math

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.runs import Run
from sparse_vae.report.statistics import Paired, compare_family, comparison_unit, t_interval
from sparse_vae.report.tables import fmt, fmt_p, fmt_sd, order
from sparse_vae.report.verdicts import (CONTROL_SOURCES, METRIC_CONTROLS, OUTCOME_TEXT, VERDICTS, Stat,
                                        claim_outcome, deciding, mean_sd)

__all__ = ["NO_DIFFERENCE_UNREACHABLE", "PRIORS", "Evidence", "describe_test", "headline", "p_text", "mde_text",
           "unreachable"]

#: the sentence a verdict row carries when a comparison's margin is below its minimal detectable
#: effect (a test checks that no such row lacks it).
NO_DIFFERENCE_UNREACHABLE = "cannot read 'no difference'"

#: the priors in report order (the evidence text lists them so).
PRIORS = ["normal", "laplace", "cauchy"]


class Evidence:
    """The per-run table seen by prior, with the rows of verdicts gathered so far."""

    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                 sources: dict[str, str], figure_names: dict[tuple, str],
                 baselines: dict[str, dict[str, float]] | None = None, claims: Mapping[str, str] | None = None,
                 generators: Mapping[str, str | None] | None = None,
                 estimators: Mapping[str, Any] | None = None):
        self.claims = dict(claims or {})  # conclusion id -> its claim (``conclusions.CONCLUSIONS``)
        #: the estimators' known-answer controls (``estimator_gate.read_estimator_controls``), None: not run
        self.estimators = estimators
        self.row_comparisons: list[list[Paired]] = []  # per row, the comparisons behind it
        self.fixed_noise: set[str] = set()  # datasets with a fixed noise sd (conclusion 1 leaves them out)
        self.reference_mse: dict[str, float] = {}  # dataset -> the mean-image predictor's MSE
        self.retina_detection = float("nan")  # the retina control's detection rate (controls.retina_fields)
        #: the centre-surround classifier's control as analysis wrote it (``controls.read_retina_control``)
        self.retina_control: Mapping[int, Any] | None = None
        self.generators = dict(generators or {})  # dataset -> prior family that generated it (or None)
        self.training_failed: set[str] = set()  # datasets whose training control failed
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

    def add(self, conclusion: str, dataset: str, latent: Any, metric: str, verdict: str, seeds: str,
            evidence: str, claim: str | None = None, results: Sequence[dict[str, Any]] = (),
            test: str | None = None, p_adjusted: str | None = None) -> None:
        """One verdict row; `results` (from ``compare_all``, or shaped like it) give its test, p-value,
        MDE and headline-effect columns (``headline``); `test` / `p_adjusted` override the text."""
        assert verdict in VERDICTS, verdict
        assert isinstance(conclusion, str) and conclusion in self.claims, conclusion
        if conclusion != "0" and dataset in self.training_failed:
            verdict = "control failed"
            evidence = ("Training control failed on this dataset (the prior that generated it is worse in "
                        "held-out likelihood than the normal prior): no finding. " + evidence)
        if conclusion != "0" and dataset:
            evidence += self.unconverged_note(dataset, latent)
        comparisons = [c for r in results for c in r["comparisons"]]
        evidence += unreachable(comparisons)
        self.row_comparisons.append(comparisons)
        self.rows.append({
            "conclusion": conclusion, "claim": claim or self.claims[conclusion], "dataset": dataset,
            "latent": latent, "metric": metric, "verdict": verdict, "seeds": seeds,
            "test": describe_test(comparisons) if test is None else test,
            "p_adjusted": p_text(results) if p_adjusted is None else p_adjusted, "mde": mde_text(results),
            **headline(results), "evidence": evidence,
        })

    def unconverged_note(self, dataset: str, latent: Any) -> str:
        """Names the runs of this group that did not converge by the stopping rule (hit the epoch
        cap), so no verdict rests on one silently; empty when all converged."""
        if "converged" not in self.df.columns:
            return ""
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["converged"] == False)]  # noqa: E712
        if latent != "":
            sub = sub[sub["latent"] == latent]
        if sub.empty:
            return ""
        runs = "; ".join(f"{prior} (seeds {', '.join(str(int(s)) for s in g['seed'])})"
                         for prior, g in sub.groupby("prior"))
        return (f" Rests on {len(sub)} run(s) that did not converge by the stopping rule (epoch cap reached): "
                f"{runs}.")

    def likelihood_metric(self, dataset: str, latent: int, priors: Sequence[str]) -> str | None:
        """The held-out likelihood these priors' runs all have: AIS (linear decoders; tighter) if so,
        else the IWAE bound; None when neither."""
        return next((m for m in ("ais_log_lik", "iwae_log_lik") if self.missing(dataset, latent, priors, [m]) is None),
                    None)

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
        """One metric's comparisons as a family of their own (``compare_all``)."""
        return self.compare_all(dataset, latent, [metric], pairs, lower_better)[0]

    def compare_all(self, dataset: str, latent: int, metrics: Sequence[str], pairs: Sequence[tuple[str, str]],
                    lower_better: bool = False) -> list[dict[str, Any]]:
        """Pairs (low, high) claim metric(high) > metric(low), for every metric: one Holm family (the
        comparisons of one verdict row). Per metric: outcomes, seed counts, comparisons, text."""
        priors = list(dict.fromkeys(p for pair in pairs for p in pair))
        stats = {(m, p): self.stat(dataset, latent, p, m) for m in metrics for p in priors}
        items = [(m, high, low, stats[m, high].values, stats[m, low].values) for m in metrics for low, high in pairs]
        family = iter(compare_family(items, self.confidence))
        return [self._result(m, [next(family) for _ in pairs], {p: stats[m, p] for p in priors}, lower_better)
                for m in metrics]

    def _result(self, metric: str, comparisons: list[Paired], st: dict[str, Stat], lower_better: bool) -> dict:
        outcomes, claims, phrases, disagree = [], [], [], []
        for c in comparisons:  # c.a is the prior claimed higher, c.b the lower
            outcome = claim_outcome(c, self.confidence)
            outcomes.append(outcome)
            claim = f"{c.b} < {c.a}" if lower_better else f"{c.a} > {c.b}"
            claims.append(claim)
            phrases.append(f"{claim}: {_comparison_text(c, outcome, self.pct)}")
            if 0 < c.wins < c.n:
                disagree.append(f"{claim} in {c.wins} of {c.n} seeds")
        priors = list(st)
        common = None  # seeds in which the whole ordering holds
        for p in priors:
            idx = st[p].values.index
            common = idx if common is None else common.intersection(idx)
        k_all = sum(all(st[c.a].values[s] > st[c.b].values[s] for c in comparisons) for s in common)
        values = ", ".join(f"{p} {mean_sd(st[p])}" for p in order(priors, PRIORS))
        if any(st[p].n >= 2 and st[p].sd == 0 for p in priors):
            values += " (seeds that agree exactly get their rounding interval)"
        label = f"{catalogue.label(metric)} ({catalogue.unit(metric) or 'unitless'})"
        text = f"{label}: {values} [mean ± sd]; " + "; ".join(phrases)
        if disagree:
            text += "; seeds disagree: " + ", ".join(disagree)
        return {"metric": metric, "outcomes": outcomes, "k": k_all, "n": len(common), "text": text,
                "comparisons": comparisons, "claims": claims}


def _comparison_text(c: Paired, outcome: str, pct: str) -> str:
    """One comparison in words: the mean paired difference, its interval, the test, the verdict word."""
    if c.n < 2:
        return OUTCOME_TEXT["no interval"] + (f" ({c.unpaired})" if c.unpaired else "")
    log = " log ratio" if comparison_unit(c.metric) == "log ratio" else ""
    text = (f"Δ{log} {fmt(c.mean, 3)} [{fmt(c.lo, 3)}, {fmt(c.hi, 3)}] ({pct} paired t interval, {c.n} paired seeds"
            + (f"; {c.unpaired} left out" if c.unpaired else "") + f"), {c.test} p {fmt_p(c.p)}, "
            f"Holm {fmt_p(c.p_adj)}: {OUTCOME_TEXT[outcome]}, holds in {c.wins}/{c.n} seeds")
    if outcome == "inconclusive" and c.margin is not None and c.mde > c.margin:
        mde = "∞" if math.isinf(c.mde) else fmt_sd(c.mde, c.mean)
        text += f" (minimal detectable effect {mde} > margin {fmt(c.margin)})"
    return text


def headline(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row's headline numbers: the deciding comparison's (``verdicts.deciding``) mean paired
    difference, its interval and unit; empty (NaN, "") without a tested comparison."""
    comparisons = [c for r in results for c in r["comparisons"]]
    outcomes = [o for r in results for o in r["outcomes"]]
    c = deciding(comparisons, outcomes)
    if c is None:
        return {"effect": math.nan, "effect_low": math.nan, "effect_high": math.nan, "unit": ""}
    unit = next((r.get("unit") for r in results if c in r["comparisons"] and r.get("unit")), None)
    return {"effect": c.mean, "effect_low": c.lo, "effect_high": c.hi, "unit": unit or comparison_unit(c.metric)}


def unreachable(comparisons: Sequence[Paired]) -> str:
    """The sentence for comparisons whose margin is below their minimal detectable effect (at POWER):
    such a row may still reach "no difference" by luck, but its design cannot be relied on to; empty
    when every tested comparison's margin is at least its MDE."""
    short = [c for c in comparisons if c.n >= 2 and c.margin is not None and not c.mde <= c.margin]
    if not short:
        return ""
    each = "; ".join(f"{c.metric} {c.a} vs {c.b}: MDE {'∞' if math.isinf(c.mde) else fmt(c.mde, 3)} > margin {fmt(c.margin, 3)}"
                     f"{'' if math.isnan(c.power) else f', power at the margin {c.power:.2f}'}" for c in short)
    return (f" This row {NO_DIFFERENCE_UNREACHABLE} reliably: its margin is below the minimal detectable effect "
            f"of the test run ({each}); a non-rejection is inconclusive, not evidence of no difference.")


def describe_test(comparisons: Sequence[Paired]) -> str:
    """The test of a verdict row's comparisons, the pairs it used and the family Holm corrects over."""
    tested = [c for c in comparisons if c.n >= 2]
    if not tested:
        return ""
    names = []
    for kind in dict.fromkeys(c.test for c in tested):
        ns = sorted({c.n for c in tested if c.test == kind})
        pairs = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        if kind == "sign-flip":
            what = "exact sign-flip permutation test" if ns[-1] <= 16 else "sign-flip test (2^16 random flips)"
        else:
            what = (f"paired t-test (the sign-flip test's smallest p, 2/2^{ns[0]}, cannot reach "
                    f"{tested[0].level:.3g})")
        names.append(f"{what} on {pairs} paired seeds")
    m = tested[0].family
    family = "no correction (one comparison)" if m == 1 else f"Holm over the {m} comparisons of this row"
    return f"{'; '.join(names)}; {family}; paired t interval"


def p_text(results: Sequence[dict[str, Any]]) -> str:
    """"claim: p" per comparison (Holm-adjusted), named by metric when the row has several."""
    named = len(results) > 1
    return "; ".join(f"{r['metric'] + ' ' if named else ''}{claim}: {fmt_p(c.p_adj)}"
                     for r in results for claim, c in zip(r["claims"], r["comparisons"]) if c.n >= 2)


def mde_text(results: Sequence[dict[str, Any]]) -> str:
    """The minimal detectable effect (80% power) of the test run per comparison, its power to detect
    a difference of one margin, and the metric's margin."""
    parts = []
    for r in results:
        cs = [(claim, c) for claim, c in zip(r["claims"], r["comparisons"]) if c.n >= 2]
        if not cs:
            continue
        margin = cs[0][1].margin
        each = ", ".join(f"{claim} {'∞' if math.isinf(c.mde) else fmt_sd(c.mde, c.mean)}"  # float noise shows as 0
                         + ("" if math.isnan(c.power) else f" (power {c.power:.2f} at the margin)") for claim, c in cs)
        parts.append(f"{r['metric']}: {each} (margin {fmt(margin) if margin is not None else 'none'})")
    return "; ".join(parts)
