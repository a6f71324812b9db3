"""Recovery of known structure: matching learned elements (decoder directions, code dimensions,
FastICA's mixing columns) to true ones (templates, weights), one-to-one or best-match.

Pure functions, arrays in, numbers out, unit-tested on known answers (tests/test_analysis.py,
tests/test_control.py). Not here: the other metric maths (``analysis.metrics``), which metric uses
which function and when it does not apply (``analysis.decoder_groups``).
"""

from __future__ import annotations

import warnings

import numpy as np

from sparse_vae.analysis.metrics import NotApplicable

__all__ = [
    "abs_cosine_matrix", "best_abs_cosine", "fastica_dictionary", "matched", "matched_abs_cosine",
    "template_weight_correlation", "template_weight_r2",
]


def _abs_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson r| between every column of a (N, K) and of b (N, M): (K, M); 0 where a column is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    na = np.sqrt((a**2).sum(0))
    nb = np.sqrt((b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ b) / np.outer(na, nb)
    r[~np.isfinite(r)] = 0.0
    return np.clip(np.abs(r), 0.0, 1.0)


def template_weight_correlation(codes: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean over true weights of |Pearson r| with the code dimension matched to it one-to-one
    (Hungarian assignment; a weight left without a dimension scores 0); plus matched dims and r's.

    1 when every true weight is (up to sign and scale) its own latent dimension: the "axis-aligned"
    recovery a sparse prior is hoped to give, which a rotation-invariant normal prior need not.
    """
    best_r, best = matched(_abs_correlation(weights, codes))
    return float(best_r.mean()), best, best_r


def template_weight_r2(codes: np.ndarray, weights: np.ndarray) -> float:
    """R^2 of a linear map codes -> true weights, fit on the first half, scored on the second.

    Unlike the correlation, this allows any linear mixing: it asks whether the weights are linearly
    *present* in the code, not whether they are axis-aligned.
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    codes = np.asarray(codes, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    half = len(codes) // 2
    if half < codes.shape[1] + 2:
        raise NotApplicable(f"{len(codes)} test examples are too few to fit and score {codes.shape[1]} codes")
    regression = LinearRegression().fit(codes[:half], weights[:half])
    return float(r2_score(weights[half:], regression.predict(codes[half:]), multioutput="uniform_average"))


def abs_cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|cos| between every row of a (K, D) and of b (L, D): (K, L); 0 for a zero row."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dots = np.abs(a @ b.T)
    denom = np.outer(na, nb)
    return np.clip(np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0), 0.0, 1.0)


def matched(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one assignment of rows (true elements) to columns (latent dims) maximising the sum.

    Returns each row's matched similarity and column (-1 and similarity 0 for rows left without a
    column when there are fewer columns than rows), so one dimension is never credited twice.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    value, column = np.zeros(similarity.shape[0]), np.full(similarity.shape[0], -1)
    if similarity.shape[1]:
        from scipy.optimize import linear_sum_assignment  # lazy: ~0.4 s of import

        rows, cols = linear_sum_assignment(similarity, maximize=True)
        value[rows], column[rows] = similarity[rows, cols], cols
    return value, column


def matched_abs_cosine(truth: np.ndarray, learned: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Match each true element (rows of `truth`, K x D) to a distinct learned one (rows of `learned`,
    L x D, L >= K) maximising the summed |cos|; returns (mean |cos| over the K true elements,
    per-element |cos| (K,), index of the learned element matched to each (K,))."""
    cos = abs_cosine_matrix(truth, learned)
    if cos.shape[1] < cos.shape[0]:
        raise ValueError(f"{cos.shape[1]} learned elements cannot be matched one-to-one to {cos.shape[0]} true ones")
    per_element, cols = matched(cos)
    return float(per_element.mean()), per_element, cols


def fastica_dictionary(x: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """(n_components, D) dictionary estimated by scikit-learn's FastICA: the columns of its mixing
    matrix, the reference for what is recoverable from x alone."""
    from sklearn.decomposition import FastICA

    ica = FastICA(n_components=n_components, whiten="unit-variance", random_state=seed, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica.fit(np.asarray(x, dtype=np.float64))
    return ica.mixing_.T


def best_abs_cosine(targets: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target row, the best |cosine| with any candidate row, and which one (0 for zero rows)."""
    targets = np.asarray(targets, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64)
    nt = np.linalg.norm(targets, axis=1, keepdims=True)
    nc = np.linalg.norm(candidates, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (targets / nt) @ (candidates / nc).T
    cos[~np.isfinite(cos)] = 0.0
    cos = np.clip(np.abs(cos), 0.0, 1.0)
    best = cos.argmax(axis=1)
    return cos[np.arange(len(best)), best], best
