"""Training cost of a study per dataset, and against an earlier run of the same study.

    python bench/training_cost.py results/offline [--before OLD_RESULTS]

Reads every run's train.json (`duration_s`: the training loop, validation included; `epochs`) and
history.csv (one row per candidate per epoch it trained), and the train jobs' benchmark files
(wall `s`, `cpu_time`). "candidate-epochs / (K x epochs)" is the share of the grid's epochs that
candidates still training needed: a grid that drops stopped candidates pays for that share only.
With --before, the same table of an earlier results folder and the ratios old / new.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def run_costs(results: Path) -> pd.DataFrame:
    rows = []
    for summary in sorted((results / "runs").glob("*/*/*/*/train.json")):
        run = summary.parent
        record = json.loads(summary.read_text())
        history = pd.read_csv(run / "history.csv")
        dataset, prior, latent, seed = run.relative_to(results / "runs").parts
        bench = results / "benchmarks" / "train" / dataset / prior / latent / f"{seed}.tsv"
        job = pd.read_csv(bench, sep="\t").iloc[0] if bench.exists() else {}
        rows.append({"dataset": dataset, "prior": prior, "epochs": record["epochs"],
                     "candidate_epochs": len(history), "grid": len(record["candidates"]),
                     "loop_s": record["duration_s"], "job_s": job.get("s"), "job_cpu_s": job.get("cpu_time")})
    return pd.DataFrame(rows)


def by_dataset(costs: pd.DataFrame) -> pd.DataFrame:
    costs = costs.assign(grid_epochs=costs["grid"] * costs["epochs"])
    table = costs.groupby("dataset").agg(runs=("epochs", "size"), epochs=("epochs", "sum"),
                                         candidate_epochs=("candidate_epochs", "sum"),
                                         grid_epochs=("grid_epochs", "sum"), loop_s=("loop_s", "sum"),
                                         job_s=("job_s", "sum"), job_cpu_s=("job_cpu_s", "sum"))
    table.loc["all"] = table.sum()
    table["active_share"] = table["candidate_epochs"] / table["grid_epochs"]
    table["s_per_candidate_epoch"] = table["loop_s"] / table["candidate_epochs"]
    return table.drop(columns="grid_epochs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--before", type=Path, help="an earlier results folder of the same study")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    now = by_dataset(run_costs(args.results))
    print(f"{args.results}:\n{now.round(3).to_string()}")
    if args.before:
        before = by_dataset(run_costs(args.before))
        print(f"\n{args.before}:\n{before.round(3).to_string()}")
        ratio = (before[["epochs", "loop_s", "job_s", "job_cpu_s", "s_per_candidate_epoch"]]
                 / now[["epochs", "loop_s", "job_s", "job_cpu_s", "s_per_candidate_epoch"]])
        print(f"\nbefore / now:\n{ratio.round(2).to_string()}")


if __name__ == "__main__":
    main()
