# Training: one job per pack = dataset x prior x latent size x chunk of `study.pack_size` seeds
# (common.smk SEED_PACKS). The pack trains all its seeds and learning rates as one batched model
# and writes every run's own files. Resumable from the pack's checkpoint (in its first run's folder).

for PACK, PACK_SEEDS in SEED_PACKS.items():

    rule:
        name:
            f"train_pack{PACK}"
        input:
            data=f"{RESULTS}/data/{{dataset}}.npz",
        output:
            models=pack_files(PACK_SEEDS, "model.pt"),
            histories=pack_files(PACK_SEEDS, "history.csv"),
            summaries=pack_files(PACK_SEEDS, "train.json"),
        group:
            RUN_GROUP
        conda:
            "../../envs/sparse-vae.yaml"
        log:
            f"{RESULTS}/logs/train/{{dataset}}/{{prior}}/z{{latent}}/pack{PACK}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train/{{dataset}}/{{prior}}/z{{latent}}/pack{PACK}.tsv"
        params:
            specs=pack_specs(PACK_SEEDS),
            version=versions.TRAIN,
            run_dirs=lambda wildcards, output: [os.path.dirname(path) for path in output.models],
            device=TRAIN_RESOURCES["device"],
        threads: TRAIN_RESOURCES["threads"]
        resources:
            mem_mb=TRAIN_RESOURCES["mem_mb"],
            runtime=pack_runtime(TRAIN_RESOURCES, PACK_SEEDS),
            pack_slot=PACK_SLOT,
            **gpu_resources(),
        shell:
            "python -m sparse_vae train --data {input.data:q} --spec {params.specs:q} "
            "--run-dir {params.run_dirs:q} --threads {threads} --device {params.device} "
            "2>&1 | tee {log:q}"
