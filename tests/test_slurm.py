"""The `slurm` profile against a real one-node Slurm cluster on this machine (tests/slurm/cluster.sh).

Needs root (it installs slurm-wlm + munge with apt-get if missing and starts the daemons); skipped
otherwise, when apt-get or the daemons fail (the reason and log tails are in the skip message), and
when SPARSE_VAE_SLURM=0. Takes about three minutes on 2 cores. The cluster is stopped afterwards
unless it was already up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = REPO / "slurm"
TINY = REPO / "presets" / "tiny.yaml"

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # pytest-timeout: beyond any suite-wide default (apt + a study)
    pytest.mark.skipif(os.environ.get("SPARSE_VAE_SLURM") == "0", reason="SPARSE_VAE_SLURM=0"),
]

# The test cluster has no accounting database (sacct: "Slurm accounting storage is disabled"), so
# job states come from squeue (cluster.sh keeps finished jobs there for MinJobAge=600 s), and the
# first status check comes after 2 s instead of the profile's 20 s. Everything else is the profile.
TEST_CLUSTER_ARGS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")


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


def test_profile_resolves_from_the_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`snakemake --profile slurm` in the repo root picks ./slurm/config.yaml (dry run, no cluster)."""
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
    assert any(line.split()[:2] == ["train", "9"] for line in out.splitlines()), out
    assert had_metadata or not (REPO / ".snakemake").exists(), "the dry run wrote into the repo"


def test_tiny_study_runs_through_slurm(slurm_cluster: None, tmp_path: Path) -> None:
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), "--slurm-keep-successful-logs", *TEST_CLUSTER_ARGS,
        cwd=tmp_path, timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]

    for name in ("metrics.csv", "summary.csv", "verdicts.csv", "report.html"):
        assert (tmp_path / "results" / "tiny" / "report" / name).is_file(), name
    config = yaml.safe_load(TINY.read_text())
    runs = [
        tmp_path / "results" / "tiny" / "runs" / d / p / f"z{z}" / f"seed{s}"
        for d in config["study"]["datasets"]
        for p in config["study"]["priors"]
        for z in config["datasets"][d]["latent_sizes"]
        for s in config["study"]["seeds"]
    ]
    for run in runs:
        for name in ("model.pt", "train.json", "metrics.json"):
            assert (run / name).is_file(), run / name

    # Every train and analyze job (and nothing else: download/prepare/report are localrules) went
    # through sbatch, ran, and left its Slurm log.
    job_ids = SUBMITTED.findall(out)
    assert len(job_ids) == 2 * len(runs), out[-6000:]
    states = squeue_states(job_ids)
    assert set(states) == set(job_ids), states
    assert {state for state, _ in states.values()} == {"COMPLETED"}, states
    rules = sorted(re.sub(r"_wildcards_.*", "", comment) for _, comment in states.values())
    assert rules == sorted(["rule_train"] * len(runs) + ["rule_analyze"] * len(runs)), rules
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs"
    for rule in ("train", "analyze"):
        assert len(list((slurm_logs / f"rule_{rule}").glob("*/*.log"))) == len(runs), rule
    # resources.train.gpu is 0 in the preset: no GPU is requested.
    assert not any("gpu" in job_details(job) for job in job_ids)


def test_gpu_request_reaches_slurm(slurm_cluster: None, tmp_path: Path) -> None:
    """resources.train.gpu/gpu_model in a --configfile become sbatch --gpus=<model>:<n>.

    cluster.sh gives the node one pretend GPU of type "fake" (device: cpu, so nothing uses it).
    """
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(yaml.safe_dump({"resources": {"train": {
        "threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 1, "gpu_model": "fake", "device": "cpu",
    }}}))
    target = "results/tiny/runs/synthetic/normal/z2/seed1/train.json"
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), str(gpu), *TEST_CLUSTER_ARGS, target,
        cwd=tmp_path, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert (tmp_path / target).is_file()
    (job_id,) = SUBMITTED.findall(out)
    assert "TresPerJob=gres:gpu:fake:1" in job_details(job_id)


FAILING_SNAKEFILE = """
rule all:
    input: "ok.txt", "boom.txt"

rule ok:
    output: "ok.txt"
    resources: mem_mb=200, runtime=5
    shell: "echo fine > {output}"

rule boom:
    output: "boom.txt"
    log: "logs/boom.log"
    resources: mem_mb=200, runtime=5
    shell: "echo 'deliberate failure 7f3a' > {log}; echo 'stderr marker 7f3a' >&2; exit 3"
"""


def test_failing_job_is_reported(slurm_cluster: None, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    result = snakemake("--profile", str(PROFILE), *TEST_CLUSTER_ARGS, cwd=tmp_path, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "Error in rule boom" in out, out
    assert "SLURM status is: 'FAILED'" in out, out
    # The profile's show-failed-logs prints the rule's log and the job's Slurm log (its stderr).
    assert "deliberate failure 7f3a" in out, out
    assert "stderr marker 7f3a" in out, out
    # keep-going: the independent job still finished; retries: 1: boom was submitted twice.
    assert (tmp_path / "ok.txt").read_text().strip() == "fine"
    assert not (tmp_path / "boom.txt").exists()
    boom_logs = sorted((tmp_path / ".snakemake" / "slurm_logs" / "rule_boom").glob("*.log"))
    assert len(boom_logs) == 2, boom_logs
    assert all("stderr marker 7f3a" in log.read_text() for log in boom_logs)
    job_ids = [log.stem for log in boom_logs]
    assert {state for state, _ in squeue_states(job_ids).values()} == {"FAILED"}
