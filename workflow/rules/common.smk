# Shared helpers: the study's run list, per-rule config slices, and stage versions.
# Every rule's params carry exactly the config slice it depends on plus its stage's version
# (src/sparse_vae/versions.py), so Snakemake reruns only the jobs an edit invalidated: a change
# that moves a stage's numbers bumps its version, a refactor that moves none reruns nothing.

import shlex

from sparse_vae import versions
from sparse_vae.paths import run_file
from sparse_vae.config import canonical_json, dataset_priors, generating_family
from sparse_vae.data import DOWNLOADABLE


RESULTS = config["results"].rstrip("/")  # this study's output folder
DATASETS = config["study"]["datasets"]
SEEDS = config["study"]["seeds"]
PACK_SIZE = config["study"]["pack_size"]


def pack_of(seed):
    """The pack a seed trains in: pack n holds seeds (n - 1) x pack_size + 1 .. n x pack_size, fixed
    whatever else the study holds, so adding seeds 9-16 adds pack 2 and leaves pack 1 as it was
    (seed 0 is pack 0)."""
    return (int(seed) - 1) // PACK_SIZE + 1


# pack number -> its seeds in the study (ascending): one train job and one analyze job per
# (dataset, prior, latent, pack), written out in a loop (train.smk, analyze.smk)
SEED_PACKS = {n: sorted(s for s in SEEDS if pack_of(s) == n) for n in sorted({pack_of(s) for s in SEEDS})}


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    prior="|".join(sorted(config["priors"])),  # the configured prior entry names
    latent=r"\d+",


def study_runs():
    """(dataset, prior, latent, seed) for every run of the study, in a stable order."""
    return [
        (dataset, prior, latent, seed)
        for dataset in DATASETS
        for prior in dataset_priors(config, dataset)
        for latent in config["datasets"][dataset]["latent_sizes"]
        for seed in SEEDS
    ]


def run_files(name):
    return [
        run_file(RESULTS, d, p, z, s, name)
        for d, p, z, s in study_runs()
    ]


def pack_files(seeds, name):
    """One file per run of a pack (dataset, prior and latent stay wildcards)."""
    return [run_file(RESULTS, "{dataset}", "{prior}", "{latent}", s, name) for s in seeds]


def data_version(wildcards):
    """The DATA version of this dataset's source (the prepare rule's params)."""
    return versions.DATA[config["datasets"][wildcards.dataset]["source"]]


# -- data ----------------------------------------------------------------------------------

def raw_input(wildcards):
    """Raw-file marker of the sources torchvision downloads; nothing for embedded data."""
    source = config["datasets"][wildcards.dataset]["source"]
    return [f"{config['data_root']}/{source}.ok"] if source in DOWNLOADABLE else []


# -- training ------------------------------------------------------------------------------

# Job group of train + analyze: each pack's two jobs (all its seeds) form one group job (one Slurm
# job per pack), and `--group-components run=N` (slurm/config.yaml) puts N packs into one submission.
RUN_GROUP = "run"
# Inside a Slurm job the executor plugin runs the group's jobs one at a time (its inner Snakemake
# gets `--jobs 1`). Each train/analyze job takes one `pack_slot`, and the slurm profile allows one
# per Slurm job (scope local), so Snakemake sizes a submission for that: one job's CPUs and memory,
# and the sum of its jobs' runtimes as time limit. Unlimited (no effect) outside the slurm profile.
PACK_SLOT = 1

TRAIN_RESOURCES = config["resources"]["train"]
ANALYZE_RESOURCES = config["resources"]["analyze"]


def run_spec(wildcards, seed):
    """A run's spec: exactly the config a training run depends on."""
    dataset = config["datasets"][wildcards.dataset]
    return {
        "dataset": wildcards.dataset,
        "prior": dict(name=wildcards.prior, **config["priors"][wildcards.prior]),
        "latent": int(wildcards.latent),
        "seed": int(seed),
        "model": dataset["model"],
        "train": dataset["train"],
    }


def pack_specs(seeds):
    """The train params of a pack: its members' specs (a list, one per seed), nothing else."""
    return lambda wildcards: canonical_json([run_spec(wildcards, seed) for seed in seeds])


def pack_runtime(resources, seeds):
    """A pack job's time limit (minutes): the declared per-run runtime times its seeds, which bounds
    the pack (it costs at most its seeds one after another; bench/pack_throughput.py)."""
    return resources["runtime"] * len(seeds)


def draws_figures(seeds):
    """The analyze flags for a pack's figures: drawn for the report's representative seed (the only one
    it shows) unless `analysis.figures` is `all`; empty figures/ folders otherwise."""
    representative = config["report"]["representative_seed"]
    representative = SEEDS[0] if representative is None else representative

    def flags(wildcards):
        if config["analysis"]["figures"] == "all":
            return ""
        if int(representative) not in seeds:
            return "--no-figures"
        run_dir = run_file(RESULTS, wildcards.dataset, wildcards.prior, wildcards.latent, representative, "")
        return f"--figures-for {shlex.quote(run_dir)}"

    return flags


def gpu_resources():
    """GPU request in the form the Slurm executor plugin reads; none when gpu is 0."""
    if TRAIN_RESOURCES["gpu"] == 0:
        return {}
    request = {"gpu": TRAIN_RESOURCES["gpu"]}
    if TRAIN_RESOURCES["gpu_model"]:
        request["gpu_model"] = TRAIN_RESOURCES["gpu_model"]
    return request


# -- report --------------------------------------------------------------------------------

def stability_tables():
    """Each stability rerun's verdicts.csv (report.stability: one path or a list) and the pairwise.csv
    and metrics.csv beside it, which the report reads too; none when no rerun is named."""
    named = config["report"].get("stability") or []
    tables = []
    for verdicts in [named] if isinstance(named, str) else named:
        if not os.path.isfile(verdicts):  # another study's output: no rule here makes it
            raise WorkflowError(f"report.stability: {verdicts} does not exist; run that study's report first "
                                "(bench/README.md, 'Stability of the verdicts')")
        folder = os.path.dirname(verdicts)
        tables += [verdicts, os.path.join(folder, "pairwise.csv"), os.path.join(folder, "metrics.csv")]
    return tables


def figure_category(wildcards):
    """The report category of a figure of report/figures/, by its name (report.figures, talk_figures)."""
    if wildcards.name == "scorecard":
        return "1. Scorecard"
    if wildcards.name.startswith("talk_"):
        return "2. The talk's figures"
    return "3. Figure panels"
