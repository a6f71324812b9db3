"""Known-answer controls of the estimators the verdicts read, per posterior family (issue 34).

Synthetic codes whose information is known exactly: y uniform on ``CLASSES`` classes; per latent
dimension d the posterior of example i is ``q(z_d|x_i) = F(loc_id, s)`` with ``loc_id = mu_{y_i,d}
+ tau * e_id`` and e of the same family F (Normal or Cauchy, the study's two posterior families), so
``z_d | y ~ F(mu_y, sd)`` with sd = sqrt(tau^2 + s^2) (Normal) or tau + s (Cauchy: scales add).
Each dimension's class means are a permutation of ``CLASSES`` equally spaced values (the joint code
carries more than one dim); their spacing makes the Normal code carry ``LABEL_INFO`` nats per dim,
and the Cauchy scale is solved so that the Cauchy code carries the same. Exact answers
(``exact_label_information``, ``exact_rate``) by 1-D quadrature over quantiles (scipy), the
Bayes accuracy of the joint code by Monte Carlo with exact densities. A third code, the Normal
draws passed through a Cauchy-quantile map of their CDF (monotone, so every information is
unchanged, and heavy-tailed), checks the sample-based probe on the same draws.

``estimator_controls`` runs each estimator at a small N and at the study's N (``info_examples``)
over repeats and returns one row per estimator, family and N: the exact value, the bias (mean of
estimate - exact; ``bias_low``, ``bias_high``: its 95% t-interval over repeats), the central 95%
range of single errors and the metrics.json keys the estimator computes (``ESTIMATOR_METRICS``).
The families' codes are drawn with common random numbers (the same labels and noise quantiles in
each repeat), so a verdict comparing two families reads the paired interval of their bias difference
(``paired_bias``, ``paired_low``, ``paired_high`` against ``paired_with``), not two intervals added.
``sparse-vae estimator-controls`` writes the rows as a JSON list (``<results>/controls/estimators.json``)
and the retina classifier's control (``center_surround.retina_control``) beside it; the report reads
both and computes nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from sparse_vae.analysis.information import code_information
from sparse_vae.analysis.metrics import NotApplicable, additive_probe, linear_probe
from sparse_vae.errors import SparseVAEError

__all__ = ["CLASSES", "DIMS", "LABEL_INFO", "PAIRED_WITH", "PARAM_KEYS", "ToyCode", "bayes_accuracy", "estimator_controls",
           "exact_label_information", "exact_rate", "heavy_tailed_map", "matched_scale", "toy_code", "write_controls"]

CLASSES, DIMS = 4, 2
#: label information per dim of the toy codes, nats (the size of the study's informative dims).
LABEL_INFO = 0.40
#: share of the code's class-conditional scale that is posterior noise s (the rest is tau, spread of loc).
POSTERIOR_SHARE = 0.5
SMALL_N, REPEATS = 200, 10
#: patch sides of the retina classifier's control bank (the study's unwhitened patches are 8 x 8).
RETINA_SIZES = (8, 12, 16)
#: required params (the analysis config slice) and optional ones with their defaults.
PARAM_KEYS = ("info_draws", "probe_folds", "info_examples")
OPTIONAL = {"n_small": SMALL_N, "repeats": REPEATS, "seed": 0}
_FAMILIES = {"gaussian": stats.norm, "cauchy": stats.cauchy}
#: the code every other family's errors are paired with (the Gaussian posterior family)
PAIRED_WITH = "gaussian"
#: uniforms are kept this far inside (0, 1), where every family's quantile function is finite
_EDGE = np.finfo(float).eps / 2


#: Gauss-Legendre nodes on (0, 1) over the quantiles u of each class-conditional density (error
#: < 1e-6 nats against adaptive quadrature at the toys' scales, 2e-5 for a Cauchy 100x narrower than its
#: class spacing; tests/test_estimator_controls.py).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(4000)
_U, _W = 0.5 * (_NODES + 1.0), 0.5 * _WEIGHTS


def _class_log_densities(family: str, means: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """At the quantile nodes z_c(u) of every class c: log p(z|c) (C, U) and log p(z) (C, U)."""
    dist = _FAMILIES[family]
    z = dist.ppf(_U[None, :], loc=means[:, None], scale=sd)  # (C, U)
    logs = dist.logpdf(z[:, :, None], loc=means[None, None, :], scale=sd)  # (C, U, C')
    own = np.take_along_axis(logs, np.arange(len(means))[:, None, None], axis=2)[..., 0]
    return own, special.logsumexp(logs, axis=2, b=1.0 / len(means))  # the equal-weight mixture p(z)


def exact_label_information(family: str, means: np.ndarray, sd: float) -> float:
    """I(y; z) for y uniform over the means and z | y ~ F(mean_y, sd): mean over classes of
    E[log p(z|y) - log p(z)], each by quadrature over the quantiles u of p(z|y)."""
    own, mixture = _class_log_densities(family, np.asarray(means, dtype=float), sd)
    return float(((own - mixture) @ _W).mean())


def exact_rate(family: str, means: np.ndarray, sd: float, s: float) -> float:
    """I(x; z) of one toy dimension: h(z) - h(z | loc), h(z | loc) that of F(0, s); h(z) = -E log p(z)
    over the class mixture by quadrature (the continuous population of locations: the value an
    estimator on N examples approaches as N grows)."""
    _, mixture = _class_log_densities(family, np.asarray(means, dtype=float), sd)
    return float(-(mixture @ _W).mean() - _FAMILIES[family](scale=s).entropy())


def _spaced(spacing: float) -> np.ndarray:
    return spacing * (np.arange(CLASSES) - (CLASSES - 1) / 2)


def matched_scale(family: str, means: np.ndarray, target: float) -> float:
    """The class-conditional scale at which F(mean_y, scale) carries ``target`` nats about y."""
    log_sd = optimize.brentq(lambda v: exact_label_information(family, means, math.exp(v)) - target,
                             -8.0, 8.0, xtol=1e-12)
    return math.exp(log_sd)


class ToyCode:
    """One family's toy: class means (CLASSES, DIMS), class-conditional scale, the split tau / s."""

    def __init__(self, family: str, spacing: float, sd: float) -> None:
        self.family, self.sd = family, sd
        rng = np.random.default_rng(12345)  # fixed design: the permutation of the means per dim
        self.means = np.stack([rng.permutation(_spaced(spacing)) for _ in range(DIMS)], axis=1)
        if family == "gaussian":
            self.s, self.tau = sd * math.sqrt(POSTERIOR_SHARE), sd * math.sqrt(1 - POSTERIOR_SHARE)
        else:
            self.s, self.tau = sd * POSTERIOR_SHARE, sd * (1 - POSTERIOR_SHARE)

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(labels, loc, scale, one sampled code z ~ q(z|x)) of n examples, classes balanced. The noise is
        the family's quantile function of uniforms, so two families' toys drawn from equal generators
        share labels and quantiles (common random numbers: their estimators' errors pair)."""
        y = rng.permutation(np.arange(n) % CLASSES)
        noise = _FAMILIES[self.family].ppf(np.clip(rng.random((2, n, DIMS)), _EDGE, 1 - _EDGE))
        loc = self.means[y] + self.tau * noise[0]
        return y, loc, np.full((n, DIMS), self.s), loc + self.s * noise[1]


@functools.lru_cache(maxsize=None)
def toy_code(family: str) -> ToyCode:
    """The toy of the module docstring for ``family``: LABEL_INFO nats per dim in both families."""
    spacing = optimize.brentq(lambda a: exact_label_information("gaussian", _spaced(a), 1.0) - LABEL_INFO,
                              1e-3, 20.0, xtol=1e-10)
    sd = 1.0 if family == "gaussian" else matched_scale(family, _spaced(spacing), LABEL_INFO)
    return ToyCode(family, spacing, sd)


def heavy_tailed_map(z: np.ndarray, sd: float) -> np.ndarray:
    """Cauchy quantile of the Normal CDF of z / sd: strictly increasing, heavy-tailed, info-preserving."""
    return stats.cauchy.ppf(np.clip(stats.norm.cdf(np.asarray(z) / sd), 1e-300, 1 - 1e-16))


@functools.lru_cache(maxsize=None)
def bayes_accuracy(toy: ToyCode, draws: int = 200_000, seed: int = 7) -> float:
    """Accuracy of the Bayes classifier of y from the joint code (the most any probe can reach),
    Monte Carlo with exact densities (standard error < 0.0012)."""
    rng = np.random.default_rng(seed)
    y, _, _, z = toy.draw(draws, rng)
    dist = _FAMILIES[toy.family]
    log_p = dist.logpdf(z[:, None, :], loc=toy.means[None], scale=toy.sd).sum(-1)  # (n, C)
    return float(np.mean(np.argmax(log_p, axis=1) == y))


#: the codes each estimator is run on: the two posterior families, and for the sample-based probe
#: also the Normal draws through ``heavy_tailed_map`` (same information, Cauchy-like tails).
CODES = ("gaussian", "cauchy", "gaussian_heavy_tailed")
#: the probes, by the metric each one computes in analysis.compute.
PROBES = {"probe_sampled": linear_probe, "probe_sampled_additive": additive_probe}
#: estimator -> the metrics.json keys it computes (whose verdicts its control gates).
ESTIMATOR_METRICS = {
    "label_info": ("label_info_mean", "label_info_max", "label_info_total", "label_info_top1", "label_info_top2",
                   "label_info_auc"),
    "rate": ("used_dims", "used_dims_001", "used_dims_050", "used_dims_2d"),
    "probe_sampled": ("probe_accuracy_sampled",),
    "probe_sampled_additive": ("probe_accuracy_sampled_additive",),
}


def _one_repeat(family: str, n: int, settings: Mapping[str, Any], rng: np.random.Generator,
                seed: int) -> dict[str, float]:
    """Every estimator's error (estimate - exact) on one draw of n examples of the family's toy."""
    toy = toy_code("gaussian" if family == "gaussian_heavy_tailed" else family)
    y, loc, scale, z = toy.draw(n, rng)
    out = {}
    if family == "gaussian_heavy_tailed":
        z = heavy_tailed_map(z, toy.sd)
    else:
        info = code_information(loc, scale, toy.family, y, int(settings["info_draws"]), seed)
        out["label_info"] = float(info.label_info.mean() - LABEL_INFO)
        out["rate"] = float(info.rate.mean() - exact_rate(toy.family, toy.means[:, 0], toy.sd, toy.s))
    for name, probe in PROBES.items():
        try:
            accuracy, _ = probe(z, y, int(settings["probe_folds"]))
        except NotApplicable as reason:
            raise SparseVAEError(f"estimator controls: the probe does not apply to n = {n} ({reason})") from None
        out[name] = accuracy - bayes_accuracy(toy)
    return out


def _summary(errors: list[float]) -> dict[str, float]:
    """Bias (mean error), its t-interval (95%) over repeats, and the central 95% of single errors."""
    e = np.asarray(errors, dtype=float)
    half = float(stats.t.ppf(0.975, len(e) - 1) * e.std(ddof=1) / math.sqrt(len(e))) if len(e) > 1 else math.nan
    lo, hi = np.percentile(e, [2.5, 97.5])
    return {"bias": float(e.mean()), "bias_low": float(e.mean()) - half, "bias_high": float(e.mean()) + half,
            "sd": float(e.std(ddof=1)) if len(e) > 1 else math.nan, "single_low": float(lo), "single_high": float(hi),
            "repeats": len(e)}


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The controls' settings: the analysis slice (required) and the optional design sizes."""
    if not isinstance(params, Mapping):
        raise SparseVAEError(f"estimator-controls params must be a mapping, got {type(params).__name__}")
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise SparseVAEError(f"estimator-controls params: missing {', '.join(missing)} (expected: "
                             f"{', '.join(PARAM_KEYS)}; optional: {', '.join(OPTIONAL)})")
    settings = {**OPTIONAL, **dict(params)}
    for key, low in (("info_draws", 1), ("probe_folds", 2), ("info_examples", 4 * CLASSES),
                     ("n_small", 4 * CLASSES), ("repeats", 2)):
        if int(settings[key]) < low:
            raise SparseVAEError(f"estimator-controls params: {key} must be >= {low}, got {settings[key]}")
    return settings


def _errors(n: int, settings: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
    """family -> estimator -> its error in each repeat at n. Repeat r of every family draws from the
    same generator seed (common random numbers; the heavy-tailed code maps the Gaussian's very draws)."""
    seed = int(settings["seed"])
    errors: dict[str, dict[str, list[float]]] = {family: {} for family in CODES}
    for r in range(int(settings["repeats"])):
        for family in CODES:
            rng = np.random.default_rng([seed, n, r])
            for name, value in _one_repeat(family, n, settings, rng, seed * 1000 + r).items():
                errors[family].setdefault(name, []).append(value)
    return errors


def estimator_controls(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every estimator's known-answer bias per code family at the small and the study's N: one row
    per (estimator, family, N), each carrying the design it was run on (``_design``) and, for a family
    other than ``PAIRED_WITH``, the paired interval of its bias minus that family's."""
    settings = check_params(params)
    sizes = sorted({int(settings["n_small"]), int(settings["info_examples"])})
    by_size = {n: _errors(n, settings) for n in sizes}
    rows = []
    for family in CODES:
        for n in sizes:
            errors, reference = by_size[n][family], by_size[n][PAIRED_WITH]
            for name, values in errors.items():
                row = {"estimator": name, "metrics": ", ".join(ESTIMATOR_METRICS[name]), "family": family, "n": n,
                       "exact": _exact(name, family), **_summary(values)}
                if family != PAIRED_WITH and name in reference:
                    paired = _summary(np.subtract(values, reference[name]))
                    row |= {"paired_with": PAIRED_WITH, "paired_bias": paired["bias"],
                            "paired_low": paired["bias_low"], "paired_high": paired["bias_high"]}
                rows.append(row | _design(settings))
    return rows


def _exact(estimator: str, family: str) -> float:
    toy = toy_code("gaussian" if family == "gaussian_heavy_tailed" else family)
    if estimator == "label_info":
        return LABEL_INFO
    if estimator == "rate":
        return exact_rate(toy.family, toy.means[:, 0], toy.sd, toy.s)
    return bayes_accuracy(toy)


def _design(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a row was run on, for the report's text."""
    return {"classes": CLASSES, "dims": DIMS, "label_info_per_dim": LABEL_INFO, "info_draws": int(settings["info_draws"]),
            "probe_folds": int(settings["probe_folds"]), "seed": int(settings["seed"]),
            "error": "estimate - exact over repeats; label_info and rate per dim (the mean over the dims, whose exact "
                     "values are equal; a sum over L dims such as label_info_total carries up to L times it); a "
                     "probe's error is its accuracy minus the joint code's Bayes accuracy (<= 0 up to noise); paired_*: "
                     "this family's error minus paired_with's on the same labels and noise quantiles, over repeats"}


def write_controls(params: Mapping[str, Any], out: Path, retina_out: Path | None = None, threads: int = 1) -> None:
    """The ``estimator-controls`` step: the estimators' rows (a JSON list) to ``out`` and, with
    ``retina_out``, the centre-surround classifier's control (``center_surround.retina_control``, at the
    patch sides ``retina_sizes``: detection rate per surround ratio and noise share) to that file."""
    import json

    from sparse_vae.analysis.center_surround import retina_control
    from sparse_vae.analysis.run_io import _thread_limits, jsonable
    from sparse_vae.atomic import write_text

    sizes = params.get("retina_sizes", RETINA_SIZES) if isinstance(params, Mapping) else None
    if not isinstance(sizes, (list, tuple)) or not all(isinstance(v, int) and v >= 5 for v in sizes):
        raise SparseVAEError(f"estimator-controls params: retina_sizes must be a list of patch sides >= 5, got {sizes!r}")
    settings = {k: v for k, v in dict(params).items() if k != "retina_sizes"}
    with _thread_limits(threads):
        rows = estimator_controls(settings)
        retina = {str(size): retina_control(size) for size in sizes} if retina_out else None
    for path, content in ((out, rows), (retina_out, retina)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(jsonable(content), indent=1) + "\n")
    print(f"estimator-controls: {len(rows)} estimator rows -> {out}"
          + (f"; retina control at sides {', '.join(map(str, sizes))} -> {retina_out}" if retina_out else ""))
