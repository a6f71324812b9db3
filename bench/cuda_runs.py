"""Whole training runs of the offline study on CUDA: what a grid costs there, and whether it repeats.

For each model (digits z10, synthetic z4, control z6: laplace prior, the offline preset's settings)
this trains the run as the workflow does (`train_run`: stopping rule, validation IWAE each epoch)
with its full learning-rate grid (K candidates in one batched model) and with the grid's first
rate alone (K = 1), and reports wall seconds per epoch and their ratio. The K-candidate run is
trained twice to check that CUDA repeats its numbers on one machine (history.csv equal but for
its wall-clock columns).
Run it where a GPU is; on a CPU it measures the CPU path (`--device cpu`).

    python bench/cuda_runs.py [--device cuda] [--out DIR] [--datasets digits synthetic control]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from sparse_vae.config import load_config
from sparse_vae.data import prepare
from sparse_vae.train import train_run

RUNS = [("digits", 10), ("synthetic", 4), ("control", 6)]


def spec_for(config: dict, dataset: str, latent: int, lr: list[float]) -> dict:
    entry = config["datasets"][dataset]
    return {"dataset": dataset, "prior": dict(name="laplace", **config["priors"]["laplace"]),
            "latent": latent, "seed": 1, "model": entry["model"], "train": {**entry["train"], "lr": lr}}


def timed(data: Path, spec: dict, run_dir: Path, device: str) -> tuple[float, dict]:
    start = time.perf_counter()
    summary = train_run(data, spec, run_dir, threads=1, device=device)
    return time.perf_counter() - start, summary


def numbers(run_dir: Path) -> pd.DataFrame:
    """history.csv without its wall-clock columns: what must repeat exactly."""
    return pd.read_csv(run_dir / "history.csv").drop(columns=["seconds", "samples_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp()))
    parser.add_argument("--datasets", nargs="+", default=[d for d, _ in RUNS], choices=[d for d, _ in RUNS])
    args = parser.parse_args()
    config = load_config("presets/offline.yaml")
    print("| model | K | epochs | wall s | s/epoch | ratio to K=1 (per epoch) | kept val IWAE | repeats |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset, latent in (r for r in RUNS if r[0] in args.datasets):
        entry = config["datasets"][dataset]
        data = args.out / f"{dataset}.npz"
        prepare(entry["source"], entry["prepare"], Path("data"), data)
        grid = entry["train"]["lr"]
        wall1, one = timed(data, spec_for(config, dataset, latent, grid[:1]), args.out / dataset / "k1", args.device)
        wallk, many = timed(data, spec_for(config, dataset, latent, grid), args.out / dataset / "kN", args.device)
        _, again = timed(data, spec_for(config, dataset, latent, grid), args.out / dataset / "kN2", args.device)
        same = numbers(args.out / dataset / "kN").equals(numbers(args.out / dataset / "kN2"))
        per1, perk = wall1 / one["epochs"], wallk / many["epochs"]
        for k, wall, s, per in ((1, wall1, one, per1), (len(grid), wallk, many, perk)):
            print(f"| {dataset} z{latent} | {k} | {s['epochs']} | {wall:.1f} | {per:.3f} | {per / per1:.2f} | "
                  f"{s['selected']['val_iwae']:.3f} | {'yes' if same else 'NO'} |", flush=True)
        print(json.dumps({"dataset": dataset, "device": many["device"], "versions": many["versions"]}), flush=True)


if __name__ == "__main__":
    main()
