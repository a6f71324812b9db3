"""The report's figure panels: per dataset and latent size, metrics by prior, the representative
seed's receptive fields side by side (where the talk's figures do not show them), KL-per-dimension
profiles and training curves; then the talk's figures (``talk_figures``).

Which metrics get a panel, and their labels and units, come from ``sparse_vae.catalogue``.
Not here: the run figures themselves (``analysis.figures``), tables, verdicts, HTML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_vae import catalogue
from sparse_vae.report.figure_base import PRIOR_COLORS, FigureInfo, compose, palette, slug
from sparse_vae.report.runs import Run, Study, number
from sparse_vae.report.statistics import t_interval
from sparse_vae.report.tables import order
from sparse_vae.report.talk_figures import talk_figures
from sparse_vae.report.verdicts import NATURAL_SOURCES

__all__ = ["PRIOR_COLORS", "FigureInfo", "make_figures", "panel_metrics", "slug"]

#: field-fit fractions drawn beside the sparse-coding baseline's (catalogue names; the baseline's
#: metrics.json names them without the rf_ prefix).
FIELD_FRACTIONS = ("rf_gabor_fraction", "rf_dog_fraction", "rf_extended_fraction", "rf_unfitted_fraction")
#: widest composite (pixels) that report.html shows unscaled; wider rows of run figures are stacked.
PAGE_WIDTH_PX = 1280


def panel_metrics(runs_df: pd.DataFrame) -> list[str]:
    """The catalogue's panel metrics that have at least one non-null value among these runs."""
    names = [m.name for m in catalogue.METRICS if m.panel and m.name in runs_df.columns]
    return [m for m in names if pd.to_numeric(runs_df[m], errors="coerce").notna().any()]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0)
    return plt, sns


def _save(fig, folder: Path, name: str) -> None:
    fig.savefig(folder / name, dpi=100, bbox_inches="tight")


class _Figures:
    """The figure panels of one report, drawn into `folder`; `out` lists what was written."""

    def __init__(self, df: pd.DataFrame, runs: Sequence[Run], study: Study, folder: Path,
                 baselines: dict[str, dict[str, float]] | None = None):
        self.df, self.runs, self.folder = df, runs, folder
        self.baselines = baselines or {}
        self.confidence = study.confidence
        self.priors = order(df["prior"], study.priors)
        self.colors = palette(self.priors)
        self.groups = list(dict.fromkeys(zip(df["dataset"], df["latent"])))
        self.rep_seed = study.representative_seed
        self.sources = study.sources
        self.by_key = {run.key: run for run in runs}
        self.out: list[FigureInfo] = []
        self.plt, self.sns = _pyplot()
        from matplotlib.ticker import MaxNLocator

        self.MaxNLocator = MaxNLocator

    def add(self, fig, name, title, caption, kind, dataset, latent):
        _save(fig, self.folder, name)
        self.plt.close(fig)
        self.out.append(FigureInfo(name, title, caption, kind, dataset, latent))

    def build(self) -> list[FigureInfo]:
        for dataset, latent in self.groups:
            self.metric_panel(dataset, latent)
            self.field_fractions(dataset, latent)
            if self.sources.get(dataset) not in NATURAL_SOURCES:  # natural images: the talk's field figure
                self.image_tiles(dataset, latent, "receptive_fields")
            self.kl_profiles(dataset, latent)
            self.information_profiles(dataset, latent)
            self.training_curves(dataset, latent)
        return self.out

    def group(self, dataset, latent) -> pd.DataFrame:
        return self.df[(self.df["dataset"] == dataset) & (self.df["latent"] == latent)]

    def metric_panel(self, dataset, latent) -> None:
        sub = self.group(dataset, latent)
        metrics = panel_metrics(sub)
        if not metrics:
            return
        plt, sns = self.plt, self.sns
        ncols = min(3, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
        priors = [p for p in self.priors if p in set(sub["prior"])]
        for ax, metric in zip(axes.flat, metrics):
            data = sub[["prior", "seed", metric]].copy()
            data[metric] = pd.to_numeric(data[metric], errors="coerce")
            data = data.dropna()
            sns.stripplot(data=data, x="prior", y=metric, hue="prior", order=priors, hue_order=priors,
                          palette=self.colors, jitter=0.12, size=6, alpha=0.7, legend=False, ax=ax)
            low, high = catalogue.value_range(metric, int(latent))
            for i, prior in enumerate(priors):
                n, mean, sd, lo, hi = t_interval(data.loc[data["prior"] == prior, metric], self.confidence)
                if n == 0:
                    continue
                lo, hi = max(lo, low), min(hi, high)  # a t-interval can run past what the metric can take
                if not math.isnan(lo):
                    ax.errorbar([i + 0.3], [mean], yerr=[[mean - lo], [hi - mean]], fmt="none",
                                ecolor="black", elinewidth=1.6, capsize=5)
                ax.plot([i + 0.3], [mean], marker="D", color="black", markersize=6)
            ax.set_title(catalogue.label(metric), fontsize=12)
            ax.set_xlabel("prior")
            ax.set_ylabel(catalogue.unit(metric))
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        pct = f"{self.confidence * 100:g}%"
        fig.suptitle(f"{dataset}, latent {latent}: dots = seeds, black diamond = mean with {pct} t-interval",
                     fontsize=13)
        fig.tight_layout()
        name = f"metrics_{slug(dataset)}_z{latent}.png"
        self.add(fig, name, f"Metrics by prior: {dataset}, latent {latent}",
                 f"Each dot is one seed; the black diamond and bar are the mean over seeds and its {pct} "
                 f"Student-t interval (no bar with one seed), clipped to the range the metric can take "
                 f"(e.g. [0, 1] for fractions and Hoyer sparsity, [0, latent size] for unit counts, ≥ 0 for "
                 f"MSE; see the glossary). Metrics that are null for every run "
                 f"here are left out. Units on the y axes.", "metrics", dataset, latent)

    def field_fractions(self, dataset, latent) -> None:
        """Field-fit fractions by prior (dots = seeds, diamond = mean) beside the sparse-coding baseline."""
        sub = self.group(dataset, latent)
        metrics = [m for m in FIELD_FRACTIONS if m in sub.columns]
        if not metrics or pd.to_numeric(sub[metrics[0]], errors="coerce").isna().all():
            return
        base = self.baselines.get(dataset)
        priors = [p for p in self.priors if p in set(sub["prior"])]
        columns = priors + (["sparse coding"] if base else [])
        fig, axes = self.plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 3.8), sharey=True,
                                      squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            for i, prior in enumerate(priors):
                values = pd.to_numeric(sub.loc[sub["prior"] == prior, metric], errors="coerce").dropna()
                ax.scatter(np.full(len(values), i), values, color=self.colors[prior], alpha=0.7, s=30)
                if len(values):
                    ax.plot([i + 0.25], [values.mean()], marker="D", color="black", markersize=6)
            if base:
                ax.bar([len(priors)], [base[metric.removeprefix("rf_")]], color="0.6", width=0.5)
            ax.set_xticks(range(len(columns)), columns, rotation=30)
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(catalogue.label(metric), fontsize=11)
        axes[0][0].set_ylabel("fraction of fields")
        fig.suptitle(f"{dataset}, latent {latent}: shapes of the used decoder columns", fontsize=12)
        fig.tight_layout()
        self.add(fig, f"field_fractions_{slug(dataset)}_z{latent}.png",
                 f"Receptive-field shapes: {dataset}, latent {latent}",
                 "Fraction of each run's used linear-decoder columns that a Gabor fit describes and that are "
                 "localised (Gabor-like), that a difference of Gaussians describes (centre-surround), that a "
                 "Gabor fits but are not localised (extended), or that neither fit describes (R² < 0.7). "
                 "Dots are seeds, black diamonds their mean; the grey bar is the dictionary-learning "
                 "(sparse-coding) baseline on the same patches, all of its atoms.",
                 "field_fractions", dataset, latent)

    def image_tiles(self, dataset, latent, name) -> None:
        plt = self.plt
        sub = self.group(dataset, latent)
        seeds = sorted(set(sub["seed"]))
        seed = self.rep_seed if self.rep_seed in seeds else seeds[0]
        priors = [p for p in self.priors if p in set(sub["prior"])]
        images = {}
        for prior in priors:
            run = self.by_key.get((dataset, prior, latent, seed))
            path = run.figure(name) if run else None
            try:
                images[prior] = plt.imread(path) if path and path.is_file() else None
            except (OSError, ValueError, SyntaxError):
                images[prior] = None
        if all(img is None for img in images.values()):
            return
        label = name.replace("_", " ")
        note = "" if seed == self.rep_seed else f" (representative seed {self.rep_seed} absent here)"
        widths = sum(img.shape[1] if img is not None else 360 for img in images.values()) + 16 * len(images)
        with self.sns.axes_style("white"):
            fig = compose(plt, images, self.colors, widths <= PAGE_WIDTH_PX,
                          f"{dataset}, latent {latent}: {label}, seed {seed}{note}")
        fname = f"{name}_{slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"{label.capitalize()}: {dataset}, latent {latent}, seed {seed}",
                 f"The {label} figure of each prior's run for seed {seed}, copied at its own resolution from "
                 f"the runs' figures/{name}.png (side by side when they fit the page, else one above the "
                 f"other).", name, dataset, latent)

    def _sorted_per_dim(self, dataset, latent, key) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """(prior, per_dimension[key] sorted descending, label_info sorted or None) of every run that has it."""
        def sort(values):
            return np.sort(np.asarray([number(v) for v in values], dtype=float))[::-1] \
                if isinstance(values, list) and values else None
        curves = []
        for _, row in self.group(dataset, latent).iterrows():
            run = self.by_key.get((dataset, row["prior"], latent, int(row["seed"])))
            values = sort(run.per_dimension.get(key)) if run else None
            if values is not None:
                curves.append((row["prior"], values, sort(run.per_dimension.get("label_info")) if key == "rate" else None))
        return curves

    def _profiles(self, curves, ylabel: str, title: str, line: float | None = None) -> Any:
        """One panel per prior, one line per seed (a dashed companion where given)."""
        priors = [p for p in self.priors if any(c[0] == p for c in curves)]
        fig, axes = self.plt.subplots(1, len(priors), figsize=(4.2 * len(priors) + 0.6, 4.0), squeeze=False,
                                      sharey=True)
        width = max(len(c[1]) for c in curves)
        for ax, prior in zip(axes[0], priors):
            mine = [c for c in curves if c[0] == prior]
            for _, values, dashed in mine:
                ranks = np.arange(1, len(values) + 1)
                ax.plot(ranks, values, marker="o", markersize=3.5, lw=1.2, alpha=0.75, color=self.colors[prior])
                if dashed is not None:
                    ax.plot(ranks, dashed, ls="--", lw=1.0, alpha=0.75, color=self.colors[prior])
            if line is not None:
                ax.axhline(line, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{prior} ({len(mine)} seeds)", color=self.colors[prior])
            ax.set_xlabel("dimension rank (each curve sorted)")
            ax.set_xlim(0.5, width + 0.5)
            ax.xaxis.set_major_locator(self.MaxNLocator(integer=True))
        axes[0][0].set_ylabel(ylabel)
        fig.suptitle(title, fontsize=12)
        fig.tight_layout()
        return fig

    def kl_profiles(self, dataset, latent) -> None:
        curves = self._sorted_per_dim(dataset, latent, "kl")
        if not curves:
            return
        fig = self._profiles(curves, "KL(q||p) per dimension (nats/example)",
                             f"{dataset}, latent {latent}: KL per dimension, one line per seed")
        fname = f"kl_per_dim_{slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"KL per dimension: {dataset}, latent {latent}",
                 "Mean KL(q(z|x)||p(z)) of each latent dimension on the test split, sorted from the most "
                 "to the least used; one line per seed. Dimensions near zero are unused.",
                 "kl_per_dim", dataset, latent)

    def information_profiles(self, dataset, latent) -> None:
        """Rate and label information per dimension of the sampled code (runs analysed before issue 22's
        metrics existed have neither and are skipped)."""
        curves = self._sorted_per_dim(dataset, latent, "rate")
        if not curves:
            return
        fig = self._profiles(curves, "nats", f"{dataset}, latent {latent}: rate (solid) and label "
                             "information (dashed) per dimension", line=0.1)
        self.add(fig, f"information_per_dim_{slug(dataset)}_z{latent}.png",
                 f"Information per dimension: {dataset}, latent {latent}",
                 "Rate I(x; z_d) of each latent dimension of the sampled code (solid) and its label information "
                 "I(y; z_d) (dashed, labelled data only), nats, each sorted; one line per seed. The dotted line "
                 f"is the used threshold, {catalogue.USED_RATE_NATS:g} nats.", "information_per_dim", dataset, latent)

    def training_curves(self, dataset, latent) -> None:
        plt = self.plt
        sub = self.group(dataset, latent)
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        tails = []
        for prior in self.priors:
            hists = []
            for seed in sorted(set(sub.loc[sub["prior"] == prior, "seed"])):
                run = self.by_key.get((dataset, prior, latent, int(seed)))
                if run is None:
                    continue
                h = run.history.loc[run.history["candidate"] == run.train["candidate"]].sort_values("epoch")
                h = h.assign(val_iwae=pd.to_numeric(h["val_iwae"], errors="coerce"))
                ax.plot(h["epoch"], h["val_iwae"], lw=0.8, alpha=0.45, color=self.colors[prior])
                hists.append(h.set_index("epoch")["val_iwae"])
                tails.append(h["val_iwae"].iloc[1:] if len(h) > 1 else h["val_iwae"])
            if hists:
                mean = pd.concat(hists, axis=1).mean(axis=1)
                ax.plot(mean.index, mean.values, lw=2.4, color=self.colors[prior],
                        label=f"{prior} (mean of {len(hists)})")
        tail = pd.concat(tails).dropna() if tails else pd.Series(dtype=float)
        if len(tail):
            lo, hi = float(tail.min()), float(tail.max())
            pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(self.MaxNLocator(integer=True))
        ax.set_ylabel("validation IWAE of the kept candidate (nats/example)")
        ax.set_title(f"{dataset}, latent {latent}: validation IWAE during training")
        ax.legend(title="prior (thin: seeds)")
        fig.tight_layout()
        fname = f"training_{slug(dataset)}_z{latent}.png"
        self.add(fig, fname, f"Training curves: {dataset}, latent {latent}",
                 "Validation IWAE (the stopping and selection quantity) of each run's kept grid "
                 "candidate after each epoch; thin lines are seeds, thick lines their mean (over the "
                 "seeds still training: runs stop at different epochs). The y range is fitted to epochs "
                 "after the first, so a lower first epoch may be cut off.", "training", dataset, latent)


def make_figures(df: pd.DataFrame, runs: Sequence[Run], study: Study, folder: Path,
                 baselines: dict[str, dict[str, float]] | None = None) -> list[FigureInfo]:
    """Every panel of every dataset x latent group, into `folder` (``baselines``: dataset -> the
    sparse-coding baseline's field fractions, drawn beside the priors')."""
    folder.mkdir(parents=True, exist_ok=True)
    return talk_figures(df, runs, study, folder) + _Figures(df, runs, study, folder, baselines).build()
