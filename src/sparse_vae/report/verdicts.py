"""The verdict vocabulary and its rules, written once (the HTML, README and answers show these words).

A claim "metric of prior A beats prior B" is one paired comparison (``statistics``): it *holds* when
the Holm-adjusted test of the per-seed differences rejects at alpha = 1 - confidence in the claimed
direction, is *reversed* when it rejects the other way, reads *no difference* when it does not
reject and the interval of the mean difference lies within the metric's equivalence margin, and is
*inconclusive* otherwise (``claim_outcome``). ``classify`` turns a conclusion's comparisons into one
verdict; ``deciding`` names the comparison that decides it (the row's headline effect); a claim whose
test is below its own detection floor reads *not observed* (set by its judge, e.g. claim 3a); ``note``
says why a verdict is not plain; the control constants say which metrics a
failed control takes down (here, not in ``controls``, so that ``evidence`` and ``controls`` need
not import each other). Not here: the numbers (``statistics``), the per-prior view (``evidence``),
the controls and conclusions, tables, figures, HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from sparse_vae.report.statistics import Paired, decide
from sparse_vae.report.tables import fmt, fmt_sd

__all__ = ["CONTROL_SOURCES", "METRIC_CONTROLS", "NATURAL_SOURCES", "OUTCOME_TEXT", "Stat", "VERDICTS",
           "VERDICT_COLUMNS", "VERDICT_RULES", "claim_outcome", "classify", "deciding", "mean_sd", "note"]

#: the verdict vocabulary and its rules, in one place (shown in the report and the README).
VERDICT_RULES: dict[str, str] = {
    "supported": "every comparison holds: its Holm-adjusted paired test (sign-flip permutation, or paired t "
                 "where that cannot reach the level) rejects in the claimed direction",
    "partly supported": "some comparisons hold, none is reversed; the others show no difference or are "
                        "inconclusive",
    "contradicted": "at least one comparison is reversed: its adjusted test rejects the other way (whatever "
                    "the others do)",
    "no difference": "no test rejects and every comparison's interval of the mean paired difference lies "
                     "within the metric's equivalence margin (the smallest effect of interest)",
    "inconclusive": "no test rejects and some interval reaches beyond the margin: too few seeds or too much "
                    "spread to tell (compare the minimal detectable effect with the margin)",
    "not observed": "the claimed effect was not seen AND the test's own known-answer control says it could not "
                    "have been seen (a floor effect, e.g. the classifier detects too few constructed fields): "
                    "not evidence against the claim",
    "unstable": "the verdict differs from the one the stability rerun (another reduction order or batch "
                "of seeds) gives for the same row: not a finding",
    "not tested": "runs or values are missing, or fewer than two seeds pair up",
    "control failed": "the positive control of a metric the conclusion relies on did not pass, so the "
                      "metric's verdict would not be evidence",
}
VERDICTS = tuple(VERDICT_RULES)
#: ``conclusion`` is the claim's string id (``conclusions.CONCLUSIONS``: "0", "1", "2a", ...); ``effect``,
#: ``effect_low``, ``effect_high`` the mean paired difference of the row's deciding comparison
#: (``deciding``) and its interval, positive in the claim's direction, in ``unit`` (the metric's unit,
#: "log ratio" for a log-scale metric, "fraction of seeds" for conclusion 4's indicators).
VERDICT_COLUMNS = ["conclusion", "claim", "dataset", "latent", "metric", "verdict", "seeds", "test", "p_adjusted",
                   "mde", "effect", "effect_low", "effect_high", "unit", "evidence"]

#: sources of positive-control datasets (not part of the talk's conclusions).
CONTROL_SOURCES = {"sparse_linear"}
#: sources of natural-image datasets (the receptive-field control and conclusion 3).
NATURAL_SOURCES = {"natural", "cifar"}
#: metric -> the control that must pass before a verdict may rest on it. "dictionary_recovery" is the
#: sparse_linear control; "receptive_fields" the sparse-coding (dictionary-learning) baseline's fields;
#: "retina_fields" the centre-surround classifier on constructed fields (``controls.retina_fields``).
METRIC_CONTROLS = {
    "template_matched_cos": "dictionary_recovery", "template_weight_corr": "dictionary_recovery",
    "probe_accuracy": "dictionary_recovery", "probe_accuracy_best_dim": "dictionary_recovery",
    "mi_label_max": "dictionary_recovery", "rf_localization": "receptive_fields",
    "rf_gabor_fraction": "receptive_fields", "rf_dog_fraction": "receptive_fields",
    "label_info_mean": "dictionary_recovery", "label_info_max": "dictionary_recovery",
    "probe_accuracy_sampled": "dictionary_recovery", "label_info_total": "dictionary_recovery",
    "label_info_top1": "dictionary_recovery", "label_info_auc": "dictionary_recovery",
    "rf_center_surround_fraction": "retina_fields", "rf_enc_center_surround_fraction": "retina_fields",
}

#: a claim's outcome -> how the evidence text says it.
OUTCOME_TEXT = {
    "holds": "holds", "reversed": "reversed", "no difference": "no difference (interval within ±margin)",
    "inconclusive": "inconclusive", "no interval": "fewer than 2 paired seeds, no test",
}


@dataclass
class Stat:
    """A metric over one prior's seeds: count, mean, sd, t-interval and the values."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    values: pd.Series = field(repr=False)  # indexed by seed


def claim_outcome(c: Paired, confidence: float) -> str:
    """The outcome of the claim "a > b" for a comparison of a - b (``statistics.decide``)."""
    return {"a higher": "holds", "b higher": "reversed"}.get(decide(c, confidence), decide(c, confidence))


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
    if all(o == "no difference" for o in outcomes):
        return "no difference"
    return "inconclusive"


def deciding(comparisons: Sequence[Paired], outcomes: Sequence[str]) -> Paired | None:
    """The comparison that decides a row's verdict (``classify``): the most significant reversed one
    if any; else, when every one holds, the weakest (largest adjusted p); else the first that does not
    hold and is not "no difference" (what keeps the row from "supported"); else the one whose interval
    reaches furthest from 0 (the last to fit within its margin). None without a tested comparison."""
    pairs = [(c, o) for c, o in zip(comparisons, outcomes) if c.n >= 2]
    if not pairs:
        return None
    reversed_ = [c for c, o in pairs if o == "reversed"]
    if reversed_:
        return min(reversed_, key=lambda c: c.p_adj)
    if all(o == "holds" for _, o in pairs):
        return max((c for c, _ in pairs), key=lambda c: c.p_adj)
    open_ = [c for c, o in pairs if o not in ("holds", "no difference")]
    if open_:
        return open_[0]
    not_holding = [c for c, o in pairs if o != "holds"]
    return max(not_holding, key=lambda c: max(abs(c.lo), abs(c.hi)))


def note(pct: str, verdict: str, outcomes: Sequence[str]) -> str:
    """Why a verdict is not plain: appended to the evidence."""
    if verdict == "not tested" and "no interval" in outcomes:
        return " Not tested: fewer than two seeds pair up, so there is no test."
    if verdict == "no difference":
        return f" No difference: every {pct} interval of the difference lies within the metric's margin."
    if verdict == "inconclusive":
        return (f" Inconclusive: no adjusted test rejects and a {pct} interval reaches beyond the margin "
                "(more seeds, or a smaller spread, would be needed).")
    if verdict == "partly supported":
        return " Partly: only some comparisons hold, none is reversed."
    if verdict == "contradicted":
        return " Contradicted: a comparison is reversed (its adjusted test rejects the other way)."
    if verdict == "not observed":
        return " Not observed: the test could not detect it (its control's detection rate is below the floor)."
    return ""


def mean_sd(s: Stat) -> str:
    if s.n == 0:
        return "no value"
    if s.n == 1:
        return f"{fmt(s.mean)} (1 seed)"
    return f"{fmt(s.mean)} ± {fmt_sd(s.sd, s.mean)} (n = {s.n})"
