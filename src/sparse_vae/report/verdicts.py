"""The verdict vocabulary and its rules, written once (the HTML shows ``VERDICT_RULES``).

A claim "metric of prior A beats prior B" *holds* when the Welch t-interval of the difference of
their means over seeds excludes 0 in the claimed direction, is *reversed* when it excludes 0 the
other way, *overlaps* otherwise (``pair_outcome``; the same test as the pairwise answers);
``classify`` turns a conclusion's comparisons into one verdict; ``note`` says why a verdict is not
plain. Per-seed counts are always reported.
Not here: the per-prior statistics (``evidence``), the controls (``controls``), the conclusions and
``compute_verdicts`` (``conclusions``), tables, pairwise table, figures, HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from sparse_vae.report.tables import fmt, fmt_sd, separation, welch_interval

__all__ = ["Stat", "VERDICTS", "VERDICT_COLUMNS", "VERDICT_RULES", "classify", "mean_sd", "note", "pair_outcome"]

#: the verdict vocabulary and its rules, in one place (shown in the report).
VERDICT_RULES: dict[str, str] = {
    "supported": "every comparison holds: the Welch interval of the difference over seeds excludes 0 "
                 "in the claimed direction",
    "partly supported": "some comparisons hold, the others' intervals of the difference contain 0; none is "
                        "reversed",
    "contradicted": "at least one comparison is reversed: its interval of the difference excludes 0 the other "
                    "way (whatever the others do)",
    "inconclusive": "every comparison's interval of the difference contains 0",
    "not tested": "runs or values are missing, or a prior has a single seed (no interval over seeds)",
    "control failed": "the positive control of a metric the conclusion relies on did not pass, so the "
                      "metric's verdict would not be evidence",
}
VERDICTS = tuple(VERDICT_RULES)
VERDICT_COLUMNS = ["conclusion", "claim", "dataset", "latent", "metric", "verdict", "seeds", "evidence"]


@dataclass
class Stat:
    """A metric over one prior's seeds: count, mean, sd, t-interval and the values."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    values: pd.Series = field(repr=False)  # indexed by seed


def pair_outcome(low: Stat, high: Stat, confidence: float, metric: str | None = None) -> str:
    """Whether "high > low" holds, is reversed, overlaps, or has no interval (a single seed), by the
    Welch interval of mean(high) - mean(low) (``tables.welch_interval``, ``tables.separation``)."""
    if low.n < 2 or high.n < 2:
        return "no interval"
    side = separation(*welch_interval(high.values.to_numpy(), low.values.to_numpy(), confidence, metric))
    return {"a higher": "holds", "b higher": "reversed"}.get(side, side)


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
        return f" Inconclusive: every {pct} interval of the difference contains 0."
    if verdict == "partly supported":
        return f" Partly: only some comparisons' {pct} intervals of the difference exclude 0, none is reversed."
    if verdict == "contradicted":
        return f" Contradicted: a comparison is reversed, its {pct} interval of the difference excluding 0."
    return ""


def mean_sd(s: Stat) -> str:
    if s.n == 0:
        return "no value"
    if s.n == 1:
        return f"{fmt(s.mean)} (1 seed)"
    return f"{fmt(s.mean)} ± {fmt_sd(s.sd, s.mean)} (n = {s.n})"
