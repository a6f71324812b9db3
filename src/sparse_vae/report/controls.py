"""The positive controls: they run first, and a failed one turns every verdict resting on its
metrics into "control failed" (``verdicts.METRIC_CONTROLS``).

Each control is one function registered in ``CONTROLS``: it judges its datasets, adds its own verdict
row (conclusion 0) and records its result with ``control_result``. Here: the training likelihood, the
sparse_linear dictionary recovery, the sparse-coding baseline's receptive fields (claim 3b) and the
centre-surround classifier on constructed fields (claim 3, retina-like). Not here: ``Evidence`` (``evidence``,
which this module uses and which does not import it back), which metrics each control guards
(``verdicts``), the conclusions and ``control_status`` (``conclusions``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sparse_vae.analysis.center_surround import control_bank, control_passes

from sparse_vae.report.evidence import Evidence
from sparse_vae.report.statistics import Paired
from sparse_vae.report.verdicts import NATURAL_SOURCES, mean_sd

__all__ = ["CONTROLS", "FIELD_CONTROL_CLAIM", "RETINA_CONTROL_CLAIM", "RETINA_CONTROL_SIZES", "TRAINING_CONTROL_CLAIM",
           "control_result", "controls"]

#: the dictionary-recovery control's pass mark (laplace's matched |cos| in every seed).
CONTROL_MIN_COS = 0.75
#: the receptive-field control's pass mark: the sparse-coding baseline's Gabor-like atom fraction
#: (Olshausen & Field's dictionaries are mostly localised oriented fields; below this the patches
#: cannot show whether a VAE learns them).
CONTROL_MIN_GABOR = 0.6


def control_result(ev: Evidence, name: str, passed: bool | None) -> None:
    """Record a control's result (True passed, False failed, None not run) for the verdicts after it.

    The hook for every control: a control function judges its datasets, adds its own verdict row
    and calls this; ``verdicts.METRIC_CONTROLS`` says which metrics depend on which control."""
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
        ev.add(0, dataset, latent, "template_matched_cos", verdict, f"{k}/{lap.n}", evidence, results=[r])
        control_result(ev, "dictionary_recovery", passed)


TRAINING_CONTROL_CLAIM = ("control: on data drawn from a known prior, the model with that prior is not worse "
                          "in held-out likelihood than the normal prior's by more than the metric's margin "
                          "(training reaches the generating model)")


def training_likelihood(ev: Evidence) -> None:
    """Control: on each dataset drawn from a known prior family other than normal (sparse_linear,
    synthetic with Laplace weights), that family's prior reaches a held-out likelihood not below the
    normal prior's by more than the metric's equivalence margin (a non-inferiority test: the paired
    interval of family - normal lies above -margin). The margin, not zero: with an MLP decoder a
    normal prior can represent the same data (the decoder warps it), and a Gaussian posterior fits a
    Laplace-prior posterior less well, so a gap smaller than the study's smallest effect of interest
    is inference, not a failure to train; a stall (a template never learned) costs nats, and fails.
    A failure makes every verdict on that dataset say so."""
    for dataset, latent in dict.fromkeys(zip(ev.df["dataset"], ev.df["latent"])):
        family = ev.generators.get(dataset)
        if family in (None, "normal") or family not in ev.priors(dataset, latent):
            continue
        metric = ev.likelihood_metric(dataset, latent, ["normal", family]) or "iwae_log_lik"
        why = ev.missing(dataset, latent, ["normal", family], [metric])
        if why:
            ev.add(0, dataset, latent, metric, "not tested", "", f"Not tested: {why}.", claim=TRAINING_CONTROL_CLAIM)
            control_result(ev, "training_likelihood", None)
            continue
        r = ev.compare(dataset, latent, metric, [("normal", family)])
        passed, reading = _non_inferior(r["comparisons"][0], r["outcomes"][0])
        evidence = f"{r['text']}. The data were drawn with {family} latent causes. {reading}"
        verdict = {None: "not tested", True: "supported", False: "control failed"}[passed]
        if passed is False:
            ev.training_failed.add(dataset)
            evidence += f" The training control failed: every verdict on {dataset} says 'control failed'."
        ev.add(0, dataset, latent, metric, verdict, f"{r['k']}/{r['n']}", evidence, claim=TRAINING_CONTROL_CLAIM,
               results=[r])
        control_result(ev, "training_likelihood", passed)


def _non_inferior(c: Paired, outcome: str) -> tuple[bool | None, str]:
    """(passed, one sentence): the non-inferiority reading of ``c`` = family - normal."""
    if outcome == "no interval":
        return None, "Too few paired seeds for an interval."
    if c.margin is None:  # no margin stated: the strict reading, not significantly worse
        return outcome != "reversed", "No margin for this metric: passes unless significantly worse."
    within = c.lo >= -c.margin
    return within, (f"Non-inferiority: {c.a} - {c.b} interval [{c.lo:+.3f}, {c.hi:+.3f}] "
                    f"{'lies above' if within else 'reaches below'} -{c.margin:g} (the metric's margin).")


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


RETINA_CONTROL_CLAIM = ("control: the centre-surround classifier labels constructed opposite-sign DoGs and the "
                        "whitening filter's point-spread function centre-surround, and a same-sign blob and a "
                        "Gabor not")
#: patch sides the retina control is run at: the natural-image datasets' (natural 8, natural12 12, cifar 16).
RETINA_CONTROL_SIZES = (8, 12, 16)


@lru_cache(maxsize=None)
def _retina_labels(size: int) -> tuple[bool, tuple[tuple[str, bool], ...]]:
    """The classifier's labels of the constructed bank at one patch side (cached: pure maths, the
    same every time the verdicts are computed)."""
    passed, labels = control_passes(size)
    return passed, tuple(labels.items())


def retina_fields(ev: Evidence) -> None:
    """Control of claim 3 (retina-like): on fields whose answer is known by construction
    (``analysis.center_surround.control_bank``: opposite-sign DoGs, noisy or not, and the whitening
    filter's PSF must be centre-surround; same-sign blobs, a blob on a same-sign pedestal and a Gabor
    must not), the classifier gets every label right at every patch side. Run when the study has a
    natural-image dataset; a failure turns the centre-surround verdicts into "control failed"."""
    if not any(ev.sources.get(d) in NATURAL_SOURCES for d, _ in ev.groups()):
        return
    wrong = []
    for size in RETINA_CONTROL_SIZES:
        expected = {name: want for name, (_, want) in control_bank(size).items()}
        wrong += [f"{name} at {size}x{size} (labelled {'centre-surround' if got else 'not'})"
                  for name, got in _retina_labels(size)[1] if got != expected[name]]
    passed = not wrong
    kinds = ", ".join(f"{name} ({'yes' if want else 'no'})" for name, (_, want) in control_bank(8).items())
    evidence = (f"{len(control_bank(8))} constructed fields (should be centre-surround?): {kinds}; at patch sides "
                f"{', '.join(map(str, RETINA_CONTROL_SIZES))}. ")
    evidence += ("Every label is right." if passed else
                 f"Mislabelled: {'; '.join(wrong)}. The control failed: the retina-like verdicts say 'control failed'.")
    ev.add(0, "", "", "centre-surround classifier", "supported" if passed else "control failed",
           f"{sum(len(control_bank(8)) for _ in RETINA_CONTROL_SIZES) - len(wrong)}/"
           f"{len(control_bank(8)) * len(RETINA_CONTROL_SIZES)} fields", evidence, claim=RETINA_CONTROL_CLAIM)
    control_result(ev, "retina_fields", passed)


#: control name -> the function that judges it, in report order (another control: one more entry).
CONTROLS: dict[str, Callable[[Evidence], None]] = {"training_likelihood": training_likelihood,
                                                   "dictionary_recovery": dictionary_recovery,
                                                   "receptive_fields": sparse_coding_fields,
                                                   "retina_fields": retina_fields}


def controls(ev: Evidence) -> None:
    """Every registered control, first."""
    for judge in CONTROLS.values():
        judge(ev)
