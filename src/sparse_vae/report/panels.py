"""Side-by-side panels redrawn from the arrays analysis saved (``paths.PANEL_ARRAYS``), so that every
prior is shown on the same inputs and the same scale: reconstructions as the shared test inputs once,
then one row per prior; the 2-D latent scatter as one panel per prior on common axis limits and
colours. Nothing is computed here but the drawing (the arrays are the analysis' own figure data).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sparse_vae.report.runs import Run

__all__ = ["latent_scatter_panels", "load_panels", "reconstruction_rows"]

#: share of each axis' points inside the common limits (the run figures' own robust limits: central 99%)
CENTRAL = 0.99
#: tab10 colours for the scatter's groups, the hues the priors' names are drawn in (blue, orange, green) last
GROUP_COLOURS = [4, 5, 6, 7, 8, 9, 3, 0, 1, 2]


def load_panels(runs: Mapping[str, Run | None]) -> dict[str, dict[str, np.ndarray]] | None:
    """Each prior's panel arrays, or None when a run lacks them (an analysis from before they were
    written: the report then composes the runs' own figures)."""
    panels = {}
    for prior, run in runs.items():
        path = run.panel_arrays() if run else None
        if path is None or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            panels[prior] = {name: arrays[name] for name in arrays.files}
    return panels or None


def _plain(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def reconstruction_rows(plt, panels: Mapping[str, Mapping[str, np.ndarray]], colors: Mapping[str, str], title: str):
    """The test inputs (top row) and each prior's reconstructions of them (one row per prior, in
    order), grey scale [0, 1]; None when the priors' inputs differ (then no row is comparable)."""
    inputs = next(iter(panels.values()))["inputs"]
    if any(p["inputs"].shape != inputs.shape or not np.array_equal(p["inputs"], inputs) for p in panels.values()):
        return None
    rows = [("input", "#333", inputs)] + [(prior, colors[prior], p["reconstructions"]) for prior, p in panels.items()]
    n = len(inputs)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.4 + 0.75 * n, 0.45 + 0.75 * len(rows)), squeeze=False,
                             gridspec_kw={"wspace": 0.05, "hspace": 0.08})
    for r, (label, color, images) in enumerate(rows):
        for j in range(n):
            axes[r, j].imshow(images[j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            _plain(axes[r, j])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=11, weight="bold", color=color)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig


def _limits(points: list[np.ndarray]) -> list[tuple[float, float]]:
    """Per axis, the central `CENTRAL` of all priors' points together, padded by 5%."""
    both = np.concatenate(points)
    tail = (1 - CENTRAL) / 2
    out = []
    for values in both.T:
        lo, hi = np.quantile(values[np.isfinite(values)], [tail, 1 - tail])
        pad = 0.05 * (hi - lo) or 0.5
        out.append((float(lo - pad), float(hi + pad)))
    return out


def latent_scatter_panels(plt, panels: Mapping[str, Mapping[str, np.ndarray]], colors: Mapping[str, str],
                          title: str):
    """One panel per prior of the test examples' 2-D posterior locations, on common axis limits, each
    point coloured by its group (label or dominant template) with one legend; None without 2-D codes."""
    if any("loc" not in p for p in panels.values()):
        return None
    from matplotlib.lines import Line2D

    (xlim, ylim) = _limits([p["loc"] for p in panels.values()])
    grouped = all("groups" in p for p in panels.values())
    values = sorted(set().union(*(p["groups"].tolist() for p in panels.values()))) if grouped else []
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(1.6 + 3.0 * len(panels), 3.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for ax, (prior, p) in zip(axes[0], panels.items()):
        codes = np.searchsorted(values, p["groups"]) if grouped else None
        ax.scatter(p["loc"][:, 0], p["loc"][:, 1], s=3, alpha=0.5, linewidths=0,
                   c=cmap(np.take(GROUP_COLOURS, codes % 10)) if grouped else colors[prior])
        ax.set(xlim=xlim, ylim=ylim, xlabel="z0 (posterior location)")
        ax.set_title(prior, color=colors[prior], fontsize=11, weight="bold")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("z1 (posterior location)")
    if grouped:
        name = str(next(iter(panels.values())).get("group_name", "group"))
        handles = [Line2D([], [], ls="", marker="o", ms=4, color=cmap(GROUP_COLOURS[i % 10]), label=v)
                   for i, v in enumerate(values)]
        fig.legend(handles=handles, title=name, loc="outside right center", fontsize=8, title_fontsize=8,
                   frameon=False)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig
