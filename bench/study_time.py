"""Where a study's time and memory go: Snakemake's per-job benchmark files, summarised by rule.

Run after a study (the rules' `benchmark:` directive writes results/benchmarks/<rule>/...tsv):

    python bench/study_time.py [--configfile presets/offline.yaml] [--results results/offline]

Prints per rule: jobs, total/mean/max wall seconds, CPU seconds (Snakemake samples them and
undercounts: a job listed at 15 s took 33 s of CPU under /usr/bin/time; trust the wall columns),
peak RSS against the declared mem_mb, and the time of one bare `python -c "import torch"` (the start-up cost every job pays).
Then the fixed cost per job: a training job's wall time outside its training loop (benchmark wall
minus train.json's duration_s: start-up, data, evaluation of the kept weights, writing), and the
analysis jobs with and without figures (the representative seed, and the others).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from sparse_vae.config import load_config

REPO = Path(__file__).resolve().parents[1]


def startup_seconds(statement: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="the study's output folder (default: its `results` key)")
    parser.add_argument("--configfile", type=Path, default=REPO / "presets/offline.yaml")
    args = parser.parse_args()
    config = load_config(args.configfile)
    args.results = args.results or Path(config["results"])
    declared = {rule: config["resources"][rule]["mem_mb"] for rule in ("train", "analyze")}

    rows = []
    for tsv in sorted((args.results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(args.results / "benchmarks").parts[0]
        frame = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "job": str(tsv), "s": frame["s"].iloc[0],
                     "cpu_s": frame["cpu_time"].iloc[0], "max_rss_mb": frame["max_rss"].iloc[0]})
    if not rows:
        raise SystemExit(f"no benchmark files under {args.results / 'benchmarks'}: run the study first")
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"), mean_s=("s", "mean"),
                                      max_s=("s", "max"), cpu_s=("cpu_s", "sum"),
                                      peak_rss_mb=("max_rss_mb", "max"))
    table["declared_mem_mb"] = [declared.get(rule) for rule in table.index]
    print(table.round(1).to_string())
    over = jobs[jobs.apply(lambda r: r["max_rss_mb"] > declared.get(r["rule"], float("inf")), axis=1)]
    print(f"jobs over their declared mem_mb: {len(over)}")
    fixed_costs(jobs, args.results, config)
    print(f"start-up of one job: python -c 'import torch' {startup_seconds('import torch'):.2f} s, "
          f"python -m sparse_vae --help {startup_seconds('from sparse_vae.cli import main'):.2f} s")


def job_seeds(name: str, config: dict) -> list[int]:
    """The seeds a benchmark file's job ran: `seed<s>.tsv` (one run a job, before issue 33) or
    `pack<n>.tsv` (the study's seeds in pack n, `study.pack_size` each)."""
    if name.startswith("seed"):
        return [int(name.removeprefix("seed"))]
    n, size = int(name.removeprefix("pack")), config["study"]["pack_size"]
    return [s for s in config["study"]["seeds"] if (s - 1) // size + 1 == n]


def fixed_costs(jobs: pd.DataFrame, results: Path, config: dict) -> None:
    """Per dataset: training time outside the loop; analysis time with and without figures."""
    rep = config["report"]["representative_seed"]
    rep = config["study"]["seeds"][0] if rep is None else rep
    rows = []
    for _, job in jobs.iterrows():
        rel = Path(job["job"]).relative_to(results / "benchmarks")
        if rel.parts[0] not in ("train", "analyze"):
            continue
        dataset, prior, latent = rel.parts[1], rel.parts[2], rel.parts[3]
        seeds = job_seeds(rel.parts[4][:-4], config)
        row = {"dataset": dataset, "rule": rel.parts[0], "s": job["s"]}
        summaries = [results / "runs" / dataset / prior / latent / f"seed{s}" / "train.json" for s in seeds]
        if not seeds or not all(path.is_file() for path in summaries):   # a job no longer in the study
            continue
        if rel.parts[0] == "train":   # a pack's runs' durations are shares that add up to its loop time
            row["outside_loop_s"] = job["s"] - sum(json.loads(p.read_text())["duration_s"] for p in summaries)
        else:
            row["figures"] = int(rep) in seeds or config["analysis"]["figures"] == "all"
        rows.append(row)
    table = pd.DataFrame(rows)
    train = table[table.rule == "train"].groupby("dataset")["outside_loop_s"].agg(["mean", "max"])
    print("training job, seconds outside the training loop:\n" + train.round(2).to_string())
    if "figures" not in table:   # a study whose analyses have not run yet
        print("analysis jobs: none finished")
        return
    analyze = table[table.rule == "analyze"].groupby(["dataset", "figures"])["s"].agg(["size", "mean", "max"])
    print("analysis job wall seconds (figures = drawn for the representative seed):\n" + analyze.round(2).to_string())


if __name__ == "__main__":
    main()
