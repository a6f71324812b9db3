"""The report's side-by-side panels: the same inputs for every prior, one scale, or nothing comparable."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from test_report import make_study  # noqa: E402

from sparse_vae import report  # noqa: E402
from sparse_vae.paths import PANEL_ARRAYS  # noqa: E402
from sparse_vae.report.panels import latent_scatter_panels, load_panels, reconstruction_rows  # noqa: E402

PRIORS = ("normal", "laplace", "cauchy")
COLORS = dict(zip(PRIORS, ("#0072B2", "#E69F00", "#009E73")))


def _panels(seed: int = 0, n: int = 6) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(size=(n, 5, 5)).astype(np.float32)
    scale = {"normal": 1.0, "laplace": 2.0, "cauchy": 8.0}
    return {prior: {"inputs": inputs, "reconstructions": rng.uniform(size=(n, 5, 5)).astype(np.float32),
                    "loc": (scale[prior] * rng.normal(size=(300, 2))).astype(np.float32),
                    "groups": rng.choice(["bar 0", "bar 1"], size=300), "group_name": np.asarray("template")}
            for prior in PRIORS}


def test_reconstructions_show_the_shared_inputs_once_then_a_row_per_prior() -> None:
    panels = _panels()
    fig = reconstruction_rows(plt, panels, COLORS, "synthetic, latent 4")
    axes = np.asarray(fig.axes).reshape(1 + len(PRIORS), 6)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["input", *PRIORS]
    np.testing.assert_array_equal(axes[0, 2].images[0].get_array(), panels["normal"]["inputs"][2])
    np.testing.assert_array_equal(axes[3, 4].images[0].get_array(), panels["cauchy"]["reconstructions"][4])
    assert all(ax.images[0].get_clim() == (0, 1) for ax in axes.ravel())
    plt.close(fig)
    panels["laplace"]["inputs"] = panels["laplace"]["inputs"][::-1].copy()  # other inputs: not comparable
    assert reconstruction_rows(plt, panels, COLORS, "x") is None


def test_latent_scatter_panels_share_axes_that_hold_the_central_points_of_every_prior() -> None:
    panels = _panels()
    fig = latent_scatter_panels(plt, panels, COLORS, "synthetic10, latent 2")
    axes = fig.axes[:len(PRIORS)]
    assert [ax.get_title() for ax in axes] == list(PRIORS)
    assert len({ax.get_xlim() for ax in axes}) == 1 and len({ax.get_ylim() for ax in axes}) == 1
    lo, hi = axes[0].get_xlim()
    every = np.concatenate([p["loc"][:, 0] for p in panels.values()])
    assert 0.985 <= np.mean((every >= lo) & (every <= hi)) <= 1.0
    assert lo < np.quantile(panels["normal"]["loc"][:, 0], 0.01) and hi > 3 * panels["normal"]["loc"][:, 0].max()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["bar 0", "bar 1"]
    plt.close(fig)
    for p in panels.values():
        del p["loc"]
    assert latent_scatter_panels(plt, panels, COLORS, "x") is None


def test_load_panels_needs_every_priors_arrays(tmp_path: Path) -> None:
    runs = {}
    for prior, arrays in _panels().items():
        folder = tmp_path / prior
        (folder / "figures").mkdir(parents=True)
        np.savez_compressed(folder / "figures" / PANEL_ARRAYS, **arrays)
        runs[prior] = SimpleNamespace(panel_arrays=lambda f=folder: f / "figures" / PANEL_ARRAYS)
    loaded = load_panels(runs)
    assert list(loaded) == list(PRIORS) and loaded["laplace"]["loc"].shape == (300, 2)
    (tmp_path / "cauchy" / "figures" / PANEL_ARRAYS).unlink()  # an analysis from before the arrays
    assert load_panels(runs) is None
    assert load_panels({**runs, "cauchy": None}) is None


@pytest.mark.parametrize("missing", [False, True])
def test_talk_figures_redraw_from_arrays_and_compose_without_them(tmp_path: Path, missing: bool) -> None:
    """The report's fixture study has run figures; with panel arrays its reconstructions are redrawn
    (the caption says the same inputs), without them composed (the caption says so)."""
    paths, study = make_study(tmp_path / "study", datasets={"synthetic": [4]}, seeds=(1, 2))
    if not missing:
        for run_dir in {Path(p).parent for p in paths}:
            (run_dir / "figures").mkdir(exist_ok=True)
            np.savez_compressed(run_dir / "figures" / PANEL_ARRAYS, **_panels()["normal"])
    result = report.build_report(paths, study, tmp_path / "report")
    recon = [f for f in result["figures"] if f.file.startswith("talk_reconstructions")]
    assert len(recon) == 1
    assert ("this analysis saved no panel arrays" in recon[0].caption) is missing
