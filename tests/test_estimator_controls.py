"""The known-answer controls' exact answers (quadrature against adaptive quadrature, closed forms and
Monte Carlo) and the controls' JSON (sparse-vae estimator-controls)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from sparse_vae.analysis import estimator_controls as E
from sparse_vae.cli import main
from sparse_vae.errors import SparseVAEError

MEANS = np.array([-1.2, 0.1, 0.5, 2.0])


@pytest.mark.parametrize("family,sd", [("gaussian", 0.8), ("cauchy", 0.4)])
def test_label_information_quadrature_matches_adaptive_quadrature(family: str, sd: float) -> None:
    dist = E._FAMILIES[family]

    def integrand(z: float, c: int) -> float:
        logs = dist.logpdf(z, loc=MEANS, scale=sd)
        return dist.pdf(z, loc=MEANS[c], scale=sd) * (logs[c] - special.logsumexp(logs) + math.log(len(MEANS)))

    reference = np.mean([integrate.quad(integrand, -np.inf, np.inf, args=(c,), limit=500)[0] for c in range(4)])
    assert E.exact_label_information(family, MEANS, sd) == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("family", ["gaussian", "cauchy"])
def test_label_information_matches_monte_carlo_and_its_limits(family: str) -> None:
    dist, sd = E._FAMILIES[family], 0.7
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400_000)
    z = dist.rvs(loc=MEANS[y], scale=sd, random_state=rng)
    logs = dist.logpdf(z[:, None], loc=MEANS[None], scale=sd)
    terms = logs[np.arange(len(y)), y] - special.logsumexp(logs, axis=1) + math.log(4)
    exact = E.exact_label_information(family, MEANS, sd)
    assert abs(exact - terms.mean()) < 4 * terms.std() / math.sqrt(len(terms))
    separated = E.exact_label_information(family, MEANS, 1e-3)
    if family == "gaussian":
        assert separated == pytest.approx(math.log(4), abs=1e-6)
    else:  # a Cauchy's tails still overlap (adaptive quadrature: 1.38182)
        assert separated == pytest.approx(1.38182, abs=1e-4)
    assert E.exact_label_information(family, np.zeros(4), 1.0) == pytest.approx(0.0, abs=1e-9)


def test_rate_of_a_single_class_is_the_closed_form() -> None:
    # one class: z = loc + noise, loc ~ F(0, tau), noise F(0, s): I = h(F(0, sd)) - h(F(0, s))
    assert E.exact_rate("gaussian", np.zeros(1), 1.0, 0.6) == pytest.approx(math.log(1 / 0.6), abs=1e-6)
    assert E.exact_rate("cauchy", np.zeros(1), 1.0, 0.25) == pytest.approx(math.log(4.0), abs=1e-6)


def test_the_heavy_tailed_map_is_increasing_and_cauchy_distributed() -> None:
    z = np.random.default_rng(1).standard_normal(20_000)
    mapped = E.heavy_tailed_map(z, 1.0)
    assert np.all(np.diff(mapped[np.argsort(z)]) >= 0)
    assert stats.kstest(mapped, "cauchy").pvalue > 0.01


def test_bayes_accuracy_is_above_chance_and_the_toys_draws_follow_their_design() -> None:
    for family in ("gaussian", "cauchy"):
        toy = E.toy_code(family)
        y, loc, scale, z = toy.draw(4000, np.random.default_rng(2))
        assert np.bincount(y).tolist() == [1000] * 4
        residual = (z - toy.means[y]) / toy.sd  # class-conditional code, standardised
        assert stats.kstest(residual[:, 0], "norm" if family == "gaussian" else "cauchy").pvalue > 0.01
        assert 0.25 < E.bayes_accuracy(toy, draws=50_000) < 1.0


def test_the_families_toys_share_labels_and_noise_quantiles_so_their_errors_pair() -> None:
    """Common random numbers: equal generators give equal labels and equal quantiles of each family's
    noise, so a family's error minus the Gaussian's is the paired difference of one design."""
    g, c = (E.toy_code(f).draw(500, np.random.default_rng(3)) for f in ("gaussian", "cauchy"))
    assert np.array_equal(g[0], c[0])
    gn, cn = (g[1] - E.toy_code("gaussian").means[g[0]]) / E.toy_code("gaussian").tau, \
        (c[1] - E.toy_code("cauchy").means[c[0]]) / E.toy_code("cauchy").tau
    assert np.allclose(stats.norm.cdf(gn), stats.cauchy.cdf(cn))
    rows = E.estimator_controls({"info_draws": 1, "probe_folds": 2, "info_examples": 32, "n_small": 16, "repeats": 3})
    by_key = {(r["estimator"], r["family"], r["n"]): r for r in rows}
    for name in ("label_info", "rate", "probe_sampled"):
        row, ref = by_key[(name, "cauchy", 32)], by_key[(name, "gaussian", 32)]
        assert row["paired_with"] == "gaussian" and "paired_with" not in ref
        assert row["paired_bias"] == pytest.approx(row["bias"] - ref["bias"])
        # the paired interval is never wider than the two intervals added
        assert row["paired_high"] - row["paired_low"] <= (row["bias_high"] - row["bias_low"]) + (
            ref["bias_high"] - ref["bias_low"]) + 1e-12


def test_estimator_controls_json(tmp_path) -> None:
    out, retina_out = tmp_path / "controls" / "estimators.json", tmp_path / "controls" / "retina.json"
    params = {"info_draws": 2, "probe_folds": 2, "info_examples": 48, "n_small": 24, "repeats": 2, "retina_sizes": [8]}
    assert main(["estimator-controls", "--out", str(out), "--retina-out", str(retina_out),
                 "--params", json.dumps(params)]) == 0
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and {r["n"] for r in rows} == {24, 48}
    by_key = {(r["estimator"], r["family"], r["n"]): r for r in rows}
    for family in ("gaussian", "cauchy"):
        assert {("label_info", family, 48), ("rate", family, 48), ("probe_sampled_additive", family, 24)} <= set(by_key)
    assert ("probe_sampled", "gaussian_heavy_tailed", 48) in by_key
    assert ("label_info", "gaussian_heavy_tailed", 48) not in by_key  # a family-parameter estimator: no such code
    for probe in ("probe_sampled", "probe_sampled_additive"):  # the same draws, mapped: the same errors
        assert by_key[(probe, "gaussian_heavy_tailed", 48)]["bias"] == by_key[(probe, "gaussian", 48)]["bias"]
    assert "label_info_total" in by_key[("label_info", "cauchy", 48)]["metrics"]
    for row in rows:
        assert row["bias_low"] <= row["bias"] <= row["bias_high"] and row["repeats"] == 2
    retina = json.loads(retina_out.read_text())
    assert retina["8"]["bank_passes"] is True
    assert set(retina["8"]["detection_rate"]["0"]) == {f"{w:g}" for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}
    with pytest.raises(SparseVAEError, match="probe_folds"):
        E.estimator_controls({"info_draws": 2, "info_examples": 48})
    assert main(["estimator-controls", "--out", str(out), "--params", json.dumps(dict(params, retina_sizes=[3]))]) == 1
