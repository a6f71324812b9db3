"""Tests of sparse_vae.analysis: every metric on a case with a known answer, then the pipeline step.

The unit tests use small hand-made models that honour the model contract of docs/interfaces.md
(posterior, prior, decode, log_likelihood), most of them linear-Gaussian, where log p(x) and the
ELBO are known in closed form; they do not depend on sparse_vae.model. One integration test runs
the real model when it is importable.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Cauchy, MultivariateNormal, Normal, StudentT

from sparse_vae import analysis, catalogue
from sparse_vae.analysis import compute, metrics, model_passes, recovery, run_io
from sparse_vae.analysis.posterior import Group, Posterior
from sparse_vae.data.io import Dataset, load_dataset, save_dataset

torch.set_num_threads(1)

PARAMS = {
    "iwae_samples": 20,
    "max_examples": 150,
    "active_threshold": 0.01,
    "used_ratio_threshold": 1.0,
    "kl_threshold": 0.01,
    "sparsity_threshold": 0.1,
    "probe_folds": 3,
    "info_examples": 120,
    "info_draws": 4,
    "at_once_threshold": 0.1,
    "ais_examples": 4,
    "ais_steps": 30,
    "ais_chains": 4,
    "ais_leapfrog": 3,
}


class LinearGaussianVAE(nn.Module):
    """z ~ N(0, I); x | z ~ N(W z + b, sigma^2 I); q(z|x) = N(A x + c, diag(s^2)) (or Cauchy(A x + c, s)).

    With a Gaussian posterior, log p(x) = log N(x; b, W W^T + sigma^2 I) and the ELBO are exact.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, sigma: float, A: np.ndarray, c: np.ndarray,
                 s: np.ndarray, family: str = "normal") -> None:
        super().__init__()
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.W, self.b, self.A, self.c, self.s = t(W), t(b), t(A), t(c), t(s)
        self.sigma = float(sigma)
        self.family = family

    def posterior(self, x: torch.Tensor) -> Normal | Cauchy:
        loc = x @ self.A.T + self.c
        scale = self.s.expand_as(loc)
        return Normal(loc, scale) if self.family == "normal" else Cauchy(loc, scale)

    def prior(self) -> Normal | Cauchy:
        zeros = torch.zeros(self.W.shape[1])
        return Normal(zeros, torch.ones_like(zeros)) if self.family == "normal" else Cauchy(zeros, torch.ones_like(zeros))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W.T + self.b

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return Normal(self.decode(z), self.sigma).log_prob(x).sum(-1)

    def log_weights(self, x: torch.Tensor, q: Normal | Cauchy, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`VAE.log_weights`' contract from torch.distributions: (log p(x|z), per-dim log q - log p)."""
        z = q.rsample((n,))
        return self.log_likelihood(x, z), q.log_prob(z) - self.prior().log_prob(z)

    # exact quantities of the linear-Gaussian model (Gaussian posterior only)
    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W.double() @ self.W.double().T + self.sigma**2 * torch.eye(len(self.b), dtype=torch.float64)
        return MultivariateNormal(self.b.double(), cov).log_prob(x.double())

    def exact_elbo(self, x: torch.Tensor) -> torch.Tensor:
        q = self.posterior(x)
        mu, s2 = q.loc.double(), q.scale.double() ** 2
        W, d = self.W.double(), len(self.b)
        resid = x.double() - mu @ W.T - self.b.double()
        trace = s2 @ (W**2).T  # diag(W diag(s^2) W^T) per example
        recon = -0.5 * d * math.log(2 * math.pi * self.sigma**2) - ((resid**2) + trace).sum(-1) / (2 * self.sigma**2)
        kl = torch.distributions.kl_divergence(Normal(mu, s2.sqrt()), Normal(0.0, 1.0)).sum(-1)
        return recon - kl


def linear_gaussian(d: int = 6, latent: int = 2, seed: int = 0, poor: bool = True) -> tuple[LinearGaussianVAE, torch.Tensor]:
    """A model with a deliberately poor encoder (so IWAE has room above the ELBO) and data from it."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, latent))
    b = rng.normal(size=d) * 0.1
    sigma = 0.5
    cov = np.linalg.inv(np.eye(latent) + W.T @ W / sigma**2)
    A = cov @ W.T / sigma**2
    c = -A @ b
    s = np.sqrt(np.diag(cov))
    if poor:
        A = A * 0.7
        s = s * 2.0
    z = rng.normal(size=(40, latent))
    x = z @ W.T + b + sigma * rng.normal(size=(40, d))
    return LinearGaussianVAE(W, b, sigma, A, c, s), torch.as_tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Pure metrics
# ---------------------------------------------------------------------------------------------
def test_active_units_counts_only_dimensions_the_encoder_uses() -> None:
    rng = np.random.default_rng(1)
    d, latent = 8, 5
    A = rng.normal(size=(latent, d))
    A[[1, 3]] = 0.0  # the encoder ignores dims 1 and 3: their location is constant
    s = np.full(latent, 0.3)
    s[[1, 3]] = 1.0  # and their posterior equals the prior: zero KL
    model = LinearGaussianVAE(rng.normal(size=(d, latent)), np.zeros(d), 0.5, A, np.zeros(latent), s)
    x = rng.random((200, d)).astype(np.float32)
    loc, _ = model_passes.posterior_parameters(model, x)
    variance = metrics.location_variance(loc)
    assert metrics.active_units(variance, 0.01) == 3
    assert variance[1] == 0.0 and variance[3] == 0.0
    with torch.no_grad():
        kl, method = metrics.evaluation_kl(model.posterior(torch.as_tensor(x)), model.prior())
    assert method == "closed_form"
    assert kl.shape == (200, latent)
    assert np.flatnonzero(kl.mean(0).numpy() > 0.01).tolist() == [0, 2, 4]


def test_iwae_is_at_least_elbo_and_with_one_sample_equals_it_in_expectation() -> None:
    model, x = linear_gaussian()
    torch.manual_seed(0)
    with torch.no_grad():
        log_lik, log_w = model_passes.importance_log_weights(model, x, 4000)
        exact_elbo = model.exact_elbo(x)
        exact_log_px = model.exact_log_px(x)
    assert log_lik.shape == log_w.shape == (4000, len(x))
    # K = 1: each row of log_w is one IWAE(1) draw; its mean is the ELBO within sampling error.
    diff = log_w.mean(0) - exact_elbo
    se = log_w.std(0) / math.sqrt(log_w.shape[0])
    assert torch.all(diff.abs() < 4.5 * se), (diff / se)
    mean_se = math.sqrt(float((se**2).sum())) / len(x)
    assert abs(float(diff.mean())) < 4 * mean_se
    # IWAE with K = 4000 is above the ELBO for every example (Jensen on the same draws), and on
    # average within noise of log p(x) (one draw of the estimator may exceed it; its mean may not).
    iwae = metrics.iwae_bound(log_w)
    assert torch.all(iwae >= log_w.mean(0))
    assert float(iwae.mean()) > float(exact_elbo.mean()) + 0.05
    assert abs(float((exact_log_px - iwae).mean())) < 0.02


def test_iwae_increases_with_k() -> None:
    model, x = linear_gaussian(seed=2)
    torch.manual_seed(1)
    with torch.no_grad():
        _, log_w = model_passes.importance_log_weights(model, x, 6400, chunk_elements=4096)
        log_px = float(model.exact_log_px(x).mean())
    means = []
    for k in (1, 4, 16, 64, 400):
        groups = log_w.reshape(-1, k, log_w.shape[1])  # independent IWAE(k) estimates
        means.append(float(torch.stack([metrics.iwae_bound(g) for g in groups]).mean()))
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert means[-1] < log_px + 0.01
    assert log_px - means[-1] < 0.1 * (log_px - means[0])


def test_importance_weights_are_chunking_invariant_in_distribution_and_shape() -> None:
    """One draw per chunk and one chunk for all draws both give E log w = the exact ELBO of the
    linear-Gaussian model (and log p(x|z) its exact expected reconstruction term): a chunk loop that
    misaligned or repeated draws would miss it by many standard errors."""
    model, x = linear_gaussian()
    x, n = x[:5], 4000
    elbo = model.exact_elbo(x)
    for chunk in (1, model_passes.CHUNK_ELEMENTS):
        torch.manual_seed(3)
        log_lik, log_w = model_passes.importance_log_weights(model, x, n, chunk_elements=chunk)
        assert log_w.shape == log_lik.shape == (n, 5) and log_w.dtype == torch.float64
        se = log_w.std(0) / math.sqrt(n)
        assert ((log_w.mean(0) - elbo).abs() < 4 * se + 1e-9).all(), (chunk, log_w.mean(0) - elbo, se)
    with pytest.raises(ValueError):
        model_passes.importance_log_weights(model, x, 0)


def test_evaluation_kl_closed_forms_and_monte_carlo_fallback() -> None:
    q = Cauchy(torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, 2.0]]))
    p = Cauchy(torch.zeros(2), torch.ones(2))
    kl, method = metrics.evaluation_kl(q, p)
    expected = torch.log(((q.scale + 1) ** 2 + q.loc**2) / (4 * q.scale))
    assert method == "closed_form"
    torch.testing.assert_close(kl, expected, rtol=1e-5, atol=1e-6)
    # a pair without a closed form: Monte Carlo, unbiased
    q = Normal(torch.tensor([[0.5, 0.0]]), torch.tensor([[0.7, 1.0]]))
    p = StudentT(torch.tensor(3.0), torch.zeros(2), torch.ones(2))
    torch.manual_seed(0)
    kl, method = metrics.evaluation_kl(q, p, mc_samples=20000)
    assert method.startswith("monte_carlo")
    z = q.sample((200000,))
    reference = (q.log_prob(z) - p.log_prob(z)).mean(0)
    torch.testing.assert_close(kl, reference, atol=0.02, rtol=0)


def test_linear_probe_accuracy_near_one_on_separable_codes_and_chance_on_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)
    codes = rng.normal(size=(600, 4))
    noise_acc, chance = metrics.linear_probe(codes, labels, folds=5)
    assert chance == pytest.approx(1 / 3)
    assert abs(noise_acc - chance) < 0.08
    separable = codes.copy()
    separable[:, 2] += 10.0 * labels
    accuracy, _ = metrics.linear_probe(separable, labels, folds=5)
    # the rank transform keeps the classes' order but not the gaps between them (a monotone map can
    # close any gap), so the regularised boundary is not quite sharp: 0.975 (linear), 0.983 (additive) here
    assert accuracy > 0.96
    assert metrics.additive_probe(separable, labels, folds=5)[0] > 0.97
    assert abs(metrics.additive_probe(codes, labels, folds=5)[0] - chance) < 0.08
    with pytest.raises(metrics.NotApplicable):
        metrics.linear_probe(codes, np.zeros(600, dtype=int), folds=5)
    mi = metrics.mutual_information(separable, labels)
    assert mi.argmax() == 2 and mi[2] > 0.9 and np.delete(mi, 2).max() < 0.1


def test_template_recovery_is_one_when_codes_are_the_true_weights() -> None:
    rng = np.random.default_rng(0)
    weights = rng.laplace(size=(400, 3))
    codes = np.column_stack([weights[:, 2], -2.0 * weights[:, 0], np.zeros(400), 0.5 * weights[:, 1]])
    corr, best, best_r = recovery.template_weight_correlation(codes, weights)
    assert corr == pytest.approx(1.0)
    assert best.tolist() == [1, 3, 0]
    assert recovery.template_weight_r2(codes, weights) == pytest.approx(1.0)
    # a rotation keeps R^2 at 1 but the axis-aligned correlation drops
    theta = np.pi / 4
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    mixed = weights[:, :2] @ rot
    assert recovery.template_weight_r2(mixed, weights[:, :2]) == pytest.approx(1.0)
    assert recovery.template_weight_correlation(mixed, weights[:, :2])[0] < 0.8
    # noise codes recover nothing
    assert recovery.template_weight_r2(rng.normal(size=(400, 4)), weights) < 0.05
    templates = rng.normal(size=(3, 16))
    cos, which = recovery.best_abs_cosine(templates, np.vstack([np.zeros(16), -3 * templates[2], templates[0], templates[1]]))
    np.testing.assert_allclose(cos, 1.0)
    assert which.tolist() == [2, 3, 1]


def test_hoyer_is_one_for_one_hot_and_zero_for_constant() -> None:
    codes = np.array([[0.0, 0.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 1.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    h = metrics.hoyer_sparsity(codes)
    np.testing.assert_allclose(h[:3], [1.0, 0.0, 0.0], atol=1e-12)
    assert np.isnan(h[3])
    assert 0 < metrics.hoyer_sparsity(np.array([[1.0, 0.1, 0.0, 0.0]]))[0] < 1


def test_kurtosis_of_laplace_samples_is_about_three() -> None:
    rng = np.random.default_rng(0)
    loc = np.column_stack([rng.laplace(size=100_000), rng.normal(size=100_000), np.full(100_000, 0.5)])
    k = metrics.excess_kurtosis(loc)
    assert k[0] == pytest.approx(3.0, abs=0.4)
    assert k[1] == pytest.approx(0.0, abs=0.1)
    assert np.isnan(k[2])


def test_frac_near_zero_is_relative_to_each_dimensions_spread() -> None:
    """#12 defect 6: an absolute 0.1 cut-off made the count depend on each prior's scale."""
    # column 0: median 0, IQR 2 (quartiles -1, 1): |z| < 0.2 counts; column 1 the same times 100
    col = np.array([-3.0, -1.0, -0.1, 0.0, 0.1, 0.5, 1.0, 3.0, 0.15])
    loc = np.column_stack([col, 100.0 * col])
    iqr = np.subtract(*np.percentile(col, [75, 25]))
    expected = np.mean(np.abs(col - np.median(col)) < 0.1 * iqr)
    assert metrics.frac_near_zero(loc, 0.1) == pytest.approx(expected)
    assert metrics.frac_near_zero(loc, 0.1, np.array([1])) == pytest.approx(expected)
    # a peaked Laplace code is sparser than a Gaussian code of the same spread, whatever its scale
    rng = np.random.default_rng(0)
    lap, gau = rng.laplace(size=(200_000, 1)), rng.normal(size=(200_000, 1))
    for scale in (0.01, 1.0, 100.0):
        assert metrics.frac_near_zero(scale * lap, 0.1) == pytest.approx(0.129, abs=0.004)
        assert metrics.frac_near_zero(scale * gau, 0.1) == pytest.approx(0.107, abs=0.004)
    with pytest.raises(metrics.NotApplicable):
        metrics.frac_near_zero(np.ones((5, 2)), 0.1)


def test_used_ratio_is_scale_free_and_family_neutral() -> None:
    """#12 defect 1: a dimension is used when its location moves more than its posterior's own spread."""
    rng = np.random.default_rng(0)
    loc = np.column_stack([rng.normal(size=4000), 0.01 * rng.normal(size=4000), rng.normal(size=4000)])
    scale = np.column_stack([np.full(4000, 0.2), np.full(4000, 0.2), np.full(4000, 3.0)])
    ratio = metrics.used_ratio(loc, scale, "gaussian")
    # half-IQR of N(0, 1) locations = 0.6745; q's half-IQR = 0.6745 * scale
    np.testing.assert_allclose(ratio, [1 / 0.2, 0.01 / 0.2, 1 / 3.0], rtol=0.05)
    # a Cauchy posterior's half-IQR is its scale
    np.testing.assert_allclose(metrics.used_ratio(loc, scale, "cauchy"), 0.6745 * ratio, rtol=1e-3)
    for factor in (10.0, 0.1, 1e-4):
        k = np.array([factor, 1.0, 1.0])
        np.testing.assert_allclose(metrics.used_ratio(loc * k, scale * k, "gaussian"), ratio, rtol=1e-9)


def test_hoyer_of_standardised_codes_prefers_laplace_to_gaussian() -> None:
    rng = np.random.default_rng(1)
    lap = metrics.robust_standardise(rng.laplace(size=(20_000, 8)) * np.arange(1, 9))
    gau = metrics.robust_standardise(rng.normal(size=(20_000, 8)) * np.arange(1, 9) * 50)
    assert np.nanmean(metrics.hoyer_sparsity(lap)) > np.nanmean(metrics.hoyer_sparsity(gau)) + 0.03


def test_kl_floor_is_the_smallest_kl_of_an_input_independent_posterior() -> None:
    """#12 defect 2: KL(N(m, s^2) || Laplace(0, 1)) >= 0.0484 nats, so KL > 0.01 counted every dim."""
    # closed form: min over s of -1/2 log(2 pi e s^2) + log 2 + s sqrt(2/pi), at s = sqrt(pi/2)
    exact = -0.5 * math.log(2 * math.pi * math.e) - 0.5 * math.log(math.pi / 2) + math.log(2) + 1.0
    assert metrics.kl_floor("gaussian", "laplace") == pytest.approx(exact, abs=2e-5)
    assert metrics.kl_floor("gaussian", "laplace", 3.0) == pytest.approx(exact, abs=2e-5)
    assert exact == pytest.approx(0.0484, abs=1e-4)
    assert metrics.kl_floor("gaussian", "normal") == 0.0 and metrics.kl_floor("cauchy", "cauchy") == 0.0
    # Gaussian vs Cauchy(0, 1): a grid over the scale never goes below the floor, and reaches it
    floor = metrics.kl_floor("gaussian", "cauchy")
    from torch.distributions import Cauchy as C
    grid = []
    torch.manual_seed(0)
    for s in np.linspace(0.8, 2.0, 25):
        z = torch.distributions.Normal(0.0, float(s)).sample((200_000,)).double()
        grid.append(float((torch.distributions.Normal(0.0, float(s)).log_prob(z) - C(0.0, 1.0).log_prob(z)).mean()))
    assert min(grid) == pytest.approx(floor, abs=0.01)


def test_localization_index() -> None:
    d = 100
    one_pixel = np.zeros(d)
    one_pixel[7] = -2.0
    quarter = np.zeros(d)
    quarter[:25] = 1.0
    fields = np.vstack([one_pixel, np.ones(d), quarter, np.zeros(d)])
    index = metrics.localization_index(fields)
    np.testing.assert_allclose(index[:3], [1.0, 0.0, 1 - 24 / 99])
    assert np.isnan(index[3])


# ---------------------------------------------------------------------------------------------
# The pipeline step on tiny fake models and datasets
# ---------------------------------------------------------------------------------------------
def synthetic_case(tmp_path: Path, latent: int = 2, n_test: int = 240) -> tuple[Path, LinearGaussianVAE, dict]:
    """A 4x4 synthetic dataset of 2 templates and the linear model that generated it (plus extra dims)."""
    rng = np.random.default_rng(5)
    templates = np.zeros((2, 4, 4))
    templates[0, 1, :] = 1.0
    templates[1, :, 2] = 1.0
    templates = templates.reshape(2, 16)
    amp, offset, noise = 0.15, 0.5, 0.02

    def split(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = rng.laplace(scale=0.5, size=(n, 2))
        clean = offset + amp * w @ templates
        x = np.clip(clean + noise * rng.normal(size=clean.shape), 0, 1).astype(np.float32)
        return x, w, clean

    x_train, w_train, c_train = split(60)
    x_test, w_test, c_test = split(n_test)
    ds = Dataset(
        x_train=x_train, x_test=x_test, image_shape=(4, 4),
        extras={"templates": templates, "weights_train": w_train, "weights_test": w_test,
                "clean_train": c_train, "clean_test": c_test},
        metadata={"source": "synthetic", "pixel_offset": offset},
    )
    path = tmp_path / "synthetic.npz"
    save_dataset(path, ds)
    W = np.zeros((16, latent))
    W[:, :2] = amp * templates.T
    A = np.zeros((latent, 16))
    A[:2] = np.linalg.pinv(amp * templates.T)
    s = np.full(latent, 0.05)
    s[2:] = 1.0
    model = LinearGaussianVAE(W, np.full(16, offset), noise, A, -A @ np.full(16, offset), s)
    ckpt = {"spec": {"dataset": "synthetic", "prior": {"name": "normal", "scale": 1.0, "kl": "monte_carlo",
                                                       "kl_samples": 1}, "latent": latent, "seed": 3},
            "input_dim": 16, "image_shape": (4, 4)}
    return path, model, ckpt


def labelled_case(tmp_path: Path, family: str = "normal") -> tuple[Path, LinearGaussianVAE, dict]:
    """A 3-class dataset on 3x3 images whose class shifts pixel 4; the encoder's dim 0 reads pixel 4."""
    rng = np.random.default_rng(6)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, size=n)
        x = 0.5 + 0.03 * rng.normal(size=(n, 9))
        x[:, 4] = 0.2 + 0.3 * y + 0.02 * rng.normal(size=n)
        return np.clip(x, 0, 1).astype(np.float32), y

    x_train, y_train = split(50)
    x_test, y_test = split(200)
    path = tmp_path / "labelled.npz"
    save_dataset(path, Dataset(x_train=x_train, x_test=x_test, image_shape=(3, 3), y_train=y_train, y_test=y_test,
                               metadata={"source": "digits"}))
    A = np.zeros((3, 9))
    A[0, 4] = 5.0
    A[1, 0] = 1.0  # a barely-moving dim: below the 0.01 variance threshold
    c = np.array([-3.5, -0.5, 0.0])
    W = np.zeros((9, 3))
    W[4, 0] = 0.2
    W[0, 1] = 0.05
    model = LinearGaussianVAE(W, np.full(9, 0.5), 0.1, A, c, np.array([0.1, 0.5, 1.0]), family=family)
    ckpt = {"spec": {"dataset": "labelled", "prior": {"name": family, "scale": 1.0, "kl": "closed_form",
                                                      "kl_samples": 1}, "latent": 3, "seed": 1},
            "input_dim": 9, "image_shape": (3, 3)}
    return path, model, ckpt


def run_analysis(monkeypatch: pytest.MonkeyPatch, data: Path, run_dir: Path, model: Any, ckpt: dict,
                 params: dict | None = None) -> dict:
    monkeypatch.setattr(run_io, "_load_model", lambda path: (model, ckpt))
    run_dir.mkdir(parents=True, exist_ok=True)
    return analysis.analyze_run(data, run_dir, params or PARAMS, threads=1)


def read_metrics(run_dir: Path) -> dict:
    def no_constants(name: str) -> None:
        raise AssertionError(f"metrics.json holds {name}")

    return json.loads((run_dir / "metrics.json").read_text(), parse_constant=no_constants)


def check_layout(report: dict, latent: int) -> None:
    assert set(report) == {"run", "metrics", "not_applicable", "per_dimension", "curves", "settings", "code"}
    from sparse_vae.codehash import stage_record
    assert report["code"] == stage_record("analysis")   # ANALYSIS version and today's normalised code hash
    curve = report["curves"]["label_info_above_rate"]
    if curve is not None:  # S(t) falls with the threshold; its mean is label_info_auc
        values = np.asarray(curve["label_info_nats"])
        assert len(values) == len(curve["threshold_nats"]) == 101
        assert values.mean() == pytest.approx(report["metrics"]["label_info_auc"])
    assert set(report["metrics"]) == set(catalogue.SCALAR_METRICS)
    for name, value in report["metrics"].items():
        assert (value is None) == (name in report["not_applicable"]), name
        assert value is None or isinstance(value, (int, float)), name
    assert all(isinstance(reason, str) and reason for reason in report["not_applicable"].values())
    assert set(report["per_dimension"]) == {"kl", "location_variance", "used_ratio", "kurtosis", "mi_label", "rate",
                                            "label_info"}
    for name in ("kl", "location_variance", "used_ratio", "kurtosis"):
        assert len(report["per_dimension"][name]) == latent
    assert set(compute.PARAM_KEYS) <= set(report["settings"])
    assert report["settings"]["evaluation_kl"] == "closed_form"


def test_analyze_run_end_to_end_on_synthetic_data_and_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, ckpt = synthetic_case(tmp_path)
    run_dir = tmp_path / "run"
    returned = run_analysis(monkeypatch, data, run_dir, model, ckpt)
    report = read_metrics(run_dir)
    assert report == returned
    check_layout(report, latent=2)
    assert report["run"] == {"dataset": "synthetic", "prior": "normal", "latent": 2, "seed": 3,
                             "kl_estimator": "monte_carlo", "posterior": "gaussian", "prior_family": "normal",
                             "prior_scale": 1.0}
    m = report["metrics"]
    assert m["iwae_log_lik"] >= m["elbo"]
    assert m["elbo"] == pytest.approx(m["recon_log_lik"] - m["kl"])
    assert m["iwae_samples"] == PARAMS["iwae_samples"]
    assert report["settings"]["n_eval"] == PARAMS["max_examples"] and report["settings"]["n_test"] == 240
    assert m["mse"] < 0.02**2 * 1.5  # the generating model reconstructs up to the pixel noise
    assert m["used_units"] == 2 and m["dims_used_2d"] == 2 and m["active_units_kl"] == 2
    assert m["template_weight_corr"] > 0.97 and m["template_weight_r2"] > 0.95
    assert m["template_matched_cos"] == pytest.approx(1.0, abs=1e-6)  # linear decoder = the templates
    assert m["ica_matched_cos"] is None and "control" in report["not_applicable"]["ica_matched_cos"]
    assert 0 < m["rf_localization"] < 1 and 0 <= m["frac_near_zero"] <= 1 and 0 <= m["hoyer"] <= 1
    for name in ("probe_accuracy", "probe_chance", "probe_accuracy_best_dim", "mi_label_max"):
        assert m[name] is None and "no labels" in report["not_applicable"][name]
    assert report["per_dimension"]["mi_label"] is None

    latents = np.load(run_dir / "latents.npz")
    assert latents["loc"].shape == (240, 2) and latents["scale"].shape == (240, 2)
    assert "labels" not in latents.files
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert (run_dir / "figures" / "panel_arrays.npz").is_file()  # what the report redraws side by side
    assert figures == sorted(["reconstructions.png", "prior_samples.png", "latent_scatter.png", "traversals.png",
                              "receptive_fields.png", "kl_per_dim.png", "information_per_dim.png", "templates.png",
                              "weights_vs_latents.png"])
    assert all((run_dir / "figures" / f).stat().st_size > 1000 for f in figures)
    assert sorted(p.name for p in run_dir.iterdir()) == ["figures", "latents.npz", "metrics.json"]

    first = (run_dir / "metrics.json").read_bytes()
    run_analysis(monkeypatch, data, run_dir, model, ckpt)  # again, over the previous outputs
    assert (run_dir / "metrics.json").read_bytes() == first
    assert sorted(p.name for p in run_dir.iterdir()) == ["figures", "latents.npz", "metrics.json"]


def test_analyze_run_with_labels_and_a_wider_latent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, ckpt = labelled_case(tmp_path)
    run_dir = tmp_path / "run"
    report = run_analysis(monkeypatch, data, run_dir, model, ckpt)
    check_layout(report, latent=3)
    m, na = report["metrics"], report["not_applicable"]
    assert m["active_units"] == 1  # only dim 0 moves with x (dim 1 moves, but below the threshold)
    assert m["used_units"] == 1  # dim 1 moves by 0.03, far less than its posterior sd 0.5
    assert m["probe_accuracy"] > 0.95 and m["probe_chance"] == pytest.approx(np.bincount(
        np.load(data)["y_test"][:150]).max() / 150)
    mi = report["per_dimension"]["mi_label"]
    assert len(mi) == 3 and int(np.argmax(mi)) == 0 and m["mi_label_max"] == pytest.approx(mi[0])
    assert "mi_label_sum" not in m  # summed per-dim MI counted redundant dims twice (#12 defect 6)
    label_info, rate = np.asarray(report["per_dimension"]["label_info"]), np.asarray(report["per_dimension"]["rate"])
    assert m["label_info_total"] == pytest.approx(label_info.sum())  # threshold-free summaries (issue 34)
    assert m["label_info_top1"] == pytest.approx(label_info.max())
    assert m["label_info_top2"] == pytest.approx(np.sort(label_info)[-2:].sum())
    curve = report["curves"]["label_info_above_rate"]
    assert curve["label_info_nats"][0] == pytest.approx(label_info[rate > 0].sum())
    assert curve["label_info_nats"][10] == pytest.approx(label_info[rate > 0.1].sum())
    assert 0.5 < m["probe_accuracy_sampled_additive"] <= 1 and m["hoyer_excess_sampled"] is None  # one used dim
    assert m["probe_accuracy_best_dim"] == pytest.approx(m["probe_accuracy"], abs=0.02)  # dim 0 holds it all
    assert report["per_dimension"]["kurtosis"][2] is None  # a constant dimension has no kurtosis
    assert m["dims_used_2d"] is None and "3 dimensions" in na["dims_used_2d"]
    for name in ("template_weight_corr", "template_weight_r2", "template_matched_cos", "ica_matched_cos"):
        assert m[name] is None and "synthetic" in na[name]
    assert np.load(run_dir / "latents.npz")["labels"].shape == (200,)
    assert not (run_dir / "figures" / "templates.png").exists()
    assert (run_dir / "figures" / "latent_scatter.png").exists()


def test_analyze_run_with_a_cauchy_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, ckpt = labelled_case(tmp_path, family="cauchy")
    run_dir = tmp_path / "run"
    report = run_analysis(monkeypatch, data, run_dir, model, ckpt, dict(PARAMS, iwae_samples=50))
    check_layout(report, latent=3)
    m = report["metrics"]
    assert report["run"]["prior"] == "cauchy" and report["run"]["posterior"] == "cauchy"
    # #12 defect 4: E_q[log p(x|z)] diverges under a Cauchy posterior; the ELBO is undefined, not a number
    for name in ("elbo", "recon_log_lik"):
        assert m[name] is None and report["not_applicable"][name].startswith("undefined: E_q[log p(x|z)] diverges")
    assert math.isfinite(m["iwae_log_lik"]) and math.isfinite(m["mse"]) and math.isfinite(m["kl"])
    assert (run_dir / "figures" / "prior_samples.png").exists()


def test_a_failed_analysis_leaves_no_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, ckpt = labelled_case(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text("{}")  # stale, from an earlier analysis

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed while drawing")

    monkeypatch.setattr(run_io, "write_figures", crash)
    with pytest.raises(RuntimeError):
        run_analysis(monkeypatch, data, run_dir, model, ckpt)
    assert sorted(p.name for p in run_dir.iterdir()) == ["latents.npz"]
    # leftovers of a job killed harder (no cleanup ran) are removed by the next analysis
    (run_dir / ".figures.tmp-abc").mkdir()
    (run_dir / ".figures.tmp-abc" / "traversals.png").write_bytes(b"partial")
    (run_dir / ".metrics.json.xyz.tmp").write_text("{")
    monkeypatch.undo()
    run_analysis(monkeypatch, data, run_dir, model, ckpt)
    assert sorted(p.name for p in run_dir.iterdir()) == ["figures", "latents.npz", "metrics.json"]


def test_bad_params_and_missing_model_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_vae.errors import SparseVAEError

    data, _, _ = labelled_case(tmp_path)
    with pytest.raises(SparseVAEError, match="model.pt"):
        analysis.analyze_run(data, tmp_path / "untrained", PARAMS)
    _, model, ckpt = labelled_case(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"kept": true}')
    with pytest.raises(SparseVAEError, match="missing probe_folds"):
        run_analysis(monkeypatch, data, run_dir, model, ckpt, {k: v for k, v in PARAMS.items() if k != "probe_folds"})
    with pytest.raises(SparseVAEError, match="expects 16 inputs"):
        run_analysis(monkeypatch, data, run_dir, model, dict(ckpt, input_dim=16))
    # an analysis that never started leaves the previous one alone
    assert json.loads((run_dir / "metrics.json").read_text()) == {"kept": True}


# ---------------------------------------------------------------------------------------------
# The metric catalogue: one home for the vocabulary
# ---------------------------------------------------------------------------------------------
def add_to_catalogue(monkeypatch: pytest.MonkeyPatch, row: catalogue.Metric) -> None:
    """Add one row to the catalogue for a test, as an edit of sparse_vae/catalogue.py would."""
    rows = catalogue.METRICS + (row,)
    monkeypatch.setattr(catalogue, "METRICS", rows)
    monkeypatch.setattr(catalogue, "SCALAR_METRICS", tuple(m.name for m in rows))
    monkeypatch.setattr(catalogue, "_BY_NAME", {m.name: m for m in rows})


def test_catalogue_rows_are_complete_and_match_the_groups() -> None:
    names = [m.name for m in catalogue.METRICS]
    assert len(names) == len(set(names))
    assert set(compute.GROUP_FUNCTIONS) == set(catalogue.GROUPS)
    for m in catalogue.METRICS:
        assert m.label and m.unit and m.definition, m.name
        assert m.better in ("higher", "lower", ""), m.name
        assert m.group in catalogue.GROUPS, m.name
    assert set(names) <= set(catalogue.definitions())


@pytest.mark.parametrize("case", ["synthetic", "labelled"])
def test_compute_produces_exactly_the_catalogue_metrics(tmp_path: Path, case: str) -> None:
    from sparse_vae.data.io import load_dataset

    data, model, ckpt = (synthetic_case if case == "synthetic" else labelled_case)(tmp_path)
    dataset = load_dataset(data)
    result = compute.compute_analysis(model, ckpt, dataset, PARAMS)
    assert list(result.report["metrics"]) == list(catalogue.SCALAR_METRICS)  # report order
    assert result.report["settings"]["definitions"] == catalogue.definitions()
    post = result.posterior
    for name, function in compute.GROUP_FUNCTIONS.items():
        group = function(model, post, dataset)
        assert set(group.metrics) == {m.name for m in catalogue.METRICS if m.group == name}, name
        assert set(group.not_applicable) <= set(group.metrics), name


def test_adding_a_metric_touches_only_the_catalogue_and_its_group(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A new metric: one catalogue row plus its computation in its group, and it is in metrics.json."""
    row = catalogue.Metric("loc_abs_mean", "mean |location|", "latent units", "", "sparsity",
                           "mean over test examples and dimensions of |posterior location|")
    add_to_catalogue(monkeypatch, row)
    sparsity = compute.GROUP_FUNCTIONS["sparsity"]

    def sparsity_with_the_new_metric(model: Any, post: Posterior, dataset: Any) -> Group:
        group = sparsity(model, post, dataset)
        group.metrics["loc_abs_mean"] = float(np.abs(post.loc).mean())
        return group

    data, model, ckpt = labelled_case(tmp_path)
    # without the computation, the analysis refuses to write a catalogue metric it did not compute
    with pytest.raises(RuntimeError, match="loc_abs_mean"):
        run_analysis(monkeypatch, data, tmp_path / "run", model, ckpt)
    monkeypatch.setitem(compute.GROUP_FUNCTIONS, "sparsity", sparsity_with_the_new_metric)
    report = run_analysis(monkeypatch, data, tmp_path / "run", model, ckpt)
    check_layout(report, latent=3)
    assert list(report["metrics"])[-1] == "loc_abs_mean"
    loc = np.load(tmp_path / "run" / "latents.npz")["loc"]
    assert report["metrics"]["loc_abs_mean"] == pytest.approx(float(np.abs(loc.astype(np.float64)).mean()), rel=1e-6)
    assert report["settings"]["definitions"]["loc_abs_mean"] == row.definition


# ---------------------------------------------------------------------------------------------
# Integration with the real model (sparse_vae.model)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prior", "kl"), [("normal", "closed_form"), ("laplace", "monte_carlo"), ("cauchy", "monte_carlo")])
def test_analyze_run_on_a_real_saved_model(tmp_path: Path, prior: str, kl: str) -> None:
    from sparse_vae import model as model_module
    from sparse_vae.model_io import save_model

    data, _, _ = synthetic_case(tmp_path, latent=2, n_test=120)
    spec = {
        "dataset": "synthetic", "prior": {"name": prior, "scale": 1.0, "kl": kl, "kl_samples": 1},
        "latent": 2, "seed": 7,
        "model": {"hidden": [16], "decoder": "mlp", "likelihood": "gaussian", "obs_scale": "learned"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3, "checkpoint_every": 1},
    }
    torch.manual_seed(0)
    model = model_module.build_model(spec, 16)
    run_dir = tmp_path / "runs" / "synthetic" / prior / "z2" / "seed7"
    save_model(run_dir / "model.pt", model, spec, {"image_shape": [4, 4]})
    report = analysis.analyze_run(data, run_dir, dict(PARAMS, iwae_samples=30, max_examples=80), threads=1)
    assert read_metrics(run_dir) == report
    check_layout(report, latent=2)  # evaluation KL is closed form even when training used Monte Carlo
    family, posterior = model_module.prior_family_and_posterior(spec["prior"])
    assert report["run"] == {"dataset": "synthetic", "prior": prior, "latent": 2, "seed": 7, "kl_estimator": kl,
                             "posterior": posterior, "prior_family": family, "prior_scale": 1.0}
    m = report["metrics"]
    if posterior == "cauchy":
        assert m["elbo"] is None and "undefined" in report["not_applicable"]["elbo"]
    else:
        assert m["iwae_log_lik"] >= m["elbo"] - 1e-6
    assert m["kl"] >= 0 and m["iwae_samples"] == 30
    assert 0 <= m["mse"] <= 1
    assert m["dims_used_2d"] == m["used_units"]
    if m["used_units"]:  # an untrained model may use no dimension: then the metric is null, with a reason
        assert 0 <= m["template_matched_cos"] <= 1
    else:
        assert m["template_matched_cos"] is None and "no used" in report["not_applicable"]["template_matched_cos"]
    assert len(list((run_dir / "figures").glob("*.png"))) == 9
    latents = np.load(run_dir / "latents.npz")
    assert latents["loc"].shape == (120, 2)
    # the report's side-by-side panels: the first test inputs as images, and the scatter's own points
    panels = np.load(run_dir / "figures" / "panel_arrays.npz")
    dataset = load_dataset(data)
    shown = len(panels["inputs"])
    np.testing.assert_allclose(panels["inputs"].reshape(shown, -1), dataset.x_test[:shown], atol=1e-6)
    assert panels["reconstructions"].shape == panels["inputs"].shape == (shown, 4, 4)
    np.testing.assert_allclose(panels["loc"], latents["loc"], rtol=1e-6)
    assert len(panels["groups"]) == 120 and str(panels["group_name"])


def _rescaled(model: LinearGaussianVAE, dim: int, factor: float) -> LinearGaussianVAE:
    """The same model with latent `dim` multiplied by `factor` (location and scale), the decoder compensating."""
    A, c, s, W = (t.double().numpy().copy() for t in (model.A, model.c, model.s, model.W))
    A[dim] *= factor
    c[dim] *= factor
    s[dim] *= factor
    W[:, dim] /= factor
    return LinearGaussianVAE(W, model.b.numpy(), model.sigma, A, c, s, family=model.family)


@pytest.mark.parametrize("family", ["normal", "cauchy"])
def test_rescaling_one_dimension_leaves_use_and_sparsity_unchanged(tmp_path: Path, family: str) -> None:
    """#12 defect 1: Burda's count (and what it masked) changed when a dim's scale changed; these do not."""
    from sparse_vae.data.io import load_dataset

    path, model, ckpt = synthetic_case(tmp_path)
    model.family = family
    dataset = load_dataset(path)
    scale_free = ("used_units", "dims_used_2d", "frac_near_zero", "hoyer", "kurtosis_mean", "template_matched_cos",
                  "rf_localization", "template_weight_corr")
    base = compute.compute_analysis(model, ckpt, dataset, PARAMS).report["metrics"]
    assert base["used_units"] == 2
    for factor in (10.0, 0.1):
        m = compute.compute_analysis(_rescaled(model, 0, factor), ckpt, dataset, PARAMS).report["metrics"]
        for name in scale_free:
            assert m[name] == pytest.approx(base[name], rel=1e-4, abs=1e-6), (name, factor)
    shrunk = compute.compute_analysis(_rescaled(model, 0, 0.1), ckpt, dataset, PARAMS).report["metrics"]
    assert shrunk["active_units"] == 1  # Burda's absolute threshold loses the shrunk dimension


def test_template_matching_is_one_to_one() -> None:
    """#12 defect 6: one latent dim was credited for several templates / weights."""
    rng = np.random.default_rng(0)
    weights = rng.laplace(size=(500, 2))
    both = weights[:, 0] + weights[:, 1]  # one dim that correlates 0.71 with each weight
    codes = np.column_stack([both, rng.normal(size=500)])
    corr, dims, _ = recovery.template_weight_correlation(codes, weights)
    assert sorted(dims.tolist()) == [0, 1]  # each weight gets its own dim
    assert corr < 0.45  # 0.71 for one weight, ~0 for the other (old best-match: 0.71 for both)
    templates = rng.normal(size=(2, 9))
    directions = np.vstack([templates[0] + templates[1], rng.normal(size=9)])
    value, column = recovery.matched(recovery.abs_cosine_matrix(templates, directions))
    assert sorted(column.tolist()) == [0, 1]
    value, column = recovery.matched(recovery.abs_cosine_matrix(templates, directions[:1]))
    assert sorted(column.tolist()) == [-1, 0] and 0.0 in value  # fewer dims than templates: one scores 0


# ---------------------------------------------------------------------------------------------
# Field fits of linear-decoder columns and the exact log-likelihood (natural-image patches, #13)
# ---------------------------------------------------------------------------------------------
def _gabor(side: int, theta: float, freq: float, x0: float, y0: float, sd: float) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(float)
    u = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    v = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    return np.exp(-u**2 / (2 * sd**2) - v**2 / (2 * (1.5 * sd) ** 2)) * np.cos(2 * np.pi * freq * u)


def _dog(side: int, x0: float, y0: float) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(float)
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    return np.exp(-r2 / (2 * 1.0**2)) - 0.4 * np.exp(-r2 / (2 * 2.5**2))


def natural_linear_case(tmp_path: Path, prior: str) -> tuple[Path, Any, dict, np.ndarray]:
    """A real linear-Gaussian VAE on 12x12 'natural' patches x = W z + noise whose 8 columns are 4 Gabors,
    2 centre-surround fields and 2 white-noise fields; the encoder is the exact posterior mean."""
    model_module = pytest.importorskip("sparse_vae.model")
    side, latent, sigma = 12, 8, 0.1
    rng = np.random.default_rng(13)
    columns = [_gabor(side, t, f, 5.5 + dx, 5.5, 1.6) for t, f, dx in
               [(0.0, 0.2, 0.0), (0.8, 0.25, 1.0), (1.6, 0.15, -1.0), (2.4, 0.2, 0.5)]]
    columns += [_dog(side, 4.0, 6.0), _dog(side, 7.0, 5.0)] + [rng.normal(size=(side, side)) for _ in range(2)]
    W = np.stack([c.ravel() / np.linalg.norm(c) for c in columns], axis=1)  # (144, 8)
    x_test = (rng.normal(size=(300, latent)) @ W.T + sigma * rng.normal(size=(300, side * side))).astype(np.float32)
    path = tmp_path / "natural.npz"
    save_dataset(path, Dataset(x_train=x_test[:50], x_test=x_test, image_shape=(side, side),
                               metadata={"source": "natural", "value_range": "real"}))
    spec = {"dataset": "natural12", "prior": {"name": prior, "family": prior, "posterior": "gaussian", "scale": 1.0,
                                              "kl": "closed_form", "kl_samples": 1},
            "latent": latent, "seed": 2,
            "model": {"hidden": [], "decoder": "linear", "likelihood": "gaussian", "obs_scale": sigma}}
    model = model_module.build_model(spec, side * side)
    precision = W.T @ W / sigma**2 + np.eye(latent)
    with torch.no_grad():
        model.decoder.weight.copy_(torch.as_tensor(W))
        model.decoder.bias.zero_()
        encoder = model.encoder[0] if isinstance(model.encoder, nn.Sequential) else model.encoder
        encoder.weight.zero_()
        encoder.weight[:latent] = torch.as_tensor(np.linalg.solve(precision, W.T / sigma**2))
        encoder.bias.zero_()
        encoder.bias[latent:] = torch.as_tensor(0.5 * np.log(1.0 / np.diag(precision)))
    return path, model, {"spec": spec, "input_dim": side * side}, W


@pytest.mark.parametrize("prior", ["normal", "laplace"])
def test_field_fits_of_used_linear_decoder_columns_on_natural_patches(tmp_path: Path, prior: str) -> None:
    from sparse_vae.data.io import load_dataset

    data, model, ckpt, _ = natural_linear_case(tmp_path, prior)
    result = compute.compute_analysis(model, ckpt, load_dataset(data), PARAMS)
    m, reasons = result.report["metrics"], result.report["not_applicable"]
    assert m["used_units"] == 8 and m["rf_fields_fitted"] == 8
    assert m["rf_gabor_fraction"] == pytest.approx(4 / 8)
    assert m["rf_dog_fraction"] == pytest.approx(2 / 8)
    assert m["rf_unfitted_fraction"] == pytest.approx(2 / 8) and m["rf_extended_fraction"] == 0
    assert 0.15 <= m["rf_gabor_median_freq"] <= 0.25
    assert result.arrays["rf_fits"]["fields"].shape == (8, 12, 12)
    assert m["ais_log_lik"] is not None and result.report["settings"]["ais_n_examples"] == PARAMS["ais_examples"]
    rate = np.asarray(result.report["per_dimension"]["rate"])
    assert m["used_dims"] == int((rate > 0.1).sum()) == m["rf_fields_fitted"]  # the used set the fits read
    if prior == "laplace":  # no closed form: null, with the reason
        assert m["exact_log_lik"] is None and "needs normal" in reasons["exact_log_lik"]
        assert m["iwae_gap_exact"] is None and m["ais_gap_exact"] is None and reasons["ais_gap_exact"]
        return
    x = torch.as_tensor(load_dataset(data).x_test[:PARAMS["max_examples"]], dtype=torch.float64)
    W = model.decoder.weight.detach().double()
    exact = MultivariateNormal(torch.zeros(144, dtype=torch.float64),
                               W @ W.T + 0.01 * torch.eye(144, dtype=torch.float64)).log_prob(x).mean()
    assert m["exact_log_lik"] == pytest.approx(float(exact), abs=1e-6)
    # the encoder is the exact posterior: IWAE is unbiased up to Monte Carlo error, never far above
    assert m["iwae_gap_exact"] == pytest.approx(m["exact_log_lik"] - m["iwae_log_lik"])
    assert -0.05 < m["iwae_gap_exact"] < 0.05
    assert -0.05 < m["ais_gap_exact"] < 0.05  # AIS from the exact posterior: every weight is ~p(x)


def test_field_fits_are_null_off_natural_images_and_field_figure_is_drawn(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data, model, ckpt = synthetic_case(tmp_path)
    report = run_analysis(monkeypatch, data, tmp_path / "synthetic_run", model, ckpt)
    assert report["metrics"]["rf_gabor_fraction"] is None
    assert "linear decoder" in report["not_applicable"]["rf_gabor_fraction"]
    natural, linear, natural_ckpt, _ = natural_linear_case(tmp_path, "normal")
    report = run_analysis(monkeypatch, natural, tmp_path / "natural_run", linear, natural_ckpt)
    check_layout(report, latent=8)
    assert (tmp_path / "natural_run" / "figures" / "field_fits.png").exists()
    assert not (tmp_path / "synthetic_run" / "figures" / "field_fits.png").exists()


def test_a_seed_the_report_does_not_show_gets_its_metrics_without_figures(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: figures only for the representative seed (analysis.figures); the numbers are the same."""
    data, model, ckpt = synthetic_case(tmp_path)
    monkeypatch.setattr(run_io, "_load_model", lambda path: (model, ckpt))
    drawn = analysis.analyze_run(data, tmp_path / "drawn", PARAMS, threads=1)
    bare = analysis.analyze_run(data, tmp_path / "bare", PARAMS, threads=1, figures=False)
    assert any((tmp_path / "drawn" / "figures").iterdir())
    assert (tmp_path / "bare" / "figures").is_dir() and not any((tmp_path / "bare" / "figures").iterdir())
    assert bare["metrics"] == drawn["metrics"]
