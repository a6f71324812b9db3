"""Maths of sparse_vae.distributions checked against maths: Monte Carlo, quadrature and analytic CDFs."""

import math

import torch

torch.set_num_threads(1)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402
from torch.distributions import Cauchy, Laplace, Normal  # noqa: E402
from torch.distributions.kl import _KL_REGISTRY  # noqa: E402

from sparse_vae.distributions import (  # noqa: E402
    CAUCHY_U_MIN,
    LOG_SCALE_MAX,
    DEFAULT_POSTERIOR,
    POSTERIOR_SCALE_MIN,
    GuardedCauchy,
    check_pairing,
    kl_cauchy_cauchy,
    kl_divergence,
    kl_normal_laplace,
    make_posterior,
    make_prior,
    posterior_scale,
    prior_log_density,
    standard_draws,
    standard_log_density,
)

D = torch.float64
N_MC = 200_000


def t(values):
    return torch.tensor(values, dtype=D)


def grid(*axes):
    """Cartesian product of 1-D value lists, as flat float64 tensors."""
    mesh = torch.meshgrid(*[t(a) for a in axes], indexing="ij")
    return [m.reshape(-1) for m in mesh]


# Parameter grids: (posterior loc, posterior scale, prior loc, prior scale)
NORMAL_LAPLACE = grid([-2.0, 0.0, 0.7, 3.0], [0.05, 0.5, 1.0, 3.0], [0.0, 1.0], [0.3, 1.0, 2.5])
CAUCHY_CAUCHY = grid([-3.0, 0.0, 0.5], [0.02, 0.7, 1.0, 4.0], [0.0, 2.0], [0.1, 1.0, 3.0])
NORMAL_NORMAL = grid([-2.0, 0.0, 1.5], [0.1, 1.0, 2.0], [0.0, 0.5], [0.5, 1.0, 2.0])

PAIRS = {
    "normal-normal": (Normal, Normal, NORMAL_NORMAL),
    "normal-laplace": (Normal, Laplace, NORMAL_LAPLACE),
    "cauchy-cauchy": (GuardedCauchy, Cauchy, CAUCHY_CAUCHY),
}


def build(pair):
    q_cls, p_cls, (a, b, c, d) = PAIRS[pair]
    return q_cls(a, b), p_cls(c, d)


# -- closed forms against Monte Carlo -------------------------------------------------------------
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_closed_form_matches_monte_carlo(pair):
    torch.manual_seed(0)
    q, p = build(pair)
    exact = kl_divergence(q, p, "closed_form")
    z = q.sample((N_MC,))
    values = q.log_prob(z) - p.log_prob(z)
    se = values.std(0) / math.sqrt(N_MC)
    mean = kl_divergence(q, p, "monte_carlo", z=z)   # given samples: the mean over the sample dimension
    torch.testing.assert_close(mean, values.mean(0))
    assert exact.shape == mean.shape == q.batch_shape
    assert torch.all((exact - mean).abs() <= 5 * se + 1e-3), (exact, mean, se)


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_monte_carlo_estimator_is_unbiased(pair):
    """Fresh samples (n_samples), as the model draws them when kl_samples > 1: within 5 SE of the KL."""
    torch.manual_seed(1)
    q, p = build(pair)
    n = 50_000
    exact = kl_divergence(q, p, "closed_form")
    z = q.sample((n,))
    se = (q.log_prob(z) - p.log_prob(z)).std(0) / math.sqrt(n)
    fresh = kl_divergence(q, p, "monte_carlo", n_samples=n)
    assert torch.all((fresh - exact).abs() <= 5 * se + 1e-3), (exact, fresh, se)


def test_kl_of_a_distribution_with_itself_is_zero():
    loc, scale = t([-3.0, 0.0, 0.4, 10.0]), t([1e-3, 0.5, 1.0, 100.0])
    for cls in (Normal, Laplace, GuardedCauchy):
        q = cls(loc, scale)
        assert torch.equal(kl_divergence(q, cls(loc, scale), "closed_form"), torch.zeros(4, dtype=D)), cls
        assert torch.equal(kl_divergence(q, q, "monte_carlo", n_samples=10), torch.zeros(4, dtype=D)), cls


# -- closed forms against quadrature and against torch's own --------------------------------------
def quad_kl_normal_laplace(mu, s, m, b):
    f = lambda z: stats.norm.pdf(z, mu, s) * (stats.norm.logpdf(z, mu, s) - stats.laplace.logpdf(z, m, b))  # noqa: E731
    lo, hi = mu - 40 * s, mu + 40 * s
    cuts = sorted({lo, hi, min(max(m, lo), hi)})   # split at the Laplace kink
    return sum(integrate.quad(f, a, c, epsabs=1e-12, epsrel=1e-10, limit=200)[0] for a, c in zip(cuts, cuts[1:]))


def quad_kl_cauchy(l1, s1, l2, s2):
    # z = l1 + s1 tan(theta) maps q onto the uniform density 1/pi on (-pi/2, pi/2).
    def f(theta):
        z = l1 + s1 * math.tan(theta)
        return (stats.cauchy.logpdf(z, l1, s1) - stats.cauchy.logpdf(z, l2, s2)) / math.pi
    return integrate.quad(f, -math.pi / 2, math.pi / 2, epsabs=1e-12, epsrel=1e-10, limit=200)[0]


@pytest.mark.parametrize("mu,s,m,b", [(0.0, 1.0, 0.0, 1.0), (1.3, 0.2, 0.0, 0.5), (-2.0, 3.0, 0.5, 2.0),
                                      (0.0, 0.01, 0.0, 1.0), (5.0, 0.7, -1.0, 0.3)])
def test_normal_laplace_matches_quadrature(mu, s, m, b):
    ours = kl_normal_laplace(Normal(t(mu), t(s)), Laplace(t(m), t(b))).item()
    assert ours == pytest.approx(quad_kl_normal_laplace(mu, s, m, b), rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("l1,s1,l2,s2", [(0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 0.0, 2.0), (1.5, 0.3, 0.0, 1.0),
                                         (-4.0, 2.0, 1.0, 0.1), (0.2, 0.05, 0.0, 5.0)])
def test_cauchy_cauchy_matches_quadrature(l1, s1, l2, s2):
    ours = kl_cauchy_cauchy(Cauchy(t(l1), t(s1)), Cauchy(t(l2), t(s2))).item()
    assert ours == pytest.approx(quad_kl_cauchy(l1, s1, l2, s2), rel=1e-7, abs=1e-9)


def test_agrees_with_torch_registered_kls():
    """torch registers both pairs already; ours must agree with its versions."""
    assert (Normal, Laplace) in _KL_REGISTRY and (Cauchy, Cauchy) in _KL_REGISTRY
    q, p = build("normal-laplace")
    torch.testing.assert_close(kl_normal_laplace(q, p), torch.distributions.kl_divergence(q, p))
    q, p = build("cauchy-cauchy")
    torch.testing.assert_close(kl_cauchy_cauchy(q, p), torch.distributions.kl_divergence(q, p))
    # the dispatcher reaches them for our Cauchy subclass, too
    torch.testing.assert_close(torch.distributions.kl_divergence(q, p), kl_divergence(q, p, "closed_form"))


def test_cauchy_kl_is_accurate_for_small_divergences_in_float32():
    l2, s2 = torch.tensor([1e-4, 0.0, 3e-3]), torch.tensor([1.0, 1.0 + 1e-4, 1.0])
    q, p = Cauchy(torch.zeros(3), torch.ones(3)), Cauchy(l2, s2)
    exact = torch.log1p(((1 - s2.double()) ** 2 + l2.double() ** 2) / (4 * s2.double()))
    ours = kl_cauchy_cauchy(q, p)
    torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=0.0)
    assert torch.all(ours > 0)


# -- reparameterised samples ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", ["gaussian", "cauchy"])
def test_reparameterised_samples_have_the_right_distribution(family, dtype):
    torch.manual_seed(2)
    loc, raw = torch.tensor([0.7], dtype=dtype), torch.tensor([math.log(2.5)], dtype=dtype)
    q = make_posterior(family, loc, raw)
    z = q.rsample((20_000,)).reshape(-1).double().numpy()
    scale = float(posterior_scale(raw.double()))
    ref = stats.norm(0.7, scale) if family == "gaussian" else stats.cauchy(0.7, scale)
    assert stats.kstest(z, ref.cdf).pvalue > 1e-3


def test_guarded_cauchy_tail_precision_and_extremes(monkeypatch):
    """u at 0, near 0, 1/2 and near 1 give finite samples with the signs and sizes of the quantile function."""
    u = torch.tensor([0.0, 1e-5, 0.25, 0.5, 0.75, 1 - 1e-5, 1 - 2.0**-24])
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: u.to(kw.get("dtype")).reshape(shape))
    z = GuardedCauchy(torch.zeros(7), torch.ones(7)).rsample()
    monkeypatch.undo()
    uc = u.double().clamp(CAUCHY_U_MIN, 1 - CAUCHY_U_MIN).numpy()
    expected = stats.cauchy.ppf(uc)
    assert torch.all(torch.isfinite(z))
    np.testing.assert_allclose(z.double().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert z[0] < -3e5 and z[-1] > 3e5


def test_gradients_reach_loc_and_scale():
    torch.manual_seed(3)
    for family in ("gaussian", "cauchy"):
        loc, raw = t([0.3]).requires_grad_(), t([0.2]).requires_grad_()
        z = make_posterior(family, loc, raw).rsample((100,))
        z.sum().backward()
        for g in (loc.grad, raw.grad):
            assert g is not None and torch.isfinite(g).all() and g.abs().item() > 0


def expected_tanh(family, mu, raw):
    s = float(posterior_scale(t(raw)))
    if family == "gaussian":
        return integrate.quad(lambda z: math.tanh(z) * stats.norm.pdf(z, mu, s), mu - 40 * s, mu + 40 * s,
                              epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return integrate.quad(lambda th: math.tanh(mu + s * math.tan(th)) / math.pi, -math.pi / 2, math.pi / 2,
                          epsabs=1e-13, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("family", ["gaussian", "cauchy"])
def test_pathwise_gradient_matches_finite_difference(family):
    """d/dloc and d/draw_scale of E[tanh(z)]: pathwise MC through rsample vs central differences of quadrature."""
    torch.manual_seed(4)
    mu, raw0, h, n = 0.4, math.log(0.8), 1e-4, N_MC
    loc, raw = t([mu]).requires_grad_(), t([raw0]).requires_grad_()
    z = make_posterior(family, loc, raw).rsample((n,))
    torch.tanh(z).mean().backward()
    # per-sample gradients for the standard error: d tanh(z)/dloc = sech^2, d/draw = sech^2 * (z - loc)
    sech2 = (1 - torch.tanh(z.detach()) ** 2).reshape(-1)
    per_sample = {"loc": sech2, "raw": sech2 * (z.detach().reshape(-1) - mu)}
    fd = {
        "loc": (expected_tanh(family, mu + h, raw0) - expected_tanh(family, mu - h, raw0)) / (2 * h),
        "raw": (expected_tanh(family, mu, raw0 + h) - expected_tanh(family, mu, raw0 - h)) / (2 * h),
    }
    for name, grad in (("loc", loc.grad.item()), ("raw", raw.grad.item())):
        se = per_sample[name].std().item() / math.sqrt(n)
        assert grad != 0.0 and math.isfinite(grad)
        assert abs(grad - fd[name]) <= 5 * se + 1e-6, (name, grad, fd[name], se)


# -- guards ---------------------------------------------------------------------------------------
EXTREME_RAW = [-1e4, -50.0, -7.5, 0.0, 7.5, 50.0, 1e4, float("inf"), -float("inf")]


PRIOR_POSTERIOR = [("normal", "gaussian"), ("laplace", "gaussian"), ("cauchy", "cauchy"), ("cauchy", "gaussian")]


@pytest.mark.parametrize("prior,family", PRIOR_POSTERIOR)
def test_extreme_raw_scales_stay_finite(prior, family):
    torch.manual_seed(5)
    raw = torch.tensor(EXTREME_RAW).repeat(3, 1).requires_grad_()           # (3, 9), float32 as in training
    loc = torch.tensor([-1e3, 0.0, 1e3])[:, None].expand(3, len(EXTREME_RAW)).clone().requires_grad_()
    q = make_posterior(family, loc, raw)
    assert torch.all(q.scale >= POSTERIOR_SCALE_MIN)
    assert torch.all(q.scale <= math.exp(LOG_SCALE_MAX) * (1 + 1e-6))
    p = make_prior(prior, 1.0, len(EXTREME_RAW))
    z = q.rsample((2000,))
    assert torch.isfinite(z).all()
    mc = kl_divergence(q, p, "monte_carlo", z=z)
    closed = mc if (prior, family) == ("cauchy", "gaussian") else kl_divergence(q, p, "closed_form")
    assert closed.shape == mc.shape == (3, len(EXTREME_RAW))
    assert torch.isfinite(closed).all() and torch.isfinite(mc).all() and torch.all(closed >= 0)
    (closed.sum() + mc.sum()).backward()
    assert torch.isfinite(raw.grad).all() and torch.isfinite(loc.grad).all()


def test_posterior_scale_floor_is_smooth_and_passes_gradient():
    """exp(raw) in the working range, floor + cap at the ends, and a gradient below the old clamp (#12).

    The old map clamped raw to [-7, 5]: below -7 it passed no gradient, so an encoder pushed there
    never came back and the losses depended on the clamp constant.
    """
    raw = t([-60.0, -20.0, -12.0, -9.0, -7.5, -3.0, 0.0, 2.0, 8.0, 60.0]).requires_grad_()
    scale = posterior_scale(raw)
    expected = POSTERIOR_SCALE_MIN + torch.exp(LOG_SCALE_MAX - torch.log1p(torch.exp(LOG_SCALE_MAX - raw)))
    torch.testing.assert_close(scale, expected)
    mid = (raw > -8) & (raw < 1)
    torch.testing.assert_close(scale[mid], raw[mid].exp(), rtol=0.01, atol=0.0)   # ~exp(raw) there
    assert torch.all(scale >= POSTERIOR_SCALE_MIN) and torch.all(scale <= POSTERIOR_SCALE_MIN + math.exp(LOG_SCALE_MAX))
    assert torch.all(scale[1:] > scale[:-1])                                       # strictly increasing
    assert scale[0].detach().item() == pytest.approx(POSTERIOR_SCALE_MIN, rel=1e-9)
    # d KL(q || Cauchy(0, 1)) / d raw: the KL pulls scales below the prior's back up, even from
    # raw = -20 (the old clamp's gradient there was exactly 0)
    q, p = make_posterior("cauchy", torch.zeros_like(raw), raw), make_prior("cauchy", 1.0, len(raw))
    kl_divergence(q, p).sum().backward()
    assert torch.all(raw.grad[1:6] < 0), raw.grad


# -- constructors and shapes ----------------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [("normal", Normal), ("laplace", Laplace), ("cauchy", Cauchy)])
def test_make_prior(name, cls):
    p = make_prior(name, 2.0, 5)
    assert isinstance(p, cls) and p.batch_shape == (5,)
    assert torch.equal(p.loc, torch.zeros(5)) and torch.equal(p.scale, torch.full((5,), 2.0))
    with pytest.raises(ValueError):
        make_prior("student", 1.0, 5)


def test_make_posterior_families_and_shapes():
    loc, raw = torch.zeros(4, 3), torch.zeros(4, 3)
    assert type(make_posterior("gaussian", loc, raw)) is Normal
    q = make_posterior("cauchy", loc, raw)
    assert isinstance(q, Cauchy) and q.batch_shape == (4, 3)
    torch.testing.assert_close(q.scale, posterior_scale(raw))
    assert DEFAULT_POSTERIOR == {"normal": "gaussian", "laplace": "gaussian", "cauchy": "cauchy"}
    for bad in ("laplace", "normal"):
        with pytest.raises(ValueError):
            make_posterior(bad, loc, raw)


def test_pairings_without_a_finite_or_computable_kl_are_rejected():
    for family, posterior in PRIOR_POSTERIOR:
        check_pairing(family, posterior, "monte_carlo")
    check_pairing("cauchy", "cauchy", "closed_form")
    for family, posterior, kl, words in [("normal", "cauchy", "monte_carlo", "needs a cauchy prior"),
                                         ("laplace", "cauchy", "closed_form", "is infinite"),
                                         ("cauchy", "gaussian", "closed_form", "monte_carlo"),
                                         ("student", "gaussian", "closed_form", "unknown prior family"),
                                         ("normal", "laplace", "closed_form", "unknown posterior")]:
        with pytest.raises(ValueError, match=words):
            check_pairing(family, posterior, kl)


def test_monte_carlo_kl_of_a_gaussian_posterior_from_a_cauchy_prior_matches_quadrature():
    """KL(N(mu, s^2) || Cauchy(0, g)) = -0.5 log(2 pi e s^2) + log(pi g) + E_N log(1 + z^2 / g^2)."""
    torch.manual_seed(6)
    mu, s, g = t([0.0, 0.8, -2.0]), t([1.0, 0.3, 0.05]), t([1.0, 1.0, 0.5])
    q, p = Normal(mu, s), Cauchy(torch.zeros(3, dtype=D), g)
    mc = q.log_prob(z := q.rsample((N_MC,))) - p.log_prob(z)
    for i in range(3):
        m, sd, gi = mu[i].item(), s[i].item(), g[i].item()
        e_log = integrate.quad(lambda x: math.log1p((x / gi) ** 2) * stats.norm.pdf(x, m, sd),
                               m - 40 * sd, m + 40 * sd, epsabs=1e-12, limit=200)[0]
        exact = -0.5 * math.log(2 * math.pi * math.e * sd**2) + math.log(math.pi * gi) + e_log
        se = mc[:, i].std().item() / math.sqrt(N_MC)
        assert abs(mc[:, i].mean().item() - exact) <= 5 * se + 1e-9, (i, mc[:, i].mean().item(), exact)
        assert abs(kl_divergence(q, p, "monte_carlo", z=z)[i].item() - exact) <= 5 * se + 1e-9


@pytest.mark.parametrize("prior,family", PRIOR_POSTERIOR[:3])
def test_kl_divergence_shapes(prior, family):
    q = make_posterior(family, torch.randn(6, 3), torch.randn(6, 3))
    p = make_prior(prior, 1.0, 3)
    assert kl_divergence(q, p, "closed_form").shape == (6, 3)
    assert kl_divergence(q, p, "monte_carlo", n_samples=4).shape == (6, 3)
    z = q.rsample()
    torch.testing.assert_close(kl_divergence(q, p, "monte_carlo", z=z), q.log_prob(z) - p.log_prob(z))
    assert kl_divergence(q, p, "monte_carlo", z=q.rsample((5,))).shape == (6, 3)
    with pytest.raises(ValueError):
        kl_divergence(q, p, "exact")


@pytest.mark.parametrize("posterior", ["gaussian", "cauchy"])
def test_log_density_at_the_standard_draw_is_log_prob_in_value_and_gradient(posterior: str) -> None:
    """log q(z) = standard_log_density(eps) - log(scale) for z = loc + scale * eps: the same value and
    the same gradients in loc and scale as torch's log_prob(z) along the reparameterisation."""
    torch.manual_seed(0)
    loc = torch.randn(5, 3, dtype=D, requires_grad=True)
    raw = torch.randn(5, 3, dtype=D, requires_grad=True)
    q = make_posterior(posterior, loc, raw)
    eps = standard_draws(posterior, (4, 5, 3), D)
    z = q.loc + eps * q.scale
    ours = standard_log_density(posterior, eps) - q.scale.log()
    theirs = q.log_prob(z)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad(ours.sum(), [loc, raw], retain_graph=True, materialize_grads=True)
    for a, b in zip(grads, torch.autograd.grad(theirs.sum(), [loc, raw])):   # loc's: 0 along the draw
        torch.testing.assert_close(a, b)


def test_standard_draws_are_the_samplers_draws() -> None:
    for posterior, dist in (("gaussian", Normal(torch.zeros(6), torch.ones(6))),
                            ("cauchy", GuardedCauchy(torch.zeros(6), torch.ones(6)))):
        torch.manual_seed(3)
        ours = standard_draws(posterior, (2, 6))
        torch.manual_seed(3)
        assert torch.equal(ours, dist.rsample((2,)))


@pytest.mark.parametrize("family", ["normal", "laplace", "cauchy"])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_prior_log_density_is_the_priors_log_prob(family: str, scale: float) -> None:
    z = torch.linspace(-40, 40, 801, dtype=D).reshape(3, 267)
    torch.testing.assert_close(prior_log_density(family, z, scale), make_prior(family, scale, 267).log_prob(z).double())
