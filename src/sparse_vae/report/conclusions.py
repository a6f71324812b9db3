"""The talk's conclusions, split into the claims they are, and the sparsity premise, judged from the
per-run table, controls first; ``compute_verdicts`` (the verdict table) and ``control_status``.

Each claim has a string id ("0" controls, "1", "2a", "2b", "2c", "3a", "3b", "4", "5"), registered in
``CONCLUSIONS`` beside the talk's words, one sentence on how the test deviates from them, a short
label for a scorecard row and its judge; the verdict rows carry the id in their ``conclusion``
column. Claims 3a/3b are judged in ``receptive``, 4 in ``latent_use``, the controls in ``controls``.
A metric whose control did not pass gives "control failed" instead of a finding. Not here: the rules
(``verdicts``), the statistics (``statistics``, ``evidence``), the pairwise table, figures, HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.controls import controls
from sparse_vae.report.estimator_gate import estimator_failures
from sparse_vae.report.evidence import Evidence
from sparse_vae.report.latent_use import COLLAPSE_NATS, collapsed_runs, one_dimension
from sparse_vae.report.receptive import LOCALIZATION_CLAIM, RETINA_CLAIM, V1_CLAIM, retina_claim, v1_claim
from sparse_vae.report.runs import Run
from sparse_vae.report.verdicts import VERDICT_COLUMNS, classify, note

__all__ = ["CLAIMS", "CONCLUSIONS", "FAIR_MSE_FRACTION", "INFO_CODE", "INFO_PER_DIM", "SECOND_CLAIMS", "Conclusion",
           "collapsed_runs", "compute_verdicts", "control_status", "fixed_noise_datasets"]

#: "fairly well" (conclusion 1), fixed a priori: a run reconstructs fairly well when its test MSE is at
#: most this fraction of the mean-image predictor's (the per-pixel test variance around the training
#: mean, metric column ``mse_mean_image`` or ``compute_verdicts(reference_mse=...)``): it explains at
#: least half of the pixel variance (R^2 >= 0.5).
FAIR_MSE_FRACTION = 0.5
#: the column of the mean-image predictor's MSE, per run (the same for every run of a data set).
REFERENCE_MSE = "mse_mean_image"
#: conclusion 2's summaries, threshold-free first (issue 34): (metrics, older fallback). Whole code:
#: total label information and the additive probe on the sampled code (fair to heavy tails, unlike a
#: linear probe); per dimension: the best dimension's information and the area over rate thresholds.
INFO_CODE = (("label_info_total", "probe_accuracy_sampled_additive"), ("label_info_mean", "probe_accuracy_sampled"))
INFO_PER_DIM = (("label_info_top1", "label_info_auc"), ("label_info_max", "label_info_mean"))
#: what "more informative" is read from on data without labels (the dictionary's recovery).
INFO_UNLABELLED = ("template_matched_cos",)


def _judged(ev: Evidence, cid: str, dataset: str, latent: int, metrics: Sequence[str],
            results: Sequence[dict[str, Any]], summary: str, extra: str = "", claim: str | None = None) -> None:
    """Add a verdict row from the comparisons of `metrics` (control and estimator failures override)."""
    outcomes = [o for r in results for o in r["outcomes"]]
    compared = {p for r in results for c in r["comparisons"] for p in (c.a, c.b)}  # the priors this row reads
    failed = ev.failed_controls(metrics) + estimator_failures(ev, metrics, compared, int(latent or 1))
    verdict = classify(outcomes, control_failed=bool(failed))
    seeds = ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results))
    evidence = " ".join(f"{r['text']}. {summary} holds in {r['k']}/{r['n']} seeds." for r in results)
    if failed:
        evidence += f" Control failed ({', '.join(failed)}): no finding from these metrics."
    ev.add(cid, dataset, latent, ", ".join(metrics), verdict, seeds,
           evidence + extra + ("" if failed else note(ev.pct, verdict, outcomes)), results=results, claim=claim)


def _present(ev: Evidence, dataset: str, latent: int, ordering: Sequence[str]) -> tuple[list[str], str]:
    """The priors of `ordering` run on this group, and a note on any left out (a dataset may restrict
    its priors); the claim is then tested on the pairs it has."""
    present = [p for p in ordering if p in ev.priors(dataset, latent)]
    absent = [p for p in ordering if p not in present]
    return present, (f" {' and '.join(absent)} not run on {dataset} (the dataset's priors): only the "
                     f"comparisons between {' and '.join(present)} are tested." if absent else "")


def fixed_noise_datasets(datasets: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Datasets whose Gaussian likelihood has a FIXED noise sd (config ``model.obs_scale`` a number):
    their reconstruction is set by the fixed noise, not learned (natural12: obs_scale 0.5 on unit-variance
    whitened patches), so conclusion 1 leaves them out. `datasets` is the config's datasets section."""
    out = set()
    for name, spec in datasets.items():
        model = (spec or {}).get("model", {}) or {}
        if model.get("likelihood") == "gaussian" and isinstance(model.get("obs_scale"), (int, float)):
            out.add(name)
    return out


def _fairly_well(ev: Evidence, dataset: str, latent: int, present: Sequence[str]) -> tuple[str | None, str]:
    """(outcome, text) of "all do fairly well": every run's MSE <= FAIR_MSE_FRACTION x the mean-image
    MSE. "holds" when every run passes, "reversed" when some prior fails in more than half its seeds,
    else "inconclusive"; None (not judged) without the reference."""
    ref = {p: ev.stat(dataset, latent, p, REFERENCE_MSE) for p in present}
    reference = ev.reference_mse.get(dataset)
    if reference is None and not all(s.n for s in ref.values()):
        return None, (f" 'Fairly well' not judged: no mean-image MSE ({REFERENCE_MSE}) for {dataset}.")
    counts = {}
    for p in present:
        mse = ev.stat(dataset, latent, p, "mse").values
        bound = FAIR_MSE_FRACTION * (reference if reference is not None else ref[p].values.reindex(mse.index))
        counts[p] = (int((mse <= bound).sum()), int(mse.size))
    outcome = ("holds" if all(k == n for k, n in counts.values()) else
               "reversed" if any(k < n / 2 for k, n in counts.values()) else "inconclusive")
    said = ", ".join(f"{p} {k}/{n}" for p, (k, n) in counts.items())
    return outcome, (f" Fairly well (test MSE <= {FAIR_MSE_FRACTION:g} x the mean-image predictor's, fixed a "
                     f"priori): {said} seeds; {outcome}.")


def reconstruction(ev: Evidence) -> None:
    """Conclusion 1: all priors reconstruct fairly well (``_fairly_well``) and MSE normal < laplace <
    cauchy (compared as log ratios); the likelihood alongside (AIS where every run has it, else IWAE).
    Datasets with a fixed noise sd are not tested: there reconstruction is degenerate by design."""
    for dataset, latent in ev.groups():
        if dataset in ev.fixed_noise:
            ev.add("1", dataset, latent, "mse", "not tested", "",
                   "Not tested: fixed observation noise (the model's noise sd is set a priori, not learned), so "
                   "reconstruction is degenerate by design and says nothing about the priors.")
            continue
        present, absent = _present(ev, dataset, latent, ["normal", "laplace", "cauchy"])
        why = ev.missing(dataset, latent, present if len(present) >= 2 else ["normal", "laplace", "cauchy"], ["mse"])
        if why:
            ev.add("1", dataset, latent, "mse", "not tested", "", f"Not tested: {why}.")
            continue
        pairs = list(zip(present, present[1:]))
        mse = ev.compare(dataset, latent, "mse", pairs, lower_better=True)
        fair, fair_text = _fairly_well(ev, dataset, latent, present)
        outcomes = mse["outcomes"] + ([fair] if fair else [])
        verdict = classify(outcomes)
        evidence = mse["text"] + f". Ordering holds in {mse['k']}/{mse['n']} seeds." + fair_text
        likelihood = ev.likelihood_metric(dataset, latent, present)
        if likelihood:
            lik = ev.compare(dataset, latent, likelihood, [(b, a) for a, b in pairs])
            evidence += (f" Likelihood: {lik['text']}; {'AIS' if likelihood == 'ais_log_lik' else 'IWAE'} "
                         f"ordering {' > '.join(present)} holds in {lik['k']}/{lik['n']} seeds.")
        ev.add("1", dataset, latent, "mse", verdict, f"{mse['k']}/{mse['n']}",
               evidence + absent + note(ev.pct, verdict, outcomes), results=[mse])


def _info_metrics(ev: Evidence, dataset: str, latent: int, present: Sequence[str],
                  choices: tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[list[str], str]:
    """The summaries a claim of conclusion 2 reads here: the threshold-free ones where the runs have
    them, else the older threshold-dependent ones (said so), else template recovery without labels."""
    have = lambda ms: [m for m in ms if ev.missing(dataset, latent, present, [m]) is None]  # noqa: E731
    new, old = have(choices[0]), have(choices[1])
    if any(m.startswith("label_info") for m in new):
        return new, ""
    if old:
        return old, (" Older metrics: read from the threshold-dependent summaries (label information over dims "
                     f"with rate > {catalogue.USED_RATE_NATS:g} nats), whose order can change with the threshold (issue 34).")
    return have(INFO_UNLABELLED), " No labels: read from the dictionary's recovery (template |cos|)."


def _informative(ev: Evidence, cid: str, pairs_of: Callable[[list[str]], list[tuple[str, str]]],
                 choices: tuple[tuple[str, ...], tuple[str, ...]], summary: str) -> None:
    """One claim of conclusion 2 on every group: `pairs_of(present)` gives its (lower, higher) pairs."""
    for dataset, latent in ev.groups():
        present, absent = _present(ev, dataset, latent, ["normal", "laplace", "cauchy"])
        pairs = pairs_of(present)
        if not pairs:
            ev.add(cid, dataset, latent, "", "not tested", "",
                   f"Not tested: {ev.missing(dataset, latent, ['normal', 'laplace', 'cauchy'], []) or 'no pair'}.")
            continue
        metrics, reading = _info_metrics(ev, dataset, latent, present, choices)
        if not metrics:
            wanted = [m for c in choices for m in c] + list(INFO_UNLABELLED)
            ev.add(cid, dataset, latent, ", ".join(dict.fromkeys(wanted)), "not tested", "",
                   "Not tested: no labels or ground truth for these summaries.")
            continue
        results = ev.compare_all(dataset, latent, metrics, pairs)
        _judged(ev, cid, dataset, latent, metrics, results, summary, reading + absent)


def _pair(low: str, high: str) -> Callable[[list[str]], list[tuple[str, str]]]:
    return lambda present: [(low, high)] if {low, high} <= set(present) else []


def informative_laplace(ev: Evidence) -> None:
    """laplace's code carries more label information than normal's (whole-code summaries)."""
    _informative(ev, "2a", _pair("normal", "laplace"), INFO_CODE, "laplace > normal")


def informative_cauchy(ev: Evidence) -> None:
    """cauchy's code carries more label information than normal's (whole-code summaries)."""
    _informative(ev, "2b", _pair("normal", "cauchy"), INFO_CODE, "cauchy > normal")


def informative_per_dim(ev: Evidence) -> None:
    """the talk's per-dimension reading, normal < laplace < cauchy in the best dimension's label
    information and the per-used-dim curve's area ("Cauchy noticeably better than Laplace")."""
    chain = lambda present: list(zip(present, present[1:])) if len(present) >= 2 else []  # noqa: E731
    _informative(ev, "2c", chain, INFO_PER_DIM, "the full ordering")


def sparsity(ev: Evidence) -> None:
    """The study's premise: laplace codes are sparser than normal, as the talk means it: fewer of the
    used dims active at once per input, and a Hoyer index above a Gaussian code's of as many dims, both
    on the sampled code (the code informativeness is read from: one metric family per claim)."""
    for dataset, latent in ev.groups():
        metrics = ["active_at_once", "hoyer_excess_sampled"]
        if not {"normal", "laplace"} <= ev.priors(dataset, latent):
            why = ev.missing(dataset, latent, ["normal", "laplace"], [])
            ev.add("5", dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        usable = [m for m in metrics if ev.missing(dataset, latent, ["normal", "laplace"], [m]) is None]
        if not usable:
            why = "; ".join(ev.missing(dataset, latent, ["normal", "laplace"], [m]) or "" for m in metrics)
            ev.add("5", dataset, latent, ", ".join(metrics), "not tested", "", f"Not tested: {why}.")
            continue
        lower = {"active_at_once": True}  # fewer dims active at once is sparser
        results = [ev.compare(dataset, latent, m, [("laplace", "normal")] if lower.get(m) else [("normal", "laplace")],
                              lower_better=lower.get(m, False)) for m in usable]
        _judged(ev, "5", dataset, latent, usable, results, "laplace sparser than normal")


class Conclusion(NamedTuple):
    """One claim: how it is tested, the talk's words, how the test deviates from them, its judge, and
    a short label (<= 40 characters) for a scorecard row."""

    claim: str
    quote: str
    deviation: str
    judge: Callable[[Evidence], None]
    short: str = ""


_TALK_2 = ("Laplace VAE and Cauchy VAE have significantly more informative latent dimensions in the MNIST and "
           "CIFAR tasks. Cauchy VAE is noticeably better than Laplace in both cases.")
#: claim id -> Conclusion, in report order.
CONCLUSIONS: dict[str, Conclusion] = {
    "0": Conclusion(
        "controls: training, dictionary recovery, field classifiers and estimators pass their known answers",
        "(not in the talk) positive controls: the setup can see a real difference",
        "Added by this study: training likelihood, sparse-coding and centre-surround classifier controls, and "
        "the estimators' known-answer controls.", controls, "controls pass"),
    "1": Conclusion(
        "reconstruction: every prior fairly well (MSE <= 0.5 x the mean image's), MSE normal < laplace < cauchy",
        "All 3 do fairly well at reproduction across all tasks. VAE is best, laplace VAE slightly "
        "worse, cauchy even worse (mostly noticeable only on CIFAR task)",
        f"Tested on every dataset with a learned noise level (not the fixed-noise regime), MSE compared as log "
        f"ratios; 'fairly well' is a test MSE at most {FAIR_MSE_FRACTION:g} x the mean-image predictor's.",
        reconstruction, "reconstruction order"),
    "2a": Conclusion(
        "laplace's code carries more label information than normal's",
        _TALK_2, "Read from threshold-free summaries of the sampled code: total label information and a "
        "rank-transformed probe (template recovery without labels).", informative_laplace, "laplace more informative"),
    "2b": Conclusion(
        "cauchy's code carries more label information than normal's",
        _TALK_2, "As 2a, for cauchy against normal.", informative_cauchy, "cauchy more informative"),
    "2c": Conclusion(
        "per dimension, normal < laplace < cauchy (Cauchy noticeably better than Laplace)",
        _TALK_2, "The talk's per-dimension reading: the best dimension's label information and the area of "
        "the mean-per-used-dimension curve over 'used' thresholds.", informative_per_dim, "per-dim info order"),
    "3a": Conclusion(
        RETINA_CLAIM,
        "Laplace CIFAR recreates something approaching a biologically realistic retina receptive field.",
        "Retina-like is read as an opposite-sign difference of Gaussians beating a blob and a Gabor, on "
        "unwhitened grey patches, for each used latent's decoder and encoder fields; a test whose control "
        "detects too few constructed fields reads 'not observed'.", retina_claim, "retina-like fields"),
    "3b": Conclusion(
        V1_CLAIM, "(not in the talk, labelled) Olshausen & Field: sparse codes of whitened natural patches are "
                  "localised, oriented, band-pass, like V1 simple cells",
        "Tested on whitened 12x12 patches with a linear decoder, gated by the sparse-coding baseline; "
        "supported / partly / not by a rule over seeds.", v1_claim, "V1-like fields (literature)"),
    "4": Conclusion(
        "with a 2-D latent, laplace uses one dimension in more seeds than normal",
        "Laplace VAE has a tendency to only use 1 dimension in the 2 dimension test outputs.",
        f"Counts out of n seeds (a dimension is used when its rate exceeds {catalogue.USED_RATE_NATS:g} nats), an "
        "exact test on the "
        f"paired per-seed indicators; collapsed runs (held-out likelihood more than {COLLAPSE_NATS:g} nats below "
        "the best prior's) are reported, not removed.", one_dimension, "laplace uses one of two dims"),
    "5": Conclusion(
        "sparsity: laplace codes are sparser than normal (fewer dims active at once, Hoyer excess)",
        "(the study's premise, labelled) a Laplace prior gives sparse codes",
        "Not a claim of the talk: sparse is read as fewer used dimensions active at once per input and a Hoyer "
        "index above a Gaussian code's, both of the sampled code z ~ q(z|x), as informativeness is.", sparsity,
        "laplace sparser (premise)"),
}
#: second claims shown under a claim (label -> claim, words, deviation): the fallback of 3a.
SECOND_CLAIMS: dict[str, tuple[str, str, str]] = {
    "3a (fallback)": (LOCALIZATION_CLAIM, "(older runs without field fits)",
                      "Localization index of the decoder fields only; says nothing about centre-surround shape."),
}
#: claim id -> its claim, for the verdict rows.
CLAIMS = {cid: c.claim for cid, c in CONCLUSIONS.items()}


def _evidence(df: pd.DataFrame, runs: Sequence[Run], confidence: float, sources: dict[str, str],
              figure_names, baselines, generators, estimators, fixed_noise, reference_mse, retina) -> Evidence:
    ev = Evidence(df, runs, confidence, sources, figure_names or {}, baselines, CLAIMS, generators, estimators)
    ev.retina_control = retina
    ev.fixed_noise = set(fixed_noise or ())
    ev.reference_mse = dict(reference_mse or {})
    return ev


def compute_verdicts(df: pd.DataFrame, runs: Sequence[Run], confidence: float, sources: dict[str, str],
                     figure_names: dict[tuple, str] | None = None,
                     baselines: dict[str, dict[str, float]] | None = None,
                     generators: dict[str, str | None] | None = None,
                     estimators: Mapping[str, Any] | None = None, fixed_noise: Collection[str] = (),
                     reference_mse: Mapping[str, float] | None = None,
                     retina: Mapping[int, Any] | None = None) -> pd.DataFrame:
    """The verdict table (columns VERDICT_COLUMNS): controls first, then the claims.

    ``sources`` maps dataset -> source; ``figure_names`` (kind, dataset, latent) -> figure file cited as
    evidence; ``baselines`` dataset -> its sparse-coding baseline's field fractions; ``generators``
    dataset -> the prior family that generated it (the training control); ``estimators`` the parsed
    ``controls/estimators.json`` (``estimator_gate.read_estimator_controls``; None: not run); ``fixed_noise``
    the datasets with a fixed noise sd (``fixed_noise_datasets``); ``reference_mse`` dataset -> the
    mean-image predictor's test MSE where the runs lack ``mse_mean_image``; ``retina`` the parsed
    ``controls/retina.json`` (``controls.read_retina_control``; None: not run).
    """
    ev = _evidence(df, runs, confidence, sources, figure_names, baselines, generators, estimators, fixed_noise,
                   reference_mse, retina)
    for conclusion in CONCLUSIONS.values():
        conclusion.judge(ev)
    return pd.DataFrame(ev.rows, columns=VERDICT_COLUMNS)


def control_status(df: pd.DataFrame, runs: Sequence[Run], confidence: float,
                   sources: dict[str, str], baselines: dict[str, dict[str, float]] | None = None,
                   generators: dict[str, str | None] | None = None,
                   estimators: Mapping[str, Any] | None = None,
                   retina: Mapping[int, Any] | None = None) -> dict[str, bool | None]:
    """Each control's result (True passed, False failed, None not run), as the verdicts see them."""
    ev = _evidence(df, runs, confidence, sources, {}, baselines, generators, estimators, (), None, retina)
    controls(ev)
    return dict(ev.controls)
