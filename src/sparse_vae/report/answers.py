"""The report's opening: the study's answers, generated from the pairwise table, before any detail.

For each question (sparsity first, then the talk's claims) and each dataset x latent, one compact
cell per pair of priors: the answer in the verdict vocabulary (a prior better, no difference,
inconclusive, unstable, ...), both means, the mean paired difference with its interval, the
Holm-adjusted p-value, the minimal detectable effect beside the margin, and the seed count, linked
to the figure panel that shows it. Laplace vs normal comes first, then
cauchy vs normal and laplace vs cauchy. A sentence per dataset answers "is laplace sparser and more
informative than normal?" in words. The pairwise table itself (columns ``PAIRWISE_COLUMNS``) is
computed in ``report.pairwise``; this module only presents it, and an absent or empty table gives a
short note, never an error.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.figures import FigureInfo, slug
from sparse_vae.report.pairwise import PAIRWISE_COLUMNS
from sparse_vae.report.statistics import comparison_unit
from sparse_vae.report.tables import fmt, fmt_p, fmt_sd

__all__ = ["answers_section"]

#: pairs in the order a reader asks about them.
PAIRS = [("laplace", "normal"), ("cauchy", "normal"), ("laplace", "cauchy")]
#: questions in the order the summary answers them; others follow in table order.
QUESTIONS = ["sparsity", "informativeness", "reconstruction", "likelihood", "latent use", "dims used in 2-D"]
#: the figure kinds that show a question, most telling first (report.figures kinds).
PANELS = {"latent use": ("kl_per_dim", "metrics"), "receptive fields": ("receptive_fields", "metrics")}
#: what "a better" means for the headline sentence, per question.
ADJECTIVE = {"sparsity": "sparser", "informativeness": "more informative"}


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _decimals(row: pd.Series) -> int:
    """Decimals that show the interval's half-width to two significant figures (3 without one)."""
    spread = abs(_num(row["ci_high"]) - _num(row["ci_low"])) / 2
    if math.isnan(spread) or spread == 0:
        diff = _num(row["difference"])
        if math.isnan(diff) or diff == int(diff):
            return 0
        spread = abs(diff)
        return max(0, min(6, 2 - math.floor(math.log10(spread))))
    return max(0, min(6, 1 - math.floor(math.log10(spread))))


def _signed(x: Any, digits: int) -> str:
    v = _num(x)
    return "—" if math.isnan(v) else f"{v:+.{digits}f}"


def _effect(row: pd.Series) -> str:
    """"Δ +0.10 [+0.08, +0.12]": the difference a − b with its interval, at one precision; "Δ log" for a
    metric compared as log ratios (``statistics.comparison_unit``)."""
    digits = _decimals(row)
    lo, hi = _num(row["ci_low"]), _num(row["ci_high"])
    interval = "" if math.isnan(lo) or math.isnan(hi) else f" [{_signed(lo, digits)}, {_signed(hi, digits)}]"
    log = " log" if comparison_unit(str(row.get("metric", ""))) == "log ratio" else ""
    return f"Δ{log} {_signed(row['difference'], digits)}{interval}"


def _seeds(row: pd.Series) -> str:
    """"k/n seeds": in how many seeds prior a did better, when the table says."""
    k = row.get("seeds_a_better")
    if k is None or (isinstance(k, float) and math.isnan(k)):
        return f"n = {int(_num(row['n_a']))}, {int(_num(row['n_b']))}"
    if isinstance(k, str) and "/" in k:
        return f"{k} seeds"
    n = int(min(_num(row["n_a"]), _num(row["n_b"])))
    return f"{int(_num(k))}/{n} seeds"


def _verdict(row: pd.Series) -> tuple[str, str]:
    """(css class, short words) of a pairwise outcome (``pairwise.OUTCOMES``)."""
    a, b = row["prior_a"], row["prior_b"]
    return {
        "a better": ("a-better", f"{a} better"),
        "b better": ("b-better", f"{b} better"),
        "a higher": ("overlap", f"{a} higher"),
        "b higher": ("overlap", f"{b} higher"),
        "no difference": ("same", "no difference"),
        "inconclusive": ("overlap", "inconclusive"),
        "not tested": ("none", "not tested: fewer than 2 paired seeds"),
        "control failed": ("failed", "control failed"),
        "unstable": ("unstable", "unstable in the rerun"),
    }.get(str(row["outcome"]), ("none", str(row["outcome"])))


def _test(row: pd.Series) -> str:
    """"p(Holm) 0.008, MDE 0.012 (margin 0.01)": the adjusted p-value and the detectable effect."""
    if "p_adjusted" not in row or math.isnan(_num(row["p_adjusted"])):
        return ""
    margin = _num(row.get("margin"))
    mde = _num(row.get("mde"))
    text = f"p(Holm) {fmt_p(_num(row['p_adjusted']))}"
    if not math.isnan(mde):
        text += f", MDE {'∞' if math.isinf(mde) else fmt_sd(mde, _num(row['difference']))}"
        text += "" if math.isnan(margin) else f" (margin {fmt(margin)})"
    return text


def _cell(rows: pd.DataFrame, href: str | None, named: bool) -> str:
    """One dataset's answer to one question: a block per metric (named when the question has several)."""
    if rows.empty:
        return '<td class="ans muted">—</td>'
    blocks = []
    for _, row in rows.iterrows():
        cls, words = _verdict(row)
        name = f"{_e(catalogue.label(row['metric']))}: " if named else ""
        blocks.append(f'{name}<span class="o {cls}">{_e(words)}</span><br>{_e(fmt(_num(row["mean_a"]), 3))} vs '
                      f'{_e(fmt(_num(row["mean_b"]), 3))}, {_e(_effect(row))}'
                      f'<br><span class="muted">{_e(_seeds(row))}; {_e(_test(row))}</span>')
    link = f' <a class="panel" href="#{_e(href)}" title="figure panel">panel&nbsp;→</a>' if href else ""
    return f'<td class="ans">{"<br>".join(blocks)}{link}</td>'


def _panel_ids(figures: Sequence[FigureInfo]) -> dict[tuple[str, str, int], str]:
    return {(f.kind, f.dataset, int(f.latent)): "fig-" + slug(f.file[:-4]) for f in figures}


def _panel(ids: dict, question: str, dataset: str, latent: int) -> str | None:
    for kind in PANELS.get(question, ("metrics",)):
        if (kind, dataset, latent) in ids:
            return ids[(kind, dataset, latent)]
    return None


def _ordered(pairwise: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(pairwise["question"]))
    return [q for q in QUESTIONS if q in present] + [q for q in present if q not in QUESTIONS]


def _pair_table(pw: pd.DataFrame, a: str, b: str, groups: list[tuple[str, int]], ids: dict,
                questions: list[str]) -> str:
    sub = pw[(pw["prior_a"] == a) & (pw["prior_b"] == b)]
    if sub.empty:
        return ""
    head = "".join(f"<th>{_e(d)}, latent {z}</th>" for d, z in groups)
    rows = []
    for question in questions:
        mine = sub[sub["question"] == question]
        if mine.empty:
            continue
        metrics = list(dict.fromkeys(mine["metric"]))
        if len(metrics) == 1:
            better = mine["better"].iloc[0]
            what = f"{catalogue.label(metrics[0])}, {catalogue.direction(better)}"
        else:
            what = ", ".join(catalogue.label(m) for m in metrics)
        cells = [_cell(mine[(mine["dataset"] == d) & (mine["latent"] == z)], _panel(ids, question, d, z),
                       len(metrics) > 1) for d, z in groups]
        rows.append(f'<tr><th class="q"><b>{_e(question)}</b><br><span class="muted">{_e(what)}</span></th>'
                    f"{''.join(cells)}</tr>")
    tid = f"answers-{slug(a)}-vs-{slug(b)}"
    return (f'<h3 id="{tid}-h">{_e(a)} vs {_e(b)}</h3><div class="scroll"><table id="{tid}" class="answers">'
            f"<thead><tr><th>question (metric)</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _headline(pw: pd.DataFrame, groups: list[tuple[str, int]]) -> str:
    """One sentence per dataset: is laplace sparser / more informative than normal, with numbers."""
    sub = pw[(pw["prior_a"] == "laplace") & (pw["prior_b"] == "normal")]
    items = []
    for dataset, latent in groups:
        parts = []
        for question, adjective in ADJECTIVE.items():
            hits = sub[(sub["question"] == question) & (sub["dataset"] == dataset) & (sub["latent"] == latent)]
            if hits.empty:
                continue
            said = [str(o) for o in hits["outcome"]]
            answer = ("yes" if all(o == "a better" for o in said) else
                      "no, normal is" if all(o == "b better" for o in said) else
                      "partly" if "a better" in said else
                      "no difference" if all(o == "no difference" for o in said) else
                      "unstable" if "unstable" in said else "inconclusive")
            numbers = "; ".join(f"{catalogue.label(r['metric'])} {fmt(_num(r['mean_a']), 3)} vs "
                                f"{fmt(_num(r['mean_b']), 3)}, {_effect(r)}, {_seeds(r)}"
                                for _, r in hits.iterrows())
            parts.append(f"<b>{_e(adjective)}: {_e(answer)}</b> ({_e(numbers)})")
        if parts:
            items.append(f"<li><b>{_e(dataset)}, latent {latent}</b> — laplace vs normal: {'; '.join(parts)}</li>")
    return f'<ul class="headline">{"".join(items)}</ul>' if items else ""


def answers_section(pairwise: pd.DataFrame | None, figures: Sequence[FigureInfo], pct: str) -> str:
    """The opening section of report.html (id "answers")."""
    parts = ['<section id="answers"><h2>Answers</h2>']
    if pairwise is None or pairwise.empty or not set(PAIRWISE_COLUMNS) <= set(pairwise.columns):
        parts.append('<p class="muted">No pairwise comparisons in this report (pairwise.csv is absent or '
                     "empty); see the verdicts below.</p></section>")
        return "".join(parts)
    pw = pairwise.assign(latent=pairwise["latent"].astype(int))
    groups = list(dict.fromkeys(zip(pw["dataset"], pw["latent"])))
    ids = _panel_ids(figures)
    parts.append(_headline(pw, groups))
    parts.append(f'<p class="muted">Each cell: the answer in the verdict vocabulary, both means (first prior '
                 f"vs second), the mean per-seed difference Δ = first − second (Δ log: of the logs, for a metric "
                 f"compared as ratios) with its {pct} paired t interval, "
                 "the seeds in which the first prior did better, the test's p-value after Holm's correction over "
                 "the pairs of that metric, and the minimal detectable effect (80% power) beside the metric's "
                 "equivalence margin; → links to the figure panel. "
                 'Rules and words: <a href="#vocabulary">verdict vocabulary</a>; metrics: '
                 '<a href="#glossary">glossary</a>.</p>')
    questions = _ordered(pw)
    known = [p for p in PAIRS if ((pw["prior_a"] == p[0]) & (pw["prior_b"] == p[1])).any()]
    others = [p for p in dict.fromkeys(zip(pw["prior_a"], pw["prior_b"])) if p not in known]
    for a, b in known + others:
        parts.append(_pair_table(pw, a, b, groups, ids, questions))
    parts.append("</section>")
    return "".join(parts)
