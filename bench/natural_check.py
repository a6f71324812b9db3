"""The offline preset's `natural` dataset end to end without Snakemake (issue 23): prepare, train
every prior x seed on one thread each (in parallel, one process per run), analyze, report.

Measures what the preset's cost comment states (training seconds per run on one core) and checks
that the retina-like verdict (conclusion 3) and its control come out of real runs. Settings are read
from presets/offline.yaml, as the workflow reads them. Usage:
    PYTHONPATH=src python bench/natural_check.py OUT_DIR [--seeds 1 2 3] [--jobs 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "sparse_vae", *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "presets/offline.yaml").read_text())
    entry, name = config["datasets"]["natural"], "natural"
    data = args.out / "data" / f"{name}.npz"
    _run(["prepare", "--source", entry["source"], "--params", json.dumps(entry["prepare"]), "--out", str(data)])
    runs = [(prior, latent, seed) for prior in config["study"]["priors"] for latent in entry["latent_sizes"]
            for seed in args.seeds]

    def one(run: tuple[str, int, int]) -> Path:
        prior, latent, seed = run
        folder = args.out / "runs" / name / prior / f"z{latent}" / f"seed{seed}"
        spec = {"dataset": name, "prior": dict(name=prior, **config["priors"][prior]), "latent": latent,
                "seed": seed, "model": entry["model"], "train": entry["train"]}
        _run(["train", "--data", str(data), "--spec", json.dumps(spec), "--run-dir", str(folder), "--threads", "1",
              "--device", "cpu"])
        _run(["analyze", "--data", str(data), "--run-dir", str(folder), "--params", json.dumps(config["analysis"]),
              "--threads", "1"] + ([] if seed == args.seeds[0] else ["--no-figures"]))
        return folder / "metrics.json"

    with ThreadPoolExecutor(args.jobs) as pool:
        metrics = list(pool.map(one, runs))
    study = {"study": dict(config["study"], datasets=[name], seeds=args.seeds), "report": config["report"],
             "datasets": {name: {"source": entry["source"], "priors": config["study"]["priors"], "generator": None}}}
    _run(["report", "--study", json.dumps(study), "--out-dir", str(args.out / "report"), "--", *map(str, metrics)])
    for path in metrics:
        train = json.loads((path.parent / "train.json").read_text())
        print(path.parts[-4], path.parts[-2], f"{train['duration_s']:.1f} s", train["epochs"], "epochs",
              "converged" if train["converged"] else "cap", flush=True)


if __name__ == "__main__":
    main()
