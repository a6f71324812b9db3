# Data: raw downloads (local jobs: cluster nodes often have no internet), then one .npz per dataset.


localrules:
    download,
    prepare,


DOWNLOADED = {"mnist", "cifar"}


def raw_input(wildcards):
    source = config["datasets"][wildcards.dataset]["source"]
    return [f"{config['data_root']}/{source}.ok"] if source in DOWNLOADED else []


rule download:
    output:
        config["data_root"] + "/{source}.ok",
    wildcard_constraints:
        source="mnist|cifar",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        RESULTS + "/logs/download/{source}.log",
    params:
        root=config["data_root"],
    shell:
        "{SPARSE_VAE} download --source {wildcards.source} --root {params.root:q} "
        "--done {output:q} 2>&1 | tee {log:q}"


rule prepare:
    input:
        raw_input,
    output:
        RESULTS + "/data/{dataset}.npz",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        RESULTS + "/logs/prepare/{dataset}.log",
    params:
        source=lambda w: config["datasets"][w.dataset]["source"],
        settings=lambda w: as_json(config["datasets"][w.dataset]["prepare"]),
        root=config["data_root"],
        code=DATA_CODE,
    shell:
        "{SPARSE_VAE} prepare --source {params.source} --params {params.settings:q} "
        "--root {params.root:q} --out {output:q} 2>&1 | tee {log:q}"
