# Shared helpers: the study's run list, per-rule config slices, and stage versions.
# Every rule's params carry exactly the config slice it depends on plus its stage's version
# (src/sparse_vae/versions.py), so Snakemake reruns only the jobs an edit invalidated: a change
# that moves a stage's numbers bumps its version, a refactor that moves none reruns nothing.

from sparse_vae import versions
from sparse_vae.config import canonical_json, dataset_priors, generating_family
from sparse_vae.data import DOWNLOADABLE


RESULTS = config["results"].rstrip("/")  # this study's output folder
DATASETS = config["study"]["datasets"]
SEEDS = config["study"]["seeds"]


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    prior="|".join(sorted(config["priors"])),  # the configured prior entry names
    latent=r"\d+",
    seed=r"\d+",


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
        f"{RESULTS}/runs/{d}/{p}/z{z}/seed{s}/{name}"
        for d, p, z, s in study_runs()
    ]


def data_version(wildcards):
    """The DATA version of this dataset's source (the prepare rule's params)."""
    return versions.DATA[config["datasets"][wildcards.dataset]["source"]]


# -- data ----------------------------------------------------------------------------------

def raw_input(wildcards):
    """Raw-file marker of the sources torchvision downloads; nothing for embedded data."""
    source = config["datasets"][wildcards.dataset]["source"]
    return [f"{config['data_root']}/{source}.ok"] if source in DOWNLOADABLE else []


# -- training ------------------------------------------------------------------------------

# Job group of train + analyze: each run's two jobs form one group job (one Slurm job per run), and
# `--group-components run=N` (slurm/config.yaml) packs N runs into one submission.
RUN_GROUP = "run"
# Inside a Slurm job the executor plugin runs the group's jobs one at a time (its inner Snakemake
# gets `--jobs 1`). Each train/analyze job takes one `pack_slot`, and the slurm profile allows one
# per Slurm job (scope local), so Snakemake sizes a pack for that: one run's CPUs and memory, and
# the sum of its jobs' runtimes as time limit. Unlimited (no effect) outside the slurm profile.
PACK_SLOT = 1

TRAIN_RESOURCES = config["resources"]["train"]
ANALYZE_RESOURCES = config["resources"]["analyze"]


def train_spec(wildcards):
    """The run spec: exactly the config a training run depends on."""
    dataset = config["datasets"][wildcards.dataset]
    return canonical_json(
        {
            "dataset": wildcards.dataset,
            "prior": dict(name=wildcards.prior, **config["priors"][wildcards.prior]),
            "latent": int(wildcards.latent),
            "seed": int(wildcards.seed),
            "model": dataset["model"],
            "train": dataset["train"],
        }
    )


def draws_figures(wildcards):
    """The analyze flag for a run's figures: drawn for the report's representative seed (the only one
    it shows) unless `analysis.figures` is `all`; an empty figures/ folder otherwise."""
    representative = config["report"]["representative_seed"]
    representative = SEEDS[0] if representative is None else representative
    if config["analysis"]["figures"] == "all" or int(wildcards.seed) == int(representative):
        return ""
    return "--no-figures"


def gpu_resources():
    """GPU request in the form the Slurm executor plugin reads; none when gpu is 0."""
    if TRAIN_RESOURCES["gpu"] == 0:
        return {}
    request = {"gpu": TRAIN_RESOURCES["gpu"]}
    if TRAIN_RESOURCES["gpu_model"]:
        request["gpu_model"] = TRAIN_RESOURCES["gpu_model"]
    return request
