"""Conclusion 3, receptive fields, as two labelled claims with their controls' gates.

* 3, retina-like (the talk's words): on UNWHITENED grey natural-image patches, laplace has a larger
  fraction of centre-surround fields than normal (``retina_like``), for the decoder's fields and the
  encoder's sensitivity fields (``analysis.sensitivity``; an opposite-sign DoG beating a blob and a
  Gabor, ``analysis.center_surround``). Gated by the retina control (the classifier on constructed
  fields, ``controls.retina_fields``).
* 3b, V1-like (not the talk's words; the sparse-coding literature's claim): on whitened patches with a
  linear decoder, laplace has more Gabor-like fields (``field_shapes``), gated by the sparse-coding
  baseline's fields (``controls.sparse_coding_fields``).
Runs with neither (older runs) fall back to the localization index. Not here: the other conclusions
(``conclusions``), the controls (``controls``), the statistics (``evidence``, ``statistics``).
"""

from __future__ import annotations

from sparse_vae import catalogue
from sparse_vae.report.evidence import Evidence
from sparse_vae.report.verdicts import NATURAL_SOURCES, classify, mean_sd, note

__all__ = ["LOCALIZATION_CLAIM", "RETINA_METRICS", "V1_CLAIM", "field_shapes", "localization",
           "receptive_fields", "retina_like"]

#: the centre-surround fractions of the retina-like claim (analysis.sensitivity.RETINA_METRICS).
RETINA_METRICS = ("rf_center_surround_fraction", "rf_enc_center_surround_fraction")
V1_CLAIM = ("3b: V1-like fields, as in sparse coding: laplace's linear-decoder fields on whitened patches are "
            "more often Gabor-like than normal's")
LOCALIZATION_CLAIM = ("3 (fallback, runs without field fits): laplace's receptive fields are more localised "
                      "than normal's")


def receptive_fields(ev: Evidence) -> None:
    """Conclusion 3 on every natural-image group: retina-like where the runs have the centre-surround
    fractions (unwhitened patches), V1-like (3b) where they have the Gabor fits (whitened, linear
    decoder), else the localization index. A study without unwhitened natural-image runs says that
    the retina-like claim was not tested."""
    natural = [(d, z) for d, z in ev.groups() if ev.sources.get(d) in NATURAL_SOURCES]
    if not natural:
        ev.add(3, "", "", ", ".join(RETINA_METRICS), "not tested", "",
               "Not tested: no natural-image dataset (source natural or cifar) in the study "
               f"(sources: {', '.join(f'{d}={s}' for d, s in ev.sources.items()) or 'none'}).")
        return
    retina = v1 = False
    for dataset, latent in natural:
        has = [m for m in RETINA_METRICS if ev.missing(dataset, latent, ["normal", "laplace"], [m]) is None]
        gabor = ev.missing(dataset, latent, ["normal", "laplace"], ["rf_gabor_fraction"]) is None
        if has:
            retina = True
            retina_like(ev, dataset, latent, has)
        if gabor:
            v1 = True
            field_shapes(ev, dataset, latent)
        if not has and not gabor:
            localization(ev, dataset, latent)
    if not retina:
        ev.add(3, "", "", ", ".join(RETINA_METRICS), "not tested", "",
               "Not tested: no natural-image group has the centre-surround fractions for normal and laplace "
               "(they are computed on unwhitened patches only: "
               f"{ev.reason(natural[0][0], natural[0][1], RETINA_METRICS[0])}).")
    if not v1:
        ev.add(3, "", "", "rf_gabor_fraction", "not tested", "",
               "Not tested: no natural-image group has Gabor fits for normal and laplace (they need a linear "
               "decoder on whitened patches, e.g. natural12).", claim=V1_CLAIM)


def retina_like(ev: Evidence, dataset: str, latent: int, metrics: list[str]) -> None:
    """Conclusion 3 as stated: laplace > normal in centre-surround fraction (decoder and encoder
    fields; one Holm family), unless the retina control failed."""
    results = ev.compare_all(dataset, latent, metrics, [("normal", "laplace")])
    outcomes = [o for r in results for o in r["outcomes"]]
    failed = ev.failed_controls(metrics)
    verdict = classify(outcomes, control_failed=bool(failed))
    evidence = " ".join(f"{r['text']}." for r in results)
    stats = [ev.stat(dataset, latent, p, m) for p in ("normal", "laplace") for m in metrics]
    if not any((s.values > 0).any() for s in stats):
        evidence += " No centre-surround field in any normal or laplace run."
    for metric in metrics:
        evidence += _reference(ev, dataset, latent, metric)
    if failed:
        evidence += (f" Control failed ({', '.join(failed)}: the classifier mislabels constructed fields): "
                     "no finding.")
    ev.add(3, dataset, latent, ", ".join(metrics), verdict,
           ", ".join(f"{m} {r['k']}/{r['n']}" for m, r in zip(metrics, results)),
           evidence + ("" if failed else note(ev.pct, verdict, outcomes)), results=results)


def _reference(ev: Evidence, dataset: str, latent: int, metric: str) -> str:
    """The other priors' values of a metric (cauchy and any other entry), for reference."""
    others = sorted(ev.priors(dataset, latent) - {"normal", "laplace"})
    values = [f"{p} {mean_sd(ev.stat(dataset, latent, p, metric))}" for p in others
              if ev.stat(dataset, latent, p, metric).n]
    return f" For reference, {catalogue.label(metric)}: {', '.join(values)}." if values else ""


def field_shapes(ev: Evidence, dataset: str, latent: int) -> None:
    """Claim 3b (V1-like) from the field fits: laplace > normal in Gabor-like fraction, and in centre-surround
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
           evidence + ("" if failed else note(ev.pct, verdict, outcomes)), claim=V1_CLAIM, results=results)


def localization(ev: Evidence, dataset: str, latent: int) -> None:
    """Conclusion 3 from the localization index (runs without field fits: an MLP decoder)."""
    why = ev.missing(dataset, latent, ["normal", "laplace"], ["rf_localization"])
    if why:
        ev.add(3, dataset, latent, "rf_localization", "not tested", "", f"Not tested: {why}.",
               claim=LOCALIZATION_CLAIM)
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
           evidence + ("" if failed else note(ev.pct, verdict, r["outcomes"])), claim=LOCALIZATION_CLAIM,
           results=[r])
