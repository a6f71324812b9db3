"""The study report: every run's metrics gathered into tables, figure panels, verdicts on the talk's
four conclusions, and one self-contained HTML page.

``build_report(metrics_paths, study, out_dir)`` (what ``sparse-vae report`` calls) writes, in order,

* ``metrics.csv``  one row per run: dataset, prior, latent, seed, kl_estimator, every catalogue
  metric (``sparse_vae.catalogue``, in its order) and the training figures of ``train.json``;
* ``timings.csv``  device, duration and throughput per run (they vary between identical runs);
* ``summary.csv``  one row per dataset x prior x latent x metric: ``n_seeds``, ``n`` (non-null
  values), ``mean``, ``sd`` (ddof = 1), the Student-t interval ``ci_low``, ``ci_high`` at the
  study's confidence (NaN with fewer than two values, never a zero-width interval) and ``unit``;
* ``verdicts.csv`` one row per conclusion x dataset (x latent), computed from the runs, controls first,
  each with its test, Holm-adjusted p-values and minimal detectable effects (``statistics``);
* ``pairwise.csv`` one row per question x dataset x latent x pair of prior entries: which is better,
  the mean paired difference with its interval, test, adjusted p-value, margin and minimal
  detectable effect, seeds in which a beats b (``pairwise``);
* ``figures/`` the scorecard (``scorecard.png`` / ``.svg``), the talk's figures side by side per
  prior (``talk_*.png`` / ``.svg``) and the figure panels (built in a temporary folder and swapped
  in whole);
* ``report.html`` last: the scorecard first, then the talk's figures, every table in closed
  ``<details>``, every figure embedded.

When the study config names another run's verdicts.csv (``report.stability``), rows whose verdict
(or pairwise answer) differs from that run's read "unstable" (``stability``).

The package: ``runs`` (the study and the run folders, checked, and their environments),
``statistics`` (every test and interval), ``tables``, the verdicts (``verdicts`` their words and
rules, ``evidence``, ``controls``, ``conclusions``), ``pairwise``, ``stability``, ``figures``,
``html`` (with ``answers``), ``readme``. A run whose files are missing or malformed stops the report with
``MissingRunError`` naming the run folder: no run is ever dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sparse_vae.atomic import atomic_dir, write_text
from sparse_vae.report.figures import make_figures
from sparse_vae.report.html import render_html
from sparse_vae.report.runs import Study, check_complete, load_baselines, load_runs
from sparse_vae.report.pairwise import pairwise_table
from sparse_vae.report.scorecard import scorecard as build_scorecard
from sparse_vae.report.scorecard_figure import write_scorecard_figure
from sparse_vae.report.stability import apply_stability
from sparse_vae.report.tables import ID_COLUMNS, TIMING_COLUMNS, metrics_table, summarize
from sparse_vae.report.conclusions import compute_verdicts, control_status
from sparse_vae.report.controls import read_retina_control
from sparse_vae.report.estimator_gate import read_estimator_controls

__all__ = ["build_report"]


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_text(path, df.to_csv(index=False, lineterminator="\n"))


def build_report(metrics_paths: list[Path], study: dict[str, Any], out_dir: Path,
                 baseline_paths: list[Path] = (), estimator_controls: Path | None = None,
                 retina_control: Path | None = None) -> dict[str, Any]:
    """Aggregate the runs (and the sparse-coding baselines' metrics.json, the estimators' and the
    centre-surround classifier's known-answer controls that analysis wrote); write metrics.csv,
    timings.csv, summary.csv, verdicts.csv, pairwise.csv, figures/, report.html."""
    out_dir = Path(out_dir)
    parsed = Study.parse(study)
    runs = load_runs(metrics_paths)
    baselines = load_baselines(baseline_paths)
    estimators = read_estimator_controls(estimator_controls) if estimator_controls else None
    retina = read_retina_control(retina_control) if retina_control else None
    check_complete(runs, parsed)
    df = metrics_table(runs, parsed)
    # Timings vary between identical runs: they get their own file, so metrics.csv and
    # summary.csv are reproducible to the last digit.
    deterministic = df.drop(columns=TIMING_COLUMNS)
    summary = summarize(deterministic, parsed.confidence)

    with atomic_dir(out_dir / "figures") as staging:
        figures = make_figures(df, runs, parsed, staging, baselines)
        fig_names = {(f.kind, f.dataset, f.latent): f.file for f in figures}
        verdicts = compute_verdicts(df, runs, parsed.confidence, parsed.sources, fig_names, baselines,
                                    parsed.generators, estimators, parsed.fixed_noise, retina=retina)
        families = {run.info["prior"]: str(run.info.get("prior_family", run.info["prior"])) for run in runs}
        status = control_status(df, runs, parsed.confidence, parsed.sources, baselines, parsed.generators,
                                estimators, retina)
        pairwise = pairwise_table(deterministic, parsed.confidence, families, parsed.sources, parsed.priors, status)
        stability = None
        if parsed.stability:
            verdicts, pairwise, stability = apply_stability(verdicts, pairwise, parsed.stability, deterministic)
            print(stability.summary())
        card = build_scorecard(verdicts, status)
        write_scorecard_figure(card, staging, f"Sparse VAE study: the talk's claims ({len(df)} runs)")
        page = render_html(parsed, df, summary, verdicts, figures, staging, pairwise=pairwise, runs=runs,
                           stability=stability, card=card)
        _write_csv(deterministic, out_dir / "metrics.csv")
        _write_csv(df[ID_COLUMNS + TIMING_COLUMNS], out_dir / "timings.csv")
        _write_csv(summary, out_dir / "summary.csv")
        _write_csv(verdicts, out_dir / "verdicts.csv")
        _write_csv(pairwise, out_dir / "pairwise.csv")
    write_text(out_dir / "report.html", page)
    print(f"report: {len(df)} runs -> {out_dir} ({len(figures)} figures, {len(verdicts)} verdicts)")
    return {"metrics": df, "summary": summary, "verdicts": verdicts, "pairwise": pairwise, "figures": figures,
            "stability": stability}
