"""Verdicts: the positive control first, then the talk's four conclusions and a sparsity verdict,
computed from the per-run table.

The rules are written once, in ``VERDICT_RULES`` (the HTML shows that table): a claim "metric of
prior A beats prior B" *holds* when the two priors' t-intervals over seeds are separated in the
claimed direction, is *reversed* when separated the other way, *overlaps* otherwise (``pair_outcome``);
``classify`` turns a conclusion's comparisons into one verdict. A metric whose control did not pass
gives "control failed" instead of a finding (``METRIC_CONTROLS``, ``control_result``). Per-seed
counts are always reported. Each conclusion is one function registered in ``CONCLUSIONS``.
Not here: the tables (``tables``), the pairwise table (``pairwise``), figures, HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.runs import Run
from sparse_vae.report.tables import fmt, fmt_sd, order, t_interval

__all__ = ["CONCLUSIONS", "CONTROL_SOURCES", "METRIC_CONTROLS", "NATURAL_SOURCES", "VERDICTS", "VERDICT_COLUMNS",
           "VERDICT_RULES", "classify", "compute_verdicts", "control_result", "control_status", "pair_outcome"]

#: the verdict vocabulary and its rules, in one place (shown in the report).
VERDICT_RULES: dict[str, str] = {
    "supported": "every comparison holds: the intervals over seeds are separated in the claimed direction",
    "partly supported": "some comparisons hold, the others overlap; none is reversed",
    "contradicted": "at least one comparison is reversed with separated intervals (whatever the others do)",
    "inconclusive": "every comparison's intervals overlap",
    "not tested": "runs or values are missing, or a prior has a single seed (no interval over seeds)",
    "control failed": "the positive control of a metric the conclusion relies on did not pass, so the "
                      "metric's verdict would not be evidence",
}
VERDICTS = tuple(VERDICT_RULES)
VERDICT_COLUMNS = ["conclusion", "claim", "dataset", "latent", "metric", "verdict", "seeds", "evidence"]
NATURAL_SOURCES = {"natural", "cifar"}
#: sources of positive-control datasets (not part of the talk's conclusions).
CONTROL_SOURCES = {"sparse_linear"}
PRIORS = ["normal", "laplace", "cauchy"]
#: metric -> the control that must pass before a verdict may rest on it. "dictionary_recovery" is the
#: sparse_linear control; "receptive_fields" the sparse-coding (dictionary-learning) baseline's fields.
METRIC_CONTROLS = {
    "template_matched_cos": "dictionary_recovery", "template_weight_corr": "dictionary_recovery",
    "probe_accuracy": "dictionary_recovery", "probe_accuracy_best_dim": "dictionary_recovery",
    "mi_label_max": "dictionary_recovery", "rf_localization": "receptive_fields",
    "rf_gabor_fraction": "receptive_fields", "rf_dog_fraction": "receptive_fields",
}
#: the dictionary-recovery control's pass mark (laplace's matched |cos| in every seed).
CONTROL_MIN_COS = 0.75
#: the receptive-field control's pass mark: the sparse-coding baseline's Gabor-like atom fraction
#: (Olshausen & Field's dictionaries are mostly localised oriented fields; below this the patches
#: cannot show whether a VAE learns them).
CONTROL_MIN_GABOR = 0.6


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
    """Whether "high > low" holds, is reversed, overlaps, or has no interval (a single seed).

    Intervals that only touch count as separated: identical seeds give rounding intervals
    (``tables.t_interval``), and counts 1 and 2 then meet at 1.5."""
    if low.n < 2 or high.n < 2:
        return "no interval"
    if low.hi <= high.lo:
        return "holds"
    if low.lo >= high.hi:
        return "reversed"
    return "overlap"


def classify(outcomes: Sequence[str], control_failed: bool = False) -> str:
    """The verdict of a conclusion from the outcomes of its comparisons (``VERDICT_RULES``)."""
    if control_failed:
        return "control failed"
    if not outcomes or "no interval" in outcomes:
        return "not tested"
    if "reversed" in outcomes:
        return "contradicted"
    if all(o == "holds" for o in outcomes):
        return "supported"
    if "holds" in outcomes:
        return "partly supported"
    return "inconclusive"


def note(pct: str, verdict: str, outcomes: Sequence[str]) -> str:
    """Why a verdict is not plain: appended to the evidence."""
    if verdict == "not tested" and "no interval" in outcomes:
        return " Not tested: a prior has a single seed, so there is no interval over seeds."
    if verdict == "inconclusive":
        return f" Inconclusive: the {pct} intervals overlap."
    if verdict == "partly supported":
        return f" Partly: only some comparisons have separated {pct} intervals, none is reversed."
    if verdict == "contradicted":
        return f" Contradicted: a comparison is reversed with separated {pct} intervals."
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
                 sources: dict[str, str], figure_names: dict[tuple, str],
                 baselines: dict[str, dict[str, float]] | None = None):
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

    def stat(self, dataset: str, latent: int, prior: str, metric: str) -> _Stat:
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent) & (self.df["prior"] == prior)]
        if metric in sub.columns:
            values = pd.to_numeric(sub.set_index("seed")[metric], errors="coerce").dropna()
        else:
            values = pd.Series(dtype=float)
        n, mean, sd, lo, hi = t_interval(values, self.confidence, metric)
        return _Stat(n, mean, sd, lo, hi, values)

    def reason(self, dataset: str, latent: int, metric: str) -> str:
        why = self.reasons.get((dataset, latent, metric))
        return f"{metric} is null ({why})" if why else f"{metric} was not reported by any run"

    def add(self, conclusion: int, dataset: str, latent: Any, metric: str, verdict: str, seeds: str,
            evidence: str, claim: str | None = None) -> None:
        assert verdict in VERDICTS, verdict
        self.rows.append({
            "conclusion": conclusion, "claim": claim or CONCLUSIONS[conclusion][0], "dataset": dataset,
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
        if any(st[p].n >= 2 and st[p].sd == 0 for p in priors):
            values += " (seeds that agree exactly get their rounding interval)"
        label = f"{catalogue.label(metric)} ({catalogue.unit(metric) or 'unitless'})"
        text = f"{label}: {values} [mean ± sd]; " + "; ".join(phrases)
        if disagree:
            text += "; seeds disagree: " + ", ".join(disagree)
        return {"outcomes": outcomes, "k": k_all, "n": len(common), "text": text}


# -- controls: they run first; a failed one turns the verdicts relying on its metrics into "control failed"

def control_result(ev: Evidence, name: str, passed: bool | None) -> None:
    """Record a control's result (True passed, False failed, None not run) for the verdicts after it.

    The hook for every control: a control function judges its datasets, adds its own verdict row
    and calls this; ``METRIC_CONTROLS`` says which metrics depend on which control."""
    previous = ev.controls.get(name)
    ev.controls[name] = passed if previous is None else (previous and bool(passed))


def dictionary_recovery(ev: Evidence) -> None:
    """Control: on x = W z + noise (Laplace z), laplace's decoder recovers W (matched |cos| >= 0.75 in
    every seed) and normal's does worse with separated intervals; FastICA shown as the reference."""
    groups = ev.control_groups()
    if not groups:
        ev.add(0, "", "", "template_matched_cos", "not tested", "",
               "Not tested: no positive-control dataset (source sparse_linear) in the study.")
        control_result(ev, "dictionary_recovery", None)
        return
    for dataset, latent in groups:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["template_matched_cos"])
        if why:
            ev.add(0, dataset, latent, "template_matched_cos", "not tested", "", f"Not tested: {why}.")
            control_result(ev, "dictionary_recovery", None)
            continue
        r = ev.compare(dataset, latent, "template_matched_cos", [("normal", "laplace")])
        lap = ev.stat(dataset, latent, "laplace", "template_matched_cos")
        k = int((lap.values >= CONTROL_MIN_COS).sum())
        passed = r["outcomes"] == ["holds"] and k == lap.n and lap.n >= 2
        evidence = (f"{r['text']}; laplace >= {CONTROL_MIN_COS} in {k}/{lap.n} seeds.")
        ica = ev.stat(dataset, latent, "laplace", "ica_matched_cos")
        if ica.n:
            evidence += f" FastICA reference {mean_sd(ica)}."
        if r["outcomes"] == ["no interval"]:
            verdict, passed = "not tested", None
        else:
            verdict = "supported" if passed else "control failed"
        if verdict == "control failed":
            evidence += (" The control failed: verdicts on informativeness and template recovery say "
                         "'control failed'.")
        ev.add(0, dataset, latent, "template_matched_cos", verdict, f"{k}/{lap.n}", evidence)
        control_result(ev, "dictionary_recovery", passed)


FIELD_CONTROL_CLAIM = (f"control: sparse coding (dictionary learning) of the same patches gives Gabor-like "
                       f"fields (>= {CONTROL_MIN_GABOR:g} of its atoms)")


def sparse_coding_fields(ev: Evidence) -> None:
    """Control: the dictionary-learning baseline of each natural-image dataset that has one finds
    mostly localised oriented (Gabor-like) atoms; else the patches cannot test conclusion 3."""
    for dataset, fields in ev.baselines.items():
        if ev.sources.get(dataset) not in NATURAL_SOURCES:
            continue
        passed = fields["gabor_fraction"] >= CONTROL_MIN_GABOR
        ev.field_controls[dataset] = passed
        evidence = (f"Dictionary-learning baseline ({fields['n_fields']:.0f} atoms): Gabor-like "
                    f"{fields['gabor_fraction']:.3f}, centre-surround {fields['dog_fraction']:.3f}, extended "
                    f"{fields['extended_fraction']:.3f}, unfitted {fields['unfitted_fraction']:.3f} "
                    f"(pass mark: Gabor-like >= {CONTROL_MIN_GABOR:g}).")
        if not passed:
            evidence += f" The control failed: conclusion 3 on {dataset} says 'control failed'."
        ev.add(0, dataset, "", "baseline gabor_fraction", "supported" if passed else "control failed", "",
               evidence, claim=FIELD_CONTROL_CLAIM)
        control_result(ev, "receptive_fields", passed)


#: control name -> the function that judges it, in report order (another control: one more entry).
CONTROLS: dict[str, Callable[[Evidence], None]] = {"dictionary_recovery": dictionary_recovery,
                                                   "receptive_fields": sparse_coding_fields}


# -- the talk's four conclusions, and sparsity ----------------------------------------------------

def _judged(ev: Evidence, number: int, dataset: str, latent: int, metrics: Sequence[str],
            results: Sequence[dict[str, Any]], summary: str) -> None:
    """Add a verdict row from the comparisons of `metrics` (control failures override)."""
    outcomes = [o for r in results for o in r["outcomes"]]
    failed = ev.failed_controls(metrics)
    verdict = classify(outcomes, control_failed=bool(failed))
    seeds = ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results))
    evidence = " ".join(f"{r['text']}. {summary} holds in {r['k']}/{r['n']} seeds." for r in results)
    if failed:
        evidence += f" Control failed ({', '.join(failed)}): no finding from these metrics."
    ev.add(number, dataset, latent, ", ".join(metrics), verdict, seeds,
           evidence + ("" if failed else note(ev.pct, verdict, outcomes)))


def reconstruction(ev: Evidence) -> None:
    """Conclusion 1: MSE normal < laplace < cauchy (well defined for every posterior); IWAE alongside."""
    pairs = [("normal", "laplace"), ("laplace", "cauchy")]
    for dataset, latent in ev.groups():
        why = ev.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["mse"])
        if why:
            ev.add(1, dataset, latent, "mse", "not tested", "", f"Not tested: {why}.")
            continue
        mse = ev.compare(dataset, latent, "mse", pairs, lower_better=True)
        verdict = classify(mse["outcomes"])
        evidence = mse["text"] + f". Ordering holds in {mse['k']}/{mse['n']} seeds."
        if ev.missing(dataset, latent, ["normal", "laplace", "cauchy"], ["iwae_log_lik"]) is None:
            iwae = ev.compare(dataset, latent, "iwae_log_lik", [("laplace", "normal"), ("cauchy", "laplace")])
            evidence += (f" Likelihood: {iwae['text']}; IWAE ordering normal > laplace > cauchy "
                         f"holds in {iwae['k']}/{iwae['n']} seeds.")
        ev.add(1, dataset, latent, "mse", verdict, f"{mse['k']}/{mse['n']}",
               evidence + note(ev.pct, verdict, mse["outcomes"]))


def informativeness(ev: Evidence) -> None:
    """Conclusion 2: normal < laplace < cauchy in joint probe accuracy and best-dim MI, or template recovery."""
    pairs = [("normal", "laplace"), ("normal", "cauchy"), ("laplace", "cauchy")]
    all_priors = ["normal", "laplace", "cauchy"]
    candidates = ("probe_accuracy", "mi_label_max", "template_matched_cos")
    for dataset, latent in ev.groups():
        if not set(all_priors) <= ev.priors(dataset, latent):
            why = ev.missing(dataset, latent, all_priors, [])
            ev.add(2, dataset, latent, "", "not tested", "", f"Not tested: {why}.")
            continue
        label_metrics = [m for m in candidates[:2] if ev.missing(dataset, latent, all_priors, [m]) is None]
        metrics = label_metrics or [m for m in candidates[2:] if ev.missing(dataset, latent, all_priors, [m]) is None]
        if not metrics:
            why = "; ".join(ev.missing(dataset, latent, all_priors, [m]) or "" for m in candidates)
            ev.add(2, dataset, latent, ", ".join(candidates), "not tested", "",
                   f"Not tested: no labels or ground truth ({why}).")
            continue
        results = [ev.compare(dataset, latent, m, pairs) for m in metrics]
        _judged(ev, 2, dataset, latent, metrics, results, "Full ordering normal < laplace < cauchy")


def receptive_fields(ev: Evidence) -> None:
    """Conclusion 3: laplace's receptive fields more localised than normal's, natural images only:
    from the field fits (Gabor-like and centre-surround fractions) where the runs have them (linear
    decoder), else from the localization index."""
    natural = [(d, z) for d, z in ev.groups() if ev.sources.get(d) in NATURAL_SOURCES]
    if not natural:
        ev.add(3, "", "", "rf_localization", "not tested", "",
               "Not tested: no natural-image dataset (source natural or cifar) in the study "
               f"(sources: {', '.join(f'{d}={s}' for d, s in ev.sources.items()) or 'none'}).")
        return
    for dataset, latent in natural:
        if ev.missing(dataset, latent, ["normal", "laplace"], ["rf_gabor_fraction"]) is None:
            field_shapes(ev, dataset, latent)
        else:
            localization(ev, dataset, latent)


def _reference(ev: Evidence, dataset: str, latent: int, metric: str) -> str:
    """The other priors' values of a metric (cauchy and any other entry), for reference."""
    others = sorted(ev.priors(dataset, latent) - {"normal", "laplace"})
    values = [f"{p} {mean_sd(ev.stat(dataset, latent, p, metric))}" for p in others
              if ev.stat(dataset, latent, p, metric).n]
    return f" For reference, {catalogue.label(metric)}: {', '.join(values)}." if values else ""


def field_shapes(ev: Evidence, dataset: str, latent: int) -> None:
    """Conclusion 3 from the field fits: laplace > normal in Gabor-like fraction, and in centre-surround
    fraction where any run has such fields (a metric zero in every run is evidence of nothing)."""
    metrics = ["rf_gabor_fraction"]
    dog = [ev.stat(dataset, latent, p, "rf_dog_fraction") for p in ("normal", "laplace")]
    if all(s.n for s in dog) and any((s.values > 0).any() for s in dog):
        metrics.append("rf_dog_fraction")
    results = [ev.compare(dataset, latent, m, [("normal", "laplace")]) for m in metrics]
    failed = ev.field_controls.get(dataset) is False
    outcomes = [o for r in results for o in r["outcomes"]]
    verdict = classify(outcomes, control_failed=failed)
    evidence = " ".join(f"{r['text']}." for r in results)
    if len(metrics) == 1:
        evidence += " No centre-surround field in any normal or laplace run (not evidence either way)."
    for metric in metrics:
        evidence += _reference(ev, dataset, latent, metric)
    base = ev.baselines.get(dataset)
    evidence += (f" Sparse-coding baseline: Gabor-like {base['gabor_fraction']:.3f}, centre-surround "
                 f"{base['dog_fraction']:.3f}." if base else " No sparse-coding baseline for this dataset.")
    fig = ev.figures.get(("field_fractions", dataset, latent))
    if fig:
        evidence += f" See figure {fig}."
    if failed:
        evidence += " Control failed (the baseline's fields are not Gabor-like): no finding."
    ev.add(3, dataset, latent, ", ".join(metrics), verdict, ", ".join(f"{m} {r['k']}/{r['n']}"
                                                                      for m, r in zip(metrics, results)),
           evidence + ("" if failed else note(ev.pct, verdict, outcomes)))


def localization(ev: Evidence, dataset: str, latent: int) -> None:
    """Conclusion 3 from the localization index (runs without field fits: an MLP decoder)."""
    why = ev.missing(dataset, latent, ["normal", "laplace"], ["rf_localization"])
    if why:
        ev.add(3, dataset, latent, "rf_localization", "not tested", "", f"Not tested: {why}.")
        return
    r = ev.compare(dataset, latent, "rf_localization", [("normal", "laplace")])
    failed = ["receptive_fields"] if ev.field_controls.get(dataset) is False else []
    verdict = classify(r["outcomes"], control_failed=bool(failed))
    evidence = r["text"] + "."
    cauchy = ev.stat(dataset, latent, "cauchy", "rf_localization")
    if cauchy.n:
        evidence += f" For reference cauchy {mean_sd(cauchy)}."
    fig = ev.figures.get(("receptive_fields", dataset, latent))
    if fig:
        evidence += f" See figure {fig}."
    if failed:
        evidence += f" Control failed ({', '.join(failed)})."
    ev.add(3, dataset, latent, "rf_localization", verdict, f"{r['k']}/{r['n']}",
           evidence + ("" if failed else note(ev.pct, verdict, r["outcomes"])))


def _near_one(lap: _Stat) -> str:
    """Whether laplace's dims-used interval lies where a count rounds to 1 ([0.5, 1.5])."""
    if lap.n < 2:
        return "no interval"
    if 0.5 <= lap.lo and lap.hi <= 1.5:
        return "holds"
    if lap.lo >= 1.5 or lap.hi <= 0.5:
        return "reversed"
    return "overlap"


def one_dimension(ev: Evidence) -> None:
    """Conclusion 4: with a 2-D latent laplace uses fewer dimensions than normal, and about one."""
    two_d = [(d, z) for d, z in ev.groups() if z == 2]
    if not two_d:
        latents = sorted(set(ev.df["latent"]))
        ev.add(4, "", 2, "dims_used_2d", "not tested", "",
               f"Not tested: no runs with latent = 2 in the study (latent sizes: "
               f"{', '.join(map(str, latents))}).")
        return
    for dataset, latent in two_d:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["dims_used_2d"])
        if why:
            ev.add(4, dataset, latent, "dims_used_2d", "not tested", "", f"Not tested: {why}.")
            continue
        r = ev.compare(dataset, latent, "dims_used_2d", [("laplace", "normal")])
        lap = ev.stat(dataset, latent, "laplace", "dims_used_2d")
        one = _near_one(lap)
        outcomes = r["outcomes"] + [one]
        k1 = int((lap.values == 1).sum())
        per_seed = ", ".join(f"seed {s}: {fmt(v)}" for s, v in lap.values.items())
        evidence = (f"{r['text']} (fewer is the claim). laplace uses one dimension in {k1}/{lap.n} seeds "
                    f"({per_seed}); its interval {'lies within' if one == 'holds' else 'is not within'} "
                    f"[0.5, 1.5].")
        for other in ("normal", "cauchy"):
            o = ev.stat(dataset, latent, other, "dims_used_2d")
            if o.n:
                evidence += f" {other}: one dimension in {int((o.values == 1).sum())}/{o.n} seeds."
        verdict = classify(outcomes)
        ev.add(4, dataset, latent, "dims_used_2d", verdict, f"{r['k']}/{r['n']}",
               evidence + note(ev.pct, verdict, outcomes))


def sparsity(ev: Evidence) -> None:
    """The study's premise: laplace codes are sparser than normal (Hoyer and near-zero fraction)."""
    for dataset, latent in ev.groups():
        metrics = ["hoyer", "frac_near_zero"]
        if not {"normal", "laplace"} <= ev.priors(dataset, latent):
            why = ev.missing(dataset, latent, ["normal", "laplace"], [])
            ev.add(5, dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        usable = [m for m in metrics if ev.missing(dataset, latent, ["normal", "laplace"], [m]) is None]
        if not usable:
            why = "; ".join(ev.missing(dataset, latent, ["normal", "laplace"], [m]) or "" for m in metrics)
            ev.add(5, dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        results = [ev.compare(dataset, latent, m, [("normal", "laplace")]) for m in usable]
        _judged(ev, 5, dataset, latent, usable, results, "laplace > normal")


def controls(ev: Evidence) -> None:
    """Every registered control, first."""
    for judge in CONTROLS.values():
        judge(ev)


#: number -> (claim, the talk's words, the function that judges it), in report order.
CONCLUSIONS: dict[int, tuple[str, str, Callable[[Evidence], None]]] = {
    0: ("control: laplace recovers a known sparse dictionary (matched |cos| >= 0.75 every seed), normal does worse",
        "(not in the talk) positive control: the setup can see a real difference", controls),
    1: ("reconstruction: MSE normal < laplace < cauchy",
        "All 3 do fairly well at reproduction across all tasks. VAE is best, laplace VAE slightly "
        "worse, cauchy even worse (mostly noticeable only on CIFAR task)", reconstruction),
    2: ("informativeness: normal < laplace < cauchy",
        "Laplace VAE and Cauchy VAE have significantly more informative latent dimensions in the "
        "MNIST and CIFAR tasks. Cauchy VAE is noticeably better than Laplace in both cases.", informativeness),
    3: ("laplace learns localised receptive fields on natural images",
        "Laplace CIFAR recreates something approaching a biologically realistic retina receptive field.",
        receptive_fields),
    4: ("laplace uses fewer dimensions than normal, about one, when latent = 2",
        "Laplace VAE has a tendency to only use 1 dimension in the 2 dimension test outputs.", one_dimension),
    5: ("sparsity: laplace codes are sparser than normal (Hoyer, near-zero fraction)",
        "(the study's premise) a Laplace prior gives sparse codes", sparsity),
}


def compute_verdicts(df: pd.DataFrame, runs: Sequence[Run], confidence: float, sources: dict[str, str],
                     figure_names: dict[tuple, str] | None = None,
                     baselines: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """The verdict table (columns VERDICT_COLUMNS): controls first, then the conclusions.

    ``sources`` maps dataset -> source (natural-image and control datasets); ``figure_names`` maps
    (kind, dataset, latent) -> figure file name cited as evidence; ``baselines`` maps dataset -> its
    sparse-coding baseline's field fractions (``runs.load_baselines``).
    """
    ev = Evidence(df, runs, confidence, sources, figure_names or {}, baselines)
    for _, _, judge in CONCLUSIONS.values():
        judge(ev)
    return pd.DataFrame(ev.rows, columns=VERDICT_COLUMNS)


def control_status(df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                   sources: dict[str, str], baselines: dict[str, dict[str, float]] | None = None
                   ) -> dict[str, bool | None]:
    """Each control's result (True passed, False failed, None not run), as the verdicts see them."""
    ev = Evidence(df, runs, confidence, sources, {}, baselines)
    controls(ev)
    return dict(ev.controls)
