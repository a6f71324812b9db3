"""The run's figures: one function per figure, each drawing from `FigureData` and the dataset.

Images go through the dataset's display transforms (``analysis.display``: dewhitening for
whitened patches), so every panel is in viewable pixel space; the metrics never use that mapping
except to measure receptive fields. Image grids are drawn as one mosaic per figure, which keeps
the whole set to a few seconds. Not here: the live model, torch seeds, metrics (all in
``figure_data`` and ``compute``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sparse_vae.analysis.display import display_direction, images
from sparse_vae.analysis.field_figure import plot_fields
from sparse_vae.analysis.figure_data import CAUCHY_CLIP, FigureData
from sparse_vae.analysis.information import HEADLINE_THRESHOLD
from sparse_vae.data.io import Dataset
from sparse_vae.paths import PANEL_ARRAYS

__all__ = ["FIGURES", "SCATTER_POINTS", "save_panel_arrays", "write_figures"]

#: test examples in a latent scatter (the first ones: the same examples in every run of a data set)
SCATTER_POINTS = 2000



def _grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    cols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def _tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Images (n, H, W) laid out row-major on a rows x cols grid with 1-pixel NaN gutters.

    One `imshow` of a mosaic instead of an axes per image keeps a 64-panel figure well under a
    second; NaN gutters and empty cells show as the background colour.
    """
    n, h, w = images.shape
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[i]
    return out


def _signed_unit(images: np.ndarray) -> np.ndarray:
    """Each image divided by its own max |value| (zero images stay zero): a per-panel symmetric scale."""
    peak = np.abs(images).reshape(len(images), -1).max(axis=1)
    return images / np.where(peak > 0, peak, 1.0)[:, None, None]


def _show_mosaic(ax: Any, mosaic: np.ndarray, signed: bool) -> Any:
    import matplotlib.pyplot as plt

    # gutters (NaN): grey for a signed map, whose zero is white; white for grey-level images
    cmap = plt.get_cmap("RdBu_r" if signed else "gray").with_extremes(bad="0.7" if signed else "white")
    limits = (-1.0, 1.0) if signed else (0.0, 1.0)
    return ax.imshow(mosaic, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")


def _cell_ticks(ax: Any, size: int, count: int, labels: list[str], axis: str) -> None:
    """Put one tick label at the centre of each mosaic cell along `axis` ("x" or "y")."""
    centres = [i * (size + 1) + (size - 1) / 2 for i in range(count)]
    if axis == "x":
        ax.set_xticks(centres, labels[:count], fontsize=8)
    else:
        ax.set_yticks(centres, labels[:count], fontsize=8)
    ax.tick_params(length=0)


def _robust_limits(values: np.ndarray) -> tuple[float, float]:
    """Axis limits holding the central 99% of the values (Cauchy codes have far outliers)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return float(lo - pad), float(hi + pad)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    """A constrained-layout figure at least 6.5 in wide, so the two-line title fits."""
    return _pyplot().subplots(rows, cols, figsize=(max(6.5, width), height + 0.9), squeeze=False,
                              layout="constrained")


def _mosaic_figure(dataset: Dataset, rows: int, cols: int, cell: float = 0.75) -> tuple[Any, Any]:
    h, w = dataset.image_shape
    fig, axes = _figure(cols * cell + 1.2, rows * cell * (h + 1) / (w + 1) + 0.4)
    return fig, axes[0, 0]


def _finish(fig: Any, data: FigureData, what: str, path: Path) -> None:
    fig.suptitle(f"{data.title}\n{what}", fontsize=10)
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)


def reconstructions(data: FigureData, dataset: Dataset, path: Path) -> None:
    """First test inputs over their decoded posterior locations."""
    h, w = dataset.image_shape
    n = len(data.inputs)
    pairs = np.concatenate([images(dataset, data.inputs), images(dataset, data.reconstructions)])
    fig, ax = _mosaic_figure(dataset, 2, n, cell=0.85)
    _show_mosaic(ax, _tile(pairs, 2, n), signed=False)
    _cell_ticks(ax, h, 2, ["input", "reconstruction"], "y")
    _cell_ticks(ax, w, n, [f"#{i}" for i in range(n)], "x")
    ax.set_xlabel("test example")
    _finish(fig, data, "first test inputs (top) and decoded posterior locations (bottom)", path)


def prior_samples(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Decoded samples of the prior (Cauchy samples clipped, and the clipped fraction said)."""
    note = ""
    if data.prior_clipped is not None:
        note = (f"\nCauchy prior: z clipped to +-{CAUCHY_CLIP:g} prior scales "
                f"({data.prior_clipped:.0%} of coordinates)")
    fig, ax = _mosaic_figure(dataset, 4, 8)
    _show_mosaic(ax, _tile(images(dataset, data.prior_samples), 4, 8), signed=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("32 samples z ~ p(z), decoded")
    _finish(fig, data, f"decoded prior samples{note}", path)


def latent_scatter(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Posterior locations of test examples, coloured by label (or dominant true weight)."""
    from matplotlib.lines import Line2D

    loc, latent = data.loc, data.loc.shape[1]
    shown = np.arange(min(SCATTER_POINTS, len(loc)))
    tab10 = _pyplot().get_cmap("tab10")
    colours, handles = "tab:blue", []
    if data.groups is not None:
        values, codes = np.unique(data.groups[shown], return_inverse=True)
        colours = tab10(codes % 10)
        handles = [Line2D([], [], ls="", marker="o", ms=4, color=tab10(i % 10), label=str(v))
                   for i, v in enumerate(values)]

    def scatter(ax: Any, dx: int, dy: int) -> None:
        ax.scatter(loc[shown, dx], loc[shown, dy], s=3, alpha=0.5, c=colours, linewidths=0)
        ax.set_xlim(*_robust_limits(loc[shown, dx]))
        ax.set_ylim(*_robust_limits(loc[shown, dy]))

    if latent == 1:
        fig, axes = _figure(6.0, 3.5)
        axes[0, 0].hist(loc[shown, 0], bins=60, range=_robust_limits(loc[shown, 0]), color="tab:blue")
        axes[0, 0].set_xlabel("posterior location z0")
        axes[0, 0].set_ylabel("test examples")
        what = "posterior locations of test examples (central 99%)"
    elif latent == 2:
        fig, axes = _figure(6.5, 5.0)
        scatter(axes[0, 0], 0, 1)
        axes[0, 0].set_xlabel("posterior location z0")
        axes[0, 0].set_ylabel("posterior location z1")
        what = "posterior locations of test examples (central 99% of each axis shown)"
    else:
        dims = data.order[:3]  # a 3 x 3 grid: each axes costs ~0.1 s to lay out, in every run
        fig, axes = _figure(2.0 * len(dims) + 1.0, 2.0 * len(dims), len(dims), len(dims))
        _pair_grid(axes, loc[shown], dims, scatter)
        what = f"posterior locations of the {len(dims)} most active dims (diagonal: histograms; central 99%)"
    if handles:
        fig.legend(handles=handles, title=data.group_name, loc="outside right center", fontsize=8,
                   title_fontsize=8, frameon=False)
    _finish(fig, data, what, path)


def _pair_grid(axes: Any, loc: np.ndarray, dims: np.ndarray, scatter: Callable[[Any, int, int], None]) -> None:
    """Histograms on the diagonal, scatter plots off it."""
    k = len(dims)
    for i, di in enumerate(dims):
        for j, dj in enumerate(dims):
            ax = axes[i, j]
            if i == j:
                ax.hist(loc[:, di], bins=40, range=_robust_limits(loc[:, di]), color="tab:gray")
            else:
                scatter(ax, dj, di)
            ax.tick_params(labelsize=7)
            if i == k - 1:
                ax.set_xlabel(f"z{dj}")
            if j == 0:
                ax.set_ylabel(f"z{di}")


def traversals(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Most active dims moved from the median by +- 2.5 sd, the others held at their median."""
    h, w = dataset.image_shape
    dims, steps = data.traversal_dims, data.traversal_steps
    fig, ax = _mosaic_figure(dataset, len(dims), len(steps))
    _show_mosaic(ax, _tile(images(dataset, data.traversal_images), len(dims), len(steps)), signed=False)
    _cell_ticks(ax, h, len(dims), [f"z{d}" for d in dims], "y")
    _cell_ticks(ax, w, len(steps), [f"{s:+.1f}" for s in steps], "x")
    ax.set_xlabel("median + k sd of the dimension's posterior location")
    ax.set_ylabel("latent dimension (most active first)")
    _finish(fig, data, "latent traversals (other dimensions at their median)", path)


def receptive_fields(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Receptive fields in display space, each on its own symmetric scale, most active first."""
    h, w = dataset.image_shape
    shown_dims = data.order[:64]
    rows, cols = _grid_shape(len(shown_dims))
    rf_display = display_direction(dataset, data.rf[shown_dims]).reshape(len(shown_dims), h, w)
    fig, ax = _mosaic_figure(dataset, rows, cols, cell=0.95)
    _show_mosaic(ax, _tile(_signed_unit(rf_display), rows, cols), signed=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for i, d in enumerate(shown_dims):
        r, c = divmod(i, cols)
        ax.text(c * (w + 1), r * (h + 1), f"z{d}" + ("" if data.active[d] else "*"), fontsize=7,
                va="top", ha="left", color="black", bbox={"fc": "white", "alpha": 0.6, "pad": 0.5, "lw": 0})
    ax.set_xlabel(f"* unused dimension (rate <= {HEADLINE_THRESHOLD:g} nats); red +, blue -, each field scaled to its own max |value|")
    _finish(fig, data, "receptive fields decode(+s e_j) - decode(-s e_j), s = sd of z_j (most active first)",
            path)


def kl_per_dim(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Mean KL of each latent dimension over the test set, sorted, with the kl_threshold."""
    latent = len(data.kl_per_dim)
    kl_order = np.argsort(-data.kl_per_dim, kind="stable")
    fig, axes = _figure(min(0.3 * latent, 12.0) + 2, 3.2)
    ax = axes[0, 0]
    ax.bar(np.arange(latent), data.kl_per_dim[kl_order], color="tab:blue")
    ax.axhline(data.kl_threshold, color="tab:red", lw=1, ls="--", label="kl_threshold")
    if latent <= 40:
        ax.set_xticks(np.arange(latent), [f"z{d}" for d in kl_order], rotation=90 if latent > 12 else 0, fontsize=8)
        ax.set_xlabel("latent dimension (sorted by KL)")
    else:  # a label per bar would be unreadable (and slow to lay out)
        ax.set_xlabel(f"rank of the latent dimension by KL (of {latent})")
    ax.set_ylabel("mean KL(q || p), nats")
    ax.legend(fontsize=8)
    _finish(fig, data, "KL per latent dimension, mean over the test set", path)


def information_per_dim(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Rate I(x; z_d) and label information I(y; z_d) of each dimension's sampled code, nats, sorted
    by rate, with the used threshold: which dims carry information, and how much of it is the label."""
    latent = len(data.rate)
    order = np.argsort(-data.rate, kind="stable")
    fig, axes = _figure(min(0.3 * latent, 12.0) + 2, 3.2)
    ax = axes[0, 0]
    ax.bar(np.arange(latent), data.rate[order], color="tab:blue", label="rate I(x; z_d)")
    if data.label_info is not None:
        ax.bar(np.arange(latent), data.label_info[order], color="tab:orange", width=0.5,
               label="label information I(y; z_d)")
    ax.axhline(HEADLINE_THRESHOLD, color="tab:red", lw=1, ls="--", label=f"used: rate > {HEADLINE_THRESHOLD}")
    if latent <= 40:
        ax.set_xticks(np.arange(latent), [f"z{d}" for d in order], rotation=90 if latent > 12 else 0, fontsize=8)
        ax.set_xlabel("latent dimension (sorted by rate)")
    else:
        ax.set_xlabel(f"rank of the latent dimension by rate (of {latent})")
    ax.set_ylabel("nats")
    ax.legend(fontsize=8)
    _finish(fig, data, "information per latent dimension, sampled code z ~ q(z|x)", path)


def templates(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Synthetic data: the true templates over each latent dimension's decoded direction."""
    h, w = dataset.image_shape
    match, latent = data.ground_truth, data.loc.shape[1]
    n_templates = len(match.templates)
    cols = max(n_templates, latent)
    cells = np.zeros((2 * cols, h, w))
    cells[:n_templates] = match.templates.reshape(n_templates, h, w)
    cells[cols:cols + latent] = data.directions.reshape(latent, h, w)
    cells = _signed_unit(cells)
    cells[n_templates:cols] = np.nan
    cells[cols + latent:] = np.nan
    fig, ax = _mosaic_figure(dataset, 2, cols, cell=1.1)
    _show_mosaic(ax, _tile(cells, 2, cols), signed=True)
    _cell_ticks(ax, h, 2, ["true templates", "decoded directions"], "y")
    _cell_ticks(ax, w, cols, [f"t{i} | z{i}" if i < min(n_templates, latent) else (f"t{i}" if i < n_templates
                              else f"z{i}") for i in range(cols)], "x")
    for i in range(latent):
        mark = "" if data.active[i] else "*"
        ax.text(i * (w + 1), (h + 1), f"{mark}|cos| {match.direction_cos[i]:.2f} t{match.direction_template[i]}",
                fontsize=7, va="top", ha="left", bbox={"fc": "white", "alpha": 0.6, "pad": 0.5, "lw": 0})
    ax.set_xlabel("bottom: decode(s e_j) - decode(0), s = sd of z_j; each cell on its own scale; "
                  "* unused dimension", fontsize=8)
    _finish(fig, data, "true templates vs each latent dimension's decoded direction", path)


def weights_vs_latents(data: FigureData, dataset: Dataset, path: Path) -> None:
    """Synthetic data: each true weight against its best-correlated latent code."""
    match = data.ground_truth
    n_templates = len(match.templates)
    shown = np.arange(min(2000, len(data.loc)))
    fig, axes = _figure(2.6 * n_templates, 2.6, 1, n_templates)
    for k, ax in enumerate(axes[0]):
        d = match.weight_best_dim[k]
        ax.scatter(match.weights[shown, k], data.loc[shown, d], s=3, alpha=0.5, linewidths=0)
        ax.set_ylim(*_robust_limits(data.loc[shown, d]))
        ax.set_xlabel(f"true weight w{k}")
        ax.set_ylabel(f"posterior location z{d}")
        ax.set_title(f"|r| = {match.weight_best_r[k]:.2f}", fontsize=9)
    _finish(fig, data, "true template weights vs the best-correlated latent code", path)


def field_fits(data: FigureData, dataset: Dataset, path: Path) -> None:
    """The used decoder columns sorted by their field fit, outlined (as the dictionary baseline's atoms)."""
    plot_fields(data.rf_fits["fields"], data.rf_fits["per_field"], path,
                f"{data.title}: used decoder columns")


#: file name -> figure function, and the FigureData field it needs ("" none; skipped when that is None).
FIGURES: dict[str, tuple[Callable[[FigureData, Dataset, Path], None], str]] = {
    "reconstructions.png": (reconstructions, ""),
    "prior_samples.png": (prior_samples, ""),
    "latent_scatter.png": (latent_scatter, ""),
    "traversals.png": (traversals, ""),
    "receptive_fields.png": (receptive_fields, ""),
    "kl_per_dim.png": (kl_per_dim, ""),
    "information_per_dim.png": (information_per_dim, "rate"),
    "templates.png": (templates, "ground_truth"),
    "weights_vs_latents.png": (weights_vs_latents, "ground_truth"),
    "field_fits.png": (field_fits, "rf_fits"),
}


def save_panel_arrays(data: FigureData, dataset: Dataset, out_dir: Path) -> None:
    """What the report redraws side by side per prior on one scale: the first test inputs and their
    reconstructions as display images (the same inputs in every run of a data set), and for a 2-D
    code the scatter's posterior locations with their colour groups."""
    arrays = {"inputs": images(dataset, data.inputs).astype(np.float32),
              "reconstructions": images(dataset, data.reconstructions).astype(np.float32)}
    if data.loc.shape[1] == 2:
        arrays["loc"] = data.loc[:SCATTER_POINTS].astype(np.float32)
        if data.groups is not None:
            arrays["groups"] = np.asarray(data.groups[:SCATTER_POINTS]).astype(str)
            arrays["group_name"] = np.asarray(data.group_name)
    np.savez_compressed(Path(out_dir) / PANEL_ARRAYS, **arrays)


def write_figures(data: FigureData, dataset: Dataset, out_dir: Path) -> list[str]:
    """Write the run's figures (and `PANEL_ARRAYS`) into `out_dir`; returns the figures' file names."""
    written = []
    for name, (draw, needs) in FIGURES.items():
        if needs and getattr(data, needs) is None:
            continue
        draw(data, dataset, Path(out_dir) / name)
        written.append(name)
    save_panel_arrays(data, dataset, out_dir)
    return written
