# Shared helpers: the study's run list, per-rule config slices, and code fingerprints.
# Every rule's params carry exactly the config slice (and code) it depends on, so Snakemake
# reruns only the jobs an edit invalidated.

import hashlib
import json


SPARSE_VAE = "python -m sparse_vae"
RESULTS = "results"
RUN_DIR = RESULTS + "/runs/{dataset}/{prior}/z{latent}/seed{seed}"
DATASETS = config["study"]["datasets"]
PRIORS = config["study"]["priors"]
SEEDS = config["study"]["seeds"]


wildcard_constraints:
    dataset="|".join(sorted(config["datasets"])),
    prior="normal|laplace|cauchy",
    latent=r"\d+",
    seed=r"\d+",


def study_runs():
    """(dataset, prior, latent, seed) for every run of the study, in a stable order."""
    return [
        (dataset, prior, latent, seed)
        for dataset in DATASETS
        for prior in PRIORS
        for latent in config["datasets"][dataset]["latent_sizes"]
        for seed in SEEDS
    ]


def run_files(name):
    return [
        RUN_DIR.format(dataset=d, prior=p, latent=z, seed=s) + "/" + name
        for d, p, z, s in study_runs()
    ]


def as_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def code_fingerprint(*modules):
    """Hash of the package sources a step runs, so editing them reruns exactly that step."""
    digest = hashlib.sha256()
    for module in modules:
        with open(os.path.join(SRC, "sparse_vae", module), "rb") as fh:
            digest.update(module.encode() + b"\0" + fh.read())
    return digest.hexdigest()[:16]


DATA_CODE = code_fingerprint(
    "data/__init__.py", "data/io.py", "data/synthetic.py", "data/mnist.py",
    "data/cifar.py", "data/digits.py", "data/natural.py",
)
TRAIN_CODE = code_fingerprint("distributions.py", "model.py", "train.py")
ANALYZE_CODE = code_fingerprint("analysis.py")
REPORT_CODE = code_fingerprint("report.py")
