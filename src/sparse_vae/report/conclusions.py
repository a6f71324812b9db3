"""The talk's four conclusions and the sparsity premise, judged from the per-run table, controls
first; ``compute_verdicts`` (the verdict table) and ``control_status`` (the controls alone).

Each conclusion is one function registered in ``CONCLUSIONS``; a metric whose control did not pass
gives "control failed" instead of a finding. Not here: the rules (``verdicts``), the statistics
(``statistics``, ``evidence``), the controls (``controls``), the pairwise table (``pairwise``), figures, HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.controls import controls
from sparse_vae.report.evidence import Evidence
from sparse_vae.report.runs import Run
from sparse_vae.report.tables import fmt
from sparse_vae.report.verdicts import NATURAL_SOURCES, VERDICT_COLUMNS, Stat, classify, mean_sd, note

__all__ = ["CONCLUSIONS", "compute_verdicts", "control_status"]


def _judged(ev: Evidence, number: int, dataset: str, latent: int, metrics: Sequence[str],
            results: Sequence[dict[str, Any]], summary: str, extra: str = "") -> None:
    """Add a verdict row from the comparisons of `metrics` (control failures override)."""
    outcomes = [o for r in results for o in r["outcomes"]]
    failed = ev.failed_controls(metrics)
    verdict = classify(outcomes, control_failed=bool(failed))
    seeds = ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results))
    evidence = " ".join(f"{r['text']}. {summary} holds in {r['k']}/{r['n']} seeds." for r in results)
    if failed:
        evidence += f" Control failed ({', '.join(failed)}): no finding from these metrics."
    ev.add(number, dataset, latent, ", ".join(metrics), verdict, seeds,
           evidence + extra + ("" if failed else note(ev.pct, verdict, outcomes)), results=results)


def _present(ev: Evidence, dataset: str, latent: int, ordering: Sequence[str]) -> tuple[list[str], str]:
    """The priors of `ordering` run on this group (at least two), and a note on any left out: a
    dataset may restrict its priors (e.g. no Cauchy posterior under a linear-Gaussian decoder), and
    the claim is then tested on the pairs it has."""
    present = [p for p in ordering if p in ev.priors(dataset, latent)]
    absent = [p for p in ordering if p not in present]
    return present, (f" {' and '.join(absent)} not run on {dataset} (the dataset's priors): only the "
                     f"comparisons between {' and '.join(present)} are tested." if absent else "")


def reconstruction(ev: Evidence) -> None:
    """Conclusion 1: MSE normal < laplace < cauchy (well defined for every posterior); the likelihood
    alongside, by AIS where every run has it (linear decoders: tighter than IWAE), else IWAE."""
    for dataset, latent in ev.groups():
        present, absent = _present(ev, dataset, latent, ["normal", "laplace", "cauchy"])
        why = ev.missing(dataset, latent, present if len(present) >= 2 else ["normal", "laplace", "cauchy"], ["mse"])
        if why:
            ev.add(1, dataset, latent, "mse", "not tested", "", f"Not tested: {why}.")
            continue
        pairs = list(zip(present, present[1:]))
        mse = ev.compare(dataset, latent, "mse", pairs, lower_better=True)
        verdict = classify(mse["outcomes"])
        evidence = mse["text"] + f". Ordering holds in {mse['k']}/{mse['n']} seeds."
        likelihood = ev.likelihood_metric(dataset, latent, present)
        if likelihood:
            lik = ev.compare(dataset, latent, likelihood, [(b, a) for a, b in pairs])
            evidence += (f" Likelihood: {lik['text']}; {'AIS' if likelihood == 'ais_log_lik' else 'IWAE'} "
                         f"ordering {' > '.join(present)} holds in {lik['k']}/{lik['n']} seeds.")
        ev.add(1, dataset, latent, "mse", verdict, f"{mse['k']}/{mse['n']}",
               evidence + absent + note(ev.pct, verdict, mse["outcomes"]), results=[mse])


def informativeness(ev: Evidence) -> None:
    """Conclusion 2: normal < laplace < cauchy per latent dimension of the sampled code (mean and max
    label information over the used dims) and in the joint probe on the sampled code; without labels,
    in template recovery. The location-based probe and MI stay in the tables (conventional)."""
    candidates = ("label_info_mean", "label_info_max", "probe_accuracy_sampled", "template_matched_cos")
    for dataset, latent in ev.groups():
        present, absent = _present(ev, dataset, latent, ["normal", "laplace", "cauchy"])
        if len(present) < 2:
            why = ev.missing(dataset, latent, ["normal", "laplace", "cauchy"], [])
            ev.add(2, dataset, latent, "", "not tested", "", f"Not tested: {why}.")
            continue
        label_metrics = [m for m in candidates[:3] if ev.missing(dataset, latent, present, [m]) is None]
        metrics = label_metrics or [m for m in candidates[3:] if ev.missing(dataset, latent, present, [m]) is None]
        if not metrics:
            why = "; ".join(ev.missing(dataset, latent, present, [m]) or "" for m in candidates)
            ev.add(2, dataset, latent, ", ".join(candidates), "not tested", "",
                   f"Not tested: no labels or ground truth ({why}).")
            continue
        pairs = [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]
        results = ev.compare_all(dataset, latent, metrics, pairs)
        _judged(ev, 2, dataset, latent, metrics, results, f"Full ordering {' < '.join(present)}", absent)


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
    results = ev.compare_all(dataset, latent, metrics, [("normal", "laplace")])
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
           evidence + ("" if failed else note(ev.pct, verdict, outcomes)), results=results)


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
           evidence + ("" if failed else note(ev.pct, verdict, r["outcomes"])), results=[r])


def _near_one(lap: Stat) -> str:
    """Whether laplace's dims-used interval lies where a count rounds to 1 ([0.5, 1.5])."""
    if lap.n < 2:
        return "no interval"
    if 0.5 <= lap.lo and lap.hi <= 1.5:
        return "holds"
    if lap.lo >= 1.5 or lap.hi <= 0.5:
        return "reversed"
    return "inconclusive"


def one_dimension(ev: Evidence) -> None:
    """Conclusion 4: with a 2-D latent laplace uses fewer dimensions than normal, and about one; a
    dimension is used when its rate I(x; z_d) exceeds 0.1 nats (the same for every family)."""
    two_d = [(d, z) for d, z in ev.groups() if z == 2]
    if not two_d:
        latents = sorted(set(ev.df["latent"]))
        ev.add(4, "", 2, "used_dims_2d", "not tested", "",
               f"Not tested: no runs with latent = 2 in the study (latent sizes: "
               f"{', '.join(map(str, latents))}).")
        return
    for dataset, latent in two_d:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["used_dims_2d"])
        if why:
            ev.add(4, dataset, latent, "used_dims_2d", "not tested", "", f"Not tested: {why}.")
            continue
        r = ev.compare(dataset, latent, "used_dims_2d", [("laplace", "normal")])
        lap = ev.stat(dataset, latent, "laplace", "used_dims_2d")
        one = _near_one(lap)
        outcomes = r["outcomes"] + [one]
        k1 = int((lap.values == 1).sum())
        per_seed = ", ".join(f"seed {s}: {fmt(v)}" for s, v in lap.values.items())
        evidence = (f"{r['text']} (fewer is the claim). laplace uses one dimension in {k1}/{lap.n} seeds "
                    f"({per_seed}); its interval {'lies within' if one == 'holds' else 'is not within'} "
                    f"[0.5, 1.5].")
        for other in ("normal", "cauchy"):
            o = ev.stat(dataset, latent, other, "used_dims_2d")
            if o.n:
                evidence += f" {other}: one dimension in {int((o.values == 1).sum())}/{o.n} seeds."
        verdict = classify(outcomes)
        ev.add(4, dataset, latent, "used_dims_2d", verdict, f"{r['k']}/{r['n']}",
               evidence + note(ev.pct, verdict, outcomes), results=[r])


def sparsity(ev: Evidence) -> None:
    """The study's premise: laplace codes are sparser than normal, as the talk means it: fewer of the
    used dims active at once per input, and a Hoyer index above a Gaussian code's of as many dims."""
    for dataset, latent in ev.groups():
        metrics = ["active_at_once", "hoyer_excess"]
        if not {"normal", "laplace"} <= ev.priors(dataset, latent):
            why = ev.missing(dataset, latent, ["normal", "laplace"], [])
            ev.add(5, dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        usable = [m for m in metrics if ev.missing(dataset, latent, ["normal", "laplace"], [m]) is None]
        if not usable:
            why = "; ".join(ev.missing(dataset, latent, ["normal", "laplace"], [m]) or "" for m in metrics)
            ev.add(5, dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        lower = {"active_at_once": True}  # fewer dims active at once is sparser
        results = [ev.compare(dataset, latent, m, [("laplace", "normal")] if lower.get(m) else [("normal", "laplace")],
                              lower_better=lower.get(m, False)) for m in usable]
        _judged(ev, 5, dataset, latent, usable, results, "laplace sparser than normal")


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
#: conclusion number -> its claim, for the verdict rows.
CLAIMS = {number: claim for number, (claim, _, _) in CONCLUSIONS.items()}


def compute_verdicts(df: pd.DataFrame, runs: Sequence[Run], confidence: float, sources: dict[str, str],
                     figure_names: dict[tuple, str] | None = None,
                     baselines: dict[str, dict[str, float]] | None = None,
                     generators: dict[str, str | None] | None = None) -> pd.DataFrame:
    """The verdict table (columns VERDICT_COLUMNS): controls first, then the conclusions.

    ``sources`` maps dataset -> source (natural-image and control datasets); ``figure_names`` maps
    (kind, dataset, latent) -> figure file name cited as evidence; ``baselines`` maps dataset -> its
    sparse-coding baseline's field fractions (``runs.load_baselines``); ``generators`` maps dataset ->
    the prior family that generated it (the training control; ``config.generating_family``).
    """
    ev = Evidence(df, runs, confidence, sources, figure_names or {}, baselines, CLAIMS, generators)
    for _, _, judge in CONCLUSIONS.values():
        judge(ev)
    return pd.DataFrame(ev.rows, columns=VERDICT_COLUMNS)


def control_status(df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                   sources: dict[str, str], baselines: dict[str, dict[str, float]] | None = None,
                   generators: dict[str, str | None] | None = None) -> dict[str, bool | None]:
    """Each control's result (True passed, False failed, None not run), as the verdicts see them."""
    ev = Evidence(df, runs, confidence, sources, {}, baselines, CLAIMS, generators)
    controls(ev)
    return dict(ev.controls)
