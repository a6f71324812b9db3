"""The sparse-coding positive control: L1 dictionary learning on the same patches as the VAEs.

scikit-learn's ``MiniBatchDictionaryLearning`` minimises, over unit-norm atoms D and codes u,
``0.5 ||x - u D||^2 + alpha ||u||_1`` per patch (Olshausen & Field's sparse coding with a
Laplace-like cost). If this does not give localised, oriented fields on the study's patches, the
patches cannot test whether a sparse-prior VAE does. The atoms are analysed with the same field
fits as decoder columns (``analysis.fields``).

Patches are first scaled to zero mean and unit variance over all train pixels (global scalars,
no per-pixel or per-patch change), so ``alpha`` is in units of the pixel sd of the data whatever
scale the prepared file stores: it is the residual-to-sparsity trade-off of a unit-variance
signal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.atomic import atomic_open, write_text
from sparse_vae.data.io import load_dataset
from sparse_vae.errors import SparseVAEError

__all__ = ["PARAMS", "standardise", "fit_dictionary", "run_baseline"]

PARAMS = ("n_atoms", "alpha", "batch_size", "max_iter", "seed")
TEST_EXAMPLES = 2000  # test patches coded to measure sparsity and reconstruction


class BaselineError(SparseVAEError):
    """Bad baseline settings."""


def _check(params: dict[str, Any]) -> None:
    missing = [key for key in PARAMS if key not in params]
    unknown = sorted(set(params) - set(PARAMS))
    if missing or unknown:
        raise BaselineError(f"dictionary params: missing {missing}, unknown {unknown} (expected: {', '.join(PARAMS)})")
    for key in ("n_atoms", "batch_size", "max_iter"):
        if not (isinstance(params[key], int) and params[key] >= 1):
            raise BaselineError(f"dictionary: {key} must be an integer >= 1, got {params[key]!r}")
    if not float(params["alpha"]) > 0:
        raise BaselineError(f"dictionary: alpha must be > 0, got {params['alpha']!r}")


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Both splits minus the train mean, over the train sd (global scalars): (train, test, mean, sd)."""
    mean, sd = float(x_train.mean()), float(x_train.std())
    if not sd > 0:
        raise BaselineError("dictionary: the train patches are constant")
    return (x_train - mean) / sd, (x_test - mean) / sd, mean, sd


def fit_dictionary(x: np.ndarray, params: dict[str, Any]) -> Any:
    """The fitted ``MiniBatchDictionaryLearning`` on standardised patches x (N, D).

    Early stopping is off, so ``max_iter`` is the number of passes over the patches (the run
    length is set by the config, not by a noisy running cost).
    """
    import warnings

    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning

    _check(params)
    learner = MiniBatchDictionaryLearning(
        n_components=params["n_atoms"], alpha=float(params["alpha"]), batch_size=params["batch_size"],
        max_iter=params["max_iter"], tol=0.0, max_no_improvement=None,  # exactly max_iter epochs
        random_state=params["seed"], fit_algorithm="cd",
        transform_algorithm="lasso_cd", transform_alpha=float(params["alpha"]),
    )
    with warnings.catch_warnings():  # per-batch lasso solves stop early by design; not news
        warnings.simplefilter("ignore", ConvergenceWarning)
        return learner.fit(x.astype(np.float64))


def code_statistics(learner: Any, x: np.ndarray) -> dict[str, float]:
    """Sparsity and fit of the codes of patches x: mean nonzero atoms per patch, fraction of zero
    coefficients, and the reconstruction R^2 (1 - residual energy / energy)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        codes = learner.transform(x)
    residual = x - codes @ learner.components_
    return {
        "active_atoms_per_patch": float((codes != 0).sum(axis=1).mean()),
        "zero_fraction": float((codes == 0).mean()),
        "reconstruction_r2": float(1.0 - (residual ** 2).sum() / (x ** 2).sum()),
    }


def run_baseline(data: Path, params: dict[str, Any], out_dir: Path, threads: int = 1) -> dict[str, Any]:
    """Fit the dictionary on ``data``'s train patches; write atoms.npz, metrics.json, atoms.png."""
    from threadpoolctl import threadpool_limits

    from sparse_vae.analysis.field_figure import plot_fields
    from sparse_vae.analysis.fields import summarize_fields

    _check(params)
    dataset = load_dataset(data)
    if params["n_atoms"] > len(dataset.x_train):
        raise BaselineError(f"dictionary: n_atoms {params['n_atoms']} exceeds the {len(dataset.x_train)} train patches")
    train, test, mean, sd = standardise(dataset.x_train.astype(np.float64), dataset.x_test.astype(np.float64))
    start = time.process_time()
    with threadpool_limits(limits=threads):
        learner = fit_dictionary(train, params)
        seconds = time.process_time() - start
        test_stats = code_statistics(learner, test[:TEST_EXAMPLES])
    atoms = learner.components_.reshape(-1, *dataset.image_shape)
    summary = summarize_fields(atoms)
    per_field = summary.pop("per_field")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {
        "atoms": atoms.astype(np.float32),
        "labels": np.array([p["label"] for p in per_field]),
        "gabor_r2": np.array([p["gabor_r2"] for p in per_field]),
        "dog_r2": np.array([p["dog_r2"] for p in per_field]),
        **{f"gabor_{k}": np.array([p["gabor"][k] for p in per_field]) for k in per_field[0]["gabor"]},
        **{f"dog_{k}": np.array([p["dog"][k] for p in per_field]) for k in per_field[0]["dog"]},
    }
    with atomic_open(out_dir / "atoms.npz") as fh:
        np.savez(fh, **arrays)
    metrics = {
        "method": "MiniBatchDictionaryLearning (L1 sparse coding)",
        "params": params,
        "data": {"file": str(data), "arrays_sha256": dataset.metadata.get("checksums", {}).get("arrays_sha256"),
                 "standardised": {"mean": mean, "sd": sd}},
        "fit": {"cpu_seconds": seconds, "n_iter": float(learner.n_iter_), "n_steps": int(learner.n_steps_)},
        "test": test_stats,
        "fields": summary,
    }
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    plot_fields(atoms, per_field, out_dir / "atoms.png",
                f"{data.stem}: sparse-coding dictionary ({params['n_atoms']} atoms, alpha {params['alpha']})")
    return metrics
