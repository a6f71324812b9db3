"""Latent information metrics (analysis.information) against closed forms and quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from sparse_vae.analysis import information as I
from sparse_vae.analysis.metrics import mutual_information, used_ratio


def _kl_to_mixture(q, weights, components) -> float:
    """KL(q || sum_k w_k p_k) by adaptive quadrature (scipy frozen distributions)."""
    def integrand(z):
        mix = sum(w * c.pdf(z) for w, c in zip(weights, components))
        return q.pdf(z) * (q.logpdf(z) - math.log(mix)) if q.pdf(z) > 0 else 0.0
    lo, hi = q.ppf(1e-12), q.ppf(1 - 1e-12)
    return integrate.quad(integrand, lo, hi, limit=200)[0]


def test_log_density_matches_torch_distributions() -> None:
    """The in-place densities are the Normal and Cauchy log_prob of torch.distributions."""
    z, loc, scale = torch.randn(3, 5, dtype=torch.float64), torch.randn(7), torch.rand(7) + 0.1
    for name, family in (("gaussian", torch.distributions.Normal), ("cauchy", torch.distributions.Cauchy)):
        got = I._log_density(name, z.float(), loc, scale)
        expected = family(loc, scale).log_prob(z.float()[..., None])
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_gaussian_rate_matches_the_closed_form() -> None:
    """loc ~ N(0, 1), scale s: the aggregate is N(0, 1 + s^2) and I(x; z) = 0.5 log(1 + 1/s^2);
    with 2000 examples the plug-in aggregate is within 0.03 nats of it."""
    rng = np.random.default_rng(0)
    s = 0.5
    loc = rng.normal(size=(2000, 1))
    info = I.code_information(loc, np.full_like(loc, s), "gaussian", draws=8)
    assert info.rate[0] == pytest.approx(0.5 * math.log(1 + 1 / s**2), abs=0.03)


def test_rescaling_a_dimension_changes_nothing() -> None:
    """Multiplying one dim's location and scale by c (and shifting it) leaves its rate, label
    information and the used count unchanged: every log ratio is invariant."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=600)
    loc = np.stack([y + rng.normal(size=600), rng.normal(size=600), 0.05 * rng.normal(size=600)], axis=1)
    scale = np.stack([np.full(600, 0.7), rng.uniform(0.2, 1.0, size=600), np.full(600, 1.0)], axis=1)
    for posterior in ("gaussian", "cauchy"):
        a = I.code_information(loc, scale, posterior, labels=y, draws=4, seed=3)
        c = np.array([1.0, 1000.0, 1e-3])
        b = I.code_information(loc * c + 5.0, scale * c, posterior, labels=y, draws=4, seed=3)
        np.testing.assert_allclose(b.rate, a.rate, atol=2e-4)
        np.testing.assert_allclose(b.label_info, a.label_info, atol=2e-4)
        assert I.used_counts(b.rate) == I.used_counts(a.rate)


def test_spike_and_slab_dimension_counts_as_used() -> None:
    """Active (z ~ N(m, 1), m ~ N(0, 4^2)) in 30% of inputs, at the prior N(0, 1) otherwise: the old
    half-IQR ratio calls it unused; its rate matches the quadrature value and exceeds the headline
    threshold; 30% x P(m^2/2 > 0.1) of inputs are active at once."""
    rng = np.random.default_rng(2)
    n = 2000
    active = rng.random(n) < 0.3
    loc = np.where(active, 4.0 * rng.normal(size=n), 0.0)[:, None]
    scale = np.ones_like(loc)
    assert used_ratio(loc, scale, "gaussian")[0] < 1.0  # the bias issue 22 describes
    info = I.code_information(loc, scale, "gaussian", draws=8)
    frac = active.mean()
    agg = [stats.norm(0, 1), stats.norm(0, math.sqrt(17))]
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    slab = sum(w * _kl_to_mixture(stats.norm(4 * m, 1), [1 - frac, frac], agg) for m, w in zip(nodes, weights))
    expected = (1 - frac) * _kl_to_mixture(stats.norm(0, 1), [1 - frac, frac], agg) + frac * slab / math.sqrt(2 * math.pi)
    assert info.rate[0] == pytest.approx(expected, abs=0.03)
    assert I.used_counts(info.rate)[I.HEADLINE_THRESHOLD] == 1
    prior_kl = 0.5 * loc**2  # KL(N(m, 1) || N(0, 1))
    at_once = I.active_at_once(prior_kl, 0.0, np.array([True]), 0.1)
    p_active = 0.3 * 2 * stats.norm.sf(math.sqrt(0.2) / 4)
    assert at_once.mean() == pytest.approx(p_active, abs=0.03)


def test_label_information_is_bounded_by_a_small_kl() -> None:
    """y = +-1, q(z|x) = N(0.1775 y, 1 - 0.1775^2): KL to N(0, 1) is 0.016 nats for every input. The
    location-based kNN estimate reports ~log 2; the sampled-code estimate stays within 3 standard
    errors below 0.016 and matches the quadrature I(y; z) of the two-component mixture."""
    rng = np.random.default_rng(3)
    a = math.sqrt(1 - math.exp(-0.032))
    y = rng.integers(0, 2, size=1500)
    loc = (a * (2 * y - 1))[:, None]
    scale = np.full_like(loc, math.sqrt(1 - a**2))
    kl = 0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2))
    assert kl.mean() == pytest.approx(0.016, abs=1e-4)
    assert mutual_information(loc, y)[0] > 0.3  # the location reads the label perfectly
    info = I.code_information(loc, scale, "gaussian", labels=y, draws=8)
    bound = 3 * info.label_se[0]
    assert info.label_info[0] <= 0.016 + bound and bound < 0.01
    s = scale[0, 0]
    p1 = y.mean()
    mix = [stats.norm(-a, s), stats.norm(a, s)]
    true = (1 - p1) * _kl_to_mixture(mix[0], [1 - p1, p1], mix) + p1 * _kl_to_mixture(mix[1], [1 - p1, p1], mix)
    assert info.label_info[0] == pytest.approx(true, abs=bound + 0.002)
    assert info.rate[0] == pytest.approx(true, abs=0.005)  # the code depends on x only through y


def _cauchy_rate(gamma: float) -> float:
    """E_l KL(Cauchy(l, g) || Cauchy(0, 1 + g)), l ~ Cauchy(0, 1): the closed-form Cauchy KL averaged
    by quadrature (the aggregate of Cauchy(l, g) over l ~ Cauchy(0, 1) is Cauchy(0, 1 + g))."""
    g2 = 1 + gamma
    kl = lambda l: math.log(((gamma + g2) ** 2 + l**2) / (4 * gamma * g2))  # noqa: E731
    return integrate.quad(lambda l: stats.cauchy.pdf(l) * kl(l), -np.inf, np.inf)[0]


def test_gaussian_and_cauchy_carrying_the_same_information_get_the_same_rate() -> None:
    """A Cauchy code with scale chosen so that its population rate equals the Gaussian code's
    0.5 log(1 + 1/0.5^2) = 0.805 nats gets the same estimated rate within 0.06 nats."""
    target = 0.5 * math.log(1 + 1 / 0.5**2)
    gamma = optimize.brentq(lambda g: _cauchy_rate(g) - target, 0.01, 10.0)
    rng = np.random.default_rng(4)
    n = 2000
    gauss = I.code_information(rng.normal(size=(n, 1)), np.full((n, 1), 0.5), "gaussian", draws=8)
    cauchy = I.code_information(rng.standard_cauchy(size=(n, 1)), np.full((n, 1), gamma), "cauchy", draws=8)
    assert cauchy.rate[0] == pytest.approx(target, abs=0.06)
    assert cauchy.rate[0] == pytest.approx(gauss.rate[0], abs=0.06)


def test_gaussian_hoyer_reference() -> None:
    """For n = 2, L1/L2 = |cos| + |sin| of a uniform angle, mean 4/pi: the Monte Carlo reference
    agrees with the closed form; the reference falls with n (fewer dims look sparser)."""
    closed = (math.sqrt(2) - 4 / math.pi) / (math.sqrt(2) - 1)
    assert I.gaussian_hoyer(2) == pytest.approx(closed, abs=2e-3)
    assert I.gaussian_hoyer(2) > I.gaussian_hoyer(4) > I.gaussian_hoyer(10)


@pytest.mark.parametrize("n", [2, 4, 10])
def test_gaussian_codes_have_no_hoyer_excess(n: int) -> None:
    rng = np.random.default_rng(n)
    codes = rng.normal(size=(20000, n)) * rng.uniform(0.1, 10.0, size=n) + rng.normal(size=n)
    assert I.hoyer_excess(codes) == pytest.approx(0.0, abs=0.01)
    sparse = codes * (rng.random(codes.shape) < 0.3)  # each input engages ~30% of the dims
    assert I.hoyer_excess(sparse) > 0.05


def test_sampled_codes_follow_the_posterior() -> None:
    """One draw per row; the sample median and quartiles sit at loc and loc +- scale (Cauchy)."""
    z = I.sample_codes(np.zeros((20000, 1)), np.full((20000, 1), 2.0), "cauchy", seed=0)
    np.testing.assert_allclose(np.percentile(z, [25, 50, 75]), [-2, 0, 2], atol=0.1)


def test_dense_gaussian_code_is_active_at_once_everywhere() -> None:
    """q = N(m, 0.5^2), m ~ N(0, 1), prior N(0, 1): KL >= 0.318 nats for every input (its minimum, at
    m = 0, is 0.5 (0.25 - 1 - log 0.25)), so every used dim is active for every input; an unused dim
    (the prior itself) does not count."""
    rng = np.random.default_rng(5)
    m = rng.normal(size=(500, 3))
    kl = 0.5 * (0.25 + m**2 - 1 - math.log(0.25))
    assert kl.min() >= 0.5 * (0.25 - 1 - math.log(0.25)) - 1e-12
    np.testing.assert_array_equal(I.active_at_once(kl, 0.0, np.array([True, True, False]), 0.1), 1.0)
    with pytest.raises(ValueError, match="no used"):
        I.active_at_once(kl, 0.0, np.zeros(3, dtype=bool), 0.1)


def test_label_information_needs_every_class_twice() -> None:
    loc, scale = np.zeros((4, 1)), np.ones((4, 1))
    with pytest.raises(ValueError, match="at least twice"):
        I.code_information(loc, scale, "gaussian", labels=np.array([0, 0, 0, 1]))
