# Sparse VAE study: prepare data -> train (dataset x prior x latent size x seed) -> analyze -> report.
# Run the default study with `snakemake --cores 8`, the offline one with
# `snakemake --cores 2 --configfile presets/offline.yaml`, on Slurm with `snakemake --profile slurm`.

import os
import sys

from snakemake.utils import min_version

min_version("8.10")

SRC = os.path.join(workflow.basedir, "src")
# Jobs run `python -m sparse_vae` from this checkout, inside or outside a conda env.
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))

from sparse_vae.config import ConfigError, load_schema, validate_config  # noqa: E402


configfile: os.path.join(workflow.basedir, "config.yaml")


try:
    validate_config(
        config, load_schema(os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/report.smk"


# Every run's metrics are targets too, so a deleted metrics.json is rebuilt (and the report with it)
# even though the report itself is newer.
rule all:
    input:
        run_files("metrics.json"),
        REPORT_OUTPUTS,
    default_target: True
