# Training: one job per dataset x prior x latent size x seed. Resumable from checkpoints.


rule train:
    input:
        data=f"{RESULTS}/data/{{dataset}}.npz",
    output:
        model=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/history.csv",
        summary=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/train.json",
    group:
        RUN_GROUP
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}.tsv"
    params:
        spec=train_spec,
        version=versions.TRAIN,
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        device=TRAIN_RESOURCES["device"],
    threads: TRAIN_RESOURCES["threads"]
    resources:
        mem_mb=TRAIN_RESOURCES["mem_mb"],
        runtime=TRAIN_RESOURCES["runtime"],
        pack_slot=PACK_SLOT,
        **gpu_resources(),
    shell:
        "python -m sparse_vae train --data {input.data:q} --spec {params.spec:q} "
        "--run-dir {params.run_dir:q} --threads {threads} --device {params.device} "
        "2>&1 | tee {log:q}"
