"""One-to-one matching of learned dictionary elements to true ones, and the ICA reference.

Used by the positive control (#12): the data are x = W z + noise with known W, and a model "recovers"
W when its decoder columns, matched one-to-one to W's columns, point the same way (up to sign and
scale, hence |cos|). One-to-one (Hungarian assignment, `scipy.optimize.linear_sum_assignment`) so
that one learned column cannot be credited for several true ones.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import FastICA

__all__ = ["abs_cosine_matrix", "fastica_dictionary", "matched_abs_cosine"]


def abs_cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|cos| between every row of a (K, D) and of b (L, D): (K, L); 0 for a zero row."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dots = np.abs(a @ b.T)
    denom = np.outer(na, nb)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def matched_abs_cosine(truth: np.ndarray, learned: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Match each true element (rows of `truth`, K x D) to a distinct learned one (rows of `learned`,
    L x D, L >= K) maximising the summed |cos|; returns (mean |cos| over the K true elements,
    per-element |cos| (K,), index of the learned element matched to each (K,))."""
    cos = abs_cosine_matrix(truth, learned)
    if cos.shape[1] < cos.shape[0]:
        raise ValueError(f"{cos.shape[1]} learned elements cannot be matched one-to-one to {cos.shape[0]} true ones")
    rows, cols = linear_sum_assignment(cos, maximize=True)
    per_element = cos[rows, cols]
    return float(per_element.mean()), per_element, cols


def fastica_dictionary(x: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """(n_components, D) dictionary estimated by scikit-learn's FastICA: the columns of its mixing
    matrix, the reference for what is recoverable from x alone."""
    ica = FastICA(n_components=n_components, whiten="unit-variance", random_state=seed, max_iter=1000)
    ica.fit(np.asarray(x, dtype=np.float64))
    return ica.mixing_.T
