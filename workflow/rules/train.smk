# Training: one job per dataset x prior x latent size x seed. Resumable from checkpoints.


def train_spec(wildcards):
    dataset = config["datasets"][wildcards.dataset]
    return as_json(
        {
            "dataset": wildcards.dataset,
            "prior": dict(name=wildcards.prior, **config["priors"][wildcards.prior]),
            "latent": int(wildcards.latent),
            "seed": int(wildcards.seed),
            "model": dataset["model"],
            "train": dataset["train"],
        }
    )


TRAIN_RESOURCES = config["resources"]["train"]


def gpu_resources():
    """GPU request in the form the Slurm executor plugin reads; none when gpu is 0."""
    if TRAIN_RESOURCES["gpu"] == 0:
        return {}
    request = {"gpu": TRAIN_RESOURCES["gpu"]}
    if TRAIN_RESOURCES["gpu_model"]:
        request["gpu_model"] = TRAIN_RESOURCES["gpu_model"]
    return request


rule train:
    input:
        data=RESULTS + "/data/{dataset}.npz",
    output:
        model=RUN_DIR + "/model.pt",
        history=RUN_DIR + "/history.csv",
        summary=RUN_DIR + "/train.json",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        RESULTS + "/logs/train/{dataset}/{prior}/z{latent}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/train/{dataset}/{prior}/z{latent}/seed{seed}.tsv"
    params:
        spec=train_spec,
        code=TRAIN_CODE,
        run_dir=RUN_DIR,
        device=TRAIN_RESOURCES["device"],
    threads: TRAIN_RESOURCES["threads"]
    resources:
        mem_mb=TRAIN_RESOURCES["mem_mb"],
        runtime=TRAIN_RESOURCES["runtime"],
        **gpu_resources(),
    shell:
        "{SPARSE_VAE} train --data {input.data:q} --spec {params.spec:q} "
        "--run-dir {params.run_dir:q} --threads {threads} --device {params.device} "
        "2>&1 | tee {log:q}"
