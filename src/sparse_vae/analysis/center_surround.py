"""Retina-like receptive fields: an opposite-sign centre-surround fit against a blob and a Gabor.

Retinal ganglion cells are centre-surround: a difference of Gaussians whose surround has the
OPPOSITE sign to the centre. ``fields.fit_dog`` lets the surround take either sign (so a plain
blob, or a blob on a wide same-sign pedestal, counts as a DoG there); here the sign is built into
the model so that only a true centre-surround shape can fit:

* centre-surround DoG: ``a [G(r; sc) - w (sc / ss)^2 G(r; ss)]`` with concentric isotropic
  Gaussians ``G(r; s) = exp(-r^2 / (2 s^2))``, ``ss >= MIN_RATIO sc`` and the surround's volume
  relative to the centre's ``w`` in ``[SURROUND_MIN, SURROUND_MAX]`` (w = 1 is balanced: no response
  to a uniform field, as the whitening filter's point-spread function). One amplitude ``a`` of either
  sign (ON or OFF centre); the surround always has the other sign and at least ``SURROUND_MIN`` of the
  centre's volume, so it is never trivial;
* blob (the null): ``a G(r; s)``, one isotropic Gaussian;
* Gabor: ``fields.fit_gabor``.

Rule (``is_center_surround``): a field is centre-surround when the centre-surround DoG describes it
(R^2 >= ``fields.R2_THRESHOLD``, centre inside the patch), beats the blob null by a stated margin:
it explains at least ``BLOB_MARGIN`` (= ``fields.TIE_MARGIN``, the study's smallest R^2 difference
that counts) more of the field's variance (the two extra parameters fitted to pixel noise gain
~2/D of the noise share: the noisy blobs of ``control_bank`` gain < 0.01), and is at least as
good as the Gabor within ``fields.TIE_MARGIN`` (the DoG has
fewer parameters, as in ``fields.classify``). Sensitivity, measured on constructed fields: on 8x8
patches a surround of less than about half the centre's volume leaves a blob within 0.02 of R^2
and reads as a blob. Scale-free, like the other fits. The fits reuse ``fields``' variable-projection
Levenberg-Marquardt search (``scipy.optimize.least_squares``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparse_vae.analysis.fields import (MIN_RATIO, MIN_SD, R2_THRESHOLD, TIE_MARGIN, _energy_start, _fit,
                                        _log_excess, _ratio, _sd, fit_gabor)

__all__ = ["BLOB_MARGIN", "SURROUND_MAX", "SURROUND_MIN", "CenterSurroundFit", "center_surround_fraction",
           "fit_blob", "fit_center_surround", "fit_opposite_dog", "is_center_surround"]

BLOB_MARGIN = TIE_MARGIN  # the surround must explain 2% more of the field's variance than a blob alone
SURROUND_MIN = 0.2   # surround volume at least a fifth of the centre's (a non-trivial surround)
SURROUND_MAX = 2.0   # and at most twice it (beyond, the field is a wide blob with a bump on it)


@dataclass(frozen=True)
class CenterSurroundFit:
    """The three fits of one field and the rule's answer. ``dog``: x0, y0, sc, ss, w, amplitude."""

    dog: dict[str, float]
    dog_r2: float
    blob_r2: float
    gabor_r2: float
    center_surround: bool


def _weight(logit: np.ndarray) -> np.ndarray:
    """Unconstrained search variable -> surround volume ratio w in [SURROUND_MIN, SURROUND_MAX]."""
    return SURROUND_MIN + (SURROUND_MAX - SURROUND_MIN) / (1.0 + np.exp(-np.clip(logit, -30.0, 30.0)))


def _opposite_basis(q: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One basis row per row of q (K, 5) = (x0, y0, log sc, log ratio, logit w); the second row is
    zero, so ``fields._project`` solves the single amplitude."""
    x0, y0, log_sc, log_ratio, logit_w = (q[:, i:i + 1] for i in range(5))
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    sc = _sd(log_sc)
    ss = sc * _ratio(log_ratio)
    shape = np.exp(-0.5 * r2 / sc ** 2) - _weight(logit_w) * (sc / ss) ** 2 * np.exp(-0.5 * r2 / ss ** 2)
    return shape, np.zeros_like(shape)


def _blob_basis(q: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One isotropic Gaussian per row of q (K, 3) = (x0, y0, log s)."""
    x0, y0, log_s = (q[:, i:i + 1] for i in range(3))
    blob = np.exp(-0.5 * ((x - x0) ** 2 + (y - y0) ** 2) / _sd(log_s) ** 2)
    return blob, np.zeros_like(blob)


def _starts(field: np.ndarray) -> list[tuple[float, float, float]]:
    """(x0, y0, size) starts: the largest |value| and the energy centre."""
    peak_y, peak_x = np.unravel_index(np.argmax(np.abs(field)), field.shape)
    x0, y0, spread = _energy_start(field)
    return [(float(peak_x), float(peak_y), 1.0), (x0, y0, spread)]


def fit_opposite_dog(field: np.ndarray) -> tuple[dict[str, float], float]:
    """Least-squares opposite-sign DoG: (parameters, R^2); the surround's sign is -sign(amplitude)."""
    field = np.asarray(field, dtype=float)
    starts = [np.array([x, y, _log_excess(s, MIN_SD), _log_excess(ratio, MIN_RATIO), logit])
              for x, y, s in _starts(field) for ratio, logit in ((2.0, 0.0), (3.0, 2.0))]
    q, (amplitude, _), r2 = _fit(_opposite_basis, starts, field)
    sc = float(_sd(q[2]))
    return {"x0": float(q[0]), "y0": float(q[1]), "sc": sc, "ss": sc * float(_ratio(q[3])),
            "w": float(_weight(q[4])), "amplitude": float(amplitude)}, r2


def fit_blob(field: np.ndarray) -> tuple[dict[str, float], float]:
    """Least-squares single isotropic Gaussian (the null): (parameters, R^2)."""
    field = np.asarray(field, dtype=float)
    starts = [np.array([x, y, _log_excess(s, MIN_SD)]) for x, y, s in _starts(field)]
    q, (amplitude, _), r2 = _fit(_blob_basis, starts, field)
    return {"x0": float(q[0]), "y0": float(q[1]), "s": float(_sd(q[2])), "amplitude": float(amplitude)}, r2


def is_center_surround(dog: dict[str, float], dog_r2: float, blob_r2: float, gabor_r2: float,
                       shape: tuple[int, int], threshold: float = R2_THRESHOLD) -> bool:
    """The rule of the module docstring, on the three fits' R^2."""
    inside = 0 <= dog["x0"] <= shape[1] - 1 and 0 <= dog["y0"] <= shape[0] - 1
    return bool(dog_r2 >= threshold and inside and dog_r2 >= blob_r2 + BLOB_MARGIN
                and dog_r2 >= gabor_r2 - TIE_MARGIN)


def fit_center_surround(field: np.ndarray, threshold: float = R2_THRESHOLD) -> CenterSurroundFit:
    """All three fits of one 2-D field and whether it is centre-surround."""
    field = np.asarray(field, dtype=float)
    dog, dog_r2 = fit_opposite_dog(field)
    _, blob_r2 = fit_blob(field)
    _, gabor_r2 = fit_gabor(field)
    return CenterSurroundFit(dog, dog_r2, blob_r2, gabor_r2,
                             is_center_surround(dog, dog_r2, blob_r2, gabor_r2, field.shape, threshold))


def center_surround_fraction(fields: np.ndarray, threshold: float = R2_THRESHOLD) -> tuple[float, list]:
    """Fraction of the fields (N, H, W) that are centre-surround, and every field's fits."""
    fields = np.asarray(fields, dtype=float)
    if fields.ndim != 3 or len(fields) == 0:
        raise ValueError(f"fields must be a non-empty (N, H, W) array, got shape {fields.shape}")
    fits = [fit_center_surround(field, threshold) for field in fields]
    return float(np.mean([fit.center_surround for fit in fits])), fits


# -- the control: fields whose answer is known by construction ------------------------------------
def whitening_psf(size: int, f0: float = 0.39) -> np.ndarray:
    """Point-spread function of Olshausen & Field's whitening filter R(f) = f exp(-(f/f0)^4)
    (``data.natural.olshausen_field_filter``) on a size x size patch, centred, unit peak |value|.

    The filter that flattens natural images' 1/f spectrum is centre-surround (R(0) = 0: a balanced
    surround), the classic account of why retinal fields look as they do (Atick & Redlich)."""
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    psf = np.fft.fftshift(np.real(np.fft.ifft2(f * np.exp(-((f / f0) ** 4)))))
    return psf / np.abs(psf).max()


def _gaussian(size: int, x0: float, y0: float, s: float) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    return np.exp(-0.5 * ((cols - x0) ** 2 + (rows - y0) ** 2) / s ** 2)


def control_bank(size: int) -> dict[str, tuple[np.ndarray, bool]]:
    """name -> (field, should be centre-surround): opposite-sign DoGs (ON and OFF, balanced and not,
    off-centre), the whitening filter's PSF, and the negatives: a same-sign blob, a blob on a wide
    same-sign pedestal (what the either-sign DoG counted) and an oriented Gabor; one of each kind with
    fixed pixel noise (sd 0.05 of the DoG's peak, 0.1 of the blob's: the fitted fields are noisy)."""
    noise = np.random.default_rng(0).standard_normal((2, size, size))
    c = (size - 1) / 2

    def dog(x0: float, y0: float, sc: float, ratio: float, w: float) -> np.ndarray:
        ss = sc * ratio
        return _gaussian(size, x0, y0, sc) - w * (sc / ss) ** 2 * _gaussian(size, x0, y0, ss)

    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    u = (cols - c) * np.cos(0.6) + (rows - c) * np.sin(0.6)
    v = -(cols - c) * np.sin(0.6) + (rows - c) * np.cos(0.6)
    envelope = np.exp(-0.5 * (u / (0.15 * size)) ** 2 - 0.5 * (v / (0.3 * size)) ** 2)
    gabor = envelope * np.cos(2 * np.pi * u / (0.5 * size))
    return {
        "DoG ON, balanced": (dog(c, c, 0.12 * size, 2.5, 1.0), True),
        "DoG OFF, balanced": (-dog(c, c, 0.12 * size, 2.5, 1.0), True),
        "DoG ON, surround 0.7 of the centre": (dog(c, c, 0.1 * size, 2.0, 0.7), True),
        "DoG OFF, off-centre": (-dog(c - 0.15 * size, c + 0.1 * size, 0.1 * size, 2.0, 1.0), True),
        "whitening filter PSF": (whitening_psf(size), True),
        "DoG ON, balanced, noisy": (dog(c, c, 0.12 * size, 2.5, 1.0) + 0.05 * noise[0], True),
        "same-sign blob": (_gaussian(size, c, c, 0.15 * size), False),
        "same-sign blob, noisy": (_gaussian(size, c, c, 0.15 * size) + 0.1 * noise[1], False),
        "blob on a same-sign pedestal": (dog(c, c, 0.12 * size, 3.0, -1.0), False),
        "Gabor": (gabor, False),
    }


def control_passes(size: int) -> tuple[bool, dict[str, bool]]:
    """Whether the classifier labels every field of ``control_bank`` as constructed, and its labels."""
    labels = {name: fit_center_surround(field).center_surround for name, (field, _) in control_bank(size).items()}
    return all(labels[name] == expected for name, (_, expected) in control_bank(size).items()), labels
