"""DAG build time of a large sweep: `snakemake -n` over ~1,000 training jobs (target <= 10 s).

The sweep is the offline preset with enough seeds for >= 1,000 training runs; nothing is trained.

    python bench/dag_size.py [--runs 1000]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="at least this many training jobs")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "presets/offline.yaml").read_text())
    per_seed = len(config["study"]["priors"]) * sum(
        len(config["datasets"][d]["latent_sizes"]) for d in config["study"]["datasets"])
    config["study"]["seeds"] = list(range(1, math.ceil(args.runs / per_seed) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-q", "rules", "-s", str(REPO / "Snakefile"),
             "-d", tmp, "--configfile", str(path)],
            capture_output=True, text=True, check=True,
        )
        seconds = time.perf_counter() - start
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    print(f"seeds {len(config['study']['seeds'])}, jobs by rule: {counts}")
    print(f"snakemake -n wall time: {seconds:.1f} s for {counts.get('total')} jobs "
          f"({counts.get('train')} training)")


if __name__ == "__main__":
    main()
