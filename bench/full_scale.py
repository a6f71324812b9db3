"""The default study at full size: per-run training time and peak memory, and the implied wall time.

For every dataset x prior x latent size of config.yaml's study (one seed: the seeds cost the same),
this trains a few epochs with the real job command (``python -m sparse_vae train``, the rule's
spec with only ``epochs`` lowered), times every epoch with the evaluation that follows it, and
extrapolates to the config's epochs; then it runs the real analysis job on the result. Peak memory
is each job's own VmHWM. Data at full size, made offline:

* MNIST-shaped: the Fashion-MNIST files (Debian's dataset-fashion-mnist) extracted into MNIST's
  raw folder and prepared by the package's own ``mnist`` path. torchvision's MNIST md5-checks only
  the archives it downloads; extracted files in ``MNIST/raw`` are read as they are, so no md5-free
  path is needed here.
* CIFAR-shaped: 50,000 + 10,000 random 32x32 RGB images written in torchvision's pickle layout.
  They fail CIFAR-10's md5 sums, and the real path rejects them (checked here: torchvision's
  integrity check, which the study's download job runs, refuses them). This benchmark alone calls
  the prepare step directly, past that check: the md5-free path exists only here.

    python bench/full_scale.py [--epochs 3] [--cores 8] [--datasets mnist cifar] [--priors normal]

Takes a few minutes (mostly the analysis jobs, which do not depend on the epochs trained). The study
estimate assumes each job runs as fast as it did here alone; 8 jobs side by side share memory
bandwidth and clocks, so it is a lower bound. The report job is not timed here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sparse_vae.config import canonical_json, load_config
from sparse_vae.data import build_dataset, prepare, save_dataset
from sparse_vae.data.fashion_mnist import DEBIAN_FOLDER
from sparse_vae.data.mnist import RAW_FILES

REPO = Path(__file__).resolve().parents[1]

# Child process of a timed job: the real CLI (train or analyze). For training it takes a timestamp
# at the start of every epoch (so an epoch's time includes its validation/test evaluation and
# checkpointing). Peak memory is the child's own VmHWM: the rusage of a child forked from this
# process starts at this process's RSS (the prepared datasets, ~1.2 GB), so ru_maxrss overstates it.
TIMED_JOB = """
import json, sys, time
marks = []
if sys.argv[2] == "train":
    from sparse_vae import train
    original = train.Trainer.train_epoch
    def timed(self, epoch):
        marks.append(time.perf_counter())
        return original(self, epoch)
    train.Trainer.train_epoch = timed
from sparse_vae.cli import main
code = main(sys.argv[2:])
marks.append(time.perf_counter())
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as fh:
    json.dump({"marks": marks, "peak_mb": peak_kb / 1024}, fh)
sys.exit(code)
"""


def dataset_priors(config: dict, dataset: str) -> list[str]:
    """The study's priors a dataset is trained with: all, unless its entry lists ``priors``."""
    allowed = config["datasets"][dataset].get("priors")
    return [name for name in config["study"]["priors"] if allowed is None or name in allowed]


def run_job(command: list[str], record: Path) -> tuple[float, dict]:
    """Wall seconds of one ``TIMED_JOB`` child and what it recorded (epoch marks, peak MB); its
    output goes to our stderr on failure."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", TIMED_JOB, str(record), *command],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(f"job failed ({child.returncode}): {' '.join(command)}\n{child.stdout}")
    return wall, json.loads(record.read_text())


def mnist_from_fashion(root: Path, fashion_dir: Path) -> None:
    """Fashion-MNIST's four IDX files, extracted into the folder torchvision's MNIST reads."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        if (fashion_dir / name).is_file():
            shutil.copyfile(fashion_dir / name, raw / name)
        elif (fashion_dir / f"{name}.gz").is_file():
            with gzip.open(fashion_dir / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            sys.exit(f"{fashion_dir}: no {name}(.gz); apt-get install dataset-fashion-mnist or pass --fashion-dir")


def write_cifar_like(root: Path, seed: int = 0) -> None:
    """Five train batches and a test batch of random 32x32 RGB images in CIFAR-10's pickle layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, 10000).tolist(),
            b"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(10000)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": 10000,
            b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)


def assert_cifar_md5_rejects(root: Path) -> None:
    """The study's CIFAR path (torchvision's integrity check) must refuse these files."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(str(root), train=True, download=False)
    except RuntimeError:
        return
    sys.exit(f"{root}: torchvision accepted random CIFAR-shaped files: the md5 check is not in force")


def prepare_data(config: dict, datasets: list[str], root: Path, data: Path, fashion_dir: Path) -> dict[str, float]:
    """Each dataset's .npz at full size; returns the prepare seconds."""
    seconds = {}
    for name in datasets:
        entry = config["datasets"][name]
        source, out = entry["source"], data / f"{name}.npz"
        start = time.perf_counter()
        if source == "mnist":
            mnist_from_fashion(root, fashion_dir)
            prepare("mnist", entry["prepare"], root, out)
        elif source == "cifar":
            write_cifar_like(root)
            assert_cifar_md5_rejects(root)
            with warnings.catch_warnings():  # "differ from the official CIFAR-10 release": expected
                warnings.simplefilter("ignore", UserWarning)
                save_dataset(out, build_dataset("cifar", entry["prepare"], root))
        else:
            prepare(source, entry["prepare"], root, out)
        seconds[name] = time.perf_counter() - start
    return seconds


def time_run(config: dict, dataset: str, prior: str, latent: int, epochs: int, work: Path) -> dict:
    """Train ``epochs`` epochs and analyse once; extrapolate training to the config's epochs."""
    entry = config["datasets"][dataset]
    spec = {
        "dataset": dataset,
        "prior": dict(name=prior, **config["priors"][prior]),
        "latent": latent,
        "seed": config["study"]["seeds"][0],
        "model": entry["model"],
        "train": {**entry["train"], "epochs": epochs},
    }
    run_dir, data = work / "runs" / dataset / prior / f"z{latent}", work / "data" / f"{dataset}.npz"
    record = run_dir.parent / f"z{latent}.job.json"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    threads = str(config["resources"]["train"]["threads"])
    wall, trained = run_job(["train", "--data", str(data), "--spec", canonical_json(spec), "--run-dir",
                             str(run_dir), "--threads", threads, "--device", "cpu"], record)
    marks, train_mb = trained["marks"], trained["peak_mb"]
    epoch_s = float(np.mean(np.diff(marks[1:-1]))) if epochs >= 3 else float(np.diff(marks[:2])[0])
    full_epochs = entry["train"]["epochs"]
    analyze_s, analyzed = run_job(["analyze", "--data", str(data), "--run-dir", str(run_dir), "--params",
                                   canonical_json(config["analysis"]),
                                   "--threads", str(config["resources"]["analyze"]["threads"])], record)
    analyze_mb = analyzed["peak_mb"]
    return {"dataset": dataset, "prior": prior, "latent": latent, "epoch_s": epoch_s, "epochs": full_epochs,
            "train_s": wall + (full_epochs - epochs) * epoch_s, "train_mb": train_mb,
            "analyze_s": analyze_s, "analyze_mb": analyze_mb}


def schedule(chains: list[tuple[float, float]], cores: int) -> float:
    """Makespan of train -> analyze chains on ``cores`` one-thread slots, ready analyses first."""
    free = [0.0] * cores
    trains, ready, end = list(chains), [], 0.0
    while trains or ready:
        slot = int(np.argmin(free))
        now = free[slot]
        runnable = [r for r in ready if r[0] <= now]
        if runnable:
            job = min(runnable)
            ready.remove(job)
            free[slot] = now + job[1]
        elif trains:
            train_s, analyze_s = trains.pop(0)
            free[slot] = now + train_s
            ready.append((free[slot], analyze_s))
        else:
            free[slot] = min(r[0] for r in ready)
        end = max(end, free[slot])
    return end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="files merged over config.yaml (default: config.yaml alone, the default study)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per run (>= 2; the first is warm-up)")
    parser.add_argument("--cores", type=int, default=8, help="the `snakemake --cores` of the estimate")
    parser.add_argument("--datasets", nargs="+", help="subset of the study's datasets (default: all)")
    parser.add_argument("--priors", nargs="+", help="subset of the study's priors (default: all)")
    parser.add_argument("--fashion-dir", type=Path, default=DEBIAN_FOLDER, help="Fashion-MNIST IDX files (.gz or not)")
    parser.add_argument("--workdir", type=Path, help="keep the data and runs here (default: a temporary folder)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is a warm-up)")
    config = load_config(*args.configfile)
    datasets = args.datasets or config["study"]["datasets"]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="full_scale_"))
    try:
        (work / "data").mkdir(parents=True, exist_ok=True)
        prepare_s = prepare_data(config, datasets, work / "raw", work / "data", args.fashion_dir)
        rows = []
        print(f"{'dataset':<12} {'prior':<8} {'z':>3} {'s/epoch':>8} {'epochs':>6} {'train_s':>8} "
              f"{'train_MB':>8} {'analyze_s':>9} {'analyze_MB':>10}")
        for dataset in datasets:
            for prior in [p for p in dataset_priors(config, dataset) if not args.priors or p in args.priors]:
                for latent in config["datasets"][dataset]["latent_sizes"]:
                    row = time_run(config, dataset, prior, latent, args.epochs, work)
                    rows.append(row)
                    print(f"{dataset:<12} {prior:<8} {latent:>3} {row['epoch_s']:>8.2f} {row['epochs']:>6} "
                          f"{row['train_s']:>8.1f} {row['train_mb']:>8.0f} {row['analyze_s']:>9.1f} "
                          f"{row['analyze_mb']:>10.0f}", flush=True)
        report_study(config, rows, prepare_s, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def report_study(config: dict, rows: list[dict], prepare_s: dict[str, float], args: argparse.Namespace) -> None:
    """The study's wall time on ``--cores`` from the per-run times (every seed costs the same)."""
    seeds = len(config["study"]["seeds"])
    chains = [(r["train_s"], r["analyze_s"]) for r in rows for _ in range(seeds)]
    job_s = sum(t + a for t, a in chains)
    makespan = schedule(chains, args.cores)
    prep = max(prepare_s.values())  # the datasets are prepared side by side
    print("\nprepare (full size, s): " + ", ".join(f"{k} {v:.1f}" for k, v in prepare_s.items()))
    print(f"{len(chains)} runs ({len(rows)} timed x {seeds} seeds), {args.epochs} epochs timed per run and "
          f"extrapolated to the config's epochs; {job_s / 60:.1f} min of train + analyze job time")
    print(f"implied `snakemake --cores {args.cores}` wall time: {(prep + makespan) / 60:.1f} min "
          f"(prepare {prep:.0f} s + list schedule of the runs {makespan / 60:.1f} min; "
          f"bound job time / cores {job_s / args.cores / 60:.1f} min), plus the report job (not timed)")
    peak = max(max(r["train_mb"], r["analyze_mb"]) for r in rows)
    print(f"peak RSS of one job {peak:.0f} MB; {args.cores} at once <= {args.cores * peak / 1024:.1f} GB "
          f"(declared mem_mb: train {config['resources']['train']['mem_mb']}, "
          f"analyze {config['resources']['analyze']['mem_mb']})")


if __name__ == "__main__":
    main()
