"""The Snakemake workflow: config validation before any job, DAG resolution, lint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sparse_vae.config import ConfigError, dataset_priors, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
PRESETS = ["config.yaml", "presets/offline.yaml", "presets/tiny.yaml", "presets/fashion.yaml"]


def snakemake(workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.parametrize("path", PRESETS)
def test_shipped_configs_are_valid(path: str) -> None:
    load_config(REPO / path)
    load_config(REPO / path, base=None)


@pytest.mark.parametrize("overlay", sorted(path.name for path in (REPO / "bench").glob("*.yaml")))
def test_bench_overlays_are_valid_over_the_offline_preset(overlay: str) -> None:
    """bench/*.yaml are given after presets/offline.yaml (their own comments say so)."""
    text = (REPO / "bench" / overlay).read_text()
    assert f"--configfile presets/offline.yaml bench/{overlay}" in text
    load_config(REPO / "presets/offline.yaml", REPO / "bench" / overlay)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["datasets"]["synthetic"]["train"].update(epochs=-3), "datasets.synthetic.train.epochs"),
        (lambda c: c["datasets"]["synthetic"]["train"].update(epoch=3), "unknown key datasets.synthetic.train.epoch"),
        (lambda c: c["study"]["priors"].append("student_t"), "study.priors"),
        (lambda c: c["analysis"].pop("iwae_samples"), "missing key analysis.iwae_samples"),
        (lambda c: c["priors"]["laplace"].update(kl="exact"), "priors.laplace.kl"),
        (lambda c: c["study"]["datasets"].append("imagenet"), "'imagenet' is not defined under datasets"),
        (lambda c: c["datasets"]["natural"]["prepare"].update(whiten="yes"), "datasets.natural.prepare.whiten"),
        (lambda c: c["report"].update(stability=[]), "report.stability"),
        (lambda c: c["report"].update(stability=["a/verdicts.csv", 3]), "report.stability"),
    ],
)
def test_invalid_config_names_the_key(edit, expected: str) -> None:
    config = yaml.safe_load((REPO / "presets/offline.yaml").read_text())
    edit(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert expected in str(error.value)


@pytest.mark.parametrize("preset", ["config.yaml", "presets/offline.yaml"])
def test_dry_run_resolves_the_whole_study(tmp_path: Path, preset: str) -> None:
    config = yaml.safe_load((REPO / preset).read_text())
    result = snakemake(tmp_path, "-n", "--configfile", str(REPO / preset))
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout + result.stderr
    n_groups = sum(
        len(config["datasets"][d]["latent_sizes"]) * len(dataset_priors(config, d)) for d in config["study"]["datasets"]
    )
    pack_size = config["study"].get("pack_size", yaml.safe_load((REPO / "config.yaml").read_text())["study"]["pack_size"])
    packs = {(seed - 1) // pack_size + 1 for seed in config["study"]["seeds"]}
    # one train and one analyze job per (dataset, prior, latent) and pack of seeds, none per seed
    expected = [(f"{stage}_pack{n}", n_groups) for stage in ("train", "analyze") for n in sorted(packs)]
    for rule, count in (*expected, ("report", 1)):
        assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), out
    assert not any(line.split()[:1] in (["train"], ["analyze"]) for line in out.splitlines()), out


def test_seeds_fall_into_fixed_packs(tmp_path: Path) -> None:
    """Seeds 1-8 form pack 1 and 9-16 pack 2 (pack_size 8): seeds [1, 2, 3, 9] are two packs, whose
    train jobs train and write exactly their own seeds' runs."""
    config = yaml.safe_load((REPO / "presets/tiny.yaml").read_text())
    config["study"] = {"datasets": ["digits"], "priors": ["normal"], "seeds": [3, 1, 9, 2], "pack_size": 8}
    path = tmp_path / "packs.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    for rule in ("train_pack1", "train_pack2", "analyze_pack1", "analyze_pack2"):
        assert any(line.split()[:2] == [rule, "1"] for line in out.splitlines()), out
    commands = [line for line in out.splitlines() if "sparse_vae train" in line]
    assert len(commands) == 2
    seeds = sorted(sorted(int(s) for s in re.findall(r"/seed(\d+)(?:'| |$)", line)) for line in commands)
    assert seeds == [[1, 2, 3], [9]], commands


def test_bad_config_is_rejected_before_any_job(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "presets/tiny.yaml").read_text())
    config["datasets"]["digits"]["train"]["epochs"] = 0
    config["priors"]["cauchy"]["sacle"] = 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(bad))
    assert result.returncode != 0
    assert "datasets.digits.train.epochs" in result.stderr
    assert "priors.cauchy.sacle" in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_stability_rerun_that_does_not_exist_is_named_before_any_job(tmp_path: Path) -> None:
    """report.stability names other studies' reports, which no rule here makes: snakemake would
    otherwise plan nothing for a report that is already built, silently unchecked."""
    rerun = tmp_path / "rerun.yaml"
    rerun.write_text(yaml.safe_dump({"report": {"stability": ["results/other/report/verdicts.csv"]}}))
    result = snakemake(tmp_path, "-n", "--configfile", str(REPO / "presets/tiny.yaml"), str(rerun))
    assert result.returncode != 0
    assert "report.stability: results/other/report/verdicts.csv does not exist" in result.stderr + result.stdout


def test_lint_is_clean(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--lint", "--configfile", str(REPO / "presets/tiny.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout, result.stdout


def test_every_source_the_schema_allows_is_one_the_cli_prepares() -> None:
    """The offline study once failed at its first prepare job: the schema accepted `sparse_linear`
    but the CLI's --source choices did not list it."""
    from sparse_vae.cli import build_parser
    from sparse_vae.config import load_schema

    schema_sources = set()
    for node in load_schema()["$defs"].values():
        source = node.get("properties", {}).get("source", {}) if isinstance(node, dict) else {}
        schema_sources |= set(source.get("enum", [])) | ({source["const"]} if "const" in source else set())
    assert schema_sources, "no source enum found in the schema"
    for source in schema_sources:
        args = build_parser().parse_args(["prepare", "--source", source, "--params", "{}", "--out", "x.npz"])
        assert args.source == source
