# Data: raw downloads (local jobs: cluster nodes often have no internet), then one .npz per dataset.
# The download job of fashion_mnist extracts Debian's dataset-fashion-mnist when it is installed
# (no network needed); every source leaves one marker, <data_root>/<source>.ok.


localrules:
    download,
    prepare,


rule download:
    output:
        f"{config['data_root']}/{{source}}.ok",
    wildcard_constraints:
        source="|".join(DOWNLOADABLE),
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/download/{{source}}.log",
    params:
        root=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m sparse_vae download --source {wildcards.source} --root {params.root:q} "
        "--done {output:q} 2>&1 | tee {log:q}"


rule prepare:
    input:
        raw_input,
    output:
        f"{RESULTS}/data/{{dataset}}.npz",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}.log",
    params:
        source=lambda w: config["datasets"][w.dataset]["source"],
        settings=lambda w: canonical_json(config["datasets"][w.dataset]["prepare"]),
        root=config["data_root"],
        version=data_version,
    shell:
        "python -m sparse_vae prepare --source {params.source} --params {params.settings:q} "
        "--root {params.root:q} --out {output:q} 2>&1 | tee {log:q}"
