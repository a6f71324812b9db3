"""Presentation tests of report.html: the scorecard first (claims x datasets, controls beside it,
each cell linked to its evidence), the talk's figures below it, every table in closed <details>, the
answers (from a pairwise table), the glossary, readable summary tables and figures, and the first
screen in headless Chromium (scorecard and first figure inside 1400x900, links resolve, no
horizontal overflow; and the check fails when the scorecard is pushed down).

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
from sparse_vae.report import scorecard as sc
from sparse_vae.report.html import clipped, render_html
from sparse_vae.report.runs import Study
from sparse_vae.report.verdicts import VERDICT_COLUMNS, VERDICTS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_report import CHROMIUM, first_screen_layout, first_screen_problems  # noqa: E402
from test_report import _png, make_study, write_retina_control  # noqa: E402

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
    """Ids in page order, links, the top-level elements after <h1>, and the <details> around each id."""

    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.order, self.top, self.details_of = set(), [], [], [], {}
        self.stack, self.open_details, self.cells = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if len(self.stack) == 2 and self.stack[1] == "body":  # a child of <body>
            self.top.append((tag, a.get("id"), "open" in a))
        if tag not in ("img", "br", "meta", "link", "input", "hr"):
            self.stack.append(tag)
        if tag == "details":
            self.open_details.append(("open" in a, a.get("id")))
        if "id" in a:
            self.ids.add(a["id"])
            self.order.append(a["id"])
            self.details_of[a["id"]] = list(self.open_details)
        if tag == "a" and a.get("href", "").startswith("#"):
            self.hrefs.append(a["href"][1:])
        if tag == "td" and "sc" in a.get("class", "").split():
            self.cells.append(a["class"])

    def handle_endtag(self, tag):
        if tag == "details" and self.open_details:
            self.open_details.pop()
        while self.stack and self.stack.pop() != tag:
            pass


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    paths, study = make_study(root)
    out = root / "report"
    result = report.build_report(paths, study, out, retina_control=write_retina_control(root))
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
    glossary = text[text.index('id="glossary"'):text.index('id="d-figures"')]
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
    """A wide run figure is never shrunk: the three priors' reconstructions are stacked, one row per
    prior, each at full width."""
    paths, study = make_study(tmp_path, datasets={"digits": [2]}, seeds=(1, 2))
    for p in paths:
        _png(p.parent / "figures" / "reconstructions.png", 1, shape=(150, 700))
    report.build_report(paths, study, tmp_path / "report")
    img = mpimg.imread(tmp_path / "report" / "figures" / "talk_reconstructions_digits_z2.png")
    assert img.shape[1] >= 700 and img.shape[0] >= 3 * 150


def _built_page(page) -> tuple[str, _Page, pd.DataFrame]:
    _, _, result, out = page
    text = (out / "report.html").read_text(encoding="utf-8")
    tags = _Page()
    tags.feed(text)
    return text, tags, result["verdicts"]


def test_the_scorecard_is_the_first_element_after_the_title_and_the_rest_is_closed(page):
    text, tags, _ = _built_page(page)
    top = [(tag, i) for tag, i, _ in tags.top if tag not in ("style", "script")]
    assert top[:3] == [("h1", None), ("section", "scorecard"), ("section", "talk")], top[:4]
    details = [t for t in tags.top if t[0] == "details"]
    assert details and not any(is_open for _, _, is_open in details), "a <details> is open by default"
    assert all(tag in ("details", "script") for tag, _ in top[3:]), top[3:]
    for table in ("verdicts-table", "runs-table", "glossary-table", "config-table", "summary-digits-z2"):
        assert tags.details_of[table] and not tags.details_of[table][0][0], table  # inside a closed <details>
    assert "scorecard-table" in tags.ids and not tags.details_of["scorecard-table"]
    assert text.index('id="scorecard-table"') < text.index('id="talk"') < text.index("<details")


def test_every_scorecard_cell_has_its_verdict_class_and_links_to_its_row(page):
    text, tags, verdicts = _built_page(page)
    card = text[text.index('<section id="scorecard">'):text.index('<section id="talk">')]
    links = [(m, int(i)) for m, i in __import__("re").findall(r'<td class="sc (v-[a-z-]+)[^"]*"[^>]*><a href="#verdict-(\d+)"',
                                                                 card)]
    talk_rows = verdicts[(verdicts["conclusion"].astype(str) != "0")]
    with_dataset = talk_rows[talk_rows["dataset"].astype(str) != ""]
    assert len(links) >= len(with_dataset) and links
    for cls, i in links:  # the class is the verdict of the row it links to, and that row is on the page
        assert cls == sc.verdict_class(verdicts.iloc[i]["verdict"]) and f"verdict-{i}" in tags.ids
    for href in [h for h in tags.hrefs if h.startswith("verdict-")]:
        assert href in tags.ids
    assert len(tags.cells) == sum(1 for c in tags.cells if " v-" in f" {c}" or c.endswith(" na"))
    controls = card[card.index('id="controls-strip"'):]
    assert "centre-surround classifier" in controls and "passed" in controls and "not run" in controls


def test_every_verdict_word_has_its_own_colour_and_class():
    words = list(VERDICTS)
    assert "not observed" in words and set(words) <= set(sc.VERDICT_COLOURS)
    backgrounds = [sc.VERDICT_COLOURS[w][0] for w in words]
    assert len(set(backgrounds)) == len(backgrounds)
    assert sc.verdict_class("partly supported") == "v-partly-supported"
    from sparse_vae.report.scorecard_html import SCORECARD_CSS
    for w in words:
        assert f".{sc.verdict_class(w)}{{background:{sc.VERDICT_COLOURS[w][0]}" in SCORECARD_CSS


def _verdict_rows(rows: list[dict]) -> pd.DataFrame:
    full = [{**{c: "" for c in VERDICT_COLUMNS}, **r} for r in rows]
    return pd.DataFrame(full, columns=list(dict.fromkeys(VERDICT_COLUMNS + [k for r in rows for k in r])))


def test_scorecard_reads_string_ids_short_labels_effects_and_greys_failed_controls(monkeypatch):
    """The coming verdict table: string ids ("2a", "3b"), a ``short`` label per conclusion, effect
    columns; rows come out in CONCLUSIONS' key order, and a failed control greys out the cells whose
    metric rests on it (``verdicts.METRIC_CONTROLS``), not the others."""
    from collections import namedtuple

    C = namedtuple("C", "claim short")
    ids = {"0": C("control: known dictionary", "controls"), "1": C("reconstruction claim", "reconstruction"),
           "2a": C("laplace more informative than normal", "2a informative"),
           "2b": C("cauchy more informative than normal", "2b informative"), "3b": C("V1-like", "V1-like fields")}
    monkeypatch.setattr(sc, "_BY_ID", ids)
    monkeypatch.setattr(sc, "_RANK", {k: i for i, k in enumerate(ids)})
    common = {"latent": 4, "seeds": "8/8"}
    table = _verdict_rows([
        {"conclusion": "2b", "claim": ids["2b"].claim, "dataset": "digits", "metric": "label_info_mean",
         "verdict": "control failed", **common},
        {"conclusion": "1", "claim": ids["1"].claim, "dataset": "digits", "metric": "mse", "verdict": "supported",
         "effect": 0.0123, "effect_low": 0.0101, "effect_high": 0.0145, "unit": "pixel MSE", **common},
        {"conclusion": "0", "claim": ids["0"].claim, "dataset": "control", "metric": "template_matched_cos",
         "verdict": "control failed", **common},
        {"conclusion": "2a", "claim": ids["2a"].claim, "dataset": "natural", "metric": "label_info_mean",
         "verdict": "not observed", **common},
        {"conclusion": "3b", "claim": ids["3b"].claim, "dataset": "natural", "metric": "rf_gabor_fraction",
         "verdict": "inconclusive", "effect": float("nan"), **common},
    ])
    card = sc.scorecard(table, {"dictionary_recovery": False, "retina_fields": True})
    assert [c.cid for c in card.claims] == ["1", "2a", "2b", "3b"]
    assert [c.label for c in card.claims] == ["reconstruction", "2a informative", "2b informative", "V1-like fields"]
    assert card.groups == [("digits", "4"), ("natural", "4")]
    rec = card.claims[0].cells[("digits", "4")]
    assert (rec.effect, rec.interval) == ("+0.0123 pixel MSE", "[+0.0101, +0.0145]") and not rec.greyed_by
    assert sc.effect_text(table.iloc[1]) == "+0.0123 [+0.0101, +0.0145] pixel MSE"
    assert card.claims[1].cells[("natural", "4")].greyed_by == ["dictionary_recovery"]
    assert card.claims[3].cells[("natural", "4")].effect == "" and not card.claims[3].cells[("natural", "4")].greyed_by
    assert card.failed == ["dictionary_recovery"]
    strip = {c.name: c for c in card.controls}
    assert strip["dictionary_recovery"].passed is False and strip["dictionary_recovery"].cells[0][0] == "control"
    from sparse_vae.report.scorecard_html import scorecard_section
    html_text = scorecard_section(card)
    assert html_text.count(" greyed\"") == 2 and "FAILED" in html_text
    assert '<span class="fx">+0.0123 pixel MSE</span><span class="ci">[+0.0101, +0.0145]</span>' in html_text
    # today's integer ids, as verdicts.csv reads them back, order the same way
    ints = table.assign(conclusion=[2, 1, 0, 2, 3])
    monkeypatch.setattr(sc, "_RANK", {"0": 0, "1": 1, "2": 2, "3": 3})
    assert [c.cid for c in sc.scorecard(ints).claims] == ["1", "2", "2", "3"]


def test_the_scorecard_picture_is_written_beside_the_page(page):
    _, _, result, out = page
    png, svg = out / "figures" / "scorecard.png", out / "figures" / "scorecard.svg"
    img = mpimg.imread(png)
    assert img.shape[1] > 600 and float(np.asarray(img[..., :3]).std()) > 0.05
    text = svg.read_text()
    assert "<svg" in text
    talk = [f for f in result["figures"] if f.file.startswith("talk_")]
    assert {f.kind for f in talk} >= {"reconstructions", "receptive_fields"}
    for f in talk:
        assert (out / "figures" / f.file).with_suffix(".svg").is_file(), f.file


chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless chromium (/usr/bin/chromium) is not installed")


@chromium
def test_first_screen_shows_the_scorecard_and_the_first_figure(page):
    """At 1400x900, before scrolling: the whole scorecard and the start of the first talk figure; every
    scorecard link resolves; the page is no wider than the window."""
    _, _, _, out = page
    layout = first_screen_layout(out / "report.html", 1400, 900)
    assert first_screen_problems(layout) == [], layout
    assert layout["scorecard"]["bottom"] < layout["first_figure"]["top"]


@chromium
def test_first_screen_check_fails_when_the_scorecard_is_pushed_down(page):
    _, _, _, out = page
    pushed = first_screen_layout(out / "report.html", 1400, 900, inject='<div style="height:1000px"></div>')
    problems = first_screen_problems(pushed)
    assert any("scorecard not inside the first screen" in p for p in problems), problems
    assert any("first element after the title" in p for p in problems), problems
    wide = first_screen_layout(out / "report.html", 1400, 900, inject='<div style="width:3000px;height:1px"></div>')
    assert any("horizontal overflow" in p for p in first_screen_problems(wide))
