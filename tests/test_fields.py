"""Receptive-field fits: known Gabors, DoGs, noise and gratings are recovered and told apart."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_vae.analysis.fields import (LOCALISED_MAX, R2_THRESHOLD, classify, envelope_length, envelope_width,
                                        fit_dog, fit_field, fit_gabor, summarize_fields)

SIDE = 12
Y, X = np.mgrid[0:SIDE, 0:SIDE].astype(float)


def gabor(x0: float, y0: float, theta: float, f: float, sx: float, sy: float, phase: float) -> np.ndarray:
    dx, dy = X - x0, Y - y0
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return np.exp(-u ** 2 / (2 * sx ** 2) - v ** 2 / (2 * sy ** 2)) * np.cos(2 * np.pi * f * u - phase)


def dog(x0: float, y0: float, sc: float, ss: float, balance: float = 0.8) -> np.ndarray:
    r2 = (X - x0) ** 2 + (Y - y0) ** 2
    return np.exp(-r2 / (2 * sc ** 2)) - balance * (sc / ss) ** 2 * np.exp(-r2 / (2 * ss ** 2))


def angle_difference(a: float, b: float) -> float:
    """Distance between two orientations modulo pi."""
    d = np.mod(a - b, np.pi)
    return float(min(d, np.pi - d))


@pytest.mark.parametrize("theta, f, sx, sy, phase", [(0.7, 0.2, 1.8, 3.0, 0.4), (2.5, 0.3, 1.2, 2.0, -1.5),
                                                     (0.1, 0.12, 2.0, 2.5, 3.0)])
def test_gabor_is_recovered(theta: float, f: float, sx: float, sy: float, phase: float) -> None:
    rng = np.random.default_rng(1)
    clean = gabor(5.3, 6.1, theta, f, sx, sy, phase)
    params, r2 = fit_gabor(clean + 0.02 * rng.normal(size=clean.shape))
    assert r2 > 0.95
    assert angle_difference(params["theta"], theta) < np.radians(5)
    assert params["f"] == pytest.approx(f, rel=0.1)
    assert (params["sx"], params["sy"]) == pytest.approx((sx, sy), rel=0.15)
    assert (params["x0"], params["y0"]) == pytest.approx((5.3, 6.1), abs=0.3)
    # The fitted model reproduces the clean field (phase convention included).
    refit = gabor(params["x0"], params["y0"], params["theta"], params["f"], params["sx"], params["sy"],
                  params["phase"]) * params["amplitude"]
    assert np.abs(refit - clean).max() < 0.1


def test_gabor_label_and_localisation() -> None:
    fit = fit_field(gabor(6.0, 5.0, 1.0, 0.25, 1.5, 2.5, 0.0))
    assert classify(fit, (SIDE, SIDE)) == "gabor"
    assert envelope_width(fit, SIDE) == pytest.approx(2 * 1.5 / SIDE, rel=0.05)
    assert envelope_length(fit, SIDE) == pytest.approx(2 * 2.5 / SIDE, rel=0.05)
    assert envelope_width(fit, SIDE) < LOCALISED_MAX


def test_line_across_the_patch_is_localised_but_a_ramp_is_not() -> None:
    """Localisation is across the stripes: a thin line through the whole patch is localised; a
    smooth luminance ramp (a DoG with a far-away centre fits it too) is extended."""
    line = np.exp(-((X - 4.0) * np.cos(0.4) + (Y - 6.0) * np.sin(0.4)) ** 2 / 2.0)
    assert classify(fit_field(line), (SIDE, SIDE)) == "gabor"
    ramp = np.tanh((X - 5.5) / 8.0)
    assert classify(fit_field(ramp), (SIDE, SIDE)) == "extended"


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_dog_is_recovered_and_not_called_gabor(sign: float) -> None:
    """ON and OFF centres: the DoG fit recovers the sds; a Gabor fits worse, so the label is 'dog'."""
    rng = np.random.default_rng(2)
    field = sign * dog(6.0, 5.5, 1.2, 3.0) + 0.01 * rng.normal(size=(SIDE, SIDE))
    params, r2 = fit_dog(field)
    assert r2 > 0.95
    assert (params["sc"], params["ss"]) == pytest.approx((1.2, 3.0), rel=0.15)
    assert (params["x0"], params["y0"]) == pytest.approx((6.0, 5.5), abs=0.2)
    assert np.sign(params["centre"]) == sign and np.sign(params["surround"]) == -sign
    fit = fit_field(field)
    assert fit.dog_r2 > fit.gabor_r2
    assert classify(fit, (SIDE, SIDE)) == "dog"


def test_white_noise_fits_neither() -> None:
    rng = np.random.default_rng(3)
    for _ in range(6):
        fit = fit_field(rng.normal(size=(SIDE, SIDE)))
        assert fit.gabor_r2 < 0.5 and fit.dog_r2 < 0.5
        assert classify(fit, (SIDE, SIDE)) == "none"


def test_full_patch_grating_is_not_localised() -> None:
    grating = np.cos(2 * np.pi * 0.25 * (X * np.cos(0.3) + Y * np.sin(0.3)) + 0.5)
    fit = fit_field(grating)
    assert fit.gabor_r2 > 0.95                   # a Gabor with a huge envelope describes it ...
    assert envelope_width(fit, SIDE) > 1.0       # ... but the envelope exceeds the patch
    assert classify(fit, (SIDE, SIDE)) == "extended"


def test_fits_are_scale_free() -> None:
    field = gabor(5.0, 6.0, 2.0, 0.2, 1.5, 2.0, 1.0) + 0.05 * np.random.default_rng(4).normal(size=(SIDE, SIDE))
    small, large = fit_field(1e-3 * field), fit_field(1e3 * field)
    assert small.gabor_r2 == pytest.approx(large.gabor_r2, abs=1e-6)
    assert small.dog_r2 == pytest.approx(large.dog_r2, abs=1e-6)


def test_summary_counts_each_kind() -> None:
    rng = np.random.default_rng(5)
    thetas = [0.3, 1.2, 2.4]
    fields = [gabor(5.5, 5.5, t, 0.22, 1.6, 2.4, 0.3) for t in thetas]
    fields += [dog(5.0, 6.0, 1.0, 2.5), -dog(6.5, 5.0, 1.4, 3.5)]
    fields += [rng.normal(size=(SIDE, SIDE)) for _ in range(2)]
    fields += [np.cos(2 * np.pi * 0.3 * X)]
    summary = summarize_fields(np.stack(fields))
    assert summary["threshold"] == R2_THRESHOLD and summary["n_fields"] == 8
    assert summary["gabor_fraction"] == 3 / 8 and summary["dog_fraction"] == 2 / 8
    assert summary["unfitted_fraction"] == 2 / 8 and summary["extended_fraction"] == 1 / 8
    assert summary["gabor_r2_fraction"] >= 4 / 8          # Gabors and the grating at least
    assert [p["label"] for p in summary["per_field"]] == ["gabor"] * 3 + ["dog"] * 2 + ["none"] * 2 + ["extended"]
    for measured, true in zip(summary["orientations_deg"], thetas):
        assert angle_difference(np.radians(measured), true) < np.radians(5)
    np.testing.assert_allclose(summary["frequencies"], 0.22, rtol=0.1)
    np.testing.assert_allclose(summary["envelope_widths"], 2 * 1.6 / SIDE, rtol=0.1)


def test_summary_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarize_fields(np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="N, H, W"):
        summarize_fields(np.zeros((4, 16)))
