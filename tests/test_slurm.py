"""The `slurm` profile: dry runs (always), and a real one-node Slurm cluster (tests/slurm/cluster.sh).

The cluster tests (marker `slurm`) run only when asked, with SPARSE_VAE_SLURM=1 (tests/conftest.py;
`.ci/run` sets it): they need root, install slurm-wlm + munge (+ slurmdbd + mariadb-server) with
apt-get if missing and start daemons. They skip when not root or when apt-get or the daemons fail
(the reason and log tails are in the skip message). About 16 minutes on 2 busy cores; the cluster is
stopped afterwards unless it was already up.

Why it measures instead of trusting the request: the executor plugin runs a packed job's jobs one
at a time (its inner Snakemake gets `--jobs 1`), whatever the job reserved. So every packed job is
checked against what actually ran in it: its job steps (`sacct`, with accounting) and the start and
end of each train/analyze job in its Slurm log (any cluster), whether they overlapped, and whether
the requested time limit covers the declared runtimes as they were scheduled (the sum in series,
the longest per layer of overlapping jobs) and the requested CPUs match the peak in use.
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
from dataclasses import dataclass
from datetime import datetime
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

# The first status check after 2 s instead of the profile's 20 s. With accounting the plugin asks
# `sacct` (its default); without, it must ask `squeue` (cluster.sh keeps finished jobs there for
# MinJobAge=600 s). Everything else is the profile.
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]
STATUS_ARGS = {"slurmdbd": FAST_STATUS, "none": [*FAST_STATUS, "--slurm-status-command", "squeue"]}
# Group jobs are named by a uuid, single jobs by a number.
SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+)")
GROUP_JOB = re.compile(r"^\s*(?:\[.*\] )?Group job run\b", flags=re.M)
# A train/analyze job is one pack (dataset, prior, latent and a chunk of seeds: rule *_pack<n>).
WILDCARDS = re.compile(r"wildcards: dataset=(\w+), prior=(\w+), latent=(\d+)")


def _env() -> dict[str, str]:
    # Nothing from an enclosing Slurm job (the plugin would warn and strip it anyway).
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}


def snakemake(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env(), check=False,
    )


def slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, env=_env()).stdout


def job_details(job_id: str) -> str:
    """`scontrol show job` of a job slurmctld still knows (finished ones: MinJobAge)."""
    return slurm("scontrol", "-o", "show", "job", job_id)


def job_field(details: str, name: str) -> str:
    """One `Name=value` field of `scontrol -o show job` output."""
    match = re.search(rf"\b{name}=(\S+)", details)
    assert match, (name, details)
    return match.group(1)


def job_state(job_id: str) -> str:
    return job_field(job_details(job_id), "JobState")


def minutes(time_limit: str) -> int:
    """Slurm's [D-]HH:MM:SS time limit in minutes."""
    days, _, clock = time_limit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def seconds(run_time: str) -> int:
    """Slurm's [D-]HH:MM:SS run time in seconds."""
    days, _, clock = run_time.rpartition("-")
    hours, mins, secs = (int(part) for part in clock.split(":"))
    return ((int(days or 0) * 24 + hours) * 60 + mins) * 60 + secs


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


def tiny_packs() -> list[tuple[str, str, int, int]]:
    """(dataset, prior, latent, pack) of the tiny study: one train and one analyze job each."""
    config = yaml.safe_load(TINY.read_text())
    size = config["study"].get("pack_size", yaml.safe_load((REPO / "config.yaml").read_text())["study"]["pack_size"])
    packs = sorted({(s - 1) // size + 1 for s in config["study"]["seeds"]})
    return [(d, p, z, n) for d in config["study"]["datasets"] for p in config["study"]["priors"]
            for z in config["datasets"][d]["latent_sizes"] for n in packs]


def dry_run_group_jobs(out: str) -> int:
    """Group jobs (= Slurm submissions: every train/analyze job is in one) a dry run plans."""
    return len(GROUP_JOB.findall(out))


# ---- What ran inside a Slurm job ------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """One train or analyze job as it ran: wall-clock start and end (epoch seconds) and what its
    rule declared (threads, mem_mb, runtime in minutes)."""

    name: str
    start: float
    end: float
    threads: int = 1
    mem_mb: int = 0
    runtime: int = 0


def overlapping(intervals: list[Interval], slack: float = 0.0) -> bool:
    """Whether any two intervals ran at the same time (`slack` seconds of clock resolution)."""
    ordered = sorted(intervals, key=lambda i: i.start)
    latest_end = -math.inf
    for interval in ordered:
        if interval.start < latest_end - slack:
            return True
        latest_end = max(latest_end, interval.end)
    return False


def layers(intervals: list[Interval], slack: float = 0.0) -> list[list[Interval]]:
    """The jobs as they were scheduled: maximal sets of jobs linked by running at the same time.
    Serial execution gives one layer per job."""
    result: list[list[Interval]] = []
    latest_end = -math.inf
    for interval in sorted(intervals, key=lambda i: i.start):
        if result and interval.start < latest_end - slack:
            result[-1].append(interval)
        else:
            result.append([interval])
        latest_end = max(latest_end, interval.end)
    return result


def peak(intervals: list[Interval], attribute: str) -> int:
    """Largest sum of `attribute` (threads, mem_mb) over jobs running at one moment."""
    return max(
        sum(getattr(other, attribute) for other in intervals if other.start <= i.start < other.end)
        for i in intervals
    )


def sacct_steps(job_id: str) -> list[Interval]:
    """The job steps (one srun per train/analyze job) as accounting recorded them, 1 s resolution."""
    out = slurm("sacct", "-j", job_id, "--noheader", "--parsable2", "--format=JobID,Start,End,AllocCPUS")
    steps = []
    for line in out.splitlines():
        step_id, start, end, cpus = line.split("|")
        if re.fullmatch(rf"{job_id}\.\d+", step_id):  # not .batch / .extern
            steps.append(Interval(
                step_id, datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp(),
                threads=int(cpus),
            ))
    return steps


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
# A job starting in a job step's own Snakemake (there every job is a "localrule"), and its end.
JOB_START = re.compile(r"^localrule (train|analyze)_pack\d+:$")
JOB_END = re.compile(r"^Finished jobid: (\d+) \(Rule: (train|analyze)_pack\d+\)$")


def logged_jobs(slurm_log: Path, declared: dict[str, dict[str, int]]) -> list[Interval]:
    """The train and analyze jobs a group job ran, timed from Snakemake's log lines in its Slurm
    log (1 s resolution): a job step's Snakemake prints `[date]`, `localrule train:` with the job's
    jobid and wildcards, and later `[date]`, `Finished jobid: N (Rule: train)`. Works with or
    without accounting."""
    now = 0.0
    block: dict[str, str | float] | None = None  # the job block being read
    started: dict[tuple[str, str], list[tuple[float, str]]] = {}
    jobs = []
    for raw in slurm_log.read_text().splitlines():
        line = raw.strip()
        if stamp := STAMP.match(line):
            now = datetime.strptime(" ".join(stamp.group(1).split()), "%a %b %d %H:%M:%S %Y").timestamp()
        elif match := JOB_START.match(line):
            block = {"rule": match.group(1), "start": now}
        elif block is not None and (match := re.match(r"jobid: (\d+)$", line)):
            block["jobid"] = match.group(1)
        elif block is not None and (match := WILDCARDS.search(line)):
            key = (str(block["rule"]), str(block.get("jobid")))
            started.setdefault(key, []).append((float(block["start"]), "/".join(match.groups())))
            block = None
        elif match := JOB_END.match(line):
            waiting = started.get((match.group(2), match.group(1)))
            if waiting:  # else the batch step's own record of a job already closed above
                begin, run = waiting.pop(0)
                jobs.append(Interval(f"{match.group(2)} {run}", begin, now, **declared[match.group(2)]))
    return jobs


@dataclass
class PackMeasurement:
    job_id: str
    runs: int
    overlap: bool
    layers: int
    need_minutes: int
    limit_minutes: int
    cpus: int
    peak_cpus: int
    mem_mb: int
    wall_seconds: float
    steps: int | None = None  # sacct job steps, with accounting

    def line(self) -> str:
        steps = f", {self.steps} job steps in sacct" if self.steps is not None else ""
        return (f"job {self.job_id}: {self.runs} run(s), {2 * self.runs} jobs{steps}, "
                f"{'overlapping' if self.overlap else 'one at a time'} ({self.layers} layers); "
                f"{self.cpus} CPU(s) and {self.mem_mb} MB requested, {self.peak_cpus} CPU(s) in use at peak; time limit "
                f"{self.limit_minutes} min, declared runtimes as scheduled {self.need_minutes} min; "
                f"wall {self.wall_seconds:.0f} s")


def check_pack(job_id: str, declared: dict[str, dict[str, int]], accounting: bool) -> PackMeasurement:
    """Measure what ran in one Slurm job and assert that its request covers it: time limit >= the
    declared runtimes as actually scheduled, CPUs = the peak in use, memory >= the peak declared."""
    details = job_details(job_id)
    assert job_field(details, "JobState") == "COMPLETED", details
    log = Path(job_field(details, "StdOut"))
    jobs = logged_jobs(log, declared)
    runs = {tuple(match) for match in WILDCARDS.findall(log.read_text())}
    assert jobs and len(jobs) == 2 * len(runs), (log.read_text()[-4000:], jobs)
    scheduled = layers(jobs)
    need = sum(max(job.runtime for job in layer) for layer in scheduled)
    measurement = PackMeasurement(
        job_id=job_id, runs=len(jobs) // 2, overlap=overlapping(jobs), layers=len(scheduled),
        need_minutes=need, limit_minutes=minutes(job_field(details, "TimeLimit")),
        cpus=int(job_field(details, "NumCPUs")), peak_cpus=peak(jobs, "threads"),
        mem_mb=megabytes(job_field(details, "MinMemoryNode")),
        wall_seconds=seconds(job_field(details, "RunTime")),
    )
    assert measurement.limit_minutes >= need, (measurement.line(), jobs)
    assert measurement.cpus == measurement.peak_cpus, (measurement.line(), jobs)  # none idle by design
    assert measurement.mem_mb >= peak(jobs, "mem_mb"), (details, jobs)
    if accounting:  # the same story from Slurm's side: its job steps (one srun per run, plugin 2.8)
        steps = sacct_steps(job_id)
        measurement.steps = len(steps)
        assert 1 <= len(steps) <= len(jobs), (steps, jobs)
        assert overlapping(steps) == measurement.overlap, (steps, jobs)
        assert peak(steps, "threads") <= measurement.cpus, steps
    return measurement


def declared_resources(config: dict) -> dict[str, dict[str, int]]:
    return {
        rule: {key: config["resources"][rule][key] for key in ("threads", "mem_mb", "runtime")}
        for rule in ("train", "analyze")
    }


# ---- The cluster --------------------------------------------------------------------------------

class Cluster:
    """The one-node test cluster, with job accounting (slurmdbd) or without; `use` switches."""

    def __init__(self) -> None:
        self.accounting: str | None = None
        self.started_here = False

    def use(self, accounting: str) -> None:
        if accounting == self.accounting:
            return
        env = {**_env(), "SPARSE_VAE_SLURM_ACCOUNTING": accounting}
        try:
            up = subprocess.run(
                ["bash", str(CLUSTER), "up"], capture_output=True, text=True, timeout=900, env=env, check=False
            )
        except subprocess.TimeoutExpired as error:
            self.down()
            pytest.skip(f"cluster.sh up timed out: {error.stderr!r}"[-3000:])
        if up.returncode != 0:
            self.down()
            pytest.skip(f"could not start the local Slurm cluster ({accounting}):\n" + (up.stdout + up.stderr)[-3000:])
        self.started_here = self.started_here or "already up" not in up.stderr
        self.accounting = accounting

    def down(self) -> None:
        subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, text=True, env=_env(), check=False)
        self.accounting = None


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[Cluster]:
    """The cluster, brought up on first use (and torn down after) unless already up."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (tests/slurm/cluster.sh installs and starts daemons)")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and apt-get is unavailable to install it")
    cluster = Cluster()
    try:
        yield cluster
    finally:
        if cluster.started_here:
            cluster.down()


@pytest.fixture
def accounting_cluster(slurm_cluster: Cluster) -> Cluster:
    slurm_cluster.use("slurmdbd")
    return slurm_cluster


# ---- Dry runs (no cluster) ------------------------------------------------------------------------

def test_profile_resolves_from_the_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`snakemake --profile slurm` in the repo root picks ./slurm/config.yaml (dry run, no cluster),
    and plans one Slurm job per pack: each pack's train and analyze jobs form one group job."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    _, profile_file = get_profile_dir("slurm")
    assert profile_file.resolve() == PROFILE / "config.yaml"
    profile = yaml.safe_load(profile_file.read_text())
    assert profile["executor"] == "slurm"
    # Runs in a Slurm job go one at a time (plugin: inner `--jobs 1`); the profile sizes packs for
    # that with one pack_slot per job (see the cluster tests for what is measured).
    assert "pack_slot=1" in profile["resources"] and "pack_slot=local" in profile["set-resource-scopes"]

    had_metadata = (REPO / ".snakemake").exists()
    result = snakemake(
        "--profile", "slurm", "-n", "-d", str(tmp_path), "--configfile", str(TINY), cwd=REPO, timeout=180
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # "Using profile slurm for ..." or, with the workflow profile profiles/default, "Using profiles
    # slurm and workflow specific profile ...".
    assert re.search(r"Using profiles? slurm\b", out), out
    packs = tiny_packs()
    for rule in ("train", "analyze"):
        for n in sorted({pack for *_, pack in packs}):
            count = sum(pack == n for *_, pack in packs)
            assert any(line.split()[:2] == [f"{rule}_pack{n}", str(count)] for line in out.splitlines()), out
    assert dry_run_group_jobs(out) == len(packs), out
    assert had_metadata or not (REPO / ".snakemake").exists(), "the dry run wrote into the repo"


def test_group_components_pack_runs(tmp_path: Path) -> None:
    """--group-components run=3 plans a third as many Slurm jobs as packs (dry run, no cluster)."""
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-n", "-d", str(tmp_path),
        "--configfile", str(TINY), "--group-components", "run=3", cwd=tmp_path, timeout=180,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert dry_run_group_jobs(out) == math.ceil(len(tiny_packs()) / 3), out


def test_exponent_without_sign_is_explained(tmp_path: Path) -> None:
    """`lr: 1.0e6` in a config file (YAML 1.1 reads it as text) stops the run with how to write it
    (dry run, no cluster: the message the issue's Slurm user met)."""
    bad = tmp_path / "lr.yaml"
    bad.write_text("datasets:\n  synthetic:\n    train:\n      lr: 1.0e6\n")
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-n", "-d", str(tmp_path),
        "--configfile", str(TINY), str(bad), cwd=tmp_path, timeout=180,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "datasets.synthetic.train.lr: '1.0e6' is not of type 'number'" in out, out
    assert "write 1.0e+6 or 1000000.0" in out, out


def test_overlap_measures() -> None:
    """The measuring helpers on made-up timings: they can tell series from overlap."""
    serial = [Interval("a", 0, 10, runtime=10), Interval("b", 10, 20, runtime=5), Interval("c", 21, 30, runtime=7)]
    assert not overlapping(serial)
    assert [len(layer) for layer in layers(serial)] == [1, 1, 1]
    assert sum(max(j.runtime for j in layer) for layer in layers(serial)) == 22
    assert peak(serial, "threads") == 1
    parallel = [Interval("a", 0, 10, runtime=10), Interval("b", 1, 9, runtime=5), Interval("c", 12, 20, runtime=7)]
    assert overlapping(parallel)
    assert [len(layer) for layer in layers(parallel)] == [2, 1]
    assert sum(max(j.runtime for j in layer) for layer in layers(parallel)) == 17
    assert peak(parallel, "threads") == 2


# ---- On the cluster ------------------------------------------------------------------------------

@pytest.mark.slurm
@pytest.mark.parametrize("runs_per_job", [1, 3])
def test_tiny_study_runs_through_slurm(
    accounting_cluster: Cluster, tmp_path: Path, runs_per_job: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tiny study through Slurm (with accounting): one Slurm job per run as shipped, a third as
    many packed three to a job; in every job the request covers what ran, as measured."""
    packing = ["--group-components", f"run={runs_per_job}"] if runs_per_job > 1 else []
    start = time.monotonic()
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), "--slurm-keep-successful-logs", *STATUS_ARGS["slurmdbd"], *packing,
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
    assert len(job_ids) == math.ceil(len(runs) / runs_per_job), out[-6000:]
    for job in job_ids:
        details = job_details(job)
        # the group job of one pack: its train_pack<n> and analyze_pack<n> jobs
        assert re.fullmatch(r"rule_run_analyze_pack(\d+)_train_pack\1", job_field(details, "Comment")), details
        assert "gpu" not in details  # resources.train.gpu is 0 in the preset: no GPU is requested

    declared = declared_resources(yaml.safe_load(TINY.read_text()))
    measured = [check_pack(job, declared, accounting=True) for job in job_ids]
    assert sum(m.runs for m in measured) == len(runs)
    with capsys.disabled():
        print(f"\n[slurm] tiny study, {runs_per_job} run(s) per job: {len(job_ids)} Slurm jobs for "
              f"{len(runs)} runs, {wall:.0f} s wall (snakemake start to end)")
        for m in measured:
            print(f"[slurm]   {m.line()}")


@pytest.mark.slurm
def test_gpu_request_reaches_slurm(
    accounting_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """resources.train.gpu/gpu_model in a --configfile become sbatch --gpus=<model>:<n>, and two
    GPU runs packed into one job share one GPU one after another (not --gpus=fake:2): the time
    limit covers both trainings and both analyses.

    cluster.sh gives the node one pretend GPU of type "fake" (device: cpu, so nothing uses it).
    """
    gpu = tmp_path / "gpu.yaml"
    train = {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 1, "gpu_model": "fake", "device": "cpu"}
    gpu.write_text(yaml.safe_dump({"resources": {"train": train}}))
    targets = [f"results/tiny/runs/synthetic/{prior}/z2/seed1/metrics.json" for prior in ("normal", "laplace")]
    # Targets first: --configfile and --group-components take several values.
    result = snakemake(
        *targets, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), str(gpu), "--slurm-keep-successful-logs", *STATUS_ARGS["slurmdbd"],
        "--group-components", "run=2", cwd=tmp_path, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert all((tmp_path / target).is_file() for target in targets)
    (job_id,) = SUBMITTED.findall(out)
    details = job_details(job_id)
    assert "TresPerJob=gres:gpu:fake:1" in details, details
    config = yaml.safe_load(TINY.read_text())
    declared = {"train": {k: train[k] for k in ("threads", "mem_mb", "runtime")},
                "analyze": declared_resources(config)["analyze"]}
    m = check_pack(job_id, declared, accounting=True)
    assert not m.overlap  # one GPU: the trainings cannot share it
    assert m.limit_minutes == 2 * (train["runtime"] + config["resources"]["analyze"]["runtime"]), details
    with capsys.disabled():
        print(f"\n[slurm] 2 GPU runs in one job (--gpus=fake:1): {m.line()}")


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
def test_failing_job_is_reported(accounting_cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    result = snakemake("--profile", str(PROFILE), *STATUS_ARGS["slurmdbd"], cwd=tmp_path, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    # The group and the failed rule (with its wildcards, if any) are named.
    assert "Error in group run" in out, out
    assert "Error in rule boom" in out, out
    # The profile's show-failed-logs prints the rule's log and the job's Slurm log (its stderr).
    assert "deliberate failure 7f3a" in out, out
    assert "stderr marker 7f3a" in out, out
    # keep-going: the independent job still finished; retries: 0: the failed group ran once.
    assert (tmp_path / "ok.txt").read_text().strip() == "fine"
    assert not (tmp_path / "boom.txt").exists()
    group_logs = sorted((tmp_path / ".snakemake" / "slurm_logs" / "group_run_boom_first").glob("*.log"))
    assert len(group_logs) == 1, group_logs
    assert "stderr marker 7f3a" in group_logs[0].read_text()
    assert "Trying to restart job" not in out, out
    assert job_state(group_logs[0].stem) == "FAILED"

    # keep-incomplete: the group's finished step is kept, so a rerun redoes only the failed one.
    assert (tmp_path / "first.txt").read_text().strip() == "trained"
    rerun = snakemake("--profile", str(PROFILE), "-n", cwd=tmp_path, timeout=180)
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", rerun.stdout + rerun.stderr, flags=re.M))
    assert "boom" in planned and "first" not in planned and "ok" not in planned, rerun.stdout


@pytest.mark.slurm
def test_diverging_run_fails_once(accounting_cluster: Cluster, tmp_path: Path) -> None:
    """A run whose training diverges (the package's own deterministic error) is submitted once,
    fails once with its one-line error, and is not resubmitted; the other run completes."""
    diverge = tmp_path / "diverge.yaml"
    diverge.write_text(yaml.safe_dump({"datasets": {"synthetic": {"train": {"lr": 1.0e6}}}}))
    bad = "results/tiny/runs/synthetic/normal/z2/seed1/metrics.json"
    good = "results/tiny/runs/digits/normal/z2/seed1/metrics.json"
    result = snakemake(
        bad, good, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), str(diverge), *STATUS_ARGS["slurmdbd"], cwd=tmp_path, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-6000:]
    assert (tmp_path / good).is_file(), out[-6000:]
    assert not (tmp_path / bad).exists()
    job_ids = SUBMITTED.findall(out)
    assert len(job_ids) == 2, out[-6000:]  # one per run: the failed one was not resubmitted
    assert "Trying to restart job" not in out, out[-6000:]
    assert sorted(job_state(job) for job in job_ids) == ["COMPLETED", "FAILED"]
    # The one-line error (in the rule's log and the job's Slurm log, both printed) names the run.
    errors = {line.strip() for line in re.findall(r"^.*sparse-vae train: error: .*$", out, flags=re.M)}
    assert len(errors) == 1, out[-6000:]
    assert "run synthetic/normal/z2/seed1: " in errors.pop()


@pytest.mark.slurm
def test_requeued_job_is_rerun(accounting_cluster: Cluster, tmp_path: Path) -> None:
    """A transient failure: the running job is killed and requeued (`scontrol requeue`, what
    Slurm does itself after a node failure or preemption with the profile's `slurm-requeue`).
    Slurm reruns the same job and the study completes without a Snakemake resubmission."""
    targets = [f"results/tiny/runs/digits/{prior}/z2/seed1/metrics.json" for prior in ("normal", "laplace")]
    command = [
        sys.executable, "-m", "snakemake", *targets, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"),
        "-d", str(tmp_path), "--configfile", str(TINY), *STATUS_ARGS["slurmdbd"], "--group-components", "run=2",
    ]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=_env()) as process:
        lines = []
        job_id = None
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = SUBMITTED.search(line)
            if match:
                job_id = match.group(1)
                break
        assert job_id, "".join(lines)
        # Kill it once its first training has started.
        train_log = tmp_path / "results" / "tiny" / "logs" / "train" / "digits"
        deadline = time.monotonic() + 300
        while not list(train_log.glob("*/z2/pack1.log")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert job_state(job_id) == "RUNNING"
        slurm("scontrol", "requeue", job_id)
        out = "".join(lines) + process.stdout.read()
        assert process.wait(timeout=600) == 0, out[-6000:]
    assert SUBMITTED.findall(out) == [job_id], out[-6000:]  # no second submission
    details = job_details(job_id)
    assert int(job_field(details, "Restarts")) == 1, details
    assert job_field(details, "JobState") == "COMPLETED", details
    assert all((tmp_path / target).is_file() for target in targets)


@pytest.mark.slurm
def test_packed_runs_without_accounting(
    slurm_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without job accounting (no sacct; status from squeue) three runs packed into one job: the
    runs' own benchmark records show how they were scheduled, and the request covers it."""
    slurm_cluster.use("none")
    targets = [f"results/tiny/runs/synthetic/{prior}/z2/seed1/metrics.json" for prior in ("normal", "laplace", "cauchy")]
    result = snakemake(
        *targets, "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(TINY), "--slurm-keep-successful-logs", *STATUS_ARGS["none"],
        "--group-components", "run=3", cwd=tmp_path, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert re.search(r"AccountingStorageType\s*=\s*accounting_storage/none", slurm("scontrol", "show", "config"))
    (job_id,) = SUBMITTED.findall(out)
    m = check_pack(job_id, declared_resources(yaml.safe_load(TINY.read_text())), accounting=False)
    assert m.runs == 3
    with capsys.disabled():
        print(f"\n[slurm] no accounting, 3 runs in one job: {m.line()}")


def test_a_pack_job_asks_for_its_seeds(tmp_path: Path) -> None:
    """Seeds [1, 2, 3] are one pack: one train and one analyze job per (dataset, prior, latent), one
    Slurm job (group) each, with a time limit of the declared per-run runtime times its 3 seeds."""
    config = yaml.safe_load(TINY.read_text())
    config["study"].update(seeds=[1, 2, 3], datasets=["digits"], priors=["normal"])
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(
        "--profile", str(PROFILE), "-s", str(REPO / "Snakefile"), "-n", "-d", str(tmp_path),
        "--configfile", str(path), cwd=tmp_path, timeout=180,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert dry_run_group_jobs(out) == 1, out
    for rule in ("train", "analyze"):
        block = re.search(rf"rule {rule}_pack1:\n((?:\s+.*\n)+?)\s+resources: (.*)\n", out)
        assert block, out
        assert f"runtime={3 * config['resources'][rule]['runtime']}" in block.group(2), block.group(2)
