"""Whole-study robustness: kill Snakemake mid-study, rerun, and get the same numbers.

Runs a preset (default: the tiny one; `--preset presets/offline.yaml` for the real thing) in
fresh folders and checks, against an uninterrupted reference run:
1. a second `snakemake` run has nothing to do;
2. SIGTERM to snakemake mid-study (what Ctrl-C or `scancel` sends), then a plain rerun: same metrics.csv;
3. SIGKILL to snakemake and all its jobs mid-study, `snakemake --unlock`, rerun: same metrics.csv;
4. `rm -rf` the study's results folder and rerun: metrics.csv identical to the byte.

    python bench/robustness.py [--preset presets/tiny.yaml] [--kill-after 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sparse_vae.config import load_config

REPO = Path(__file__).resolve().parents[1]


def snakemake_command(workdir: Path, preset: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--configfile", str(preset), "--cores", "2", *extra]


def run(workdir: Path, preset: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(snakemake_command(workdir, preset, *extra), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{result.stderr[-3000:]}")
    return result


def interrupted_run(workdir: Path, preset: Path, results: Path, kill_after: float,
                    how: signal.Signals) -> None:
    """Start the study, send `how` after `kill_after` s (SIGKILL: to the whole process group)."""
    process = subprocess.Popen(snakemake_command(workdir, preset), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(kill_after)
    if process.poll() is not None:
        raise SystemExit(f"the study finished within {kill_after} s: use a smaller --kill-after")
    if how == signal.SIGKILL:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.send_signal(how)
    process.wait()
    time.sleep(1)
    done = sorted(p.parent.name for p in (workdir / results / "runs").rglob("metrics.json"))
    print(f"  {how.name} after {kill_after:.0f} s: {len(done)} runs analysed so far, "
          f"{len(list((workdir / results / 'runs').rglob('checkpoint.pt')))} checkpoints left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", type=Path, default=REPO / "presets/tiny.yaml")
    parser.add_argument("--kill-after", type=float, default=15.0, help="seconds before the kill")
    args = parser.parse_args()
    preset = args.preset.resolve()
    results = Path(load_config(preset)["results"])
    metrics = results / "report/metrics.csv"
    root = Path(tempfile.mkdtemp(prefix="sparse-vae-robustness-"))
    checks: list[tuple[str, bool]] = []
    try:
        reference = root / "reference"
        start = time.perf_counter()
        run(reference, preset)
        print(f"reference run: {time.perf_counter() - start:.0f} s")
        expected = (reference / metrics).read_bytes()

        again = run(reference, preset)
        checks.append(("second run does nothing", "Nothing to be done" in again.stdout + again.stderr))

        for how in (signal.SIGTERM, signal.SIGKILL):
            workdir = root / how.name.lower()
            interrupted_run(workdir, preset, results, args.kill_after, how)
            if how == signal.SIGKILL:  # a SIGKILLed snakemake cannot remove its lock
                run(workdir, preset, "--unlock")
            run(workdir, preset)
            checks.append((f"{how.name} mid-study, rerun: same metrics.csv",
                           (workdir / metrics).read_bytes() == expected))

        shutil.rmtree(reference / results)
        run(reference, preset)
        checks.append(("rm -rf results/, rerun: identical metrics.csv",
                       (reference / metrics).read_bytes() == expected))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    raise SystemExit(0 if all(ok for _, ok in checks) else 1)


if __name__ == "__main__":
    main()
