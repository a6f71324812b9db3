"""The positive control (#12): on data drawn from x = W z + noise with Laplace z and a known W that is
not pixel-aligned, a Laplace-prior VAE with a linear decoder and the true, fixed noise sd recovers W;
a normal prior (rotation-invariant, so its axes are not identifiable) does not. FastICA shows what
is recoverable from the data alone. Also: the matching function itself."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sparse_vae.data import load_dataset, prepare
from sparse_vae.analysis.recovery import abs_cosine_matrix, fastica_dictionary, matched_abs_cosine
from sparse_vae.model_io import load_model
from sparse_vae.train import train_run

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def test_matching_is_one_to_one_and_ignores_order_sign_and_scale() -> None:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((4, 9))
    learned = np.vstack([-3.0 * truth[2], 0.5 * truth[0], rng.standard_normal(9), 2.0 * truth[3], truth[1]])
    mean, per, index = matched_abs_cosine(truth, learned)
    assert mean == pytest.approx(1.0) and np.allclose(per, 1.0)
    assert list(index) == [1, 4, 0, 3]
    # one learned element copied for every true one: only one true element may claim it
    same = np.vstack([truth[0]] * 4 + [np.zeros(9)])
    mean, per, _ = matched_abs_cosine(truth, same)
    assert per.max() == pytest.approx(1.0) and np.sort(per)[-2] < 0.99
    assert mean == pytest.approx(abs_cosine_matrix(truth, same[:1]).sum() / 4)
    with pytest.raises(ValueError, match="one-to-one"):
        matched_abs_cosine(truth, learned[:3])


def test_matching_equals_brute_force_over_assignments() -> None:
    from itertools import permutations

    rng = np.random.default_rng(1)
    truth, learned = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    cos = abs_cosine_matrix(truth, learned)
    best = max(sum(cos[i, p[i]] for i in range(3)) for p in permutations(range(4), 3))
    assert matched_abs_cosine(truth, learned)[0] == pytest.approx(best / 3)


CONTROL = {"image_size": 4, "n_sources": 6, "atom_norm": 1.0, "noise_std": 0.3, "n_train": 8000,
           "n_test": 500, "seed": 0}


def control_spec(prior: str, seed: int) -> dict:
    """The offline study's control run (its model and training protocol, read from the preset)."""
    entry = yaml.safe_load((REPO / "presets/offline.yaml").read_text())["datasets"]["control"]
    return {"dataset": "control", "latent": 6, "seed": seed,
            "prior": {"name": prior, "family": prior, "posterior": "gaussian", "scale": 1.0,
                      "kl": "closed_form", "kl_samples": 1, "objective": "elbo", "objective_samples": 1},
            "model": entry["model"], "train": entry["train"]}


def test_offline_control_settings_are_the_ones_tested_here() -> None:
    """The study's control entry is this test's setting (bar n_test), so the test speaks for it."""
    entry = yaml.safe_load((REPO / "presets/offline.yaml").read_text())["datasets"]["control"]
    assert entry["source"] == "sparse_linear" and entry["priors"] == ["normal", "laplace"]
    assert {k: v for k, v in entry["prepare"].items() if k != "n_test"} == {
        k: v for k, v in CONTROL.items() if k != "n_test"}
    assert entry["latent_sizes"] == [CONTROL["n_sources"]] and entry["model"]["decoder"] == "linear"
    assert entry["model"]["obs_scale"] == entry["prepare"]["noise_std"]


@pytest.mark.slow
def test_laplace_recovers_the_dictionary_and_normal_does_not(tmp_path: Path) -> None:
    """Measured here (seeds 1-3): laplace 0.92 / 0.98 / 0.83, normal 0.59 / 0.60 / 0.63, FastICA 0.999."""
    prepare("sparse_linear", CONTROL, tmp_path, tmp_path / "control.npz")
    data = load_dataset(tmp_path / "control.npz")
    truth = data.extras["templates"]
    assert matched_abs_cosine(truth, fastica_dictionary(data.x_train, 6))[0] > 0.95
    cos = {}
    for prior in ("laplace", "normal"):
        for seed in (1, 2, 3):
            run_dir = tmp_path / prior / str(seed)
            with contextlib.redirect_stdout(io.StringIO()):
                train_run(tmp_path / "control.npz", control_spec(prior, seed), run_dir, device="cpu")
            model, _ = load_model(run_dir / "model.pt")
            cos[prior, seed] = matched_abs_cosine(truth, model.decoder_dictionary().numpy())[0]
    laplace = [cos["laplace", s] for s in (1, 2, 3)]
    normal = [cos["normal", s] for s in (1, 2, 3)]
    assert min(laplace) >= 0.75, cos
    assert max(normal) < min(laplace), cos
