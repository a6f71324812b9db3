"""AIS error and cost on a natural12 run with a normal prior, where log p(x) is exact.

Trains (once, into the scratch folder of bench/analysis_cost.py) the offline preset's natural12
normal-prior run, then for a few AIS settings prints, over the first `--examples` test examples:
the mean of AIS - exact, its standard error over examples, IWAE(K) - exact, and the seconds taken
single-threaded. What the config comments and bench/README.md state about AIS comes from here.

    PYTHONPATH=$PWD/src python bench/ais_error.py --work /tmp/analysis-cost
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import yaml
from analysis_cost import REPO, _spec

from sparse_vae.analysis.ais import ais_log_likelihood
from sparse_vae.analysis.exact import model_log_marginal
from sparse_vae.analysis.metrics import iwae_bound
from sparse_vae.analysis.model_passes import importance_log_weights
from sparse_vae.data import prepare
from sparse_vae.data.io import load_dataset
from sparse_vae.model_io import load_model
from sparse_vae.train import train_run

SETTINGS = ((1000, 16, 5), (1000, 16, 3), (300, 16, 5))  # (steps, chains, leapfrog)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/analysis-cost")
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--iwae", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load((REPO / "presets" / "offline.yaml").read_text())
    work, entry = Path(args.work), config["datasets"]["natural12"]
    data = work / "data" / "natural12.npz"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        prepare(entry["source"], entry["prepare"], REPO / "data", data)
    run_dir = work / "runs" / "natural12" / "normal" / "z169" / "seed1"
    if not (run_dir / "model.pt").exists():
        train_run(data, _spec(config, "natural12", "normal", 169, 1), run_dir, threads=1, device="cpu")
    model, _ = load_model(run_dir / "model.pt")
    model.eval()
    x = torch.as_tensor(np.asarray(load_dataset(data).x_test[:args.examples], dtype=np.float32))
    exact = model_log_marginal(model, x).numpy()
    torch.manual_seed(0)
    with torch.no_grad():
        _, log_w = importance_log_weights(model, x, args.iwae)
    print(f"natural12 normal z169, {args.examples} test examples: IWAE(K={args.iwae}) - exact "
          f"{float(np.mean(iwae_bound(log_w).numpy() - exact)):+.3f} nats")
    for steps, chains, leapfrog in SETTINGS:
        for seed in (0, 1):
            r = ais_log_likelihood(model, x, steps, chains, leapfrog, seed=seed)
            diff = r.log_lik - exact
            print(f"AIS {steps} steps x {chains} chains x {leapfrog} leapfrog, seed {seed}: AIS - exact "
                  f"{diff.mean():+.3f} (SE {diff.std(ddof=1) / math.sqrt(len(diff)):.3f}), accept "
                  f"{r.accept_rate:.2f}, {r.seconds:.1f} s")


if __name__ == "__main__":
    main()
