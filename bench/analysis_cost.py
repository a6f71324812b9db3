"""Analysis cost of one run, per step: a digits run and a natural12 run of the offline preset.

Prepares the datasets and trains one run of each (the preset's own settings) into a scratch folder
(kept, so the same trained models serve a before / after comparison), then times `analyze_run`
single-threaded, as the analyze rule runs it. Run it with the package version to measure on the
path, e.g. the code before a change from `git archive <commit> src | tar -x -C /tmp/before`:

    PYTHONPATH=/tmp/before/src python bench/analysis_cost.py --work /tmp/analysis-cost
    PYTHONPATH=$PWD/src       python bench/analysis_cost.py --work /tmp/analysis-cost
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import yaml

from sparse_vae.analysis import analyze_run
from sparse_vae.data import prepare
from sparse_vae.train import train_run

REPO = Path(__file__).resolve().parents[1]


def _spec(config: dict, dataset: str, prior: str, latent: int, seed: int) -> dict:
    entry = config["datasets"][dataset]
    return {"dataset": dataset, "prior": dict(name=prior, **config["priors"][prior]), "latent": latent,
            "seed": seed, "model": entry["model"], "train": entry["train"]}


def measure(config: dict, work: Path, dataset: str, prior: str, latent: int, seed: int) -> dict:
    """Prepare and train once (skipped when present), then time one single-threaded analysis."""
    entry = config["datasets"][dataset]
    data = work / "data" / f"{dataset}.npz"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        prepare(entry["source"], entry["prepare"], REPO / "data", data)
    run_dir = work / "runs" / dataset / prior / f"z{latent}" / f"seed{seed}"
    if not (run_dir / "model.pt").exists():
        train_run(data, _spec(config, dataset, prior, latent, seed), run_dir, threads=1, device="cpu")
    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        report = analyze_run(data, run_dir, config["analysis"], threads=1)
    total = time.perf_counter() - t0
    return {"run": f"{dataset}/{prior}/z{latent}/seed{seed}", "seconds": round(total, 2),
            "log": log.getvalue().strip(), "ais_seconds": report["settings"].get("ais_seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=str(REPO / "presets" / "offline.yaml"))
    parser.add_argument("--work", default="/tmp/analysis-cost", help="scratch folder (data, trained runs)")
    parser.add_argument("--prior", default="laplace")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.preset).read_text())
    for dataset, latent in (("digits", 10), ("natural12", 169)):
        print(json.dumps(measure(config, Path(args.work), dataset, args.prior, latent, args.seed), indent=1))


if __name__ == "__main__":
    main()
