"""Presentation tests of report.html: the answers first (from a pairwise table), the glossary,
readable summary tables and figures, and the first screen in headless Chromium.

The pairwise table is made here by hand from the fake study's runs (paired t intervals, scipy), in the
schema report.pairwise writes (``answers.PAIRWISE_COLUMNS``), so these tests do not depend on how
verdicts are decided.
"""

from __future__ import annotations

import html
import math
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparse_vae import catalogue, report
from sparse_vae.report.answers import PAIRWISE_COLUMNS
from sparse_vae.report.html import clipped, render_html
from sparse_vae.report.runs import Study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_report import CHROMIUM, first_screen_layout  # noqa: E402
from test_report import _png, make_study  # noqa: E402

QUESTIONS = {"sparsity": ["hoyer"], "informativeness": ["probe_accuracy", "template_weight_corr"],
             "reconstruction": ["mse"], "dims used in 2-D": ["dims_used_2d"]}
PAIRS = [("laplace", "normal"), ("cauchy", "normal"), ("laplace", "cauchy")]


def hand_made_pairwise(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Paired difference a − b (by seed), its paired t interval and p-value per question, dataset, latent
    and pair of priors; the outcome from the interval and the catalogue margin (no multiplicity here)."""
    rows = []
    for (dataset, latent), group in df.groupby(["dataset", "latent"], sort=False):
        for question, metrics in QUESTIONS.items():
            for metric in [m for m in metrics if group[m].notna().any()]:
                for a, b in PAIRS:
                    xa = group.loc[group["prior"] == a].set_index("seed")[metric].dropna()
                    xb = group.loc[group["prior"] == b].set_index("seed")[metric].dropna()
                    d = (xa - xb).dropna()
                    with warnings.catch_warnings():  # seeds that differ by a constant: precision warning
                        warnings.simplefilter("ignore", RuntimeWarning)
                        test = stats.ttest_1samp(d, 0.0)
                    ci = test.confidence_interval(confidence)
                    lo, hi = (ci.low, ci.high) if np.isfinite(ci.low) else (d.mean(),) * 2
                    sign = -1 if catalogue.metric(metric).better == "lower" else 1
                    margin = catalogue.metric(metric).margin
                    if lo > 0 or hi < 0:  # a higher when lo > 0; better by the metric's direction
                        outcome = "a better" if (lo > 0) == (sign > 0) else "b better"
                    else:
                        outcome = "no difference" if margin and -margin <= lo and hi <= margin else "inconclusive"
                    rows.append({"question": question, "dataset": dataset, "latent": latent, "metric": metric,
                                 "better": catalogue.metric(metric).better, "prior_a": a, "prior_b": b,
                                 "n_a": len(xa), "n_b": len(xb), "n_pairs": len(d), "mean_a": xa.mean(),
                                 "mean_b": xb.mean(), "difference": d.mean(), "ci_low": lo, "ci_high": hi,
                                 "margin": margin, "test": "paired t", "p_value": test.pvalue,
                                 "p_adjusted": test.pvalue, "family": 1, "mde": math.nan, "outcome": outcome,
                                 "seeds_a_better": int((sign * d > 0).sum())})
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.order = set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
            self.order.append(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.hrefs.append(a["href"][1:])


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    paths, study = make_study(root)
    out = root / "report"
    result = report.build_report(paths, study, out)
    pairwise = hand_made_pairwise(result["metrics"])
    text = render_html(Study.parse(study), result["metrics"], result["summary"], result["verdicts"],
                       result["figures"], out / "figures", pairwise=pairwise)
    (out / "answers.html").write_text(text, encoding="utf-8")
    return text, pairwise, result, out


def test_the_answers_come_first_laplace_vs_normal_first(page):
    text, pairwise, _, _ = page
    tags = _Page()
    tags.feed(text)
    order = tags.order
    assert order.index("answers") < order.index("verdicts") < order.index("glossary")
    tables = [i for i in order if i.startswith("answers-") and not i.endswith("-h")]
    assert tables == ["answers-laplace-vs-normal", "answers-cauchy-vs-normal", "answers-laplace-vs-cauchy"]
    missing = [h for h in tags.hrefs if h not in tags.ids]
    assert not missing, f"links to absent anchors: {missing}"
    assert sum(h.startswith("fig-metrics_") for h in tags.hrefs) >= len(pairwise) // 2


def test_the_headline_answers_sparser_and_more_informative_with_numbers(page):
    text, pairwise, _, _ = page
    headline = text[text.index('<ul class="headline">'):text.index("</ul>", text.index('<ul class="headline">'))]
    for dataset, latent in [("synthetic", 4), ("digits", 2), ("natural", 4)]:
        assert f"<b>{dataset}, latent {latent}</b>" in headline
        row = pairwise[(pairwise["dataset"] == dataset) & (pairwise["question"] == "sparsity")
                       & (pairwise["prior_a"] == "laplace") & (pairwise["prior_b"] == "normal")].iloc[0]
        assert f"{row['mean_a']:.2f} vs {row['mean_b']:.2f}" in headline
    assert headline.count("sparser: yes") == 3  # laplace's Hoyer is higher in every seed of the fake study
    assert headline.count("more informative: yes") == 2  # natural has neither labels nor templates


@pytest.mark.parametrize("pairwise", [None, pd.DataFrame(columns=PAIRWISE_COLUMNS)])
def test_no_pairwise_table_is_a_note_not_an_error(page, pairwise):
    _, _, result, out = page
    study = Study.parse(make_study(out.parent / "unused", datasets={"digits": [2]}, seeds=(1,))[1])
    text = render_html(study, result["metrics"], result["summary"], result["verdicts"], result["figures"],
                       out / "figures", pairwise=pairwise)
    assert "No pairwise comparisons" in text and 'id="answers"' in text


def test_glossary_is_the_catalogue_with_ranges_and_notes(page):
    text = page[0]
    glossary = text[text.index('id="glossary"'):text.index('id="fig-')]
    for metric in catalogue.METRICS:
        assert f"<td>{metric.name}</td>" in glossary
        if metric.note:
            assert html.escape(metric.note, quote=True) in glossary
    assert catalogue.metric("active_units_kl").note and "[0, latent size]" in glossary
    for metric in catalogue.METRICS:  # every stated equivalence margin, with its reason
        if metric.margin is not None:
            assert html.escape(f"±{metric.margin:g}: {metric.margin_reason}", quote=True) in glossary, metric.name


def test_summary_tables_list_constant_metrics_below_instead_of_rows(page):
    text = page[0]
    table = text[text.index('id="summary-digits-z2"'):]
    table, after = table[:table.index("</table>")], table[table.index("</table>"):table.index("<h3", 1)]
    assert "IWAE samples K" not in table and "<td>epochs</td>" not in table
    assert "IWAE samples K = 10" in after and "epochs = 5" in after
    assert "reconstruction MSE" in table


def test_intervals_are_clipped_to_the_metric_range():
    assert clipped("hoyer", 4, -0.2, 1.16) == (0.0, 1.0)
    assert clipped("active_units", 4, -1.1, 5.0) == (0.0, 4.0)
    assert clipped("mse", 4, -0.01, 0.5) == (0.0, 0.5)
    assert clipped("elbo", 4, -500.0, 3.0) == (-500.0, 3.0)
    lo, hi = clipped("hoyer", 4, math.nan, math.nan)
    assert math.isnan(lo) and math.isnan(hi)
    assert catalogue.value_range("dims_used_2d", 2) == (0.0, 2.0)


def test_run_figures_are_composed_at_their_own_size(tmp_path):
    """A wide run figure is never shrunk: three of them are stacked, each at full width."""
    paths, study = make_study(tmp_path, datasets={"digits": [2]}, seeds=(1, 2))
    for p in paths:
        _png(p.parent / "figures" / "reconstructions.png", 1, shape=(150, 700))
    report.build_report(paths, study, tmp_path / "report")
    img = mpimg.imread(tmp_path / "report" / "figures" / "reconstructions_digits_z2.png")
    assert img.shape[1] >= 700 and img.shape[0] >= 3 * 150


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless chromium (/usr/bin/chromium) is not installed")
def test_first_screen_states_the_laplace_vs_normal_answers(page):
    """In a 1400x900 window, before scrolling, the reader sees the headline and the first table starts."""
    _, pairwise, _, out = page
    layout = first_screen_layout(out / "answers.html", 1400, 900)
    screen = min(900, layout["viewport"][1])
    assert layout["headline"]["bottom"] <= screen, layout["headline"]
    assert layout["first_table"]["top"] < screen
    shown = layout["headline"]["text"]
    for dataset in ("synthetic", "digits", "natural"):
        assert f"{dataset}, latent" in shown
    assert "sparser" in shown and "more informative" in shown and "Δ" in shown
