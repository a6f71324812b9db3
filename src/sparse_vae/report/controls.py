"""The positive controls: they run first, and a failed one turns every verdict resting on its
metrics into "control failed" (``verdicts.METRIC_CONTROLS``).

Each control is one function registered in ``CONTROLS``: it judges its datasets, adds its own verdict
row (conclusion "0") and records its result with ``control_result``. Here: the training likelihood
(AIS where the runs have it, with a margin scaled to the data set's latent causes), the sparse_linear
dictionary recovery, the sparse-coding baseline's receptive fields (claim 3b), the centre-surround
classifier on constructed fields (claim 3a, with its detection floor) and the estimators'
known-answer controls (their gate on the verdicts: ``estimator_gate``). Not here: ``Evidence`` (``evidence``,
which this module uses and which does not import it back), which metrics each control guards
(``verdicts``), the conclusions and ``control_status`` (``conclusions``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scipy import stats


from sparse_vae import catalogue
from sparse_vae.errors import SparseVAEError
from sparse_vae.report.estimator_gate import ESTIMATOR_OF, REFERENCE_FAMILY, bias_difference, differential_passes
from sparse_vae.report.evidence import Evidence
from sparse_vae.report.statistics import Paired
from sparse_vae.report.verdicts import NATURAL_SOURCES, mean_sd

__all__ = ["CONTROLS", "ENTROPY_GAP", "ESTIMATOR_CONTROL_CLAIM", "ESTIMATOR_PREFIX", "FIELD_CONTROL_CLAIM", "RETINA_CONTROL_CLAIM",
           "RETINA_MIN_DETECTION", "TRAINING_CONTROL_CLAIM", "control_result", "controls", "read_retina_control",
           "retina_floor", "training_margin"]

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
        ev.add("0", "", "", "template_matched_cos", "not tested", "",
               "Not tested: no positive-control dataset (source sparse_linear) in the study.")
        control_result(ev, "dictionary_recovery", None)
        return
    for dataset, latent in groups:
        why = ev.missing(dataset, latent, ["normal", "laplace"], ["template_matched_cos"])
        if why:
            ev.add("0", dataset, latent, "template_matched_cos", "not tested", "", f"Not tested: {why}.")
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
        ev.add("0", dataset, latent, "template_matched_cos", verdict, f"{k}/{lap.n}", evidence, results=[r])
        control_result(ev, "dictionary_recovery", passed)


TRAINING_CONTROL_CLAIM = ("control: on data drawn from a known prior, the model with that prior is not worse "
                          "in held-out likelihood (AIS where the runs have it) than the normal prior's by more "
                          "than the data set's margin (training reaches the generating model)")
#: nats per latent cause a model with the generating prior can gain over a normal prior: h(N) - h(F) for
#: unit-variance F (Laplace: 0.0724 nats), the KL from the source distribution to its moment-matched
#: Gaussian, which bounds the per-example likelihood the right prior can add (data processing). Theory,
#: fixed a priori; a family without a finite variance (Cauchy) has none, and the metric's margin is used.
ENTROPY_GAP = {"laplace": float(stats.norm.entropy() - stats.laplace(scale=1 / math.sqrt(2)).entropy())}


def training_margin(family: str, latent: int, metric: str) -> tuple[float | None, str]:
    """(margin, why) of the training control: the whole likelihood advantage the generating prior can
    bring, ``latent`` x ENTROPY_GAP[family] nats per example (worse than normal by more than the prior
    could ever explain is a failure to train); else the metric's catalogue margin, said so."""
    if family in ENTROPY_GAP:
        margin = latent * ENTROPY_GAP[family]
        return margin, (f"{latent} latent causes x {ENTROPY_GAP[family]:.4f} nats (h(N) - h({family}) at unit "
                        f"variance) = {margin:.3g} nats, scaled to the data set a priori")
    margin = catalogue.metric(metric).margin
    return margin, f"the metric's catalogue margin {margin:g} (no entropy gap for {family})"


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
            ev.add("0", dataset, latent, metric, "not tested", "", f"Not tested: {why}.", claim=TRAINING_CONTROL_CLAIM)
            control_result(ev, "training_likelihood", None)
            continue
        r = ev.compare(dataset, latent, metric, [("normal", family)])
        margin, why_margin = training_margin(family, latent, metric)
        passed, reading = _non_inferior(r["comparisons"][0], r["outcomes"][0], margin)
        decided = ("AIS" if metric == "ais_log_lik" else
                   "IWAE (labelled: no AIS in these runs; a Gaussian posterior's IWAE is biased against the "
                   "generating prior)")
        evidence = (f"{r['text']}. The data were drawn with {family} latent causes. Decided by {decided}; margin "
                    f"{why_margin}. {reading}")
        verdict = {None: "not tested", True: "supported", False: "control failed"}[passed]
        if passed is False:
            ev.training_failed.add(dataset)
            evidence += f" The training control failed: every verdict on {dataset} says 'control failed'."
        ev.add("0", dataset, latent, metric, verdict, f"{r['k']}/{r['n']}", evidence, claim=TRAINING_CONTROL_CLAIM,
               results=[r])
        control_result(ev, "training_likelihood", passed)


def _non_inferior(c: Paired, outcome: str, margin: float | None) -> tuple[bool | None, str]:
    """(passed, one sentence): the non-inferiority reading of ``c`` = family - normal at `margin`."""
    if outcome == "no interval":
        return None, "Too few paired seeds for an interval."
    if margin is None:  # no margin stated: the strict reading, not significantly worse
        return outcome != "reversed", "No margin for this metric: passes unless significantly worse."
    within = c.lo >= -margin
    return within, (f"Non-inferiority: {c.a} - {c.b} interval [{c.lo:+.3f}, {c.hi:+.3f}] "
                    f"{'lies above' if within else 'reaches below'} -{margin:.3g}.")


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
        ev.add("0", dataset, "", "baseline gabor_fraction", "supported" if passed else "control failed", "",
               evidence, claim=FIELD_CONTROL_CLAIM)
        control_result(ev, "receptive_fields", passed)


RETINA_CONTROL_CLAIM = ("control: the centre-surround classifier labels constructed opposite-sign DoGs and the "
                        "whitening filter's point-spread function centre-surround, and a same-sign blob and a "
                        "Gabor not")
def read_retina_control(path: Path | str) -> dict[int, dict[str, Any]]:
    """patch side -> the centre-surround classifier's control at that side, as analysis wrote it
    (``<results>/controls/retina.json``, ``analysis.center_surround.retina_control``: the bank's labels
    and expected labels); SparseVAEError names a bad file."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
        return {int(size): {"labels": dict(record["bank_labels"]), "expected": dict(record["bank_expected"])}
                for size, record in content.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SparseVAEError(f"{path}: unreadable as the retina control ({error!r})") from None


#: the retina control's detection floor, fixed a priori: below this share of the constructed
#: centre-surround fields labelled centre-surround, the classifier cannot see what claim 3a looks for, so
#: an absent effect reads "not observed" (a floor effect), never "contradicted".
RETINA_MIN_DETECTION = catalogue.RETINA_DETECTABLE_RATE
#: per-run columns of the detection rate at the run's own field noise (decoder, encoder fields), where the
#: analysis reports them (optional): field kind -> column.
RETINA_DETECTION_KEYS = {"decoder": "rf_cs_detection_rate", "encoder": "rf_enc_cs_detection_rate"}


def retina_fields(ev: Evidence) -> None:
    """Control of claim 3a (retina-like): on fields whose answer is known by construction (analysis'
    ``controls/retina.json``: opposite-sign DoGs over surround ratios, the whitening filter's PSF, blobs,
    a pedestal, a Gabor), no negative may be labelled centre-surround (else "control failed"), and the
    share of positives detected is the test's detection rate: below ``RETINA_MIN_DETECTION`` the row
    reads "not observed" (the floor, recorded in ``ev.retina_detection``). Run when the study has a
    natural-image dataset; "not tested" without the control file."""
    if not any(ev.sources.get(d) in NATURAL_SOURCES for d, _ in ev.groups()):
        return
    bank = ev.retina_control
    if not bank:
        ev.add("0", "", "", "centre-surround classifier", "not tested", "",
               "No retina control (controls/retina.json) was given to the report.", claim=RETINA_CONTROL_CLAIM)
        control_result(ev, "retina_fields", None)
        return
    false_pos, missed, positives, total = [], [], 0, 0
    for size, record in sorted(bank.items()):
        positives += sum(record["expected"].values())
        total += len(record["expected"])
        for name, want in record["expected"].items():
            if bool(record["labels"].get(name)) != bool(want):
                (missed if want else false_pos).append(f"{name} at {size}x{size}")
    rate = 1 - len(missed) / positives if positives else math.nan
    ev.retina_detection = rate
    first = bank[min(bank)]["expected"]
    kinds = ", ".join(f"{name} ({'yes' if want else 'no'})" for name, want in first.items())
    evidence = (f"{len(first)} constructed fields (should be centre-surround?): {kinds}; at patch sides "
                f"{', '.join(map(str, sorted(bank)))}. Detection rate {rate:.2f} of {positives} "
                f"centre-surround fields (floor {RETINA_MIN_DETECTION:g})"
                + (f"; missed: {'; '.join(missed)}." if missed else "."))
    if false_pos:
        verdict = "control failed"
        evidence += (f" Labelled centre-surround though not: {'; '.join(false_pos)}. The control failed: the "
                     "retina-like verdicts say 'control failed'.")
    elif rate < RETINA_MIN_DETECTION:
        verdict = "not observed"
        evidence += " Below the floor: the test cannot detect such fields, so an absent effect reads 'not observed'."
    else:
        verdict = "supported"
        evidence += " No negative is labelled centre-surround."
    ev.add("0", "", "", "centre-surround classifier", verdict, f"{total - len(missed) - len(false_pos)}/{total} fields",
           evidence, claim=RETINA_CONTROL_CLAIM)
    control_result(ev, "retina_fields", not false_pos)


def retina_floor(ev: Evidence, dataset: str, latent: int) -> str:
    """Why claim 3a cannot be observed on this group ("" when it can): the control's detection rate,
    or the runs' own detection rate at their fields' noise (``RETINA_DETECTION_KEYS``, decoder or
    encoder fields), below the floor."""
    rate = getattr(ev, "retina_detection", math.nan)
    if not math.isnan(rate) and rate < RETINA_MIN_DETECTION:
        return f"the classifier detects {rate:.2f} of the constructed centre-surround fields (floor {RETINA_MIN_DETECTION:g})"
    low = [f"{p} {kind} {s.mean:.2f}" for kind, key in RETINA_DETECTION_KEYS.items() for p in ("normal", "laplace")
           for s in [ev.stat(dataset, latent, p, key)] if s.n and s.mean < RETINA_MIN_DETECTION]
    return (f"the runs detect too few injected centre-surround fields ({', '.join(low)}; floor "
            f"{RETINA_MIN_DETECTION:g})") if low else ""


#: how an estimator control's row (its metric) and result (its control name) begin: "estimator <name> ..."
ESTIMATOR_PREFIX = "estimator "
ESTIMATOR_CONTROL_CLAIM = ("control: each estimator a verdict reads recovers a known answer (synthetic codes of known "
                           "label information) about as well on every posterior family's codes as on a Gaussian "
                           "code's: the bias difference within the metric's margin")


def estimator_controls(ev: Evidence) -> None:
    """One row per (estimator, family) of the known-answer controls, when they were run: its bias, and
    whether it differs from the Gaussian code's by less than the margin of every metric it serves (per
    dimension; the verdicts' own gates scale it to their metric and latent size)."""
    if not ev.estimators:
        return
    for (name, family), row in ev.estimators.items():
        metrics = [m for m, e in ESTIMATOR_OF.items() if e == name]
        reference = ev.estimators.get((name, REFERENCE_FAMILY), row)
        ok = family == REFERENCE_FAMILY or all(differential_passes(row, reference, m, 1, family, REFERENCE_FAMILY)
                                               for m in metrics)
        exact = f", exact {row['exact']:.3g}" if "exact" in row else ""
        low, high = bias_difference(row, reference, family, REFERENCE_FAMILY)
        paired = "paired on the same draws" if row.get("paired_with") == REFERENCE_FAMILY else "intervals added"
        evidence = (f"{name} on {family} codes (N = {row.get('n', math.nan):.0f}{exact}): bias {row['bias']:+.3g} "
                    f"[{row['bias_low']:+.3g}, {row['bias_high']:+.3g}]"
                    + ("" if family == REFERENCE_FAMILY else
                       f"; on the Gaussian code {reference['bias']:+.3g} [{reference['bias_low']:+.3g}, "
                       f"{reference['bias_high']:+.3g}]; difference [{low:+.3g}, {high:+.3g}] ({paired})")
                    + f"; pass: the difference within the margin of {', '.join(metrics) or 'no verdict metric'}.")
        ev.add("0", "", "", f"{ESTIMATOR_PREFIX}{name} ({family})", "supported" if ok else "control failed", "", evidence,
               claim=ESTIMATOR_CONTROL_CLAIM)
        control_result(ev, f"{ESTIMATOR_PREFIX}{name} {family}", ok)


#: control name -> the function that judges it, in report order (another control: one more entry).
CONTROLS: dict[str, Callable[[Evidence], None]] = {"training_likelihood": training_likelihood,
                                                   "dictionary_recovery": dictionary_recovery,
                                                   "receptive_fields": sparse_coding_fields,
                                                   "retina_fields": retina_fields,
                                                   "estimators": estimator_controls}


def controls(ev: Evidence) -> None:
    """Every registered control, first."""
    for judge in CONTROLS.values():
        judge(ev)
