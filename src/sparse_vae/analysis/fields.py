"""Receptive fields as the sparse-coding literature measures them: Gabor and centre-surround fits.

A field is a 2-D array (a decoder column or dictionary atom reshaped to the patch). Two models are
fitted by least squares (``scipy.optimize.least_squares``, Levenberg-Marquardt):

* Gabor: ``env(x, y) * (a cos(2 pi f u) + b sin(2 pi f u))`` with a Gaussian envelope
  ``exp(-u^2 / (2 sx^2) - v^2 / (2 sy^2))`` in coordinates (u, v) rotated by ``theta`` about
  (x0, y0); ``theta`` is the direction of the wave vector (the stripes run at theta + 90 deg),
  ``f`` the spatial frequency in cycles per pixel, ``sx`` the envelope sd across the stripes.
* difference of Gaussians (centre-surround): ``a G(r; sc) + b G(r; ss)`` with concentric isotropic
  Gaussians and ``ss > sc`` (ON or OFF centre, with or without a surround).

The amplitudes (a, b) enter linearly and are solved exactly inside the residual (variable
projection), so the nonlinear search sees only shape parameters (sds kept above ``MIN_SD`` by an
exponential map, so the search is unbounded); starts come from the field's
energy (centre, size) and the peak of its zero-padded FFT (orientation, frequency). R^2 is
``1 - SS_res / SS_tot`` with the total about the field's mean.

Classification (``classify``): a field is described by the better of the two fits when that fit
reaches ``R2_THRESHOLD``; a tie within ``TIE_MARGIN`` goes to the DoG, which has two parameters
fewer. A DoG counts only with its centre inside the patch (a distant centre fits a smooth ramp,
not a centre-surround field). A Gabor-described field is *localised* ('gabor') when its envelope
width across the stripes, ``2 sx``, is at most ``LOCALISED_MAX`` of the patch side and the
envelope's central line crosses the patch; otherwise it is 'extended' (a grating or a ramp).
The length along the stripes is not constrained: an edge or line crossing the whole patch is
localised in position. Scale-free: any overall gain of a field leaves every number unchanged.

The DoG here lets the surround take either sign, so 'dog' includes plain blobs. The retina-like
(ganglion-cell) label is a separate rule, in ``analysis.center_surround``: a field is
*centre-surround* when a DoG whose surround has the OPPOSITE sign to the centre (surround volume
0.2-2 x the centre's) describes it (R^2 >= ``R2_THRESHOLD``, centre inside the patch), beats a
single isotropic Gaussian blob (the null) by at least ``TIE_MARGIN`` of R^2, and is at least as good
as the Gabor within ``TIE_MARGIN``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["R2_THRESHOLD", "LOCALISED_MAX", "FieldFit", "fit_gabor", "fit_dog", "fit_field", "classify",
           "envelope_width", "envelope_length", "summarize_fields"]

R2_THRESHOLD = 0.7     # a fit "describes" a field when it explains 70% of its variance
TIE_MARGIN = 0.02      # R^2 difference below which the simpler DoG description is preferred
LOCALISED_MAX = 0.5    # envelope width across the stripes, 2 sx, at most half the patch side
FFT_SIDE = 64          # zero-padded FFT size for the frequency / orientation start
MIN_SD = 0.4           # envelope sds below half a pixel are not resolvable on the pixel grid
MIN_RATIO = 1.1        # DoG surround sd at least 1.1 x the centre sd
MAX_EVALUATIONS = 200  # per Levenberg-Marquardt search
FD_STEP = 1e-7         # relative forward-difference step of the Jacobian
TOLERANCE = 1e-6      # relative change of the cost (and parameters) at which a search stops


@dataclass(frozen=True)
class FieldFit:
    """Both fits of one field. ``gabor``: x0, y0, theta, f, sx, sy, amplitude, phase;
    ``dog``: x0, y0, sc, ss, centre amplitude, surround amplitude."""

    gabor: dict[str, float]
    gabor_r2: float
    dog: dict[str, float]
    dog_r2: float


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return cols.ravel().astype(float), rows.ravel().astype(float)  # x = column, y = row


def _sd(log_excess: np.ndarray) -> np.ndarray:
    """Unconstrained search variable -> an sd of at least MIN_SD (keeps the search unbounded)."""
    return MIN_SD + np.exp(np.clip(log_excess, -30.0, 30.0))


def _ratio(log_excess: np.ndarray) -> np.ndarray:
    """Surround-to-centre sd ratio, kept above MIN_RATIO so the two Gaussians stay distinct."""
    return MIN_RATIO + np.exp(np.clip(log_excess, -30.0, 30.0))


def _gabor_basis(q: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd Gabor for each row of q (K, 6) = (x0, y0, theta, f, log sx, log sy): two (K, D)."""
    x0, y0, theta, f, log_sx, log_sy = (q[:, i:i + 1] for i in range(6))
    dx, dy = x - x0, y - y0
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    env = np.exp(-0.5 * (u / _sd(log_sx)) ** 2 - 0.5 * (v / _sd(log_sy)) ** 2)
    return env * np.cos(2 * np.pi * f * u), env * np.sin(2 * np.pi * f * u)


def _dog_basis(q: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and surround Gaussians for each row of q (K, 4) = (x0, y0, log sc, log ratio)."""
    x0, y0, log_sc, log_ratio = (q[:, i:i + 1] for i in range(4))
    r2 = (x - x0) ** 2 + (y - y0) ** 2
    sc = _sd(log_sc)
    return np.exp(-0.5 * r2 / sc ** 2), np.exp(-0.5 * r2 / (sc * _ratio(log_ratio)) ** 2)


def _project(basis: tuple[np.ndarray, np.ndarray], target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best amplitudes (K, 2) of two basis rows each and the residuals (K, D): 2x2 normal equations."""
    b0, b1 = basis
    g00, g11, g01 = (b0 * b0).sum(1), (b1 * b1).sum(1), (b0 * b1).sum(1)
    r0, r1 = b0 @ target, b1 @ target
    det = g00 * g11 - g01 * g01
    ok = det > 1e-12 * np.maximum(g00 * g11, 1e-300)
    safe = np.where(ok, det, 1.0)
    # Collinear or vanishing pair (e.g. f = 0): the best multiple of the first vector alone.
    a = np.where(ok, (g11 * r0 - g01 * r1) / safe, r0 / np.maximum(g00, 1e-300))
    b = np.where(ok, (g00 * r1 - g01 * r0) / safe, 0.0)
    return np.stack([a, b], 1), a[:, None] * b0 + b[:, None] * b1 - target


def _fit(basis_fn, starts: list[np.ndarray], field: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Best of a few Levenberg-Marquardt searches over the shape parameters: (q, amplitudes, R^2).

    The Jacobian is a forward difference evaluated for all parameters in one vectorised call.
    """
    x, y = _grid(field.shape)
    target = field.ravel().astype(float)
    total = float(((target - target.mean()) ** 2).sum())

    def residual(q: np.ndarray) -> np.ndarray:
        return _project(basis_fn(q[None], x, y), target)[1][0]

    def jacobian(q: np.ndarray) -> np.ndarray:
        step = FD_STEP * np.maximum(1.0, np.abs(q))
        rows = np.vstack([q, q + np.diag(step)])
        values = _project(basis_fn(rows, x, y), target)[1]
        return ((values[1:] - values[0]) / step[:, None]).T

    from scipy.optimize import least_squares  # lazy: ~0.4 s of import, needed only for field fits

    best = None
    for start in starts:
        result = least_squares(residual, start, jac=jacobian, method="lm", x_scale="jac", ftol=TOLERANCE, xtol=TOLERANCE,
                               max_nfev=MAX_EVALUATIONS)
        if best is None or result.cost < best.cost:
            best = result
    coef, res = _project(basis_fn(best.x[None], x, y), target)
    r2 = 1.0 - float(res[0] @ res[0]) / total if total > 0 else 0.0
    return best.x, coef[0], r2


def _energy_start(field: np.ndarray) -> tuple[float, float, float]:
    """Centre (energy-weighted mean position) and size (energy-weighted sd) of a field."""
    x, y = _grid(field.shape)
    energy = field.ravel().astype(float) ** 2
    energy = energy / energy.sum() if energy.sum() > 0 else np.full_like(energy, 1 / energy.size)
    x0, y0 = float(energy @ x), float(energy @ y)
    spread = np.sqrt(0.5 * float(energy @ ((x - x0) ** 2 + (y - y0) ** 2)))
    return x0, y0, max(spread, 1.0)


def _fft_peak(field: np.ndarray) -> tuple[float, float]:
    """(theta, f) of the largest non-DC peak of the zero-padded amplitude spectrum."""
    spectrum = np.abs(np.fft.fft2(field - field.mean(), s=(FFT_SIDE, FFT_SIDE)))
    spectrum[0, 0] = 0.0
    row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    fy, fx = np.fft.fftfreq(FFT_SIDE)[row], np.fft.fftfreq(FFT_SIDE)[col]
    return float(np.arctan2(fy, fx)), float(np.hypot(fy, fx))


def _log_excess(sd: float, floor: float) -> float:
    return float(np.log(max(sd - floor, 1e-3)))


def fit_gabor(field: np.ndarray) -> tuple[dict[str, float], float]:
    """Least-squares 2-D Gabor fit: (parameters, R^2); theta in [0, pi), f >= 0 in cycles per pixel."""
    field = np.asarray(field, dtype=float)
    x0, y0, spread = _energy_start(field)
    theta, f = _fft_peak(field)
    peak_y, peak_x = np.unravel_index(np.argmax(np.abs(field)), field.shape)
    starts = [np.array([x0, y0, theta, f, _log_excess(spread, MIN_SD), _log_excess(spread, MIN_SD)]),
              np.array([peak_x, peak_y, theta, f, _log_excess(1.0, MIN_SD), _log_excess(2.0, MIN_SD)]),
              np.array([peak_x, peak_y, theta, 0.0, _log_excess(1.5, MIN_SD), _log_excess(1.5, MIN_SD)])]
    q, (a, b), r2 = _fit(_gabor_basis, starts, field)
    theta, f = float(q[2]), float(q[3])
    if f < 0:  # cos(-k u) = cos(k u), sin(-k u) = -sin(k u)
        f, b = -f, -b
    # a cos(k u) + b sin(k u) = A cos(k u - phase); theta -> theta - pi flips u, hence the phase's sign.
    amplitude, phase = float(np.hypot(a, b)), float(np.arctan2(b, a))
    if np.mod(theta, 2 * np.pi) >= np.pi:
        phase = -phase
    return {"x0": float(q[0]), "y0": float(q[1]), "theta": float(np.mod(theta, np.pi)), "f": f,
            "sx": float(_sd(q[4])), "sy": float(_sd(q[5])), "amplitude": amplitude, "phase": phase}, r2


def fit_dog(field: np.ndarray) -> tuple[dict[str, float], float]:
    """Least-squares concentric difference of Gaussians: (parameters, R^2); ss > sc."""
    field = np.asarray(field, dtype=float)
    peak_y, peak_x = np.unravel_index(np.argmax(np.abs(field)), field.shape)
    x0, y0, spread = _energy_start(field)
    starts = [np.array([peak_x, peak_y, _log_excess(1.0, MIN_SD), _log_excess(2.5, MIN_RATIO)]),
              np.array([x0, y0, _log_excess(spread, MIN_SD), _log_excess(2.0, MIN_RATIO)])]
    q, (centre, surround), r2 = _fit(_dog_basis, starts, field)
    return {"x0": float(q[0]), "y0": float(q[1]), "sc": float(_sd(q[2])), "ss": float(_sd(q[2]) * _ratio(q[3])),
            "centre": float(centre), "surround": float(surround)}, r2


def fit_field(field: np.ndarray) -> FieldFit:
    """Both fits of one field."""
    gabor, gabor_r2 = fit_gabor(field)
    dog, dog_r2 = fit_dog(field)
    return FieldFit(gabor, gabor_r2, dog, dog_r2)


def envelope_width(fit: FieldFit, side: int) -> float:
    """Gabor envelope width across the stripes, 2 sx, relative to the patch side."""
    return 2.0 * fit.gabor["sx"] / side


def envelope_length(fit: FieldFit, side: int) -> float:
    """Gabor envelope length along the stripes, 2 sy, relative to the patch side."""
    return 2.0 * fit.gabor["sy"] / side


def _crosses_patch(fit: FieldFit, shape: tuple[int, int]) -> bool:
    """Whether the Gabor envelope's central line (u = 0) passes within the patch."""
    g = fit.gabor
    cx, cy = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    u = (cx - g["x0"]) * np.cos(g["theta"]) + (cy - g["y0"]) * np.sin(g["theta"])
    return abs(u) <= max(shape) / 2


def classify(fit: FieldFit, shape: tuple[int, int], threshold: float = R2_THRESHOLD) -> str:
    """'gabor' (localised oriented), 'extended' (grating or ramp), 'dog' (centre-surround) or 'none'."""
    dog_inside = 0 <= fit.dog["x0"] <= shape[1] - 1 and 0 <= fit.dog["y0"] <= shape[0] - 1
    dog_ok = fit.dog_r2 >= threshold and dog_inside
    if dog_ok and fit.dog_r2 >= fit.gabor_r2 - TIE_MARGIN:
        return "dog"
    if fit.gabor_r2 < threshold:
        return "none"
    localised = envelope_width(fit, max(shape)) <= LOCALISED_MAX and _crosses_patch(fit, shape)
    return "gabor" if localised else "extended"


def summarize_fields(fields: np.ndarray, threshold: float = R2_THRESHOLD) -> dict:
    """Fit every field (N, H, W) and summarise: fractions per class and per R^2 threshold, and the
    orientation (deg, wave-vector direction in [0, 180)), frequency (cycles/pixel) and envelope
    width and length (relative to the side) of the localised Gabor-like ones. ``per_field`` holds
    every fit (with its label) for figures."""
    fields = np.asarray(fields, dtype=float)
    if fields.ndim != 3 or len(fields) == 0:
        raise ValueError(f"fields must be a non-empty (N, H, W) array, got shape {fields.shape}")
    shape = fields.shape[1:]
    fits = [fit_field(field) for field in fields]
    labels = [classify(fit, shape, threshold) for fit in fits]
    gabor = [fit for fit, label in zip(fits, labels) if label == "gabor"]
    n = len(fits)

    def fraction(label: str) -> float:
        return labels.count(label) / n

    return {
        "threshold": threshold,
        "n_fields": n,
        "gabor_fraction": fraction("gabor"),
        "dog_fraction": fraction("dog"),
        "extended_fraction": fraction("extended"),
        "unfitted_fraction": fraction("none"),
        "gabor_r2_fraction": float(np.mean([fit.gabor_r2 >= threshold for fit in fits])),
        "dog_r2_fraction": float(np.mean([fit.dog_r2 >= threshold for fit in fits])),
        "gabor_r2_median": float(np.median([fit.gabor_r2 for fit in fits])),
        "dog_r2_median": float(np.median([fit.dog_r2 for fit in fits])),
        "orientations_deg": [float(np.degrees(fit.gabor["theta"])) for fit in gabor],
        "frequencies": [fit.gabor["f"] for fit in gabor],
        "envelope_widths": [envelope_width(fit, max(shape)) for fit in gabor],
        "envelope_lengths": [envelope_length(fit, max(shape)) for fit in gabor],
        "per_field": [{"label": label, "gabor_r2": fit.gabor_r2, "dog_r2": fit.dog_r2,
                       "gabor": fit.gabor, "dog": fit.dog} for fit, label in zip(fits, labels)],
    }
