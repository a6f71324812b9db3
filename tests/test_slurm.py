"""The `slurm` profile: dry runs (always), and a real one-node Slurm cluster (tests/slurm/cluster.sh).

The cluster tests (marker `slurm`) run only when asked, with SPARSE_VAE_SLURM=1 (tests/conftest.py;
`.ci/run` sets it): they need root, install slurm-wlm + munge with apt-get if missing and start
daemons. They skip when not root or when apt-get or the daemons fail (the reason and log tails are
in the skip message). About three minutes on 2 cores; the cluster is stopped afterwards unless it
was already up.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = REPO / "slurm"
TINY = REPO / "presets" / "tiny.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # pytest-timeout: beyond any suite-wide default (apt + a study)
]

# The test cluster has no accounting database (sacct: "Slurm accounting storage is disabled"), so
# job states come from squeue (cluster.sh keeps finished jobs there for MinJobAge=600 s), and the
# first status check comes after 2 s instead of the profile's 20 s. Everything else is the profile.
TEST_CLUSTER_ARGS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
]
# Group jobs are named by a uuid, single jobs by a number.
SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+)")
GROUP_JOB = re.compile(r"^\s*(?:\[.*\] )?Group job run\b", flags=re.M)


def _env() -> dict[str, str]:
    # Nothing from an enclosing Slurm job (the plugin would warn and strip it anyway).
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}


def snakemake(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env(), check=False,
    )


def squeue_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """{job id: (state, comment)} of finished and running jobs still known to slurmctld."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k", "--jobs", ",".join(job_ids)],
        capture_output=True, text=True, check=True, env=_env(),
    ).stdout
    rows = (line.split("|", 2) for line in out.splitlines() if line.strip())
    return {job: (state, comment) for job, state, comment in rows}


def job_details(job_id: str) -> str:
    """`scontrol show job` of a job slurmctld still knows (finished ones: MinJobAge)."""
    return subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True, env=_env()
    ).stdout


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    """A running one-node cluster; brought up here (and torn down after) unless already up."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (tests/slurm/cluster.sh installs and starts daemons)")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and apt-get is unavailable to install it")
    try:
        up = subprocess.run(
            ["bash", str(CLUSTER), "up"], capture_output=True, text=True, timeout=900, env=_env(), check=False
        )
    except subprocess.TimeoutExpired as error:
        subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, env=_env(), check=False)
        pytest.skip(f"cluster.sh up timed out: {error.stderr!r}"[-3000:])
    if up.returncode != 0:
        subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, env=_env(), check=False)
        pytest.skip("could not start the local Slurm cluster:\n" + (up.stdout + up.stderr)[-3000:])
    started_here = "already up" not in up.stderr
    try:
        yield
    finally:
        if started_here:
            subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, text=True, env=_env(), check=False)


def job_field(details: str, name: str) -> str:
    """One `Name=value` field of `scontrol -o show job` output."""
    match = re.search(rf"\b{name}=(\S+)", details)
    assert match, (name, details)
    return match.group(1)


def minutes(time_limit: str) -> int:
    """Slurm's [D-]HH:MM:SS time limit in minutes."""
    days, _, clock = time_limit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def megabytes(memory: str) -> int:
    """Slurm's memory field (1000M, 2G) in MB."""
    return int(float(memory[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[memory[-1]])


def tiny_runs(root: Path) -> list[Path]:
    config = yaml.safe_load(TINY.read_text())
    return [
        root / "results" / "tiny" / "runs" / d / p / f"z{z}" / f"seed{s}"
        for d in config["study"]["datasets"]
        for p in config["study"]["priors"]
        for z in config["datasets"][d]["latent_sizes"]
        for s in config["study"]["seeds"]
    ]


def dry_run_group_jobs(out: str) -> int:
    """Group jobs (= Slurm submissions: every train/analyze job is in one) a dry run plans."""
    return len(GROUP_JOB.findall(out))


def test_profile_resolves_from_the_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`snakemake --profile slurm` in the repo root picks ./slurm/config.yaml (dry run, no cluster),
    and plans one Slurm job per run: each run's train and analyze jobs form one group job."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    _, profile_file = get_profile_dir("slurm")
    assert profile_file.resolve() == PROFILE / "config.yaml"
    assert yaml.safe_load(profile_file.read_text())["executor"] == "slurm"

    had_metadata = (REPO / ".snakemake").exists()
    result = snakemake(
        "--profile", "slurm", "-n", "-d", str(tmp_path), "--configfile", str(TINY), cwd=REPO, timeout=180
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # "Using profile slurm for ..." or, with the workflow profile profiles/default, "Using profiles
    # slurm and workflow specific profile ...".
    assert re.search(r"Using profiles? slurm\b", out), out
    runs = len(tiny_runs(tmp_path))
    for rule in ("train", "analyze"):
        assert any(line.split()[:2] == [rule, str(runs)] for line in out.splitlines()), out
    assert dry_run_group_jobs(out) == runs, out
    assert had_metadata or not (REPO / ".snakemake").exists(), "the dry run wrote into the repo"


def test_group_components_pack_runs(tmp_path: Path) -> None:
    """--group-components run=3 plans a third as many Slurm jobs (dry run, no cluster)."""
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-n", "-d", str(tmp_path),
        "--configfile", str(TINY), "--group-components", "run=3", cwd=tmp_path, timeout=180,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert dry_run_group_jobs(out) == math.ceil(len(tiny_runs(tmp_path)) / 3), out


@pytest.mark.slurm
@pytest.mark.parametrize("runs_per_job", [1, 3])
def test_tiny_study_runs_through_slurm(
    slurm_cluster: None, tmp_path: Path, runs_per_job: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tiny study through Slurm: at most one Slurm job per run (the profile's default), and
    fewer with runs packed; each job's CPUs, memory and time limit are what its runs declare."""
    packing = []
    if runs_per_job > 1:  # the test node has nproc CPUs: --cores caps a packed job's CPUs
        cores = min(runs_per_job, len(os.sched_getaffinity(0)))
        packing = ["--group-components", f"run={runs_per_job}", "--cores", str(cores)]
    else:
        cores = 1
    start = time.monotonic()
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), "--slurm-keep-successful-logs", *TEST_CLUSTER_ARGS, *packing,
        cwd=tmp_path, timeout=900,
    )
    wall = time.monotonic() - start
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]

    for name in ("metrics.csv", "summary.csv", "verdicts.csv", "report.html"):
        assert (tmp_path / "results" / "tiny" / "report" / name).is_file(), name
    runs = tiny_runs(tmp_path)
    for run in runs:
        for name in ("model.pt", "train.json", "metrics.json"):
            assert (run / name).is_file(), run / name

    # Every train and analyze job (and nothing else: download/prepare/report are localrules) went
    # through sbatch inside a group job, ran, and left its Slurm log.
    job_ids = SUBMITTED.findall(out)
    with capsys.disabled():
        print(f"\n[slurm] tiny study, {runs_per_job} run(s) per job: {len(job_ids)} Slurm jobs "
              f"for {len(runs)} runs, {wall:.0f} s wall")
    assert len(job_ids) == math.ceil(len(runs) / runs_per_job), out[-6000:]
    states = squeue_states(job_ids)
    assert set(states) == set(job_ids), states
    assert {state for state, _ in states.values()} == {"COMPLETED"}, states
    assert {comment for _, comment in states.values()} == {"rule_run_analyze_train"}, states
    logs = list((tmp_path / ".snakemake" / "slurm_logs" / "group_run_analyze_train").glob("*.log"))
    assert len(logs) == len(job_ids), logs

    # Group resources (tiny.yaml: train and analyze 1 thread, 1000 MB, 10 min each): runs side by
    # side up to `cores`, so CPUs and memory add up across a layer and the time limit across layers
    # (ceil(runs / cores) layers of train, then as many of analyze).
    config = yaml.safe_load(TINY.read_text())["resources"]
    layers = math.ceil(runs_per_job / cores)
    for job in job_ids:
        details = job_details(job)
        assert "gpu" not in details  # resources.train.gpu is 0 in the preset: no GPU is requested
        assert int(job_field(details, "NumCPUs")) == cores * config["train"]["threads"], details
        assert megabytes(job_field(details, "MinMemoryNode")) == cores * config["train"]["mem_mb"], details
        expected = layers * (config["train"]["runtime"] + config["analyze"]["runtime"])
        assert minutes(job_field(details, "TimeLimit")) == expected, details


@pytest.mark.slurm
def test_gpu_request_reaches_slurm(slurm_cluster: None, tmp_path: Path) -> None:
    """resources.train.gpu/gpu_model in a --configfile become sbatch --gpus=<model>:<n>, and two
    GPU runs packed into one job share one GPU one after another (not --gpus=fake:2).

    cluster.sh gives the node one pretend GPU of type "fake" (device: cpu, so nothing uses it).
    """
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(yaml.safe_dump({"resources": {"train": {
        "threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 1, "gpu_model": "fake", "device": "cpu",
    }}}))
    targets = [f"results/tiny/runs/synthetic/{prior}/z2/seed1/train.json" for prior in ("normal", "laplace")]
    # Targets first: --configfile and --group-components take several values.
    result = snakemake(
        *targets, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), str(gpu), *TEST_CLUSTER_ARGS, "--group-components", "run=2",
        cwd=tmp_path, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert all((tmp_path / target).is_file() for target in targets)
    (job_id,) = SUBMITTED.findall(out)
    details = job_details(job_id)
    assert "TresPerJob=gres:gpu:fake:1" in details, details
    assert minutes(job_field(details, "TimeLimit")) == 2 * 10, details  # one after the other


# Two independent "runs": `ok` alone, and `first` -> `boom` as one group job (like train -> analyze).
FAILING_SNAKEFILE = """
rule all:
    input: "ok.txt", "boom.txt"

rule ok:
    output: "ok.txt"
    resources: mem_mb=200, runtime=5
    shell: "echo fine > {output}"

rule first:
    output: "first.txt"
    group: "run"
    resources: mem_mb=200, runtime=5
    shell: "echo trained > {output}"

rule boom:
    input: "first.txt"
    output: "boom.txt"
    group: "run"
    log: "logs/boom.log"
    resources: mem_mb=200, runtime=5
    shell: "echo 'deliberate failure 7f3a' > {log}; echo 'stderr marker 7f3a' >&2; exit 3"
"""


@pytest.mark.slurm
def test_failing_job_is_reported(slurm_cluster: None, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    result = snakemake("--profile", str(PROFILE), *TEST_CLUSTER_ARGS, cwd=tmp_path, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    # The group and the failed rule (with its wildcards, if any) are named; the Slurm state of a
    # group job is not printed (checked with squeue below).
    assert "Error in group run" in out, out
    assert "Error in rule boom" in out, out
    # The profile's show-failed-logs prints the rule's log and the job's Slurm log (its stderr).
    assert "deliberate failure 7f3a" in out, out
    assert "stderr marker 7f3a" in out, out
    # keep-going: the independent job still finished; retries: 1: the group was submitted twice.
    assert (tmp_path / "ok.txt").read_text().strip() == "fine"
    assert not (tmp_path / "boom.txt").exists()
    group_logs = sorted((tmp_path / ".snakemake" / "slurm_logs" / "group_run_boom_first").glob("*.log"))
    assert len(group_logs) == 2, group_logs
    assert all("stderr marker 7f3a" in log.read_text() for log in group_logs)
    job_ids = [log.stem for log in group_logs]
    assert {state for state, _ in squeue_states(job_ids).values()} == {"FAILED"}

    # keep-incomplete: the group's finished step is kept, so a rerun redoes only the failed one.
    assert (tmp_path / "first.txt").read_text().strip() == "trained"
    rerun = snakemake("--profile", str(PROFILE), "-n", cwd=tmp_path, timeout=180)
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", rerun.stdout + rerun.stderr, flags=re.M))
    assert "boom" in planned and "first" not in planned and "ok" not in planned, rerun.stdout
