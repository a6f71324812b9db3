"""Retina-like fields (issue 23): the opposite-sign centre-surround classifier on constructed fields,
the encoder's sensitivity field, its control bank, and the two metrics of a real linear model.

Maths against maths: each field is built with a known shape and the classifier's answer is known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sparse_vae.analysis import center_surround as C
from sparse_vae.analysis.sensitivity import encoder_fields, encoder_sensitivity

torch.set_num_threads(1)

PARAMS = {"iwae_samples": 20, "max_examples": 150, "active_threshold": 0.01, "used_ratio_threshold": 1.0,
          "kl_threshold": 0.01, "sparsity_threshold": 0.1, "probe_folds": 3, "info_examples": 120, "info_draws": 4,
          "at_once_threshold": 0.1, "ais_examples": 0, "ais_steps": 30, "ais_chains": 4, "ais_leapfrog": 3}


def gaussian(side: int, x0: float, y0: float, s: float) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(float)
    return np.exp(-0.5 * ((x - x0) ** 2 + (y - y0) ** 2) / s ** 2)


def dog(side: int, x0: float, y0: float, sc: float = 1.2, ss: float = 3.0, w: float = 1.0) -> np.ndarray:
    """Opposite-sign DoG: surround volume w x the centre's."""
    return gaussian(side, x0, y0, sc) - w * (sc / ss) ** 2 * gaussian(side, x0, y0, ss)


def gabor(side: int, theta: float = 0.7, f: float = 0.2, sx: float = 1.6, sy: float = 3.0) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(float)
    c = (side - 1) / 2
    u = (x - c) * np.cos(theta) + (y - c) * np.sin(theta)
    v = -(x - c) * np.sin(theta) + (y - c) * np.cos(theta)
    return np.exp(-0.5 * (u / sx) ** 2 - 0.5 * (v / sy) ** 2) * np.cos(2 * np.pi * f * u)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("side", [8, 12])
def test_an_opposite_sign_dog_is_center_surround_and_its_parameters_are_recovered(sign: float, side: int) -> None:
    field = sign * dog(side, 3.2, 4.1, sc=1.0, ss=2.5, w=0.9)
    fit = C.fit_center_surround(field)
    assert fit.center_surround and fit.dog_r2 > 0.999
    assert fit.dog["x0"] == pytest.approx(3.2, abs=1e-3) and fit.dog["y0"] == pytest.approx(4.1, abs=1e-3)
    assert fit.dog["sc"] == pytest.approx(1.0, rel=1e-2) and fit.dog["ss"] == pytest.approx(2.5, rel=1e-2)
    assert fit.dog["w"] == pytest.approx(0.9, rel=1e-2) and np.sign(fit.dog["amplitude"]) == sign


@pytest.mark.parametrize("side", [8, 12])
def test_a_same_sign_blob_and_a_gabor_are_not_center_surround(side: int) -> None:
    c = (side - 1) / 2
    blob = C.fit_center_surround(gaussian(side, c, c, 1.5))
    assert not blob.center_surround and blob.blob_r2 > 0.999  # the null describes it as well as the DoG
    pedestal = C.fit_center_surround(dog(side, c, c, w=-1.0))  # surround of the SAME sign
    assert not pedestal.center_surround
    oriented = C.fit_center_surround(gabor(side))
    assert not oriented.center_surround and oriented.gabor_r2 > oriented.dog_r2 + C.TIE_MARGIN


def test_the_rule_needs_the_threshold_a_significant_surround_and_the_gabor_tie() -> None:
    inside = {"x0": 3.0, "y0": 3.0}
    critical = C.surround_f_critical(64)  # F(2, 58) at 0.99: about 5.0
    assert 4.5 < critical < 5.5
    assert C.is_center_surround(inside, 0.90, 0.85, 0.91, (8, 8))  # F = 14.5, within the Gabor tie
    assert not C.is_center_surround(inside, 0.90, 0.89, 0.80, (8, 8))  # F = 2.9: what noise would gain
    assert C.is_center_surround(inside, 0.999, 0.995, 0.5, (8, 8))  # a weak surround on a clean field
    assert C.surround_f(0.999, 0.995, 64) == pytest.approx((0.004 / 2) / (0.001 / 58))
    assert not C.is_center_surround(inside, 0.90, 0.50, 0.95, (8, 8))  # Gabor better beyond the tie
    assert not C.is_center_surround(inside, 0.65, 0.30, 0.30, (8, 8))  # below R2_THRESHOLD
    assert not C.is_center_surround({"x0": -2.0, "y0": 3.0}, 0.95, 0.5, 0.5, (8, 8))  # centre off the patch


@pytest.mark.parametrize("w", [0.3, 0.5])
def test_a_weak_surround_is_detected_on_a_clean_field_and_not_in_heavy_noise(w: float) -> None:
    """Issue 34: surrounds of 0.3-0.5 of the centre were read as blobs; the control says what noise hides."""
    field = dog(8, 3.5, 3.4, sc=0.8, ss=1.6, w=w)
    assert C.fit_center_surround(field).center_surround
    assert C.detection_rate(8, 0.0, (w,)) == 1.0
    assert C.detection_rate(8, 0.3, (w,)) == 0.0  # 30% pixel noise: the floor the flag reports
    assert C.detection_rate(8, 0.3, (w,)) <= C.detection_rate(8, 0.1, (w,)) <= C.detection_rate(8, 0.0, (w,))


def test_the_retina_control_reports_detection_per_ratio_and_no_false_positives() -> None:
    result = C.retina_control(8)
    assert result["bank_passes"] and result["surround_ratios"] == list(C.SURROUND_RATIOS)
    assert all(rate == 1.0 for rate in result["detection_rate"]["0"].values())
    assert result["detection_rate"]["0.1"]["1"] == 1.0 and result["detection_rate"]["0.3"]["0.3"] == 0.0
    assert all(v == 0.0 for level in result["false_positive"].values() for v in level.values())


def test_fits_are_scale_free() -> None:
    field = -dog(8, 3.5, 3.5, sc=0.9, ss=2.2)
    a, b = C.fit_center_surround(field), C.fit_center_surround(250.0 * field)
    assert a.dog_r2 == pytest.approx(b.dog_r2, abs=1e-9) and a.blob_r2 == pytest.approx(b.blob_r2, abs=1e-9)
    assert a.center_surround == b.center_surround


@pytest.mark.parametrize("side", [8, 12, 16])
def test_the_retina_control_passes_on_the_constructed_bank(side: int) -> None:
    passed, labels = C.control_passes(side)
    bank = C.control_bank(side)
    assert passed and labels == {name: expected for name, (_, expected) in bank.items()}
    assert labels["whitening filter PSF"] and not labels["same-sign blob"] and not labels["Gabor"]


def test_the_whitening_psf_is_balanced_and_centre_surround() -> None:
    psf = C.whitening_psf(8)
    assert abs(psf.sum()) < 1e-9  # R(0) = 0: no response to a uniform patch
    assert psf[4, 4] == pytest.approx(1.0) and psf.min() < 0  # positive centre, negative surround


def test_center_surround_fraction_counts_and_rejects_bad_shapes() -> None:
    fields = np.stack([dog(8, 3.5, 3.5), -dog(8, 4.0, 3.0), gaussian(8, 3.5, 3.5, 1.5), gabor(8)])
    fraction, fits = C.center_surround_fraction(fields)
    assert fraction == 0.5 and [f.center_surround for f in fits] == [True, True, False, False]
    with pytest.raises(ValueError):
        C.center_surround_fraction(np.zeros((8, 8)))


# -- the encoder's sensitivity field --------------------------------------------------------------
def _model(hidden: list[int], side: int = 4, latent: int = 3):
    model_module = pytest.importorskip("sparse_vae.model")
    spec = {"dataset": "natural", "prior": {"name": "laplace", "family": "laplace", "posterior": "gaussian",
                                            "scale": 1.0, "kl": "closed_form", "kl_samples": 1},
            "latent": latent, "seed": 0,
            "model": {"hidden": hidden, "decoder": "mlp" if hidden else "linear", "likelihood": "gaussian",
                      "obs_scale": "learned"}}
    torch.manual_seed(0)
    return model_module.build_model(spec, side * side)


def test_a_linear_encoders_sensitivity_field_is_its_weight_row() -> None:
    model = _model([])
    x = np.random.default_rng(0).random((300, 16)).astype(np.float32)
    weight = model.encoder[0].weight.detach().double().numpy()
    np.testing.assert_allclose(encoder_sensitivity(model, x), weight[:3], atol=1e-6)
    np.testing.assert_allclose(encoder_sensitivity(model, x, np.array([2, 0])), weight[[2, 0]], atol=1e-6)


def test_an_mlp_encoders_sensitivity_is_the_input_averaged_jacobian() -> None:
    model = _model([8])
    x = torch.as_tensor(np.random.default_rng(1).random((50, 16)).astype(np.float32))
    jacobians = torch.func.vmap(torch.func.jacrev(lambda xi: model.posterior(xi[None]).loc[0]))(x)  # (N, L, D)
    np.testing.assert_allclose(encoder_sensitivity(model, x.numpy()), jacobians.mean(0).detach().double().numpy(), atol=1e-6)


def test_a_linear_encoders_principal_gradient_field_is_its_weight_row() -> None:
    model = _model([])
    x = np.random.default_rng(0).random((300, 16)).astype(np.float32)
    weight = model.encoder[0].weight.detach().double().numpy()
    np.testing.assert_allclose(encoder_fields(model, x, np.array([2, 0])), weight[[2, 0]], atol=1e-5)


class _SignFlipping:
    """loc_0(x) = (w.x)^2 / 2, loc_1(x) = v.x: unit 0's local filter (w.x) w flips sign with the input."""

    def __init__(self, w: np.ndarray, v: np.ndarray) -> None:
        self.w, self.v = torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(v, dtype=torch.float32)

    def posterior(self, x: torch.Tensor) -> torch.distributions.Normal:
        loc = torch.stack([0.5 * (x @ self.w) ** 2, x @ self.v], dim=1)
        return torch.distributions.Normal(loc, torch.ones_like(loc))


def test_the_principal_gradient_sees_a_filter_that_the_averaged_gradient_cancels() -> None:
    rng = np.random.default_rng(4)
    w, v = rng.standard_normal(16), rng.standard_normal(16)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    x = np.concatenate([x, -x])  # symmetric inputs: E[(w.x) w] = 0 exactly
    model = _SignFlipping(w, v)
    averaged = encoder_sensitivity(model, x)
    principal = encoder_fields(model, x)
    assert np.linalg.norm(averaged[0]) < 1e-4 * np.linalg.norm(w) ** 2
    cosine = abs(principal[0] @ w) / (np.linalg.norm(principal[0]) * np.linalg.norm(w))
    assert cosine > 0.999  # the field is w, scaled to the RMS of (w.x) |w|
    np.testing.assert_allclose(principal[1], v, rtol=1e-4)  # a constant filter is unchanged, sign included


# -- the two metrics of a real model ---------------------------------------------------------------
def _natural_linear(tmp_path: Path, whiten: str | None):
    """A linear VAE on 8x8 patches whose 4 decoder columns are 2 opposite-sign DoGs, a blob and a Gabor."""
    from sparse_vae.data.io import Dataset

    model = _model([], side=8, latent=4)
    columns = [dog(8, 2.0, 2.0, 0.9, 2.0), -dog(8, 5.0, 5.0, 0.9, 2.0), gaussian(8, 5.0, 2.0, 1.2), gabor(8)]
    W = np.stack([c.ravel() / np.linalg.norm(c) for c in columns], axis=1)
    rng = np.random.default_rng(3)
    x = (rng.laplace(size=(400, 4)) @ W.T + 0.05 * rng.normal(size=(400, 64))).astype(np.float32)
    with torch.no_grad():
        model.decoder.weight.copy_(torch.as_tensor(W))
        model.decoder.bias.zero_()
        model.encoder[0].weight.zero_()
        model.encoder[0].weight[:4] = torch.as_tensor(np.linalg.pinv(W))
        model.encoder[0].bias.zero_()
        model.encoder[0].bias[4:] = -3.0  # posterior sd e^-3: every dimension carries information
    meta = {"source": "natural"} if whiten is None else {"source": "natural", "whiten": whiten}
    return model, Dataset(x_train=x[:50], x_test=x, image_shape=(8, 8), metadata=meta)


def test_retina_metrics_of_a_real_linear_model(tmp_path: Path) -> None:
    from sparse_vae.analysis import compute
    model, dataset = _natural_linear(tmp_path, None)
    result = compute.compute_analysis(model, {"spec": {"seed": 1}}, dataset, PARAMS)
    m = result.report["metrics"]
    assert m["used_dims"] == 4
    assert m["rf_center_surround_fraction"] == pytest.approx(2 / 4)
    rows = model.encoder[0].weight.detach().double().numpy()[:4].reshape(4, 8, 8)
    assert m["rf_enc_center_surround_fraction"] == pytest.approx(C.center_surround_fraction(rows)[0])
    assert result.arrays["retina_fits"]["decoder_center_surround"] == [True, True, False, False]
    # clean fields: the floor-effect check finds every constructed surround, so a 0 would mean "not there"
    assert m["rf_cs_detection_rate"] == 1.0 and m["rf_cs_detectable"] == 1 and m["rf_enc_cs_detectable"] in (0, 1)


def test_retina_metrics_are_null_on_whitened_patches(tmp_path: Path) -> None:
    from sparse_vae.analysis import compute
    model, dataset = _natural_linear(tmp_path, "zca")
    result = compute.compute_analysis(model, {"spec": {"seed": 1}}, dataset, PARAMS)
    assert result.report["metrics"]["rf_center_surround_fraction"] is None
    assert "whitening is itself a centre-surround filter" in result.report["not_applicable"]["rf_enc_center_surround_fraction"]
