"""Where a study's files live, written once: the rules, benchmarks and scripts build paths here.

A run's identity is (dataset, prior entry name, latent size, seed) and its folder is
``<results>/runs/<dataset>/<prior>/z<latent>/seed<seed>/``; the train step writes ``model.pt``,
``history.csv`` and ``train.json`` there, the analyze step ``metrics.json``, ``latents.npz`` and
``figures/`` (its PNGs and ``PANEL_ARRAYS``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PANEL_ARRAYS", "RUN_PATTERN", "run_dir", "run_file"]

#: a run's folder below the study's results folder (a str.format pattern; also Snakemake's wildcards)
RUN_PATTERN = "runs/{dataset}/{prior}/z{latent}/seed{seed}"
#: in a run's figures/: the arrays the report redraws side by side per prior (analysis.figures.save_panel_arrays)
PANEL_ARRAYS = "panel_arrays.npz"


def run_dir(results: str | Path, dataset: str, prior: str, latent: int | str, seed: int | str) -> Path:
    """The folder of one run under a study's results folder."""
    return Path(results) / RUN_PATTERN.format(dataset=dataset, prior=prior, latent=latent, seed=seed)


def run_file(results: str | Path, dataset: str, prior: str, latent: int | str, seed: int | str, name: str) -> str:
    """One file of a run, as the string Snakemake targets are."""
    return str(run_dir(results, dataset, prior, latent, seed) / name)
