"""The sparse-coding baseline: recovers known atoms from sparse mixtures, writes its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparse_vae.baseline import BaselineError, fit_dictionary, run_baseline, standardise
from sparse_vae.cli import main
from sparse_vae.data.io import Dataset, save_dataset

SIDE = 8
# Overcomplete (8 atoms for 6 generators), as in the study: a complete dictionary tends to stall in
# mixtures of two generators.
PARAMS = {"n_atoms": 8, "alpha": 2.0, "batch_size": 64, "max_iter": 5, "seed": 0}


def true_atoms() -> np.ndarray:
    """Six unit-norm localised Gabors at different places and orientations."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    atoms = []
    for k, theta in enumerate(np.linspace(0, np.pi, 6, endpoint=False)):
        x0, y0 = 2.5 + 3 * (k % 2), 2.0 + 1.5 * (k // 2)
        u = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
        v = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
        atom = np.exp(-u ** 2 / 2.0 - v ** 2 / 4.5) * np.cos(2 * np.pi * 0.25 * u)
        atoms.append(atom.ravel() / np.linalg.norm(atom))
    return np.array(atoms)


def sparse_dataset(path: Path, n_train: int = 3000, n_test: int = 300) -> np.ndarray:
    """Patches = Laplace codes (70% exactly zero) times the true atoms + small noise, stored in [0, 1]."""
    rng = np.random.default_rng(0)
    atoms = true_atoms()

    def draw(n: int) -> np.ndarray:
        codes = rng.laplace(size=(n, len(atoms))) * (rng.random((n, len(atoms))) < 0.3)
        return codes @ atoms + 0.01 * rng.normal(size=(n, SIDE * SIDE))

    train, test = draw(n_train), draw(n_test)
    scale = 0.45 / max(np.abs(train).max(), np.abs(test).max())
    save_dataset(path, Dataset(x_train=(0.5 + scale * train).astype(np.float32),
                               x_test=(0.5 + scale * test).astype(np.float32), image_shape=(SIDE, SIDE)))
    return atoms


def test_dictionary_recovers_the_generating_atoms(tmp_path: Path) -> None:
    atoms = sparse_dataset(tmp_path / "d.npz")
    from sparse_vae.data.io import load_dataset

    ds = load_dataset(tmp_path / "d.npz")
    train, _, _, sd = standardise(ds.x_train.astype(float), ds.x_test.astype(float))
    assert train.std() == pytest.approx(1.0) and abs(train.mean()) < 1e-9
    learned = fit_dictionary(train, PARAMS).components_
    similarity = np.abs(atoms @ learned.T)          # both unit norm: |cosine|
    assert similarity.max(axis=1).min() > 0.95     # every true atom has a learned twin


def test_run_baseline_writes_atoms_metrics_and_figure(tmp_path: Path) -> None:
    sparse_dataset(tmp_path / "d.npz")
    out = tmp_path / "out"
    assert main(["baseline", "--data", str(tmp_path / "d.npz"), "--params", json.dumps(PARAMS),
                 "--out-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == PARAMS
    assert metrics["fields"]["n_fields"] == 8 and metrics["fields"]["gabor_fraction"] >= 6 / 8
    assert metrics["test"]["reconstruction_r2"] > 0.9
    assert 0.5 < metrics["test"]["active_atoms_per_patch"] < 4   # 30% of the 6 generators are on
    arrays = np.load(out / "atoms.npz")
    assert arrays["atoms"].shape == (8, SIDE, SIDE) and list(arrays["labels"]).count("gabor") >= 6
    assert (out / "atoms.png").stat().st_size > 1000


@pytest.mark.parametrize("change, match", [({"alpha": 0}, "alpha"), ({"n_atoms": 0}, "n_atoms"),
                                           ({"atoms": 3}, "unknown"), ({"n_atoms": 10_000}, "exceeds")])
def test_bad_settings_are_one_line_errors(change: dict, match: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    sparse_dataset(tmp_path / "d.npz", n_train=200, n_test=20)
    params = {**PARAMS, **change}
    assert main(["baseline", "--data", str(tmp_path / "d.npz"), "--params", json.dumps(params),
                 "--out-dir", str(tmp_path / "out")]) == 1
    assert match in capsys.readouterr().err
    with pytest.raises(BaselineError):
        run_baseline(tmp_path / "d.npz", params, tmp_path / "out")
