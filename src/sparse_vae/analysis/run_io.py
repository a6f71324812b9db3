"""Reading and writing one run folder: the `analyze` pipeline step that the CLI calls.

``analyze_run`` loads the dataset and ``model.pt``, computes everything (``compute``,
``figure_data``), and only then writes ``latents.npz``, ``figures/`` and ``metrics.json``
atomically. Not here: any metric or figure (``compute``, ``figures``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparse_vae.analysis.compute import check_params, compute_analysis
from sparse_vae.analysis.figure_data import figure_data
from sparse_vae.analysis.figures import write_figures
from sparse_vae.analysis.information import HEADLINE_THRESHOLD
from sparse_vae.atomic import atomic_dir, atomic_open, write_text
from sparse_vae.codehash import stage_record
from sparse_vae.data.io import load_dataset
from sparse_vae.errors import SparseVAEError
from sparse_vae.model_io import load_model
from sparse_vae.provenance import versions

__all__ = ["analyze_pack", "analyze_run", "jsonable"]


def _load_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """`sparse_vae.model_io.load_model`, with a one-line error when the run has not been trained."""
    if not path.exists():
        raise SparseVAEError(f"{path}: no trained model (run the train step first)")
    return load_model(path)


@contextmanager
def _thread_limits(threads: int) -> Iterator[None]:
    """Hold torch and the BLAS / OpenMP pools (numpy, scikit-learn) to the rule's thread count."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files and folders an earlier, killed analysis of this run left behind.

    Snakemake runs one job per run folder at a time, so nothing else is writing these.
    """
    for pattern in (".figures.tmp-*", ".figures.old-*", ".latents.npz.*.tmp", ".metrics.json.*.tmp"):
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become null (metrics.json must hold no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def analyze_pack(data_path: Path, run_dirs: list[Path], params: dict[str, Any], threads: int = 1,
                 figures_for: list[Path] | None = None) -> list[dict[str, Any]]:
    """`analyze_run` for every run of a pack (the seeds a train job trained together) in one
    process: one data load, one import. `figures_for`: the runs whose figures are drawn (None:
    every run). Returns each run's metrics.json content."""
    drawn = None if figures_for is None else {Path(d).resolve() for d in figures_for}
    with _thread_limits(max(1, int(threads))):
        dataset = load_dataset(data_path)
    return [analyze_run(data_path, Path(run_dir), params, threads,
                        figures=drawn is None or Path(run_dir).resolve() in drawn, dataset=dataset)
            for run_dir in run_dirs]


def analyze_run(data_path: Path, run_dir: Path, params: dict[str, Any], threads: int = 1,
                figures: bool = True, dataset: Any = None) -> dict[str, Any]:
    """Analyse `run_dir/model.pt` on the dataset's test split; write latents, figures, then metrics.

    `figures=False` leaves figures/ empty (a seed the report does not show: a third of a small
    run's analysis time is drawing).

    Nothing is touched until the inputs have loaded and every metric is computed. Then a stale
    metrics.json is removed first, latents.npz and figures/ are renamed into place, and
    metrics.json is written last: a job killed at any point leaves no metrics.json beside partial
    outputs, so Snakemake (and the report) never mistake a partial analysis for a finished one.
    Same inputs and threads give a byte-identical metrics.json. Returns the metrics.json content.
    `dataset`: `data_path` already loaded (`analyze_pack`).
    """
    run_dir = Path(run_dir)
    threads = max(1, int(threads))
    check_params(params)
    metrics_path = run_dir / "metrics.json"
    started = time.perf_counter()
    with _thread_limits(threads):
        dataset = load_dataset(data_path) if dataset is None else dataset
        model, checkpoint = _load_model(run_dir / "model.pt")
        if hasattr(model, "eval"):
            model.eval()
        input_dim = checkpoint.get("input_dim")
        if input_dim is not None and int(input_dim) != dataset.input_dim:
            raise SparseVAEError(
                f"{run_dir / 'model.pt'} expects {input_dim} inputs but {data_path} has {dataset.input_dim}"
            )
        analysis = compute_analysis(model, checkpoint, dataset, params)
        t0 = time.perf_counter()
        drawn = figure_data(model, analysis, dataset) if figures else None
        report = jsonable(analysis.report)
        # the environment that computed these numbers (scikit-learn, scipy, ... may differ from training's)
        report["settings"]["versions"] = jsonable(versions())
        report["code"] = stage_record("analysis")   # ANALYSIS version and normalised code hash (codehash)

        metrics_path.unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(run_dir)
        with atomic_open(run_dir / "latents.npz") as fh:
            np.savez_compressed(fh, **analysis.latents)
        with atomic_dir(run_dir / "figures") as staging:
            names = write_figures(drawn, dataset, staging) if figures else []
        analysis.timings["figures"] = time.perf_counter() - t0
        write_text(metrics_path, json.dumps(report, indent=2, allow_nan=False) + "\n")

    m = report["metrics"]
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in analysis.timings.items())
    show = lambda name: "undefined" if m[name] is None else f"{m[name]:.3f}"  # noqa: E731
    print(
        f"analyze {run_dir}: elbo {show('elbo')}, iwae {show('iwae_log_lik')} (K={m['iwae_samples']}), "
        f"used {m['used_dims']}/{analysis.posterior.loc.shape[1]} (rate > {HEADLINE_THRESHOLD:g} nats); {len(names)} figures; "
        f"{time.perf_counter() - started:.1f}s ({steps})",
        flush=True,
    )
    return report
