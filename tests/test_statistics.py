"""The report's statistics against hand computations: the exact sign-flip test, Holm's adjustment,
the minimal detectable effect; "no difference" vs "inconclusive" vs "holds" on constructed runs;
seeds one prior lacks; a verdict that flips in a stability rerun reads "unstable"; the environment
each run records and the report flags.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparse_vae import catalogue, provenance, report
from sparse_vae.errors import SparseVAEError
from sparse_vae.report import conclusions, evidence, pairwise, runs, stability, statistics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report import make_study  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _frame(values: dict, metric: str, dataset="mnist", latent=20) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": dataset, "prior": p, "latent": latent, "seed": s, metric: v}
                         for p, vals in values.items() for s, v in enumerate(vals, start=1)])


def _row(df: pd.DataFrame, conclusion: str) -> pd.Series:
    v = conclusions.compute_verdicts(df, (), 0.95, {d: d for d in df["dataset"]})
    return v[v.conclusion == conclusion].iloc[0]


# ------------------------------------------------------------------------------------------
# Tests and adjustments against hand computations
# ------------------------------------------------------------------------------------------

def test_sign_flip_p_is_the_share_of_sign_patterns_at_least_as_extreme():
    d = np.array([1.0, 2.0, 3.0, -0.5, 4.0])
    # by hand: of the 32 sign patterns, |sum| >= 9.5 for the observed one, the one flipping -0.5 (10.5)
    # and their two mirror images: 4/32
    assert statistics.sign_flip_p(d) == pytest.approx(4 / 32)
    flips = np.array(list(itertools.product([-1, 1], repeat=d.size)))
    sums = np.abs((flips * d).sum(axis=1))
    assert statistics.sign_flip_p(d) == pytest.approx(np.mean(sums >= abs(d.sum()) - 1e-12))
    assert statistics.sign_flip_p(np.full(8, 0.3)) == pytest.approx(2 / 256)  # the smallest p with 8 pairs
    assert statistics.sign_flip_p(np.zeros(6)) == 1.0
    d = np.array([0.5, -0.2, 0.1, 0.4, 0.3, -0.1, 0.6, 0.2])  # ties in |d| are handled like any value
    sums = np.abs((np.array(list(itertools.product([-1, 1], repeat=8))) * d).sum(axis=1))
    assert statistics.sign_flip_p(d) == pytest.approx(np.mean(sums >= abs(d.sum()) - 1e-12))


def test_the_paired_t_takes_over_where_the_permutation_test_cannot_reach_the_level():
    # two-sided smallest p = 2 / 2^n: 1/16 with 5 pairs (> 0.05), 1/32 with 6
    assert statistics.choose_test(5, 0.05) == "paired t" and statistics.choose_test(6, 0.05) == "sign-flip"
    # Holm's first step over 3 comparisons needs 0.05/3 = 0.0167: 6 pairs (0.031) cannot, 7 (0.0156) can
    assert statistics.choose_test(6, 0.05 / 3) == "paired t" and statistics.choose_test(7, 0.05 / 3) == "sign-flip"
    d = np.array([0.2, 0.5, 0.1, 0.4])
    assert statistics.paired_t_p(d) == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert statistics.paired_t_p(np.full(3, 0.1)) == 0.0 and statistics.paired_t_p(np.zeros(3)) == 1.0


def test_holm_against_a_hand_computation():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    adjusted = statistics.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert statistics.holm([0.6, 0.3]) == pytest.approx([0.6, 0.6])
    assert statistics.holm([0.4, 0.5, 0.9]) == pytest.approx([1.0, 1.0, 1.0])  # capped at 1
    out = statistics.holm([0.01, math.nan, 0.02])  # a comparison without a test is not counted in m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_minimal_detectable_effect_has_the_stated_power():
    n, sd, level = 8, 2.0, 0.05 / 2
    effect = statistics.mde(sd, n, level)
    crit = stats.t.ppf(1 - level / 2, n - 1)
    power = stats.nct.sf(crit, n - 1, effect / sd * math.sqrt(n)) + stats.nct.cdf(-crit, n - 1, effect / sd * math.sqrt(n))
    assert power == pytest.approx(statistics.POWER, abs=1e-6)
    rng = np.random.default_rng(0)  # and by simulation: the paired t-test rejects ~80% of the time
    d = rng.normal(effect, sd, size=(20000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    assert np.mean(np.abs(t) > crit) == pytest.approx(0.8, abs=0.015)
    assert statistics.mde(sd, 16, level) < effect  # more seeds detect smaller effects
    assert math.isnan(statistics.mde(1.0, 1, 0.05)) and statistics.mde(0.0, 5, 0.05) == 0.0


def test_sign_flip_power_against_known_answers():
    """Issue 34 item 11: the power of the test actually run, by simulating it."""
    # 5 pairs: the smallest attainable p, 2/32, exceeds 0.05, so no effect can be detected
    assert statistics.sign_flip_power(50.0, 5, 0.05) == 0.0 and math.isinf(statistics.sign_flip_mde(5, 0.05))
    # 8 pairs at Holm's first step over 6 comparisons (0.0083 > 2/256): a huge effect is always found
    assert statistics.sign_flip_power(20.0, 8, 0.05 / 6) == 1.0
    # no effect: the rejection rate is the test's size, at most the level (an exact test)
    size = statistics.sign_flip_power(0.0, 8, 0.05)
    assert size <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / statistics.POWER_DRAWS) and size > 0.02
    # power rises with the effect, and the MDE has the stated power
    k = statistics.sign_flip_mde(8, 0.05)
    assert statistics.sign_flip_power(k, 8, 0.05) >= statistics.POWER > statistics.sign_flip_power(0.9 * k, 8, 0.05)
    # a brute-force check of one simulated p-value path: the exact sign_flip_p at the same draws
    z = statistics._standard_draws(8, statistics.POWER_DRAWS)[:200] + k
    brute = np.mean([statistics.sign_flip_p(row) <= 0.05 for row in z])
    signs = statistics._sign_patterns(8)
    fast = np.mean(np.mean(np.abs(z @ signs.T) >= np.abs(z.sum(1))[:, None] * (1 - 1e-12), axis=1) <= 0.05)
    assert brute == pytest.approx(fast)
    # with many pairs the permutation test's power approaches the paired t-test's
    assert statistics.sign_flip_mde(30, 0.05) == pytest.approx(statistics.mde(1.0, 30, 0.05), rel=0.05)
    # with few pairs at a strict level it needs a larger effect than the t approximation claimed
    assert statistics.sign_flip_mde(8, 0.05 / 6) > 1.1 * statistics.mde(1.0, 8, 0.05 / 6)


def test_comparisons_state_the_power_of_the_test_run():
    a = pd.Series(0.5 + 0.05 * NOISE, index=range(1, 9))
    b = a - 0.02 - 0.03 * NOISE[::-1]
    (c,) = statistics.compare_family([("hoyer", "a", "b", a, b)], 0.95)
    assert c.test == "sign-flip"
    assert c.mde == pytest.approx(statistics.sign_flip_mde(8, 0.05) * c.sd)
    # the power at the margin, read off the simulated curve: within its interpolation error of a direct run
    assert c.power == pytest.approx(statistics.sign_flip_power(0.04 / c.sd, 8, 0.05), abs=0.02)
    (t,) = statistics.compare_family([("hoyer", "a", "b", a[:4], b[:4])], 0.95)  # 4 pairs: the paired t runs
    assert t.test == "paired t" and t.mde == pytest.approx(statistics.mde(t.sd, 4, 0.05))


def test_compare_family_pairs_by_seed_and_adjusts_together():
    a = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], index=range(1, 9))
    b = a - np.array([0.5, 0.4, 0.6, 0.5, 0.45, 0.55, 0.5, 0.5])  # a is higher in every seed
    c = a + np.array([0.3, -0.2, 0.1, -0.1, 0.2, -0.3, 0.05, 0.0])  # no consistent difference
    fam = statistics.compare_family([("hoyer", "a", "b", a, b), ("hoyer", "a", "c", a, c)], 0.95)
    assert [f.test for f in fam] == ["sign-flip", "sign-flip"] and all(f.family == 2 for f in fam)
    assert fam[0].p == pytest.approx(2 / 256) and fam[0].p_adj == pytest.approx(min(1, 2 * 2 / 256))
    assert fam[1].p_adj == pytest.approx(max(fam[0].p_adj, fam[1].p))  # Holm's second step
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)  # the paired t interval of the mean difference
    assert (fam[0].lo, fam[0].hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert statistics.decide(fam[0], 0.95) == "a higher" and statistics.decide(fam[1], 0.95) == "inconclusive"


# ------------------------------------------------------------------------------------------
# "no difference" vs "inconclusive" vs "holds" on constructed runs (conclusion 1; MSE compared as log
# ratios, margin log 1.1)
# ------------------------------------------------------------------------------------------

NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.4, -0.3])  # mean 0, 8 seeds


def test_holds_no_difference_and_inconclusive_on_constructed_runs():
    margin = catalogue.metric("mse").margin
    assert catalogue.metric("mse").scale == "log" and margin == pytest.approx(math.log(1.1), abs=1e-4)
    base = 0.03 + 0.004 * NOISE  # per-seed noise shared by both priors (common random numbers)
    clear = _frame({"normal": base, "laplace": base * np.exp(0.2 + 0.003 * NOISE[::-1])}, "mse")
    row = _row(clear, "1")
    assert row["verdict"] == "supported" and row["seeds"] == "8/8"
    assert row["test"].startswith("exact sign-flip permutation test on 8 paired seeds; no correction")
    assert row["p_adjusted"] == "normal < laplace: 0.0078"  # 2/256, no correction for one comparison
    # the headline effect is the mean log ratio, in the comparison's unit
    assert row["effect"] == pytest.approx(0.2, abs=1e-9) and row["unit"] == "log ratio"
    assert row["effect_low"] < 0.2 < row["effect_high"]
    # a 1% difference known precisely: the interval lies within ±log 1.1
    tiny = _frame({"normal": base, "laplace": base * np.exp(0.01 * NOISE[::-1])}, "mse")
    row = _row(tiny, "1")
    assert row["verdict"] == "no difference" and "within the metric's margin" in row["evidence"]
    lo, hi = stats.ttest_1samp(0.01 * NOISE[::-1], 0).confidence_interval(0.95)
    assert -margin < lo < hi < margin
    # the same mean difference with a spread too wide for the margin: inconclusive, and the MDE says why
    wide = _frame({"normal": base, "laplace": base * np.exp(0.6 * NOISE[::-1])}, "mse")
    row = _row(wide, "1")
    assert row["verdict"] == "inconclusive"
    assert "minimal detectable effect" in row["evidence"] and "(margin 0.0953)" in row["mde"]
    assert evidence.NO_DIFFERENCE_UNREACHABLE in row["evidence"]


def test_mse_verdicts_do_not_depend_on_the_scale_of_the_data():
    """Issue 34 item 6: an absolute margin 70x a small data set's MSE made every comparison 'no
    difference'; on log ratios a 20% worse MSE is found whatever the pixel scale."""
    base = 0.0004 * np.exp(0.05 * NOISE)
    small = _frame({"normal": base, "laplace": base * 1.2 * np.exp(0.01 * NOISE[::-1])}, "mse")
    large = small.assign(mse=small["mse"] * 100)
    rows = [_row(small, "1"), _row(large, "1")]
    assert [r["verdict"] for r in rows] == ["supported", "supported"]
    assert rows[0]["effect"] == pytest.approx(rows[1]["effect"]) == pytest.approx(math.log(1.2), abs=1e-9)


def test_a_metric_without_a_margin_is_never_no_difference():
    fam = statistics.compare_family([("iwae_samples", "a", "b", pd.Series([10.0, 10.0, 10.0]),
                                      pd.Series([10.0, 10.0, 10.0]))], 0.95)
    assert catalogue.metric("iwae_samples").margin is None and statistics.decide(fam[0], 0.95) == "inconclusive"
    assert all(m.margin is None or (m.margin > 0 and m.margin_reason) for m in catalogue.METRICS)


def test_three_way_ordering_is_one_holm_family_with_no_difference_and_holds():
    base = 0.03 + 0.004 * NOISE
    df = _frame({"normal": base, "laplace": base * 1.3, "cauchy": base * 1.3 * np.exp(0.01 * NOISE[::-1])}, "mse")
    row = _row(df, "1")  # normal < laplace holds; laplace vs cauchy: no difference -> partly supported
    assert row["verdict"] == "partly supported" and "Holm over the 2 comparisons of this row" in row["test"]
    assert "laplace < cauchy: Δ" in row["evidence"] and "no difference (interval within ±margin)" in row["evidence"]


def test_a_seed_one_prior_lacks_is_left_out_and_said():
    base = 0.03 + 0.004 * NOISE
    df = _frame({"normal": base, "laplace": base * 1.3}, "mse")
    df.loc[(df.prior == "laplace") & (df.seed == 3), "mse"] = np.nan  # e.g. a metric null in one run
    row = _row(df, "1")
    assert "7 paired seeds; seed 3 of normal only left out" in row["evidence"]
    assert row["test"].startswith("exact sign-flip permutation test on 7 paired seeds")
    pw = pairwise.pairwise_table(df, 0.95, {"normal": "normal", "laplace": "laplace"}, {"mnist": "mnist"},
                                 ["normal", "laplace"], {})
    assert pw.iloc[0][["n_a", "n_b", "n_pairs"]].tolist() == [7, 8, 7] and pw.iloc[0]["outcome"] == "b better"


# ------------------------------------------------------------------------------------------
# Stability: a verdict that flips between two runs of the study reads "unstable"
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("stability")
    paths, study = make_study(root, datasets={"synthetic": [4], "digits": [2]})
    first = root / "first"
    report.build_report(paths, study, first)
    second = root / "second"  # the "rerun": a copy with one verdict and one pairwise answer flipped
    shutil.copytree(first, second)
    v = pd.read_csv(second / "verdicts.csv", keep_default_na=False)
    i = v.index[(v.conclusion.astype(str) == "1") & (v.dataset == "synthetic")][0]
    assert v.loc[i, "verdict"] == "supported"
    v.loc[i, "verdict"] = "inconclusive"
    v.to_csv(second / "verdicts.csv", index=False)
    pw = pd.read_csv(second / "pairwise.csv", keep_default_na=False)
    j = pw.index[(pw.metric == "mse") & (pw.dataset == "digits") & (pw.prior_a == "laplace") & (pw.prior_b == "normal")][0]
    pw.loc[j, "outcome"] = "no difference"
    pw.to_csv(second / "pairwise.csv", index=False)
    m = pd.read_csv(second / "metrics.csv")  # a rerun on other rounding moves every run's numbers a little
    m["mse"] *= 1 + 1e-6
    m.to_csv(second / "metrics.csv", index=False)
    return root, paths, study, first, second


def _on_no_run(verdicts: pd.DataFrame) -> np.ndarray:
    """Rows resting on no trained run (the controls and the baseline: no latent size)."""
    return (verdicts["latent"].fillna("").astype(str) == "").to_numpy()


def test_a_flipped_verdict_is_reported_as_unstable(two_reports):
    root, paths, study, first, second = two_reports
    study = json.loads(json.dumps(study))
    study["report"]["stability"] = str(second / "verdicts.csv")
    result = report.build_report(paths, study, root / "checked")
    v = result["verdicts"]
    no_run = int(_on_no_run(v).sum())  # the controls: no trained run, numbers the rerun left as they were
    assert no_run and result["stability"].verdicts == {"same": len(v) - 1 - no_run, "flipped": 1,
                                                       "unperturbed": no_run}
    flipped = v[(v.conclusion == "1") & (v.dataset == "synthetic")].iloc[0]
    assert flipped["verdict"] == "unstable"
    assert f"this study says 'supported', the rerun {second / 'verdicts.csv'} says 'inconclusive'" in flipped["evidence"]
    before = pd.read_csv(first / "verdicts.csv", keep_default_na=False)
    assert (v["verdict"] == "unstable").sum() == 1 and (v["verdict"] != before["verdict"]).sum() == 1
    pw = result["pairwise"]
    assert pw.loc[(pw.metric == "mse") & (pw.dataset == "digits") & (pw.prior_a == "laplace")
                  & (pw.prior_b == "normal"), "outcome"].tolist() == ["unstable"]
    page = (root / "checked" / "report.html").read_text()
    assert "verdicts 1 of" in page and "unstable" in page
    strip = page[page.index('id="controls-strip"'):]  # the flip count sits in the scorecard's first screen
    assert 'id="stability-line"' in strip[:strip.index("</aside>")] and "verdicts 1 of" in strip[:strip.index("</aside>")]
    from sparse_vae.report.readme import results_markdown  # the README never states a flipped verdict

    assert "**unstable**" in results_markdown(root / "checked")


def test_rows_on_runs_the_rerun_left_bit_identical_read_unperturbed_not_same(two_reports, tmp_path):
    """A rerun that moved nothing checks nothing (the AVX2 rerun leaves some models bit-identical)."""
    root, paths, study, first, second = two_reports
    third = tmp_path / "third"
    shutil.copytree(second, third)
    m = pd.read_csv(third / "metrics.csv")
    m.loc[m.dataset == "digits", "mse"] = pd.read_csv(first / "metrics.csv").loc[m.dataset == "digits", "mse"]
    m.to_csv(third / "metrics.csv", index=False)
    study = json.loads(json.dumps(study))
    study["report"]["stability"] = str(third / "verdicts.csv")
    result = report.build_report(paths, study, tmp_path / "checked")
    v = result["verdicts"]
    digits = (v.dataset == "digits").to_numpy()
    unmoved = digits | _on_no_run(v)
    assert digits.any() and set(v.loc[unmoved, "rerun"]) == {"unperturbed"}
    assert "unperturbed" not in set(v.loc[~unmoved, "rerun"]) and "same" in set(v.loc[~unmoved, "rerun"])
    assert result["stability"].verdicts["unperturbed"] == int(unmoved.sum())
    assert f"{int(unmoved.sum())} more on numbers no rerun changed" in result["stability"].summary()
    from sparse_vae.report.readme import results_markdown

    assert f"{int(unmoved.sum())} verdicts rest on numbers no rerun changed" in results_markdown(tmp_path / "checked")


def test_several_reruns_a_flip_in_any_is_unstable_and_one_perturbed_rerun_checks_a_row(two_reports, tmp_path):
    """Each rerun perturbs some models (the AVX2 path leaves some bit-identical; another path reaches
    them): a row reads "same" once any rerun perturbed it and agreed, "unstable" if any flipped it."""
    root, paths, study, first, second = two_reports
    left = tmp_path / "left"  # like the first rerun, but digits left bit-identical
    shutil.copytree(second, left)
    m = pd.read_csv(left / "metrics.csv")
    m.loc[m.dataset == "digits", "mse"] = pd.read_csv(first / "metrics.csv").loc[m.dataset == "digits", "mse"]
    m.to_csv(left / "metrics.csv", index=False)
    digits_only = tmp_path / "digits_only"  # a second rerun of digits alone, which it perturbs
    digits_only.mkdir()
    for name, word in (("verdicts.csv", "verdict"), ("pairwise.csv", "outcome"), ("metrics.csv", None)):
        t = pd.read_csv(first / name, keep_default_na=False)
        t = t[t.dataset == "digits"]
        if name == "metrics.csv":
            t = t.assign(mse=t["mse"].astype(float) * (1 + 1e-6))
        t.to_csv(digits_only / name, index=False)
    study = json.loads(json.dumps(study))
    study["report"]["stability"] = [str(left / "verdicts.csv"), str(digits_only / "verdicts.csv")]
    result = report.build_report(paths, study, tmp_path / "checked")
    v = result["verdicts"]
    digits = (v.dataset == "digits").to_numpy()
    assert set(v.loc[digits, "rerun"]) == {"same"}  # unperturbed by one rerun, checked by the other
    no_run = _on_no_run(v)
    assert (v["verdict"] == "unstable").sum() == 1 and set(v.loc[no_run, "rerun"]) == {"unperturbed"}
    found = result["stability"]
    assert found.sources == (str(left / "verdicts.csv"), str(digits_only / "verdicts.csv"))
    assert found.verdicts == {"same": len(v) - 1 - int(no_run.sum()), "flipped": 1, "unperturbed": int(no_run.sum())}
    assert found.summary().startswith("stability reruns ")
    pw = result["pairwise"]  # the first rerun's flipped pairwise answer (digits) stays flipped
    assert pw.loc[(pw.metric == "mse") & (pw.dataset == "digits") & (pw.prior_a == "laplace")
                  & (pw.prior_b == "normal"), "outcome"].tolist() == ["unstable"]
    assert stability.combined([pd.Series(["same", "only here", "unperturbed"]),
                               pd.Series(["flipped", "unperturbed", "only here"])]).tolist() == [
        "flipped", "unperturbed", "unperturbed"]


def test_rows_a_partial_rerun_did_not_cover_read_not_rerun(two_reports, tmp_path):
    """A rerun of some datasets (bench/offline-avx2.yaml leaves natural12 out) checks their rows; the rest say so, never 'same'."""
    root, _, _, first, _ = two_reports
    v = pd.read_csv(first / "verdicts.csv", keep_default_na=False)
    partial = tmp_path / "verdicts.csv"
    v[v.dataset != "digits"].to_csv(partial, index=False)
    marked, _, found = stability.apply_stability(v, pd.DataFrame(), partial)
    digits = (marked.dataset == "digits").to_numpy()
    assert digits.any() and set(marked.loc[digits, "rerun"]) == {"not rerun"}
    assert set(marked.loc[~digits, "rerun"]) == {"same"}
    assert found.verdicts == {"same": int((~digits).sum()), "only here": int(digits.sum())}
    checked = tmp_path / "report"
    checked.mkdir()
    marked.to_csv(checked / "verdicts.csv", index=False)
    shutil.copy(first / "summary.csv", checked / "summary.csv")
    from sparse_vae.report.readme import results_markdown

    text = results_markdown(checked)
    assert f"verdicts: 0 of the {int((~digits).sum())} verdicts a rerun perturbed flipped" in text
    assert f"{int(digits.sum())} verdicts were not rerun" in text and "| not rerun |" in text


def test_the_same_study_twice_is_stable(two_reports):
    _, _, _, first, _ = two_reports
    v = pd.read_csv(first / "verdicts.csv", keep_default_na=False)
    marked, _, found = stability.apply_stability(v, pd.DataFrame(), first / "verdicts.csv")
    assert (marked["verdict"] == v["verdict"]).all() and found.verdicts == {"same": len(v)}


def test_bench_stability_compares_two_report_folders(two_reports, tmp_path):
    _, _, _, first, second = two_reports
    out = tmp_path / "stability.md"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "stability.py"), str(first), str(second),
                           "--markdown", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # a verdict flipped
    assert "- verdicts: 1 of" in proc.stdout and "- pairwise: 1 of" in proc.stdout
    assert "| supported | inconclusive |" in proc.stdout and out.read_text() == proc.stdout
    same = subprocess.run([sys.executable, str(REPO / "bench" / "stability.py"), str(first), str(first)],
                          capture_output=True, text=True)
    assert same.returncode == 0 and "0 of" in same.stdout
    runs = len(pd.read_csv(first / "metrics.csv"))
    assert f"- numbers: 0 of {runs} shared runs differ" in same.stdout  # a rerun that moved nothing says so


def test_bench_stability_measures_how_far_the_numbers_moved(two_reports, tmp_path):
    _, _, _, first, _ = two_reports
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    m = pd.read_csv(moved / "metrics.csv")
    sd = m[(m.dataset == m.dataset[0]) & (m.prior == m.prior[0]) & (m.latent == m.latent[0])]["mse"].std()
    m.loc[0, "mse"] += 0.5 * sd  # one run, half a seed-sd
    m.to_csv(moved / "metrics.csv", index=False)
    spec = importlib.util.spec_from_file_location("bench_stability", REPO / "bench" / "stability.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    line = bench.number_changes(first, moved)
    assert line.startswith(f"- numbers: 1 of {len(m)} shared runs differ") and "largest change 0.5 sd" in line
    assert "(mse)" in line


def test_stability_must_name_a_readable_verdicts_table(two_reports, tmp_path):
    _, paths, study, _, _ = two_reports
    bad = tmp_path / "verdicts.csv"
    bad.write_text("a,b\n1,2\n")
    study = json.loads(json.dumps(study))
    study["report"]["stability"] = str(bad)
    with pytest.raises(SparseVAEError, match="lacks column"):
        report.build_report(paths, study, tmp_path / "r")


# ------------------------------------------------------------------------------------------
# Provenance: what each run records, and what the report flags
# ------------------------------------------------------------------------------------------

def test_versions_record_every_package_and_the_machine():
    v = provenance.versions()
    for key in ["python", *provenance.PACKAGES.values(), "git_commit", "cpu", "numpy_blas", "torch_blas", "cuda"]:
        assert key in v, key
    assert v["torch"] and v["numpy"] and v["scipy"] and v["scikit-learn"] and v["cpu"]
    json.dumps(v)  # train.json must be able to hold it


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    copy = tmp_path / "provenance.py"
    shutil.copy(Path(provenance.__file__), copy)
    code = "import importlib.util as u; s = u.spec_from_file_location('p', %r); m = u.module_from_spec(s); " \
           "s.loader.exec_module(m); print(m.git_commit())" % str(copy)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "None", out.stderr


def test_the_report_shows_one_environment_and_flags_runs_that_differ(tmp_path):
    paths, study = make_study(tmp_path, datasets={"synthetic": [4]}, seeds=(1, 2))
    full = provenance.versions()
    for i, path in enumerate(paths):
        train = path.parent / "train.json"
        content = json.loads(train.read_text())
        if i == 0:  # an older run: the four keys train.json used to hold
            content["versions"] = {k: full[k] for k in ("python", "torch", "numpy", "sparse_vae")}
        elif i == 1:
            content["versions"] = dict(full, cpu="Another CPU", numpy="0.0.1")
        else:
            content["versions"] = full
        train.write_text(json.dumps(content))
    loaded = runs.load_runs(paths)
    common, differ = runs.environments(loaded)
    assert common == full
    assert [(r.info["prior"], r.info["seed"], sorted(d)) for r, d in differ] == [("normal", 2, ["cpu", "numpy"])]
    report.build_report(paths, study, tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    assert 'id="environment-table"' in page and "1 of 6 runs ran in a different environment" in page
    assert "Another CPU" in page and "synthetic/normal/z4/seed2" in page
