"""Reruns: after the tiny study has run, an edit reruns exactly the jobs it invalidated.

The study runs once (about a minute on 2 cores) in a copy of the repository, so the tests can
edit the package code of the copy; each check is then a dry run against an edited config.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# A job of a dry run: "rule NAME:" and its indented details; inside a group job ("Group job run")
# the same block is indented once more.
JOB_PATTERN = re.compile(r"^( *)rule (\w+):\n((?:\1    .*\n)+)", re.MULTILINE)

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "-d", str(workdir),
         "--configfile", str(config), *args],
        capture_output=True, text=True, timeout=600,
    )


def planned_jobs(workdir: Path, config: Path, *args: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute (besides the `all` target)."""
    result = snakemake(workdir, config, "-n", *args)
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = set()
    for _, rule, body in JOB_PATTERN.findall(result.stdout):
        match = re.search(r"^ +wildcards: (.*)$", body, re.MULTILINE)
        if rule != "all":
            jobs.add((rule, match.group(1) if match else ""))
    return jobs


def run_jobs(dataset: str, prior: str, latent: int, pack: int = 1) -> set[tuple[str, str]]:
    """The train and analyze jobs of one pack (the tiny study's one seed is pack 1)."""
    wildcards = f"dataset={dataset}, prior={prior}, latent={latent}"
    return {(f"train_pack{pack}", wildcards), (f"analyze_pack{pack}", wildcards)}


TINY_GROUPS = [("synthetic", p, 2) for p in ("normal", "laplace", "cauchy")] + [
    ("digits", p, 2) for p in ("normal", "laplace", "cauchy")] + [("natural", p, 3) for p in ("normal", "laplace", "cauchy")]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the repository with the tiny study run to completion."""
    workdir = tmp_path_factory.mktemp("study") / "repo"
    def outputs_and_caches(folder: str, names: list[str]) -> set[str]:
        top = {".git", "results", "data", ".snakemake"} if Path(folder) == REPO else set()
        return {n for n in names if n in top or n in {"__pycache__", ".pytest_cache"}}

    shutil.copytree(REPO, workdir, ignore=outputs_and_caches)
    config = yaml.safe_load((workdir / "presets" / "tiny.yaml").read_text())
    result = snakemake(workdir, workdir / "presets" / "tiny.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def dry_run_after(study: tuple[Path, dict], edit: Callable[[dict], None]) -> set[tuple[str, str]]:
    workdir, config = study
    edited = yaml.safe_load(yaml.safe_dump(config))
    edit(edited)
    path = workdir / "edited.yaml"
    path.write_text(yaml.safe_dump(edited))
    return planned_jobs(workdir, path)


REPORT = {("report", "")}


def test_second_run_does_nothing(study: tuple[Path, dict]) -> None:
    workdir, _ = study
    assert planned_jobs(workdir, workdir / "presets" / "tiny.yaml") == set()


def test_prior_setting_reruns_only_that_prior(study: tuple[Path, dict]) -> None:
    jobs = dry_run_after(study, lambda c: c["priors"]["laplace"].update(kl_samples=2))
    expected = run_jobs("synthetic", "laplace", 2) | run_jobs("digits", "laplace", 2) | run_jobs(
        "natural", "laplace", 3)
    assert jobs == expected | REPORT


def test_dataset_training_setting_reruns_only_that_dataset(study: tuple[Path, dict]) -> None:
    jobs = dry_run_after(study, lambda c: c["datasets"]["digits"]["train"].update(lr=2e-3))
    expected = set().union(*(run_jobs("digits", p, 2) for p in ("normal", "laplace", "cauchy")))
    assert jobs == expected | REPORT


def test_report_setting_reruns_only_the_report(study: tuple[Path, dict]) -> None:
    assert dry_run_after(study, lambda c: c["report"].update(confidence=0.9)) == REPORT


def test_analysis_setting_reruns_analyses_and_report(study: tuple[Path, dict]) -> None:
    jobs = dry_run_after(study, lambda c: c["analysis"].update(iwae_samples=16))
    assert {rule for rule, _ in jobs} == {"analyze_pack1", "report"}
    assert len(jobs) == 9 + 1


def test_dataset_preparation_setting_reruns_that_dataset_chain(study: tuple[Path, dict]) -> None:
    jobs = dry_run_after(study, lambda c: c["datasets"]["natural"]["prepare"].update(n_train=600))
    expected = set().union(*(run_jobs("natural", p, 3) for p in ("normal", "laplace", "cauchy")))
    assert jobs == expected | {("prepare", "dataset=natural")} | REPORT


def test_deleted_metrics_reruns_that_analysis_and_report(study: tuple[Path, dict]) -> None:
    workdir, config = study
    metrics = workdir / "results/tiny/runs/digits/cauchy/z2/seed1/metrics.json"
    saved = metrics.read_bytes()
    metrics.unlink()
    try:
        jobs = planned_jobs(workdir, workdir / "presets" / "tiny.yaml")
    finally:
        metrics.write_bytes(saved)
    wildcards = "dataset=digits, prior=cauchy, latent=2"
    assert jobs == {("analyze_pack1", wildcards)} | REPORT


def test_seeds_of_a_new_pack_rerun_none_of_the_old_ones(study: tuple[Path, dict]) -> None:
    """Seeds 9 and 10 are pack 2 (pack_size 8): only pack 2's jobs are planned, pack 1 is untouched;
    seed 2 instead joins pack 1, whose jobs all rerun (its members changed)."""
    jobs = dry_run_after(study, lambda c: c["study"].update(seeds=[1, 9, 10]))
    assert jobs == set().union(*(run_jobs(*group, pack=2) for group in TINY_GROUPS)) | REPORT
    jobs = dry_run_after(study, lambda c: c["study"].update(seeds=[1, 2]))
    assert jobs == set().union(*(run_jobs(*group) for group in TINY_GROUPS)) | REPORT


@contextmanager
def edited(path: Path, change: Callable[[str], str]) -> Iterator[None]:
    """Apply a text change to one file of the copy, restoring it afterwards."""
    original = path.read_text()
    path.write_text(change(original))
    try:
        yield
    finally:
        path.write_text(original)


def rename_a_local(source: str) -> str:
    """Rename the first local variable assigned in the module's first function (every use of it in
    that function): a refactor that changes no behaviour."""
    tree = ast.parse(source)
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                    and any(isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) for n in node.body))
    target = next(n.targets[0].id for n in function.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name))
    lines = source.splitlines(keepends=True)
    start, end = function.lineno - 1, function.end_lineno
    body = "".join(lines[start:end])
    renamed = re.sub(rf"\b{target}\b", f"{target}_renamed", body)
    assert renamed != body
    return "".join(lines[:start]) + renamed + "".join(lines[end:])


def bump(name: str) -> Callable[[str], str]:
    """versions.py with one version + 1: `TRAIN`, `ANALYSIS`, `REPORT` or a DATA source's name."""
    def change(text: str) -> str:
        pattern = rf'^({name} = )(\d+)' if name.isupper() else rf'^(    "{name}": )(\d+)'
        bumped, count = re.subn(pattern, lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", text, flags=re.MULTILINE)
        assert count == 1, name
        return bumped
    return change


def stage_of(rule: str) -> str:
    return {"prepare": "data", "download": "data", "baseline": "analyze", "estimator_controls": "controls",
            "report": "report"}.get(
        rule, "train" if rule.startswith("train") else "analyze" if rule.startswith("analyze") else rule)


@pytest.fixture(scope="module")
def every_job(study: tuple[Path, dict]) -> set[tuple[str, str]]:
    """Every job of the tiny study (a forced dry run)."""
    workdir, _ = study
    return planned_jobs(workdir, workdir / "presets" / "tiny.yaml", "--forceall")


def test_comments_and_a_renamed_local_rerun_nothing(study: tuple[Path, dict]) -> None:
    """Edits that move no number (a comment in training and analysis code, a renamed local variable
    in report code) plan no job: params carry stage versions, not source bytes."""
    workdir, _ = study
    package = workdir / "src/sparse_vae"
    comment = lambda text: text + "\n# an edit that changes nothing\n"  # noqa: E731
    with edited(package / "train.py", comment), edited(package / "analysis/metrics.py", comment), \
            edited(package / "report/tables.py", rename_a_local):
        assert planned_jobs(workdir, workdir / "presets" / "tiny.yaml") == set()


@pytest.mark.parametrize("version, stages", [
    ("TRAIN", {"train", "analyze", "report"}),
    ("ANALYSIS", {"analyze", "controls", "report"}),   # the estimator controls are analysis code, not trained
    ("REPORT", {"report"}),
    ("CONTROLS", {"controls", "report"}),   # the controls' own design: their job and the report
])
def test_a_stage_version_bump_reruns_that_stage_and_what_follows(study: tuple[Path, dict], every_job: set,
                                                                 version: str, stages: set[str]) -> None:
    workdir, _ = study
    with edited(workdir / "src/sparse_vae/versions.py", bump(version)):
        jobs = planned_jobs(workdir, workdir / "presets" / "tiny.yaml")
    assert jobs == {job for job in every_job if stage_of(job[0]) in stages}


def test_a_data_version_bump_reruns_only_that_sources_chain(study: tuple[Path, dict], every_job: set) -> None:
    """`DATA['natural'] + 1`: natural's prepare, its trainings and analyses, and the report."""
    workdir, _ = study
    with edited(workdir / "src/sparse_vae/versions.py", bump("natural")):
        jobs = planned_jobs(workdir, workdir / "presets" / "tiny.yaml")
    expected = {job for job in every_job if "dataset=natural" in job[1]} | REPORT
    assert {rule for rule, _ in expected} >= {"prepare", "report"} and len(expected) > 2
    assert jobs == expected


def test_snakemake_report_bundles_tables_and_figures(study: tuple[Path, dict]) -> None:
    workdir, _ = study
    bundle = workdir / "snakemake-report.zip"
    result = snakemake(workdir, workdir / "presets" / "tiny.yaml", "--report", str(bundle))
    assert result.returncode == 0, result.stderr[-3000:]
    names = zipfile.ZipFile(bundle).namelist()
    for expected in ("metrics.csv", "summary.csv", "verdicts.csv"):
        assert any(name.endswith(expected) for name in names), expected
    assert sum(name.endswith(".png") for name in names) >= 4
    # the study's report.html as a bundled output (the bundle's own index is <name>/report.html)
    assert any("/data/raw/" in name and name.endswith("/report.html") for name in names), "report.html missing"
    # a run's own figure (analyze's figures/ directory), not only the report's composite panels
    assert any(name.endswith("/reconstructions.png") for name in names), "no per-run figure in the bundle"


def test_readme_generator_reproduces_the_report_it_is_given(study: tuple[Path, dict], tmp_path: Path) -> None:
    """`sparse-vae readme` writes every verdict of the study's verdicts.csv, with summary.csv's means,
    between the README markers; --check then agrees, and fails once a number is edited by hand."""
    import pandas as pd

    from sparse_vae.report.readme import markers

    BEGIN, END = markers("tiny")
    workdir, _ = study
    report_dir = workdir / "results/tiny/report"
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nstale\n{END}\n\nafter\n")
    cli = [sys.executable, "-m", "sparse_vae", "readme", "--report-dir", str(report_dir), "--readme", str(readme),
           "--study", "tiny"]
    assert subprocess.run(cli, capture_output=True, text=True).returncode == 0
    text = readme.read_text()
    assert text.startswith("# title\n") and text.endswith("\nafter\n") and "stale" not in text
    verdicts = pd.read_csv(report_dir / "verdicts.csv")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == len(verdicts)
    for line, verdict in zip(rows, verdicts.itertuples()):
        dataset = "–" if pd.isna(verdict.dataset) else verdict.dataset
        assert f"| {dataset} |" in line and f"**{verdict.verdict}**" in line
    headline = [line for line in text.splitlines() if line.startswith("- ")]  # one line per claim
    assert len(headline) == verdicts.groupby(["conclusion", "claim"]).ngroups
    for line in headline:
        assert any(f"{v} on " in line or f"{v} (no dataset for it in this study)" in line
                   or f"{v} (study-wide)" in line for v in verdicts["verdict"])
    summary = pd.read_csv(report_dir / "summary.csv").dropna(subset=["mean"])
    mse = summary[summary["metric"] == "mse"].iloc[0]
    from sparse_vae.report.readme import _num
    assert f"{mse.prior} {_num(mse['mean'])} ± " in text
    assert subprocess.run([*cli, "--check"], capture_output=True, text=True).returncode == 0
    readme.write_text(text.replace(f"{mse.prior} {_num(mse['mean'])}", f"{mse.prior} 12345", 1))
    check = subprocess.run([*cli, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "differs" in check.stderr


def test_another_study_leaves_this_one_up_to_date(study: tuple[Path, dict]) -> None:
    """Each study writes into its own `results` folder: running a second study in the same checkout
    (here a one-run study with its own folder, sharing dataset names with the tiny one) leaves
    the tiny study with nothing to do, and never touches its files."""
    workdir, config = study
    tiny_report = workdir / "results/tiny/report/metrics.csv"
    before = tiny_report.read_bytes()
    other = yaml.safe_load(yaml.safe_dump(config))
    other["results"] = "results/other"
    other["study"] = {"datasets": ["synthetic"], "priors": ["normal"], "seeds": [1]}
    path = workdir / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    result = snakemake(workdir, path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "results/other/report/metrics.csv").is_file()
    assert planned_jobs(workdir, workdir / "presets" / "tiny.yaml") == set()
    assert tiny_report.read_bytes() == before
