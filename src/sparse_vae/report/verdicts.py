"""Verdicts on the talk's four conclusions, computed from the per-run table.

The rules, in one place (``pair_outcome``, ``classify``): a claim "metric(high) > metric(low)" for
a pair of priors *holds* when the two priors' t-intervals over seeds are disjoint in the claimed
direction, is *reversed* when they are disjoint the other way, and *overlaps* otherwise. A
conclusion made of several such pairs is "supported" when every pair holds, "partly supported"
when some hold, "not supported" when none holds and some are reversed, "inconclusive" when all
overlap or when a prior has a single seed (no interval). Per-seed counts of the ordering are
always reported, and seeds that disagree are named as such. Missing runs or metrics give
"not tested" with the reason. Each conclusion is one function registered in ``CONCLUSIONS``.
Not here: the tables (``tables``), figures, HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.runs import Run
from sparse_vae.report.tables import fmt, fmt_sd, order, t_interval

__all__ = ["CONCLUSIONS", "NATURAL_SOURCES", "VERDICTS", "VERDICT_COLUMNS", "classify", "compute_verdicts",
           "pair_outcome"]

VERDICTS = ("supported", "partly supported", "not supported", "inconclusive", "not tested")
VERDICT_COLUMNS = ["conclusion", "claim", "dataset", "latent", "metric", "verdict", "seeds", "evidence"]
NATURAL_SOURCES = {"natural", "cifar"}
PRIORS = ["normal", "laplace", "cauchy"]


# -- the rules -----------------------------------------------------------------------------------
@dataclass
class _Stat:
    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    values: pd.Series = field(repr=False)  # indexed by seed


def pair_outcome(low: _Stat, high: _Stat) -> str:
    """Whether "high > low" holds, is reversed, overlaps, or has no interval (a single seed)."""
    if low.n < 2 or high.n < 2:
        return "no interval"
    if low.hi < high.lo:
        return "holds"
    if low.lo > high.hi:
        return "reversed"
    return "overlap"


def classify(outcomes: Sequence[str]) -> str:
    """The verdict of a conclusion from the outcomes of its pairs."""
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


def note(pct: str, verdict: str, outcomes: Sequence[str]) -> str:
    """Why a verdict is not plain: appended to the evidence."""
    if verdict == "inconclusive" and "no interval" in outcomes:
        return " Inconclusive: a prior has a single seed, so there is no interval over seeds."
    if verdict == "inconclusive":
        return f" Inconclusive: the {pct} intervals overlap."
    if verdict == "partly supported":
        return f" Partly: only some comparisons have separated {pct} intervals."
    return ""


def mean_sd(s: _Stat) -> str:
    if s.n == 0:
        return "no value"
    if s.n == 1:
        return f"{fmt(s.mean)} (1 seed)"
    return f"{fmt(s.mean)} ± {fmt_sd(s.sd, s.mean)} (n = {s.n})"


# -- the evidence: statistics of a metric per prior, and pairwise comparisons -------------------
class Evidence:
    """The per-run table seen by prior, with the rows of verdicts gathered so far."""

    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                 sources: dict[str, str], figure_names: dict[tuple, str]):
        self.df, self.confidence, self.sources, self.figures = df, confidence, sources, figure_names
        self.reasons: dict[tuple[str, int, str], str] = {}
        for run in runs:
            for metric, reason in run.not_applicable.items():
                self.reasons.setdefault((run.info["dataset"], run.info["latent"], metric), str(reason))
        self.rows: list[dict[str, Any]] = []
        self.pct = f"{confidence * 100:g}%"

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
            outcome = pair_outcome(a, b)
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
        common = None  # seeds in which the whole ordering holds
        for p in priors:
            idx = st[p].values.index
            common = idx if common is None else common.intersection(idx)
        k_all = sum(all(st[h].values[s] > st[lw].values[s] for lw, h in pairs) for s in common)
        values = ", ".join(f"{p} {mean_sd(st[p])}" for p in order(priors, PRIORS))
        label = f"{catalogue.label(metric)} ({catalogue.unit(metric) or 'unitless'})"
        text = f"{label}: {values} [mean ± sd]; " + "; ".join(phrases)
        if disagree:
            text += "; seeds disagree: " + ", ".join(disagree)
        return {"outcomes": outcomes, "k": k_all, "n": len(common), "text": text}


# -- the four conclusions ---------------------------------------------------------------------------

def reconstruction(ev: Evidence) -> None:
    """Conclusion 1: MSE normal < laplace < cauchy, with the ELBO ordering reported alongside."""
    pairs = [("normal", "laplace"), ("laplace", "cauchy")]
    for dataset, latent in ev.groups():
        why = ev.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["mse"])
        if why:
            ev.add(1, dataset, latent, "mse", "not tested", "", f"Not tested: {why}.")
            continue
        mse = ev.compare(dataset, latent, "mse", pairs, lower_better=True)
        verdict = classify(mse["outcomes"])
        evidence = mse["text"] + f". Ordering holds in {mse['k']}/{mse['n']} seeds."
        if ev.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["elbo"]) is None:
            elbo = ev.compare(dataset, latent, "elbo", [("laplace", "normal"), ("cauchy", "laplace")])
            evidence += (f" Also {elbo['text']}; ELBO ordering normal > laplace > cauchy "
                         f"holds in {elbo['k']}/{elbo['n']} seeds.")
        ev.add(1, dataset, latent, "mse", verdict, f"{mse['k']}/{mse['n']}",
               evidence + note(ev.pct, verdict, mse["outcomes"]))


def informativeness(ev: Evidence) -> None:
    """Conclusion 2: normal < laplace < cauchy in probe accuracy and label MI, or template correlation."""
    pairs = [("normal", "laplace"), ("normal", "cauchy"), ("laplace", "cauchy")]
    all_priors = ["normal", "laplace", "cauchy"]
    for dataset, latent in ev.groups():
        have = ev.priors(dataset, latent)
        if not set(all_priors) <= have:
            why = ev.missing(dataset, latent, all_priors, [])
            ev.add(2, dataset, latent, "", "not tested", "", f"Not tested: {why}.")
            continue
        label_metrics = [m for m in ("probe_accuracy", "mi_label_sum")
                         if ev.missing(dataset, latent, all_priors, [m]) is None]
        metrics = label_metrics or (["template_weight_corr"] if ev.missing(
            dataset, latent, all_priors, ["template_weight_corr"]) is None else [])
        if not metrics:
            why = "; ".join(ev.missing(dataset, latent, all_priors, [m]) or "" for m in
                            ("probe_accuracy", "mi_label_sum", "template_weight_corr"))
            ev.add(2, dataset, latent, "probe_accuracy, mi_label_sum, template_weight_corr",
                   "not tested", "", f"Not tested: no labels or ground truth ({why}).")
            continue
        results = [ev.compare(dataset, latent, m, pairs) for m in metrics]
        outcomes = [o for r in results for o in r["outcomes"]]
        verdict = classify(outcomes)
        seeds = ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results))
        evidence = " ".join(
            f"{r['text']}. Full ordering normal < laplace < cauchy holds in {r['k']}/{r['n']} seeds."
            for r in results)
        ev.add(2, dataset, latent, ", ".join(metrics), verdict, seeds,
               evidence + note(ev.pct, verdict, outcomes))


def receptive_fields(ev: Evidence) -> None:
    """Conclusion 3: laplace's receptive fields more localised than normal's, natural images only."""
    natural = [(d, z) for d, z in ev.groups() if ev.sources.get(d) in NATURAL_SOURCES]
    if not natural:
        ev.add(3, "", "", "rf_localization", "not tested", "",
               "Not tested: no natural-image dataset (source natural or cifar) in the study "
               f"(sources: {', '.join(f'{d}={s}' for d, s in ev.sources.items()) or 'none'}).")
        return
    for dataset, latent in natural:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["rf_localization"])
        if why:
            ev.add(3, dataset, latent, "rf_localization", "not tested", "", f"Not tested: {why}.")
            continue
        r = ev.compare(dataset, latent, "rf_localization", [("normal", "laplace")])
        verdict = classify(r["outcomes"])
        evidence = r["text"] + "."
        cauchy = ev.stat(dataset, latent, "cauchy", "rf_localization")
        if cauchy.n:
            evidence += f" For reference cauchy {mean_sd(cauchy)}."
        fig = ev.figures.get(("receptive_fields", dataset, latent))
        if fig:
            evidence += f" See figure {fig}."
        ev.add(3, dataset, latent, "rf_localization", verdict, f"{r['k']}/{r['n']}",
               evidence + note(ev.pct, verdict, r["outcomes"]))


def one_dimension(ev: Evidence) -> None:
    """Conclusion 4: laplace uses a single dimension when the latent space is 2-D."""
    two_d = [(d, z) for d, z in ev.groups() if z == 2]
    if not two_d:
        latents = sorted(set(ev.df["latent"]))
        ev.add(4, "", 2, "dims_used_2d", "not tested", "",
               f"Not tested: no runs with latent = 2 in the study (latent sizes: "
               f"{', '.join(map(str, latents))}).")
        return
    for dataset, latent in two_d:
        why = ev.missing(dataset, latent, ["laplace"], ["dims_used_2d"])
        if why:
            ev.add(4, dataset, latent, "dims_used_2d", "not tested", "", f"Not tested: {why}.")
            continue
        lap = ev.stat(dataset, latent, "laplace", "dims_used_2d")
        k, n = int((lap.values == 1).sum()), lap.n
        per_seed = ", ".join(f"seed {s}: {fmt(v)}" for s, v in lap.values.items())
        evidence = (f"laplace uses one dimension in {k}/{n} seeds ({per_seed}); "
                    f"dims used {mean_sd(lap)} [mean ± sd]")
        for other in ("normal", "cauchy"):
            o = ev.stat(dataset, latent, other, "dims_used_2d")
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
        ev.add(4, dataset, latent, "dims_used_2d", verdict, f"{k}/{n}", evidence)


#: number -> (claim, the talk's words, the function that judges it), in report order.
CONCLUSIONS: dict[int, tuple[str, str, Callable[[Evidence], None]]] = {
    1: ("reconstruction: MSE normal < laplace < cauchy",
        "All 3 do fairly well at reproduction across all tasks. VAE is best, laplace VAE slightly "
        "worse, cauchy even worse (mostly noticeable only on CIFAR task)", reconstruction),
    2: ("informativeness: normal < laplace < cauchy",
        "Laplace VAE and Cauchy VAE have significantly more informative latent dimensions in the "
        "MNIST and CIFAR tasks. Cauchy VAE is noticeably better than Laplace in both cases.", informativeness),
    3: ("laplace learns localised receptive fields on natural images",
        "Laplace CIFAR recreates something approaching a biologically realistic retina receptive field.",
        receptive_fields),
    4: ("laplace uses one dimension when latent = 2",
        "Laplace VAE has a tendency to only use 1 dimension in the 2 dimension test outputs.", one_dimension),
}


def compute_verdicts(df: pd.DataFrame, runs: Sequence[Run], confidence: float, sources: dict[str, str],
                     figure_names: dict[tuple, str] | None = None) -> pd.DataFrame:
    """The verdict table (columns VERDICT_COLUMNS) on the talk's four conclusions.

    ``sources`` maps dataset -> source (to find natural-image datasets); ``figure_names`` maps
    ("receptive_fields", dataset, latent) -> figure file name cited as evidence.
    """
    ev = Evidence(df, runs, confidence, sources, figure_names or {})
    for _, _, judge in CONCLUSIONS.values():
        judge(ev)
    return pd.DataFrame(ev.rows, columns=VERDICT_COLUMNS)
