"""The talk's figures, side by side per prior, from the representative seed of each (dataset, prior,
latent): reconstructions (one row per prior), the 2-D latent scatter (one panel per prior), the true
templates against the decoder's latent directions, the receptive fields with their Gabor / DoG
classes (natural-image datasets), and the information per dimension.

Reconstructions and the latent scatter are redrawn from the arrays analysis saved with each run's
figures (``report.panels``), so every prior shows the same inputs on the same scale; templates and
receptive fields are the runs' own figures (``analysis.figures``) composed at their own pixel size, in
study prior order (and so are the first two for an analysis that saved no arrays, said in the
caption); the information bars are drawn from each run's ``per_dimension`` rate and label information
(metrics.json) on one y scale. Nothing is computed here. Each figure is written as PNG and SVG; file names start with ``talk_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_vae.catalogue import USED_RATE_NATS
from sparse_vae.report.figure_base import FigureInfo, compose, palette, slug
from sparse_vae.report.panels import latent_scatter_panels, load_panels, reconstruction_rows
from sparse_vae.report.runs import Run, Study, number
from sparse_vae.report.tables import order
from sparse_vae.report.verdicts import CONTROL_SOURCES, NATURAL_SOURCES

__all__ = ["TALK_KINDS", "talk_figures"]

#: kind -> (title, caption), in the order the report shows them (``workflow/report/figures.rst``
#: says the same for ``snakemake --report``).
TALK_KINDS: dict[str, tuple[str, str]] = {
    "reconstructions": (
        "Reconstructions", "The first test inputs (top row), then each prior's reconstruction of the same inputs "
        "(its decoded posterior locations), one row per prior in study order; grey scale [0, 1] in every row."),
    "latent_scatter": (
        "2-D latent space", "Posterior locations of the same test examples, coloured by label or, for template "
        "data, by the dominant true template; one panel per prior, left to right in study order, on common "
        "axes (the central 99% of all priors' points) and colours."),
    "templates": (
        "Templates vs latent directions", "True templates (upper row) over each latent dimension's decoded "
        "direction (lower row), with the best |cos| match; one block per prior in study order, side by side "
        "when they fit the page."),
    "receptive_fields": (
        "Receptive fields", "The used decoder fields of each prior, sorted by the class their fit gives (Gabor, "
        "centre-surround DoG, extended, none) with the fitted outline, where the decoder is linear; else "
        "the decoder's receptive fields decode(+s e_j) - decode(-s e_j). One block per prior in study order."),
    "information": (
        "Information per dimension", "Rate I(x; z_d) (bars) and label information I(y; z_d) (dark bars, labelled "
        "data) of each latent dimension of the sampled code, nats, sorted by rate; the same y scale and "
        f"order in every panel; the dotted line is the used threshold, {USED_RATE_NATS:g} nats."),
}
#: the caption of a kind composed from the runs' own figures (an analysis without panel arrays)
_COMPOSED = {
    "reconstructions": "Each prior's run figure (this analysis saved no panel arrays): the first test inputs "
                       "(upper row) over their decoded posterior locations (lower row); one block per prior, "
                       "top to bottom in study order, grey scale [0, 1].",
    "latent_scatter": "Each prior's run figure (this analysis saved no panel arrays): posterior locations of "
                      "the test examples on that run's own axes; one panel per prior in study order.",
}
#: the run figure each composed kind shows, in order of preference.
_RUN_FIGURES = {"reconstructions": ("reconstructions",), "latent_scatter": ("latent_scatter",),
                "templates": ("templates",), "receptive_fields": ("field_fits", "receptive_fields")}
#: widest row of run figures (pixels) drawn side by side; wider ones are stacked, one per prior.
ROW_WIDTH_PX = 1500


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class _Talk:
    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], study: Study, folder: Path):
        self.folder, self.plt = folder, _pyplot()
        self.priors = order(df["prior"], study.priors)
        self.colors = palette(self.priors)
        self.by_key = {run.key: run for run in runs}
        self.rep_seed = study.representative_seed
        self.groups = [(d, int(z)) for d, z in dict.fromkeys(zip(df["dataset"], df["latent"]))
                       if study.sources.get(d) not in CONTROL_SOURCES]
        self.sources = study.sources
        self.df = df
        self.out: list[FigureInfo] = []

    def runs(self, dataset: str, latent: int) -> tuple[int, dict[str, Run | None]]:
        """The representative seed (or the group's first) and each present prior's run of it."""
        sub = self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent)]
        seeds = sorted(set(int(s) for s in sub["seed"]))
        seed = self.rep_seed if self.rep_seed in seeds else seeds[0]
        present = [p for p in self.priors if p in set(sub["prior"])]
        return seed, {p: self.by_key.get((dataset, p, latent, seed)) for p in present}

    def save(self, fig, kind: str, dataset: str, latent: int, seed: int, side_by_side: bool,
             caption: str | None = None) -> None:
        name = f"talk_{kind}_{slug(dataset)}_z{latent}.png"
        fig.savefig(self.folder / name, dpi=100)
        fig.savefig((self.folder / name).with_suffix(".svg"), dpi=100)
        self.plt.close(fig)
        title, caption = TALK_KINDS[kind][0], caption or TALK_KINDS[kind][1]
        note = "" if seed == self.rep_seed else f" (representative seed {self.rep_seed} absent here)"
        self.out.append(FigureInfo(name, f"{title}: {dataset}, latent {latent}, seed {seed}{note}", caption,
                                   kind, dataset, latent, side_by_side))

    def redrawn(self, kind: str, dataset: str, latent: int) -> None:
        """Reconstructions or the latent scatter from the runs' panel arrays, every prior on the same
        inputs and scale; the runs' own figures composed when an analysis saved no arrays."""
        seed, runs = self.runs(dataset, latent)
        panels = load_panels(runs)
        draw = reconstruction_rows if kind == "reconstructions" else latent_scatter_panels
        fig = draw(self.plt, panels, self.colors, f"{dataset}, latent {latent}, seed {seed}") if panels else None
        if fig is not None:
            self.save(fig, kind, dataset, latent, seed, side_by_side=kind != "reconstructions")
        else:
            self.composed(kind, dataset, latent, side_by_side=kind != "reconstructions")

    def composed(self, kind: str, dataset: str, latent: int, side_by_side: bool | None) -> None:
        """Compose the run figures of `kind`: in a row, stacked, or (None) in a row when they fit
        ``ROW_WIDTH_PX``."""
        seed, runs = self.runs(dataset, latent)
        images = {}
        for prior, run in runs.items():
            path = next((run.figure(n) for n in _RUN_FIGURES[kind] if run and run.figure(n).is_file()), None)
            try:
                images[prior] = self.plt.imread(path) if path else None
            except (OSError, ValueError, SyntaxError):
                images[prior] = None
        if all(img is None for img in images.values()):
            return
        if side_by_side is None:
            side_by_side = sum(img.shape[1] if img is not None else 360 for img in images.values()) <= ROW_WIDTH_PX
        fig = compose(self.plt, images, self.colors, side_by_side, f"{dataset}, latent {latent}, seed {seed}")
        caption = _COMPOSED.get(kind)
        self.save(fig, kind, dataset, latent, seed, side_by_side, caption)

    def information(self, dataset: str, latent: int) -> None:
        seed, runs = self.runs(dataset, latent)
        bars = {}
        for prior, run in runs.items():
            rate = _sorted(run.per_dimension.get("rate")) if run else None
            if rate is not None:
                info = run.per_dimension.get("label_info")
                order_ = np.argsort(-np.asarray([number(v) for v in run.per_dimension["rate"]], dtype=float),
                                    kind="stable")
                labels = (np.asarray([number(v) for v in info], dtype=float)[order_]
                          if isinstance(info, list) and len(info) == len(order_) else None)
                bars[prior] = (rate, labels)
        if not bars:
            return
        fig = _information_figure(self.plt, bars, self.colors, f"{dataset}, latent {latent}, seed {seed}")
        self.save(fig, "information", dataset, latent, seed, side_by_side=False)

    def build(self) -> list[FigureInfo]:
        for dataset, latent in self.groups:
            self.redrawn("reconstructions", dataset, latent)
        two_d = sorted((g for g in self.groups if g[1] == 2), key=lambda g: g[0] != "synthetic10")
        for dataset, latent in two_d:
            self.redrawn("latent_scatter", dataset, latent)
        for dataset, latent in self.groups:
            self.composed("templates", dataset, latent, side_by_side=None)
        for dataset, latent in self.groups:
            if self.sources.get(dataset) in NATURAL_SOURCES:
                self.composed("receptive_fields", dataset, latent, side_by_side=None)
        for dataset, latent in self.groups:
            self.information(dataset, latent)
        return self.out


def _sorted(values: Any) -> np.ndarray | None:
    if not isinstance(values, list) or not values:
        return None
    return np.sort(np.asarray([number(v) for v in values], dtype=float))[::-1]


def _information_figure(plt, bars: dict[str, tuple[np.ndarray, np.ndarray | None]], colors: dict[str, str],
                        title: str):
    """One panel per prior, dims sorted by rate, one y scale; label information over the rate."""
    width = max(len(r) for r, _ in bars.values())
    fig, axes = plt.subplots(1, len(bars), figsize=(2.0 + 2.4 * len(bars), 2.8), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (prior, (rate, labels)) in zip(axes[0], bars.items()):
        ranks = np.arange(1, len(rate) + 1)
        ax.bar(ranks, rate, color=colors[prior], width=0.85, alpha=0.55, label="rate")
        if labels is not None:
            ax.bar(ranks, labels, color=colors[prior], width=0.45, label="label information")
        ax.axhline(USED_RATE_NATS, color="#555", lw=0.8, ls=":")
        ax.set_xlim(0.4, width + 0.6)
        ax.set_title(prior, color=colors[prior], fontsize=11, weight="bold")
        ax.set_xlabel("dimension, by rate")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("nats")
    if any(labels is not None for _, labels in bars.values()):
        axes[0][-1].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig


def talk_figures(df: pd.DataFrame, runs: Sequence[Run], study: Study, folder: Path) -> list[FigureInfo]:
    """Every talk figure this study's runs have, into `folder`, in the order the report shows them."""
    folder.mkdir(parents=True, exist_ok=True)
    return _Talk(df, runs, study, folder).build()
