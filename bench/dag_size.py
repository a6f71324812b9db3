"""A ~1,000-run sweep as Snakemake sees it: DAG build time and the Slurm jobs it would submit.

The sweep is the offline preset with enough seeds for >= --runs training runs; nothing is trained.
It reports `snakemake -n` wall time and jobs by rule (target: <= 10 s), then how many Slurm jobs
`snakemake -n --profile slurm` plans: with the profile as shipped (one job per run: a run's train
and analyze form one job group) and with --pack runs per job (`--group-components run=N`).

    python bench/dag_size.py [--runs 1000] [--pack 8]
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# Rules that run as Slurm jobs; download, prepare, report and all are `localrules`.
CLUSTER_RULES = ("train", "analyze")


def snakemake_dry_run(workdir: str, configfile: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", workdir,
         "--configfile", str(configfile), *args],
        capture_output=True, text=True, check=True, cwd=REPO,
    )
    return result.stdout + result.stderr


def slurm_jobs(dry_run: str) -> int:
    """Submissions a dry run plans: one per group job, plus any cluster job outside a group
    (a group's member jobs are printed indented under its "Group job" header)."""
    groups = len(re.findall(r"^(?:\[.*?\] )?Group job ", dry_run, flags=re.M))
    loose = len(re.findall(rf"^rule ({'|'.join(CLUSTER_RULES)}):$", dry_run, flags=re.M))
    return groups + loose


def sweep_config(runs: int) -> dict:
    from sparse_vae.config import dataset_priors, load_config

    config = load_config(REPO / "presets/offline.yaml")  # merged over config.yaml, as Snakemake does
    per_seed = sum(len(dataset_priors(config, d)) * len(config["datasets"][d]["latent_sizes"])
                   for d in config["study"]["datasets"])
    config["study"]["seeds"] = list(range(1, math.ceil(runs / per_seed) + 1))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="at least this many training runs")
    parser.add_argument("--pack", type=int, default=8, help="runs per Slurm job in the packed count")
    args = parser.parse_args()
    config = sweep_config(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        stats = snakemake_dry_run(tmp, path, "-q", "rules")
        seconds = time.perf_counter() - start
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
        print(f"seeds {len(config['study']['seeds'])}, jobs by rule: {counts}")
        print(f"snakemake -n wall time: {seconds:.1f} s for {counts.get('total')} jobs "
              f"({counts.get('train')} training)")
        shipped = slurm_jobs(snakemake_dry_run(tmp, path, "--profile", "slurm"))
        packed = slurm_jobs(snakemake_dry_run(
            tmp, path, "--profile", "slurm", "--group-components", f"run={args.pack}"))
    print(f"Slurm jobs, snakemake -n --profile slurm: {shipped} (one per run: train + analyze)")
    print(f"Slurm jobs, ... --group-components run={args.pack}: {packed} ({args.pack} runs per job)")


if __name__ == "__main__":
    main()
